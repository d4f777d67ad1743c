//! Where a token comes from: an ordered chain of sources, the first present one deciding.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName};
use jwtgate_core::{Error, ErrorKind};

use crate::head::{RequestHead, cookie, single};
use crate::{BearerMethod, Csrf};

/// What one source found in a request.
#[derive(Debug)]
pub enum Extracted<'a> {
    /// The source is not present in the request: the next source is tried.
    Absent,
    /// The source is present and holds this token, which decides the request.
    Token(Cow<'a, str>),
    /// The source is present but unusable, which decides the request: for example two `Authorization`
    /// headers ([`ErrorKind::InvalidRequest`]), or another scheme than Bearer ([`ErrorKind::Missing`]).
    Invalid(Error),
}

/// A source's answer from what [`single`] or [`cookie`] found.
fn found(value: Result<Option<Cow<'_, str>>, ErrorKind>) -> Extracted<'_> {
    match value {
        Ok(None) => Extracted::Absent,
        Ok(Some(token)) => Extracted::Token(token),
        Err(kind) => Extracted::Invalid(kind.into()),
    }
}

type CustomFn = dyn Fn(&RequestHead<'_>) -> Option<String> + Send + Sync;

/// One place a token can come from. Build a chain of them with [`TokenSources`].
#[derive(Clone)]
pub struct TokenSource {
    kind: SourceKind,
}

#[derive(Clone)]
enum SourceKind {
    Bearer,
    Cookie { name: Cow<'static, str>, csrf: Csrf },
    Header { name: HeaderName },
    Query { name: Cow<'static, str> },
    Custom { extract: Arc<CustomFn> },
}

impl TokenSource {
    /// `Authorization: Bearer <token>` (RFC 6750 §2.1). The scheme is matched without case, and one or more
    /// spaces may follow it.
    ///
    /// Present whenever an `Authorization` header is: a header of another scheme (such as `Basic`) answers
    /// as if no credentials were sent, and two `Authorization` headers are a malformed request. Either way,
    /// later sources are not tried.
    pub fn bearer() -> Self {
        Self { kind: SourceKind::Bearer }
    }

    /// The cookie `name`, from any `Cookie` header. Present when the cookie is there with a non-empty value;
    /// the same cookie twice is a malformed request.
    ///
    /// A browser sends cookies with requests that other sites start, so for unsafe methods (anything but
    /// `GET`, `HEAD`, `OPTIONS` and `TRACE`) the request must prove it comes from your own pages: by default
    /// [`Csrf::same_origin`]. A failed proof is 403 before the token is read. Choose another defence with
    /// [`TokenSource::csrf`].
    pub fn cookie(name: impl Into<Cow<'static, str>>) -> Self {
        Self { kind: SourceKind::Cookie { name: name.into(), csrf: Csrf::same_origin() } }
    }

    /// The CSRF defence of a cookie source (see [`Csrf`]). Other sources are not sent by browsers on their
    /// own, so it does not apply to them, and is ignored there.
    #[must_use]
    pub fn csrf(mut self, defence: Csrf) -> Self {
        if let SourceKind::Cookie { csrf, .. } = &mut self.kind {
            *csrf = defence;
        }
        self
    }

    /// The whole value of header `name`, such as `X-Api-Token`. Present when the header is there and not
    /// empty; the header twice is a malformed request.
    pub fn header(name: HeaderName) -> Self {
        Self { kind: SourceKind::Header { name } }
    }

    /// The query parameter `name` (percent-decoded). Present when the parameter is there and not empty; the
    /// parameter twice is a malformed request.
    ///
    /// Off unless you add it: URLs end up in logs, browser history and `Referer` headers, so RFC 6750 §2.3
    /// advises against tokens in them. Use it only where nothing else works, such as WebSocket handshakes
    /// from browsers.
    pub fn query(name: impl Into<Cow<'static, str>>) -> Self {
        Self { kind: SourceKind::Query { name: name.into() } }
    }

    /// Your own function. It returns the token when its source is present, and `None` when it is absent.
    pub fn from_fn<F>(extract: F) -> Self
    where
        F: Fn(&RequestHead<'_>) -> Option<String> + Send + Sync + 'static,
    {
        Self { kind: SourceKind::Custom { extract: Arc::new(extract) } }
    }

    /// Looks for this source's token in `head`.
    pub fn extract<'a>(&self, head: &RequestHead<'a>) -> Extracted<'a> {
        match &self.kind {
            SourceKind::Bearer => bearer(head.headers()),
            SourceKind::Cookie { name, csrf } => match found(cookie(head.headers(), name)) {
                Extracted::Token(token) if !csrf.allows(head) => {
                    drop(token);
                    Extracted::Invalid(ErrorKind::CsrfRejected.into())
                }
                found => found,
            },
            SourceKind::Header { name } => {
                found(single(head.headers().get_all(name).iter().map(|value| value.to_str().ok())))
            }
            SourceKind::Query { name } => match head.uri().query() {
                Some(query) => found(single(
                    form_urlencoded::parse(query.as_bytes())
                        .filter(|(key, _)| key == name)
                        .map(|(_, value)| Some(value)),
                )),
                None => Extracted::Absent,
            },
            SourceKind::Custom { extract } => match extract(head) {
                Some(token) => Extracted::Token(Cow::Owned(token)),
                None => Extracted::Absent,
            },
        }
    }
}

fn bearer(headers: &HeaderMap) -> Extracted<'_> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Extracted::Absent;
    };
    if values.next().is_some() {
        return Extracted::Invalid(ErrorKind::InvalidRequest.into());
    }
    let Ok(value) = value.to_str() else {
        return Extracted::Invalid(ErrorKind::Malformed.into());
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Extracted::Invalid(ErrorKind::Missing.into());
    }
    match rest.trim_start_matches(' ') {
        "" => Extracted::Invalid(ErrorKind::Malformed.into()),
        token => Extracted::Token(Cow::Borrowed(token)),
    }
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            SourceKind::Bearer => f.write_str("Bearer"),
            SourceKind::Cookie { name, csrf } => {
                f.debug_struct("Cookie").field("name", name).field("csrf", csrf).finish()
            }
            SourceKind::Header { name } => f.debug_struct("Header").field("name", name).finish(),
            SourceKind::Query { name } => f.debug_struct("Query").field("name", name).finish(),
            SourceKind::Custom { .. } => f.write_str("Custom"),
        }
    }
}

/// An ordered chain of [`TokenSource`]s. The first source that is present decides: if its token is bad
/// the answer is 401, and later sources are not tried.
///
/// The default chain is `Authorization: Bearer` alone.
///
/// ```
/// use jwtgate_tower::{TokenSource, TokenSources};
/// let sources = TokenSources::new([TokenSource::bearer(), TokenSource::cookie("access_token")]);
/// ```
#[derive(Clone, Debug)]
pub struct TokenSources {
    sources: Arc<[TokenSource]>,
}

impl TokenSources {
    /// A chain of `sources`, tried in order.
    pub fn new(sources: impl IntoIterator<Item = TokenSource>) -> Self {
        Self { sources: sources.into_iter().collect() }
    }

    /// The sources, in order.
    pub fn sources(&self) -> &[TokenSource] {
        &self.sources
    }

    /// The RFC 6750 methods among the sources, for a protected resource's `bearer_methods_supported`:
    /// `header` for [`TokenSource::bearer`], `query` for a [`TokenSource::query`] named `access_token`.
    /// Cookies, other headers and functions are not RFC 6750 methods.
    pub(crate) fn bearer_methods(&self) -> Vec<BearerMethod> {
        let mut methods = Vec::new();
        for source in self.sources.iter() {
            let method = match &source.kind {
                SourceKind::Bearer => BearerMethod::Header,
                SourceKind::Query { name } if name == "access_token" => BearerMethod::Query,
                _ => continue,
            };
            if !methods.contains(&method) {
                methods.push(method);
            }
        }
        methods
    }

    /// Runs the chain over `head`: the first source that is not [`Extracted::Absent`] decides.
    pub fn extract<'a>(&self, head: &RequestHead<'a>) -> Extracted<'a> {
        for source in self.sources.iter() {
            match source.extract(head) {
                Extracted::Absent => continue,
                decided => return decided,
            }
        }
        Extracted::Absent
    }
}

impl Default for TokenSources {
    fn default() -> Self {
        Self::new([TokenSource::bearer()])
    }
}

#[cfg(test)]
mod tests {
    use http::Request;

    use super::*;

    fn extract(sources: &TokenSources, request: &Request<()>) -> Result<Option<String>, ErrorKind> {
        match sources.extract(&RequestHead::new(request)) {
            Extracted::Absent => Ok(None),
            Extracted::Token(token) => Ok(Some(token.into_owned())),
            Extracted::Invalid(err) => Err(err.kind()),
        }
    }

    fn request(headers: &[(&str, &str)], uri: &str) -> Request<()> {
        let mut builder = Request::builder().uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    fn all() -> TokenSources {
        TokenSources::new([
            TokenSource::bearer(),
            TokenSource::cookie("access_token"),
            TokenSource::header(HeaderName::from_static("x-token")),
            TokenSource::query("access_token"),
        ])
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_with_one_or_more_spaces() {
        for value in ["Bearer abc", "bearer abc", "BEARER   abc", "bEaReR abc"] {
            assert_eq!(extract(&all(), &request(&[("authorization", value)], "/")), Ok(Some("abc".into())), "{value}");
        }
    }

    #[test]
    fn another_scheme_means_no_credentials_and_stops_the_chain() {
        let req = request(&[("authorization", "Basic dXNlcjpwYXNz"), ("cookie", "access_token=abc")], "/");
        assert_eq!(extract(&all(), &req), Err(ErrorKind::Missing));
        let req = request(&[("authorization", "Bearerabc")], "/");
        assert_eq!(extract(&all(), &req), Err(ErrorKind::Missing));
    }

    #[test]
    fn an_empty_bearer_token_is_malformed() {
        for value in ["Bearer", "Bearer ", "Bearer    "] {
            assert_eq!(extract(&all(), &request(&[("authorization", value)], "/")), Err(ErrorKind::Malformed));
        }
    }

    #[test]
    fn two_authorization_headers_are_an_invalid_request() {
        let req = request(&[("authorization", "Bearer a"), ("authorization", "Bearer a")], "/");
        assert_eq!(extract(&all(), &req), Err(ErrorKind::InvalidRequest));
    }

    #[test]
    fn non_text_header_values_are_malformed_not_absent() {
        let mut req = request(&[], "/");
        req.headers_mut().insert(AUTHORIZATION, http::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap());
        assert_eq!(extract(&all(), &req), Err(ErrorKind::Malformed));
    }

    #[test]
    fn sources_are_tried_in_order_and_the_first_present_decides() {
        let req = request(&[("cookie", "a=b; access_token=fromcookie"), ("x-token", "fromheader")], "/?access_token=q");
        assert_eq!(extract(&all(), &req), Ok(Some("fromcookie".into())));
        let req = request(&[("x-token", "fromheader")], "/?access_token=q");
        assert_eq!(extract(&all(), &req), Ok(Some("fromheader".into())));
        let req = request(&[], "/?x=1&access_token=a%2Eb");
        assert_eq!(extract(&all(), &req), Ok(Some("a.b".into())));
        assert_eq!(extract(&all(), &request(&[], "/?x=1")), Ok(None));
    }

    #[test]
    fn empty_values_are_absent_and_duplicates_are_invalid_requests() {
        let req = request(&[("cookie", "access_token=; other=1")], "/");
        assert_eq!(extract(&all(), &req), Ok(None));
        let req = request(&[("cookie", "access_token=a"), ("cookie", "access_token=b")], "/");
        assert_eq!(extract(&all(), &req), Err(ErrorKind::InvalidRequest));
        let req = request(&[], "/?access_token=a&access_token=b");
        assert_eq!(extract(&all(), &req), Err(ErrorKind::InvalidRequest));
    }

    #[test]
    fn the_query_source_is_off_by_default() {
        assert_eq!(extract(&TokenSources::default(), &request(&[], "/?access_token=abc")), Ok(None));
    }

    #[test]
    fn custom_sources_see_the_request_head() {
        let sources = TokenSources::new([TokenSource::from_fn(|head| {
            head.headers()
                .get("x-custom")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim_start_matches("jwt:").to_owned())
        })]);
        assert_eq!(extract(&sources, &request(&[("x-custom", "jwt:abc")], "/")), Ok(Some("abc".into())));
        assert_eq!(extract(&sources, &request(&[], "/")), Ok(None));
    }
}
