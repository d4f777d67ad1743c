//! Where a token comes from: an ordered chain of sources, the first present one deciding.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, LazyLock};

use http::header::{AUTHORIZATION, COOKIE};
use http::{Extensions, HeaderMap, HeaderName, Method, Request, Uri, Version};
use jwtgate_core::{Error, ErrorKind};

/// A borrowed view of a request's head, for token sources and responders.
#[derive(Clone, Copy, Debug)]
pub struct RequestHead<'a> {
    method: &'a Method,
    version: Version,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    extensions: &'a Extensions,
}

impl<'a> RequestHead<'a> {
    /// The head of `request`.
    pub fn new<B>(request: &'a Request<B>) -> Self {
        Self {
            method: request.method(),
            version: request.version(),
            uri: request.uri(),
            headers: request.headers(),
            extensions: request.extensions(),
        }
    }

    /// The head of a request already split into parts, as extractors see it.
    pub fn from_parts(parts: &'a http::request::Parts) -> Self {
        Self {
            method: &parts.method,
            version: parts.version,
            uri: &parts.uri,
            headers: &parts.headers,
            extensions: &parts.extensions,
        }
    }

    /// The head of a gRPC call that a handler knows only by its extensions, as tonic's methods do: for a
    /// [`Responder`](crate::Responder) to answer in gRPC's terms. It is an HTTP/2 `POST` to `/` with the one
    /// header `content-type: application/grpc`.
    pub fn grpc(extensions: &'a Extensions) -> Self {
        static METHOD: Method = Method::POST;
        static URI: LazyLock<Uri> = LazyLock::new(|| Uri::from_static("/"));
        static HEADERS: LazyLock<HeaderMap> = LazyLock::new(|| {
            let mut headers = HeaderMap::new();
            headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/grpc"));
            headers
        });
        Self { method: &METHOD, version: Version::HTTP_2, uri: &URI, headers: &HEADERS, extensions }
    }

    /// The request method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The request URI.
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The request headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The request extensions.
    pub fn extensions(&self) -> &'a Extensions {
        self.extensions
    }

    /// Whether this is a gRPC request: HTTP/2 (as gRPC always is) with `content-type: application/grpc`,
    /// with or without a suffix. A plain HTTP/1.1 request that merely says `application/grpc` is not one: it
    /// gets an HTTP answer, which any client can read.
    pub fn is_grpc(&self) -> bool {
        self.version == Version::HTTP_2
            && self
                .headers
                .get(http::header::CONTENT_TYPE)
                .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"))
    }
}

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
            SourceKind::Bearer => bearer(head.headers),
            SourceKind::Cookie { name, csrf } => match cookie(head.headers, name) {
                Extracted::Token(token) if !csrf.allows(head) => {
                    drop(token);
                    Extracted::Invalid(ErrorKind::CsrfRejected.into())
                }
                found => found,
            },
            SourceKind::Header { name } => single(head.headers.get_all(name).iter().map(|value| value.to_str().ok())),
            SourceKind::Query { name } => match head.uri.query() {
                Some(query) => single(
                    form_urlencoded::parse(query.as_bytes())
                        .filter(|(key, _)| key == name)
                        .map(|(_, value)| Some(value)),
                ),
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

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Extracted<'a> {
    let values = headers.get_all(COOKIE).iter().filter_map(|value| value.to_str().ok());
    let found = values.flat_map(|value| {
        cookie::Cookie::split_parse(value)
            .filter_map(Result::ok)
            .filter(|cookie| cookie.name() == name)
            .map(|cookie| cookie.value_raw())
    });
    single(found)
}

/// The one non-empty value among `values`; `None` items stand for values that are there but not text.
fn single<'a, I, S>(values: I) -> Extracted<'a>
where
    I: Iterator<Item = Option<S>>,
    S: Into<Cow<'a, str>>,
{
    let mut found = None;
    for value in values {
        let value = match value.map(Into::into) {
            Some(value) if value.is_empty() => continue,
            Some(value) => Ok(value),
            None => Err(ErrorKind::Malformed),
        };
        if found.is_some() {
            return Extracted::Invalid(ErrorKind::InvalidRequest.into());
        }
        found = Some(value);
    }
    match found {
        None => Extracted::Absent,
        Some(Ok(token)) => Extracted::Token(token),
        Some(Err(kind)) => Extracted::Invalid(kind.into()),
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
                let Extracted::Token(expected) = cookie(head.headers(), name) else { return false };
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
