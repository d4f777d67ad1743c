//! The CSRF defence of cookie sources: fetch metadata, then `Origin`; or double submit.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use http::{HeaderMap, HeaderName, Method};

use crate::head::{RequestHead, cookie};

/// How a cookie source tells your own pages' unsafe requests from forged ones (cross-site request forgery).
///
/// It applies to requests whose token comes from a cookie and whose method is unsafe (anything but `GET`,
/// `HEAD`, `OPTIONS` and `TRACE`); a request that fails it gets 403 `csrf_rejected`. Requests with an
/// `Authorization: Bearer` header are exempt: a browser never adds that header on its own.
#[derive(Clone)]
pub struct Csrf {
    kind: CsrfKind,
}

#[derive(Clone)]
enum CsrfKind {
    Origin { allowed: Arc<[String]> },
    DoubleSubmit { cookie: Cow<'static, str>, header: HeaderName },
    Off,
}

impl Csrf {
    /// Fetch metadata, then `Origin` (the OWASP recommendation): the request passes when `Sec-Fetch-Site` is
    /// `same-origin` (or `none`: the user's own navigation), or, without it, when `Origin` names the
    /// request's own host. Anything else fails. The default.
    ///
    /// A request with neither header passes: it does not come from a browser (every current browser sends
    /// `Origin` with a cross-origin `POST`, `PUT`, `PATCH` or `DELETE`), and only a browser can be tricked
    /// into sending a cookie it holds for you.
    pub fn same_origin() -> Self {
        Self::allow_origins(std::iter::empty::<String>())
    }

    /// [`same_origin`](Self::same_origin), and requests whose `Origin` is one of `origins` (such as
    /// `https://app.example.com`, exactly: scheme, host and port), for a front end on another origin.
    pub fn allow_origins<I, S>(origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self { kind: CsrfKind::Origin { allowed: origins.into_iter().map(Into::into).collect() } }
    }

    /// The double-submit pattern: the request passes when header `header` holds the value of cookie
    /// `cookie`, a random value your login sets in a cookie that page scripts can read (not `HttpOnly`).
    /// Another site can make the browser send the cookie, but cannot read it to copy it into the header.
    pub fn double_submit(cookie: impl Into<Cow<'static, str>>, header: HeaderName) -> Self {
        Self { kind: CsrfKind::DoubleSubmit { cookie: cookie.into(), header } }
    }

    /// No defence. Only for cookies that are `SameSite=Strict` and an app that accepts the remaining risk
    /// (sibling subdomains, old browsers); say so in your code.
    pub fn disabled() -> Self {
        Self { kind: CsrfKind::Off }
    }

    /// Whether the request `head` passes: always for safe methods, except a protocol upgrade. The cookie
    /// source calls it; call it yourself on routes that read a cookie without `JwtAuthLayer`, such as a
    /// refresh or a login route.
    ///
    /// A WebSocket handshake is a `GET` that opens a connection able to act for the user, and browsers send
    /// cookies with it from any site (cross-site WebSocket hijacking). So a request with an `Upgrade` header,
    /// or with `Sec-Fetch-Mode: websocket`, is checked as an unsafe one. Browsers cannot add a header to a
    /// WebSocket handshake, so under [`Csrf::double_submit`] such a request is checked by origin instead,
    /// as under [`Csrf::same_origin`].
    pub fn allows(&self, head: &RequestHead<'_>) -> bool {
        let upgrade = is_upgrade(head.headers());
        if !upgrade && matches!(*head.method(), Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE) {
            return true;
        }
        match &self.kind {
            CsrfKind::Off => true,
            CsrfKind::Origin { allowed } => origin_allowed(head, allowed),
            CsrfKind::DoubleSubmit { .. } if upgrade => origin_allowed(head, &[]),
            CsrfKind::DoubleSubmit { cookie: name, header } => {
                let Ok(Some(expected)) = cookie(head.headers(), name) else { return false };
                let mut sent = head.headers().get_all(header).iter();
                match (sent.next(), sent.next()) {
                    (Some(value), None) => same_bytes(value.as_bytes(), expected.as_bytes()),
                    _ => false,
                }
            }
        }
    }
}

/// A request to switch protocols: an `Upgrade` header (HTTP/1.1 WebSocket and others), or a browser's
/// WebSocket handshake by its fetch metadata. (An HTTP/2 WebSocket is a `CONNECT`, an unsafe method anyway.)
fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(http::header::UPGRADE)
        || headers.get("sec-fetch-mode").is_some_and(|mode| mode.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

fn origin_allowed(head: &RequestHead<'_>, allowed: &[String]) -> bool {
    let headers = head.headers();
    let origin = headers.get(http::header::ORIGIN).and_then(|value| value.to_str().ok());
    let listed = origin.is_some_and(|origin| allowed.iter().any(|allowed| allowed == origin));
    match headers.get("sec-fetch-site").map(http::HeaderValue::as_bytes) {
        Some(b"same-origin" | b"none") => true,
        Some(_) => listed,
        None => {
            let Some(origin) = origin else {
                // Neither header: not a browser, so not a forgery.
                return headers.get(http::header::ORIGIN).is_none();
            };
            // The request's own authority: HTTP/2 carries it as `:authority` (in the URI), HTTP/1.1 as `Host`.
            let host = head
                .uri()
                .authority()
                .map(http::uri::Authority::as_str)
                .or_else(|| headers.get(http::header::HOST).and_then(|value| value.to_str().ok()));
            let own = host.is_some_and(|host| {
                origin
                    .split_once("://")
                    .is_some_and(|(scheme, rest)| matches!(scheme, "http" | "https") && rest == host)
            });
            own || listed
        }
    }
}

/// Compares without stopping at the first difference.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl fmt::Debug for Csrf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            CsrfKind::Origin { allowed } => f.debug_struct("SameOrigin").field("allowed", allowed).finish(),
            CsrfKind::DoubleSubmit { cookie, header } => {
                f.debug_struct("DoubleSubmit").field("cookie", cookie).field("header", header).finish()
            }
            CsrfKind::Off => f.write_str("Disabled"),
        }
    }
}
