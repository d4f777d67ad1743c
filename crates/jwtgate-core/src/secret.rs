//! HMAC secrets, read from configuration and kept out of logs.

use std::fmt;

use zeroize::Zeroizing;

use crate::KeyError;

/// Secret bytes for an HMAC key.
///
/// `Debug` prints `Secret([redacted])`, and the bytes are zeroed when the secret is dropped. Read secrets
/// from the environment or a secret store with [`Secret::from_env`]; never hard-code them.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// A secret from raw bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(Zeroizing::new(bytes.into()))
    }

    /// Reads the secret from the environment variable `var`, taking its value's UTF-8 bytes as they are.
    ///
    /// Fails when the variable is unset, empty or not UTF-8, with a message that names the variable (and
    /// never its value).
    pub fn from_env(var: &str) -> Result<Self, KeyError> {
        match std::env::var(var) {
            Ok(value) if value.is_empty() => Err(KeyError::new(format!("environment variable {var} is empty"))),
            Ok(value) => Ok(Self::new(value.into_bytes())),
            Err(std::env::VarError::NotPresent) => Err(KeyError::new(format!("environment variable {var} is not set"))),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(KeyError::new(format!("environment variable {var} is not valid UTF-8")))
            }
        }
    }

    /// The secret's length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The secret bytes. Handle them with care: never log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_variable_is_named_in_the_error() {
        let err = Secret::from_env("JWTGATE_TEST_SURELY_UNSET_VARIABLE").unwrap_err();
        assert_eq!(err.to_string(), "environment variable JWTGATE_TEST_SURELY_UNSET_VARIABLE is not set");
    }

    #[test]
    fn debug_is_redacted() {
        assert_eq!(format!("{:?}", Secret::new(b"hunter2hunter2".to_vec())), "Secret([redacted])");
    }
}
