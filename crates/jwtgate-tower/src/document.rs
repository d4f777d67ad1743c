//! A public document served as it is, such as a JWK Set or a protected resource's metadata: encoded once,
//! with a strong `ETag`, `Cache-Control`, `304 Not Modified` on a match, and `405` for anything but `GET`
//! and `HEAD`.

use std::time::Duration;

use aws_lc_rs::digest;
use bytes::Bytes;
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ALLOW, CACHE_CONTROL,
    CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH, X_CONTENT_TYPE_OPTIONS,
};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;

/// One version of a document, encoded once for every request that serves it.
#[derive(Clone, Debug)]
pub struct Document {
    body: Bytes,
    etag: HeaderValue,
    length: HeaderValue,
    content_type: HeaderValue,
    cache_control: HeaderValue,
    cors: bool,
}

impl Document {
    /// `body`, served as `content_type`, which clients may cache for `max_age` (whole seconds). The `ETag`
    /// is computed from the body, so every instance of a fleet gives the same tag for the same document.
    pub fn new(body: impl Into<Bytes>, content_type: &'static str, max_age: Duration) -> Self {
        let body = body.into();
        let hash = digest::digest(&digest::SHA256, &body);
        let etag = format!("\"{}\"", base64url(&hash.as_ref()[..16]));
        Self {
            etag: HeaderValue::from_str(&etag).expect("base64url is a valid header value"),
            length: HeaderValue::from(body.len()),
            content_type: HeaderValue::from_static(content_type),
            cache_control: HeaderValue::from_str(&format!("public, max-age={}", max_age.as_secs()))
                .expect("digits are a valid header value"),
            cors: false,
            body,
        }
    }

    /// Lets pages of any origin read the document (`Access-Control-Allow-Origin: *`), and answers CORS
    /// preflights (`OPTIONS`) with 204: for public metadata that browser-based clients fetch.
    #[must_use]
    pub fn public_to_browsers(mut self) -> Self {
        self.cors = true;
        self
    }

    /// The encoded document.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The answer to a request with `method` and `headers`:
    /// - `GET` and `HEAD`: the document, its `ETag` and `Cache-Control`, or `304 Not Modified` with no body
    ///   when `If-None-Match` names the tag (or is `*`);
    /// - `OPTIONS`, when open to browsers: 204 with the CORS headers;
    /// - anything else: `405 Method Not Allowed` with `Allow`.
    pub fn respond(&self, method: &Method, headers: &HeaderMap) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(Bytes::new()));
        let allow = if self.cors { "GET, HEAD, OPTIONS" } else { "GET, HEAD" };
        if self.cors {
            let out = response.headers_mut();
            out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
            if method == Method::OPTIONS {
                out.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, HEAD, OPTIONS"));
                out.insert(ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("*"));
                *response.status_mut() = StatusCode::NO_CONTENT;
                return response;
            }
        }
        if method != Method::GET && method != Method::HEAD {
            *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            response.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
            return response;
        }
        let out = response.headers_mut();
        out.insert(ETAG, self.etag.clone());
        out.insert(CACHE_CONTROL, self.cache_control.clone());
        if matches_etag(headers, &self.etag) {
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            return response;
        }
        out.insert(CONTENT_TYPE, self.content_type.clone());
        out.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        out.insert(CONTENT_LENGTH, self.length.clone());
        if method == Method::GET {
            *response.body_mut() = Full::new(self.body.clone());
        }
        response
    }
}

/// Whether `If-None-Match` names `etag` (compared weakly, as RFC 9110 §13.1.2 says), or is `*`.
fn matches_etag(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag.as_bytes();
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|candidate| {
            let candidate = candidate.trim();
            candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate).as_bytes() == ours
        })
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
