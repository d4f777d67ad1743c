//! HMAC secrets, read from configuration and kept out of logs.

use std::fmt;

use zeroize::Zeroizing;

use crate::ConfigError;

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
    pub fn from_env(var: &str) -> Result<Self, ConfigError> {
        match std::env::var(var) {
            Ok(value) if value.is_empty() => Err(ConfigError::key(format!("environment variable {var} is empty"))),
            Ok(value) => Ok(Self::new(value.into_bytes())),
            Err(std::env::VarError::NotPresent) => {
                Err(ConfigError::key(format!("environment variable {var} is not set")))
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(ConfigError::key(format!("environment variable {var} is not valid UTF-8")))
            }
        }
    }

    /// Reads the secret from the environment variable `var` as base64 (standard or URL-safe alphabet, with or
    /// without padding, white space ignored), as `openssl rand -base64 64` writes it, line breaks included.
    /// Prefer this to [`Secret::from_env`] for random secrets: decoded, each byte carries eight bits of
    /// the generator's entropy, where the same secret taken as text carries six. It cannot tell a random
    /// secret from a password that happens to be base64, though, and RFC 8725 §3.5 forbids passwords as
    /// keys.
    ///
    /// Fails when the variable is unset, empty, not UTF-8 or not base64, with a message that names the
    /// variable (and never its value).
    pub fn from_env_base64(var: &str) -> Result<Self, ConfigError> {
        let text = Zeroizing::new(Self::from_env(var)?.0.to_vec());
        let text = std::str::from_utf8(&text)
            .map_err(|_| ConfigError::key(format!("environment variable {var} is not valid UTF-8")))?;
        Self::from_base64(text).map_err(|_| ConfigError::key(format!("environment variable {var} is not base64")))
    }

    /// A secret from base64 text (standard or URL-safe alphabet, with or without padding, white space such as
    /// line breaks ignored). The error never quotes the text.
    pub fn from_base64(text: &str) -> Result<Self, ConfigError> {
        use base64::Engine;
        use base64::alphabet::{STANDARD, URL_SAFE};
        use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

        let config = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
        let text: Zeroizing<String> = Zeroizing::new(text.split_ascii_whitespace().collect());
        let alphabet = if text.contains(['-', '_']) { &URL_SAFE } else { &STANDARD };
        GeneralPurpose::new(alphabet, config)
            .decode(text.as_bytes())
            .map(Self::new)
            .map_err(|_| ConfigError::key("the secret is not base64".to_owned()))
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
    fn base64_secrets_decode_from_either_alphabet_with_or_without_padding() {
        let bytes: Vec<u8> = (0..32).map(|i| i * 8 + 3).collect();
        for text in [
            "AwsTGyMrMztDS1NbY2tze4OLk5ujq7O7w8vT2+Pr8/s=",
            "AwsTGyMrMztDS1NbY2tze4OLk5ujq7O7w8vT2+Pr8/s",
            "AwsTGyMrMztDS1NbY2tze4OLk5ujq7O7w8vT2-Pr8_s",
            "AwsTGyMrMztDS1NbY2tze4OLk5ujq\n7O7w8vT2+Pr8/s=\n",
        ] {
            assert_eq!(Secret::from_base64(text).unwrap().expose(), bytes.as_slice(), "{text}");
        }
        let err = Secret::from_base64("correct horse battery staple!").unwrap_err();
        assert_eq!(err.to_string(), "the secret is not base64");
    }

    #[test]
    fn a_base64_variable_that_is_missing_is_named() {
        let err = Secret::from_env_base64("JWTGATE_TEST_SURELY_UNSET_VARIABLE").unwrap_err();
        assert_eq!(err.to_string(), "environment variable JWTGATE_TEST_SURELY_UNSET_VARIABLE is not set");
    }

    #[test]
    fn debug_is_redacted() {
        assert_eq!(format!("{:?}", Secret::new(b"hunter2hunter2".to_vec())), "Secret([redacted])");
    }
}
