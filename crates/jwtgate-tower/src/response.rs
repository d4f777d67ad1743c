//! The answers to requests that were not authenticated: RFC 6750 for HTTP, trailers-only for gRPC.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use jwtgate_core::{Challenge, Error, ErrorKind, StepUp};
use pin_project_lite::pin_project;

use crate::dpop::{self, Dpop};
use crate::{RequestHead, ResourceUri};

/// A request that jwtgate refuses, handed to a [`Responder`] to answer.
#[derive(Clone, Copy, Debug)]
pub struct Rejection<'a> {
    error: &'a Error,
    head: RequestHead<'a>,
    scopes: &'a [&'a str],
    step_up: Option<&'a StepUp>,
}

impl<'a> Rejection<'a> {
    /// A rejection of the request `head` for `error`.
    pub fn new(error: &'a Error, head: RequestHead<'a>) -> Self {
        Self { error, head, scopes: &[], step_up: None }
    }

    /// Adds the scopes the refused policy asks for, for the `scope` attribute of a 403.
    #[must_use]
    pub fn with_scopes(mut self, scopes: &'a [&'a str]) -> Self {
        self.scopes = scopes;
        self
    }

    /// The scopes the refused policy asks for; empty when it names none.
    pub fn scopes(&self) -> &'a [&'a str] {
        self.scopes
    }

    /// Adds what a step-up refusal asks for, for the `acr_values` and `max_age` attributes of an
    /// `insufficient_user_authentication` challenge (RFC 9470 §3).
    #[must_use]
    pub fn with_step_up(mut self, step_up: &'a StepUp) -> Self {
        self.step_up = Some(step_up);
        self
    }

    /// What the refused policy asks of the user's authentication, on a step-up refusal.
    pub fn step_up(&self) -> Option<&'a StepUp> {
        self.step_up
    }

    /// Why the request is refused.
    pub fn error(&self) -> &'a Error {
        self.error
    }

    /// The refused request's head.
    pub fn request(&self) -> &RequestHead<'a> {
        &self.head
    }
}

/// Builds the response to a refused request.
///
/// The default is [`Rfc6750Responder`]. Any `Fn(&Rejection<'_>) -> Response<Bytes>` is a responder too, and
/// [`ResponderExt`] wraps one to observe or rewrite what it answers.
///
/// A `JwtAuthLayer`'s responder answers every refusal of the request it saw: the layer's own, and those of
/// the guards and extractors after it (through [`respond`]).
pub trait Responder: Send + Sync + 'static {
    /// The response to `rejection`.
    fn respond(&self, rejection: &Rejection<'_>) -> Response<Bytes>;
}

impl<F> Responder for F
where
    F: Fn(&Rejection<'_>) -> Response<Bytes> + Send + Sync + 'static,
{
    fn respond(&self, rejection: &Rejection<'_>) -> Response<Bytes> {
        self(rejection)
    }
}

/// Wrappers for a [`Responder`], as tower's `ServiceExt` has for services.
///
/// ```
/// use bytes::Bytes;
/// use http::Response;
/// use jwtgate_core::ErrorKind;
/// use jwtgate_tower::{ResponderExt, Rfc6750Responder};
///
/// let responder = Rfc6750Responder::new()
///     .inspect(|rejection| tracing::info!(reason = rejection.error().kind().name(), "refused"))
///     .map_response(|rejection, response: Response<Bytes>| {
///         if rejection.error().kind() != ErrorKind::Forbidden {
///             return response;
///         }
///         let (parts, _) = response.into_parts();
///         Response::from_parts(parts, Bytes::from_static(br#"{"error":"forbidden","see":"/help/access"}"#))
///     });
/// ```
pub trait ResponderExt: Responder + Sized {
    /// Calls `f` with every rejection, before the response is built: for your own logs or counters.
    /// ASP.NET's `OnAuthenticationFailed`.
    fn inspect<F>(self, f: F) -> Inspect<Self, F>
    where
        F: Fn(&Rejection<'_>) + Send + Sync + 'static,
    {
        Inspect { responder: self, f }
    }

    /// Rewrites every response this responder builds. ASP.NET's `OnChallenge`; for its `OnForbidden`, rewrite
    /// only when `rejection.error().kind()` is [`ErrorKind::Forbidden`].
    fn map_response<F>(self, f: F) -> MapResponse<Self, F>
    where
        F: Fn(&Rejection<'_>, Response<Bytes>) -> Response<Bytes> + Send + Sync + 'static,
    {
        MapResponse { responder: self, f }
    }
}

impl<R: Responder> ResponderExt for R {}

/// A [`Responder`] that calls a function with each rejection first. See [`ResponderExt::inspect`].
#[derive(Clone)]
pub struct Inspect<R, F> {
    responder: R,
    f: F,
}

impl<R, F> Responder for Inspect<R, F>
where
    R: Responder,
    F: Fn(&Rejection<'_>) + Send + Sync + 'static,
{
    fn respond(&self, rejection: &Rejection<'_>) -> Response<Bytes> {
        (self.f)(rejection);
        self.responder.respond(rejection)
    }
}

impl<R: fmt::Debug, F> fmt::Debug for Inspect<R, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inspect").field("responder", &self.responder).finish_non_exhaustive()
    }
}

/// A [`Responder`] whose responses a function rewrites. See [`ResponderExt::map_response`].
#[derive(Clone)]
pub struct MapResponse<R, F> {
    responder: R,
    f: F,
}

impl<R, F> Responder for MapResponse<R, F>
where
    R: Responder,
    F: Fn(&Rejection<'_>, Response<Bytes>) -> Response<Bytes> + Send + Sync + 'static,
{
    fn respond(&self, rejection: &Rejection<'_>) -> Response<Bytes> {
        (self.f)(rejection, self.responder.respond(rejection))
    }
}

impl<R: fmt::Debug, F> fmt::Debug for MapResponse<R, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapResponse").field("responder", &self.responder).finish_non_exhaustive()
    }
}

/// The responder of the `JwtAuthLayer` that saw a request, when it is not the default, in the request's
/// extensions: [`respond`] answers with it. Crate-private, so that no one else can set it.
#[derive(Clone)]
pub(crate) struct LayerResponder(pub(crate) Arc<dyn Responder>);

/// The answer to a refusal of a request that a `JwtAuthLayer` saw, from the responder that layer was built
/// with ([`Rfc6750Responder`] by default, and when no layer saw the request), with `Cache-Control:
/// no-store`. Guards, extractors and the tonic helpers answer through it, so that every refusal of one
/// request speaks the same way.
pub fn respond(rejection: &Rejection<'_>) -> Response<Bytes> {
    match rejection.request().extensions().get::<LayerResponder>() {
        Some(LayerResponder(responder)) => respond_with(&**responder, rejection),
        None => respond_with(&Rfc6750Responder::default(), rejection),
    }
}

/// `responder`'s answer to `rejection`, with `Cache-Control: no-store` whatever the responder did.
pub(crate) fn respond_with(responder: &dyn Responder, rejection: &Rejection<'_>) -> Response<Bytes> {
    let mut response = responder.respond(rejection);
    no_store(&mut response);
    response
}

/// The default [`Responder`].
///
/// For HTTP it answers as RFC 6750 §3 says: 401 with `WWW-Authenticate: Bearer` and no `error` attribute
/// when no credentials were sent; 401 with `error="invalid_token"` and an `error_description` for a bad,
/// expired or revoked token; 400 with `error="invalid_request"` for a malformed request; and 503 with
/// `Retry-After` when the denylist could not answer or the signing keys are unavailable. The body is JSON: `{"error": "...",
/// "error_description": "..."}`.
///
/// For gRPC (an HTTP/2 request with `content-type: application/grpc*`) it answers HTTP 200 with `grpc-status` 16
/// (UNAUTHENTICATED), 7 (PERMISSION_DENIED) for 403s, or 14 (UNAVAILABLE), a `grpc-message`, and no body.
#[derive(Clone, Debug)]
pub struct Rfc6750Responder {
    realm: Option<String>,
    retry_after: u32,
    token_expired_header: bool,
    /// The URL of the protected resource's metadata (RFC 9728 §5.1), for every challenge.
    resource_metadata: Option<String>,
    /// The scopes named on a 401 for missing credentials, space-separated.
    required_scopes: Option<String>,
    /// The layer's DPoP settings, for `DPoP` challenges.
    dpop: Option<DpopChallenge>,
}

/// What a `DPoP` challenge says of the layer: its algorithms, and whether bearer tokens are refused.
#[derive(Clone, Debug)]
struct DpopChallenge {
    algs: Arc<str>,
    required: bool,
}

/// The scheme of a challenge.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Bearer,
    Dpop,
}

impl Default for Rfc6750Responder {
    fn default() -> Self {
        Self {
            realm: None,
            retry_after: 5,
            token_expired_header: false,
            resource_metadata: None,
            required_scopes: None,
            dpop: None,
        }
    }
}

impl Rfc6750Responder {
    /// The default responder: no realm, and `Retry-After: 5` on 503s.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `realm="..."` to every challenge. Quotes and backslashes in `realm` are escaped.
    #[must_use]
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// The `Retry-After` seconds sent with 503s. Default 5.
    #[must_use]
    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = seconds;
        self
    }

    /// Adds `Token-Expired: true` to the answer to an expired token, which single-page apps read to refresh
    /// their token instead of signing in again. Default: off, since it tells any client that the token was
    /// once valid.
    #[must_use]
    pub fn token_expired_header(mut self) -> Self {
        self.token_expired_header = true;
        self
    }

    /// Adds `resource_metadata="..."`, the URL of `resource`'s metadata, to every challenge, 401 and 403 alike
    /// (RFC 9728 §5.1): a client that meets the API learns from the refusal itself where to get a token, and
    /// for which scopes. MCP clients require it.
    #[must_use]
    pub fn resource_metadata(mut self, resource: &ResourceUri) -> Self {
        self.resource_metadata = Some(resource.metadata_url());
        self
    }

    /// Adds `scope="..."` with `scopes` to the challenge of a 401 for missing credentials or an invalid token
    /// (RFC 6750 §3), so that a client asks for them when it gets its next token; MCP clients read it. A 403
    /// names the scopes of the policy that refused, whatever this says, and a step-up's 401 names none.
    #[must_use]
    pub fn required_scopes<S: AsRef<str>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        let scopes: Vec<String> = scopes.into_iter().map(|scope| scope.as_ref().to_owned()).collect();
        self.required_scopes = (!scopes.is_empty()).then(|| scopes.join(" "));
        self
    }

    /// Answers as a layer with `dpop` must (RFC 9449 §7.1): a request under the `DPoP` scheme, and a refused
    /// proof, get a `DPoP` challenge with `algs`; a request without credentials gets a `Bearer` challenge
    /// (unless DPoP is required) and a `DPoP` one. [`JwtAuthLayer::dpop`](crate::JwtAuthLayer::dpop) sets this
    /// on the default responder.
    #[must_use]
    pub fn dpop(mut self, dpop: &Dpop) -> Self {
        self.dpop =
            Some(DpopChallenge { algs: dpop.algs().into(), required: dpop.mode() == crate::DpopMode::Required });
        self
    }

    /// The schemes of the challenges that answer `rejection`, in order.
    fn schemes(&self, rejection: &Rejection<'_>) -> &'static [Scheme] {
        let Some(dpop) = &self.dpop else {
            return &[Scheme::Bearer];
        };
        let error = rejection.error();
        match (error.kind(), error.challenge()) {
            (ErrorKind::DpopRequired, _) | (_, Challenge::InvalidDpopProof | Challenge::UseDpopNonce) => {
                &[Scheme::Dpop]
            }
            (_, Challenge::NoCredentials) if dpop.required => &[Scheme::Dpop],
            (_, Challenge::NoCredentials) => &[Scheme::Bearer, Scheme::Dpop],
            _ if dpop::is_dpop_scheme(rejection.request()) => &[Scheme::Dpop],
            _ => &[Scheme::Bearer],
        }
    }

    /// The `WWW-Authenticate` challenge of `scheme` for `rejection`.
    fn challenge(&self, rejection: &Rejection<'_>, scheme: Scheme) -> Option<HeaderValue> {
        let error = rejection.error();
        let challenge = error.challenge();
        let mut value = String::from(match scheme {
            Scheme::Bearer => "Bearer",
            Scheme::Dpop => "DPoP",
        });
        let mut separator = " ";
        let mut attribute = |value: &mut String, name: &str, content: &str| {
            value.push_str(&format!(r#"{separator}{name}="{}""#, quote(content)));
            separator = ", ";
        };
        if let Some(realm) = &self.realm {
            attribute(&mut value, "realm", realm);
        }
        if let Some(code) = challenge.error_code() {
            attribute(&mut value, "error", code);
            attribute(&mut value, "error_description", error.description());
        }
        let scopes = rejection.scopes();
        match challenge {
            Challenge::InsufficientScope if !scopes.is_empty() => attribute(&mut value, "scope", &scopes.join(" ")),
            Challenge::NoCredentials | Challenge::InvalidToken => {
                if let Some(scopes) = &self.required_scopes {
                    attribute(&mut value, "scope", scopes);
                }
            }
            _ => {}
        }
        if let (Scheme::Dpop, Some(dpop)) = (scheme, &self.dpop) {
            attribute(&mut value, "algs", &dpop.algs);
        }
        if let Some(step_up) = rejection.step_up() {
            if !step_up.acr_values().is_empty() {
                attribute(&mut value, "acr_values", &step_up.acr_values().join(" "));
            }
            if let Some(max_age) = step_up.max_age() {
                // RFC 9470 §3 writes max_age as a bare number.
                value.push_str(&format!("{separator}max_age={max_age}"));
                separator = ", ";
            }
        }
        if let Some(url) = &self.resource_metadata {
            value.push_str(&format!(r#"{separator}resource_metadata="{}""#, quote(url)));
        }
        HeaderValue::try_from(value).ok()
    }
}

fn quote(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

impl Responder for Rfc6750Responder {
    fn respond(&self, rejection: &Rejection<'_>) -> Response<Bytes> {
        let error = rejection.error();
        let mut response =
            if rejection.request().is_grpc() { self.respond_grpc(rejection) } else { self.respond_http(rejection) };
        if self.token_expired_header && error.kind() == ErrorKind::Expired {
            response.headers_mut().insert("token-expired", HeaderValue::from_static("true"));
        }
        response
    }
}

impl Rfc6750Responder {
    /// The plain-HTTP answer to `rejection`, whatever the request: status, challenge and JSON body.
    pub fn respond_http(&self, rejection: &Rejection<'_>) -> Response<Bytes> {
        let error = rejection.error();
        let challenge = error.challenge();
        let body = serde_json::json!({
            "error": challenge.error_code().unwrap_or("unauthorized"),
            "error_description": error.description(),
        });
        let mut response = Response::new(Bytes::from(body.to_string()));
        *response.status_mut() = match challenge {
            Challenge::NoCredentials
            | Challenge::InvalidToken
            | Challenge::InsufficientUserAuthentication
            | Challenge::InvalidDpopProof
            | Challenge::UseDpopNonce => StatusCode::UNAUTHORIZED,
            Challenge::InvalidRequest => StatusCode::BAD_REQUEST,
            Challenge::InsufficientScope | Challenge::CsrfRejected => StatusCode::FORBIDDEN,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.insert_challenge(response.headers_mut(), rejection);
        no_store(&mut response);
        response
    }

    /// The gRPC answer to `rejection`: HTTP 200 with `grpc-status` and `grpc-message`, and no body. The
    /// `WWW-Authenticate` challenge rides along as metadata, with the same attributes as over HTTP.
    pub fn respond_grpc(&self, rejection: &Rejection<'_>) -> Response<Bytes> {
        let error = rejection.error();
        let code: u16 = match error.challenge() {
            Challenge::InsufficientScope | Challenge::CsrfRejected => 7,
            Challenge::Unavailable => 14,
            _ => 16,
        };
        let mut response = Response::new(Bytes::new());
        self.insert_challenge(response.headers_mut(), rejection);
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert("grpc-status", HeaderValue::from(code));
        // Descriptions are printable ASCII without `%`, which grpc-message carries as they are.
        if let Ok(message) = HeaderValue::try_from(error.description()) {
            headers.insert("grpc-message", message);
        }
        no_store(&mut response);
        response
    }

    /// `Retry-After` for 503s; otherwise the `WWW-Authenticate` challenge.
    fn insert_challenge(&self, headers: &mut HeaderMap, rejection: &Rejection<'_>) {
        match rejection.error().challenge() {
            Challenge::Unavailable => {
                headers.insert(RETRY_AFTER, HeaderValue::from(self.retry_after));
            }
            // Not an authentication problem: no challenge to answer.
            Challenge::CsrfRejected => {}
            _ => {
                for scheme in self.schemes(rejection) {
                    if let Some(value) = self.challenge(rejection, *scheme) {
                        headers.append(WWW_AUTHENTICATE, value);
                    }
                }
            }
        }
    }
}

/// A 500 for a server that is set up wrong, such as a guard with no `JwtAuthLayer` in front of it. The body
/// is `{"error": "server_error", "error_description": description}`; log the details, not here.
pub fn server_error(description: &'static str) -> Response<Bytes> {
    let body = serde_json::json!({ "error": "server_error", "error_description": description });
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    no_store(&mut response);
    response
}

/// Adds `Cache-Control: no-store` to a refusal that has no `Cache-Control` of its own: a cache between the
/// client and the server must never keep an answer about one caller's credentials, nor serve it to another.
pub(crate) fn no_store<B>(response: &mut Response<B>) {
    response.headers_mut().entry(CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
}

pin_project! {
    /// The response body of jwtgate's services: the inner service's body, or jwtgate's own answer to a
    /// refused request.
    ///
    /// Like tower-http's `limit::ResponseBody`, this lets jwtgate write a JSON error body in front of any
    /// inner body type, including ones that cannot be built from bytes (such as tonic's).
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Own { bytes: Option<Bytes> },
    }
}

impl<B> ResponseBody<B> {
    /// Wraps the inner service's body.
    pub fn inner(body: B) -> Self {
        Self { kind: Kind::Inner { body } }
    }

    /// jwtgate's own body.
    pub fn own(bytes: Bytes) -> Self {
        Self { kind: Kind::Own { bytes: (!bytes.is_empty()).then_some(bytes) } }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Own { bytes } => Poll::Ready(bytes.take().map(|bytes| Ok(Frame::data(bytes)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Own { bytes } => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Own { bytes } => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}

impl<B> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Inner { .. } => f.write_str("ResponseBody::Inner"),
            Kind::Own { bytes } => {
                f.debug_struct("ResponseBody::Own").field("len", &bytes.as_ref().map_or(0, Bytes::len)).finish()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwtgate_core::ErrorKind;

    fn respond(responder: &Rfc6750Responder, kind: ErrorKind, grpc: bool) -> Response<Bytes> {
        let mut builder = http::Request::builder();
        if grpc {
            builder = builder.version(http::Version::HTTP_2).header(CONTENT_TYPE, "application/grpc+proto");
        }
        let request = builder.body(()).unwrap();
        responder.respond(&Rejection::new(&Error::new(kind), RequestHead::new(&request)))
    }

    fn header<'a>(response: &'a Response<Bytes>, name: &str) -> Option<&'a str> {
        response.headers().get(name).map(|v| v.to_str().unwrap())
    }

    #[test]
    fn realm_is_quoted_and_precedes_the_error() {
        let responder = Rfc6750Responder::new().realm(r#"my "api""#);
        let response = respond(&responder, ErrorKind::Expired, false);
        assert_eq!(
            header(&response, "www-authenticate"),
            Some(r#"Bearer realm="my \"api\"", error="invalid_token", error_description="the token has expired""#)
        );
        let response = respond(&responder, ErrorKind::Missing, false);
        assert_eq!(header(&response, "www-authenticate"), Some(r#"Bearer realm="my \"api\"""#));
    }

    #[test]
    fn every_challenge_names_the_resource_metadata_last() {
        let resource = ResourceUri::parse("https://api.example.com/mcp").unwrap();
        let responder = Rfc6750Responder::new().resource_metadata(&resource);
        let url = "https://api.example.com/.well-known/oauth-protected-resource/mcp";
        let response = respond(&responder, ErrorKind::Missing, false);
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            header(&response, "www-authenticate"),
            Some(format!(r#"Bearer resource_metadata="{url}""#).as_str())
        );
        assert_eq!(response.body(), r#"{"error":"unauthorized","error_description":"no bearer token was sent"}"#);
        let response = respond(&responder, ErrorKind::Expired, false);
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            header(&response, "www-authenticate"),
            Some(
                format!(r#"Bearer error="invalid_token", error_description="the token has expired", resource_metadata="{url}""#)
                    .as_str()
            )
        );
        assert_eq!(response.body(), r#"{"error":"invalid_token","error_description":"the token has expired"}"#);
        let request = http::Request::builder().body(()).unwrap();
        let error = Error::new(ErrorKind::Forbidden);
        let rejection = Rejection::new(&error, RequestHead::new(&request)).with_scopes(&["mcp:write"]);
        let response = responder.respond(&rejection);
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            header(&response, "www-authenticate"),
            Some(
                format!(
                    r#"Bearer error="insufficient_scope", error_description="the token does not grant access to this resource", scope="mcp:write", resource_metadata="{url}""#
                )
                .as_str()
            )
        );
        // With a realm first; and gRPC answers carry the same challenge.
        let response = respond(&responder.clone().realm("api"), ErrorKind::Missing, true);
        assert_eq!(header(&response, "grpc-status"), Some("16"));
        assert_eq!(
            header(&response, "www-authenticate"),
            Some(format!(r#"Bearer realm="api", resource_metadata="{url}""#).as_str())
        );
        // A 503 has no challenge to carry it.
        let response = respond(&responder, ErrorKind::DenylistUnavailable, false);
        assert_eq!(header(&response, "www-authenticate"), None);
    }

    #[test]
    fn a_401_for_missing_or_invalid_credentials_can_name_the_scopes_to_ask_for() {
        let resource = ResourceUri::parse("https://api.example.com").unwrap();
        let responder = Rfc6750Responder::new().required_scopes(["mcp:read", "mcp:write"]).resource_metadata(&resource);
        let url = "https://api.example.com/.well-known/oauth-protected-resource";
        let response = respond(&responder, ErrorKind::Missing, false);
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            header(&response, "www-authenticate"),
            Some(format!(r#"Bearer scope="mcp:read mcp:write", resource_metadata="{url}""#).as_str())
        );
        // On a refused token too: the client needs a new one. A 403 names its own policy's scopes, and a
        // step-up none.
        let response = respond(&responder, ErrorKind::Expired, false);
        assert_eq!(
            header(&response, "www-authenticate"),
            Some(
                format!(r#"Bearer error="invalid_token", error_description="the token has expired", scope="mcp:read mcp:write", resource_metadata="{url}""#)
                    .as_str()
            )
        );
        let response = respond(&responder, ErrorKind::InsufficientUserAuthentication, false);
        assert!(!header(&response, "www-authenticate").unwrap().contains("scope=\""));
        let response = respond(&responder, ErrorKind::Forbidden, false);
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(!header(&response, "www-authenticate").unwrap().contains("scope=\"mcp:read"));
        // No scopes: no attribute.
        let response =
            respond(&Rfc6750Responder::new().required_scopes(Vec::<String>::new()), ErrorKind::Missing, false);
        assert_eq!(header(&response, "www-authenticate"), Some("Bearer"));
    }

    #[test]
    fn unavailable_is_503_with_retry_after() {
        let response = respond(&Rfc6750Responder::new().retry_after(9), ErrorKind::DenylistUnavailable, false);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(header(&response, "retry-after"), Some("9"));
        assert_eq!(header(&response, "www-authenticate"), None);
        let response = respond(&Rfc6750Responder::new(), ErrorKind::DenylistUnavailable, true);
        assert_eq!(header(&response, "grpc-status"), Some("14"));
    }

    #[test]
    fn forbidden_is_403_with_the_required_scopes() {
        let request = http::Request::builder().body(()).unwrap();
        let error = Error::new(ErrorKind::Forbidden);
        let rejection = Rejection::new(&error, RequestHead::new(&request)).with_scopes(&["orders:write", "admin"]);
        let response = Rfc6750Responder::new().respond(&rejection);
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            header(&response, "www-authenticate"),
            Some(
                r#"Bearer error="insufficient_scope", error_description="the token does not grant access to this resource", scope="orders:write admin""#
            )
        );
        let response = respond(&Rfc6750Responder::new(), ErrorKind::Forbidden, true);
        assert_eq!(header(&response, "grpc-status"), Some("7"));
    }

    #[test]
    fn invalid_request_is_400() {
        let response = respond(&Rfc6750Responder::new(), ErrorKind::InvalidRequest, false);
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(header(&response, "www-authenticate").unwrap().contains(r#"error="invalid_request""#));
    }

    #[test]
    fn own_body_yields_its_bytes_once() {
        use http_body::Body as _;
        let body = ResponseBody::<String>::own(Bytes::from_static(b"{}"));
        assert_eq!(body.size_hint().exact(), Some(2));
        assert!(ResponseBody::<String>::own(Bytes::new()).is_end_stream());
    }
}
