//! Session cookies: the access and refresh tokens out of JavaScript's reach.

use std::borrow::Cow;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cookie::{Cookie, SameSite};
use http::HeaderValue;
use http::header::{COOKIE, HeaderMap};

use crate::sessions::TokenPair;
use jwtgate_core::ConfigError;

/// The `Set-Cookie` headers of a session: the access token, the refresh token, and a CSRF token.
///
/// Secure by default:
/// - the access token in `__Host-access_token`: `HttpOnly`, `Secure`, `SameSite=Strict`, `Path=/`, no
///   `Domain` (the `__Host-` prefix makes browsers enforce all three), and `Max-Age` equal to its lifetime;
/// - the refresh token in `__Secure-refresh_token`: the same, but scoped to the refresh route
///   ([`refresh_path`](Self::refresh_path), default `/refresh`), so that no other request carries it;
/// - a random CSRF token in `__Host-csrf_token`, readable by your page's scripts (not `HttpOnly`), for the
///   double-submit defence (`Csrf::double_submit`).
///
/// Use [`access_name`](Self::access_name) as the layer's cookie source (`TokenSource::cookie`).
/// [`insecure_dev_mode`](Self::insecure_dev_mode), for plain http on localhost, must be asked for.
#[derive(Clone, Debug)]
pub struct SessionCookies {
    secure: bool,
    same_site: SameSite,
    refresh_path: Cow<'static, str>,
}

impl Default for SessionCookies {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionCookies {
    /// The secure defaults.
    pub fn new() -> Self {
        Self { secure: true, same_site: SameSite::Strict, refresh_path: Cow::Borrowed("/refresh") }
    }

    /// The path the refresh cookie is sent to: your refresh route (and logout, if it is under it). Default
    /// `/refresh`.
    #[must_use]
    pub fn refresh_path(mut self, path: impl Into<Cow<'static, str>>) -> Self {
        self.refresh_path = path.into();
        self
    }

    /// `SameSite=Lax` instead of `Strict`: the cookies then come along when a user follows a link to your
    /// site from another one (a top-level `GET`). Unsafe cross-site requests still do not carry them.
    #[must_use]
    pub fn same_site_lax(mut self) -> Self {
        self.same_site = SameSite::Lax;
        self
    }

    /// For development over plain http on localhost only: no `Secure` attribute, and no `__Host-` or
    /// `__Secure-` prefixes (which browsers accept only with `Secure`). Never in production.
    #[must_use]
    pub fn insecure_dev_mode(mut self) -> Self {
        tracing::warn!("jwtgate: session cookies without Secure (insecure development mode)");
        self.secure = false;
        self
    }

    /// The access-token cookie's name.
    pub fn access_name(&self) -> &'static str {
        if self.secure { "__Host-access_token" } else { "access_token" }
    }

    /// The refresh-token cookie's name.
    pub fn refresh_name(&self) -> &'static str {
        if self.secure { "__Secure-refresh_token" } else { "refresh_token" }
    }

    /// The CSRF cookie's name, for `Csrf::double_submit`.
    pub fn csrf_name(&self) -> &'static str {
        if self.secure { "__Host-csrf_token" } else { "csrf_token" }
    }

    /// The three `Set-Cookie` values for a new pair: access, refresh, and a fresh CSRF token.
    pub fn set(&self, pair: &TokenPair) -> Result<Vec<HeaderValue>, ConfigError> {
        let mut csrf = [0u8; 32];
        aws_lc_rs::rand::fill(&mut csrf)
            .map_err(|_| crate::issuer_error("the system random generator failed".to_owned()))?;
        [
            self.cookie(self.access_name(), pair.access.token().to_owned(), "/", true, pair.access.lifetime()),
            self.cookie(
                self.refresh_name(),
                pair.refresh.as_str().to_owned(),
                &self.refresh_path,
                true,
                pair.refresh_lifetime,
            ),
            self.cookie(self.csrf_name(), URL_SAFE_NO_PAD.encode(csrf), "/", false, pair.refresh_lifetime),
        ]
        .iter()
        .map(header_value)
        .collect()
    }

    /// The `Set-Cookie` values that delete the three cookies (logout).
    pub fn clear(&self) -> Vec<HeaderValue> {
        [
            self.cookie(self.access_name(), String::new(), "/", true, Duration::ZERO),
            self.cookie(self.refresh_name(), String::new(), &self.refresh_path, true, Duration::ZERO),
            self.cookie(self.csrf_name(), String::new(), "/", false, Duration::ZERO),
        ]
        .iter()
        .filter_map(|cookie| header_value(cookie).ok())
        .collect()
    }

    /// The refresh token the request carries, if any.
    pub fn refresh_token<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        cookie_value(headers, self.refresh_name())
    }

    /// The access token the request carries in its cookie, if any (for a logout route, say; protected
    /// routes read it through the layer's cookie source).
    pub fn access_token<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        cookie_value(headers, self.access_name())
    }

    fn cookie(
        &self,
        name: &'static str,
        value: String,
        path: &str,
        http_only: bool,
        max_age: Duration,
    ) -> Cookie<'static> {
        let max_age = cookie::time::Duration::seconds(i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX));
        Cookie::build((name, value))
            .path(path.to_owned())
            .http_only(http_only)
            .secure(self.secure)
            .same_site(self.same_site)
            .max_age(max_age)
            .build()
    }
}

/// The value of the one cookie `name`; `None` when it is absent, empty, or there twice (a sibling subdomain
/// may plant a second `__Secure-` cookie of that name: never guess which is ours).
fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| Cookie::split_parse(value).filter_map(Result::ok))
        .filter(|cookie| cookie.name() == name)
        .filter_map(|cookie| cookie.value_raw());
    match (found.next(), found.next()) {
        (Some(value), None) if !value.is_empty() => Some(value),
        _ => None,
    }
}

fn header_value(cookie: &Cookie<'static>) -> Result<HeaderValue, ConfigError> {
    HeaderValue::try_from(cookie.to_string())
        .map_err(|_| crate::issuer_error("a cookie is not a valid header value".to_owned()))
}
