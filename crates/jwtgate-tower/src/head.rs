//! The request as token sources, the CSRF defence and responders see it: its head, borrowed, and the
//! values of its cookies and repeated fields.

use std::borrow::Cow;
use std::sync::LazyLock;

use http::header::COOKIE;
use http::{Extensions, HeaderMap, Method, Request, Uri, Version};
use jwtgate_core::ErrorKind;

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

/// The value of the cookie `name`: `Ok(None)` when there is none (or only empty ones), an error when there
/// are two or its value is not text.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<Cow<'a, str>>, ErrorKind> {
    let values = headers.get_all(COOKIE).iter().filter_map(|value| value.to_str().ok());
    let found = values.flat_map(|value| {
        cookie::Cookie::split_parse(value)
            .filter_map(Result::ok)
            .filter(|cookie| cookie.name() == name)
            .map(|cookie| cookie.value_raw())
    });
    single(found)
}

/// The one value of the header `name`, as text; `None` when it is absent, repeated, or not text. For headers
/// that a trusted party sets once, where anything else means "not said".
pub(crate) fn only(headers: &HeaderMap, name: impl http::header::AsHeaderName) -> Option<&str> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    value.to_str().ok()
}

/// The one non-empty value among `values`; `None` items stand for values that are there but not text
/// (malformed). Two non-empty values are an invalid request.
pub(crate) fn single<'a, I, S>(values: I) -> Result<Option<Cow<'a, str>>, ErrorKind>
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
            return Err(ErrorKind::InvalidRequest);
        }
        found = Some(value);
    }
    found.transpose()
}
