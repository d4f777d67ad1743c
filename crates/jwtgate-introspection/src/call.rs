//! One call to the introspection endpoint (RFC 7662 §2.1): the form, the client's authentication, the answer
//! read within its bounds.

use std::fmt;
use std::time::Duration;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::header::{self, HeaderValue};
use jwtgate_core::__private::unix_now;
use jwtgate_core::{ConfigError, ConfigErrorKind, MAX_ANSWER_BYTES, Secret, SigningKey};
use jwtgate_jwks::__private::{Shown, check_content_type, describe, read_body};
use reqwest::{Client, StatusCode, Url};
use serde::Serialize;

/// How the resource server authenticates to the introspection endpoint (RFC 7662 §2.1 requires some
/// authentication; which one is the authorization server's choice).
#[derive(Clone)]
pub(crate) enum Credentials {
    /// None: for an endpoint that authenticates callers otherwise (a network policy, mTLS).
    None,
    /// `Authorization: Basic`, precomputed from the client id and secret, each form-urlencoded first.
    Header(HeaderValue, &'static str),
    /// `client_id` and `client_secret` in the form (`client_secret_post`).
    Post { id: String, secret: Secret },
    /// `client_id` and a `client_assertion` signed with the client's key (`private_key_jwt`, RFC 7523), made
    /// fresh for every call.
    PrivateKeyJwt { id: String, key: SigningKey, audience: Option<String> },
}

impl Credentials {
    /// HTTP Basic with `id` and `secret` form-urlencoded first, as RFC 6749 §2.3.1 says: a secret with `:`, `+`
    /// or non-ASCII characters is then read back as it was.
    pub(crate) fn basic(id: &str, secret: &Secret) -> Result<Self, ConfigError> {
        let mut pair: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
        pair.push(':');
        pair.extend(form_urlencoded::byte_serialize(secret.expose()));
        Self::header(&format!("Basic {}", STANDARD.encode(pair)), "client_secret_basic")
    }

    /// `Authorization: Bearer`, for an endpoint that takes a token of the resource server's own.
    pub(crate) fn bearer(token: &Secret) -> Result<Self, ConfigError> {
        let token = std::str::from_utf8(token.expose())
            .map_err(|_| ConfigError::new(ConfigErrorKind::Introspection, "the bearer token is not UTF-8"))?;
        Self::header(&format!("Bearer {token}"), "bearer")
    }

    fn header(value: &str, method: &'static str) -> Result<Self, ConfigError> {
        let mut value = HeaderValue::from_str(value).map_err(|_| {
            ConfigError::new(ConfigErrorKind::Introspection, format!("the {method} credentials are not a valid header"))
        })?;
        value.set_sensitive(true);
        Ok(Self::Header(value, method))
    }

    /// The name of the method, for `Debug` and logs.
    pub(crate) fn method(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Header(_, method) => method,
            Self::Post { .. } => "client_secret_post",
            Self::PrivateKeyJwt { .. } => "private_key_jwt",
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.method())
    }
}

/// Why a call gave no usable answer: words safe to log, without the token, the secret or the body.
#[derive(Debug)]
pub(crate) struct Failure(pub(crate) String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// POSTs `token` to `endpoint` and reads the body of a 200 (at most [`MAX_ANSWER_BYTES`]), within `timeout`
/// for the whole exchange. A redirect is not followed: it is an answer other than 200.
pub(crate) async fn post(
    client: &Client,
    endpoint: &Url,
    credentials: &Credentials,
    token: &str,
    timeout: Duration,
) -> Result<Vec<u8>, Failure> {
    let call = async {
        let mut form = Form::new(token.len());
        form.pair("token", token.as_bytes()).pair("token_type_hint", b"access_token");
        let mut request = client.post(endpoint.clone()).header(header::ACCEPT, "application/json");
        match credentials {
            Credentials::None => {}
            Credentials::Header(value, _) => request = request.header(header::AUTHORIZATION, value.clone()),
            Credentials::Post { id, secret } => {
                form.pair("client_id", id.as_bytes()).pair("client_secret", secret.expose());
            }
            Credentials::PrivateKeyJwt { id, key, audience } => {
                let audience = audience.as_deref().unwrap_or(endpoint.as_str());
                let assertion = client_assertion(id, key, audience)?;
                form.pair("client_id", id.as_bytes())
                    .pair("client_assertion_type", b"urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
                    .pair("client_assertion", assertion.as_bytes());
            }
        }
        let mut response = request
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form.0)
            .send()
            .await
            .map_err(|err| Failure(describe(&err)))?;
        if response.status() != StatusCode::OK {
            return Err(Failure(format!("HTTP {}", response.status())));
        }
        check_content_type(response.headers()).map_err(Failure)?;
        read_body(&mut response, MAX_ANSWER_BYTES).await.map_err(Failure)
    };
    let answer = tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| Err(Failure(format!("no complete answer within {timeout:?}"))));
    answer.map_err(|Failure(reason)| Failure(format!("{}: {reason}", Shown(endpoint))))
}

/// An `application/x-www-form-urlencoded` body.
struct Form(String);

impl Form {
    fn new(token_len: usize) -> Self {
        Self(String::with_capacity(token_len + 64))
    }

    fn pair(&mut self, name: &str, value: &[u8]) -> &mut Self {
        if !self.0.is_empty() {
            self.0.push('&');
        }
        self.0.push_str(name);
        self.0.push('=');
        self.0.extend(form_urlencoded::byte_serialize(value));
        self
    }
}

/// A client assertion (RFC 7523 §3): `iss` and `sub` the client id, `aud` the authorization server, a fresh
/// `jti`, valid for one minute.
fn client_assertion(id: &str, key: &SigningKey, audience: &str) -> Result<String, Failure> {
    #[derive(Serialize)]
    struct Assertion<'a> {
        iss: &'a str,
        sub: &'a str,
        aud: &'a str,
        jti: &'a str,
        iat: i64,
        exp: i64,
    }
    let mut nonce = [0; 16];
    SystemRandom::new().fill(&mut nonce).map_err(|_| Failure("no randomness for a client assertion".to_owned()))?;
    let jti = URL_SAFE_NO_PAD.encode(nonce);
    let iat = unix_now();
    let claims = Assertion { iss: id, sub: id, aud: audience, jti: &jti, iat, exp: iat + 60 };
    key.sign("JWT", &claims).map_err(|_| Failure("the client assertion could not be signed".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_urlencoded_before_base64() {
        // RFC 6749 §2.3.1: "client id:secret" with reserved characters, encoded first.
        let Credentials::Header(value, _) = Credentials::basic("my client", &Secret::new("p:ss+wörd/")).unwrap()
        else {
            unreachable!()
        };
        assert!(value.is_sensitive());
        let encoded = value.to_str().unwrap().strip_prefix("Basic ").unwrap();
        assert_eq!(STANDARD.decode(encoded).unwrap(), b"my+client:p%3Ass%2Bw%C3%B6rd%2F");
    }

    #[test]
    fn the_form_encodes_every_value() {
        let mut form = Form::new(8);
        form.pair("token", b"a+b/c=d&e f").pair("token_type_hint", b"access_token");
        assert_eq!(form.0, "token=a%2Bb%2Fc%3Dd%26e+f&token_type_hint=access_token");
    }

    #[test]
    fn debug_names_the_method_never_the_secret() {
        let basic = Credentials::basic("id", &Secret::new("s3cr3t-value")).unwrap();
        let post = Credentials::Post { id: "id".to_owned(), secret: Secret::new("s3cr3t-value") };
        for credentials in [basic, post] {
            assert!(!format!("{credentials:?}").contains("s3cr3t"));
        }
    }
}
