//! A protected resource's metadata (RFC 9728): the document that tells an OAuth client where to get a token
//! for the resource, and how to present it.

use std::convert::Infallible;
use std::fmt;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use jwtgate_core::{Algorithm, ConfigError, ConfigErrorKind, Policy, SigningKey};
use serde_json::{Map, Value};
use tower_service::Service;

use crate::document::Document;
use crate::{METADATA_WELL_KNOWN, ResourceUri};

/// How long clients may cache a protected resource's metadata, by default: 5 minutes.
pub const DEFAULT_METADATA_MAX_AGE: Duration = Duration::from_secs(300);

/// The members [`ProtectedResourceMetadata`] sets through its own methods, which
/// [`field`](ProtectedResourceMetadata::field) may not set.
const STANDARD: [&str; 11] = [
    "resource",
    "authorization_servers",
    "jwks_uri",
    "scopes_supported",
    "bearer_methods_supported",
    "resource_name",
    "resource_documentation",
    "tls_client_certificate_bound_access_tokens",
    "dpop_signing_alg_values_supported",
    "dpop_bound_access_tokens_required",
    "signed_metadata",
];

/// How a client may send its access token (RFC 6750 §2), for `bearer_methods_supported`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BearerMethod {
    /// `Authorization: Bearer <token>` (RFC 6750 §2.1).
    Header,
    /// The form-encoded body's `access_token` (RFC 6750 §2.2).
    Body,
    /// The URI query's `access_token` (RFC 6750 §2.3), which RFC 9700 advises against.
    Query,
}

impl BearerMethod {
    /// The name RFC 9728 gives it: `header`, `body` or `query`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Header => "header",
            Self::Body => "body",
            Self::Query => "query",
        }
    }
}

/// A protected resource's metadata (RFC 9728 §2), which clients fetch from the URL that
/// [`ResourceUri::metadata_url`] gives, and that every challenge names in `resource_metadata` (see
/// [`Rfc6750Responder::resource_metadata`](crate::Rfc6750Responder::resource_metadata)). MCP clients require it.
///
/// Build it from the [`JwtAuthLayer`](crate::JwtAuthLayer) that protects the resource, with
/// [`JwtAuthLayer::metadata`](crate::JwtAuthLayer::metadata), so that the document and the checks cannot
/// disagree; or by hand with [`new`](Self::new). Then serve it with [`into_service`](Self::into_service),
/// outside the layer: the document is public.
///
/// ```
/// use jwtgate_core::Policy;
/// use jwtgate_tower::{ProtectedResourceMetadata, ResourceUri};
///
/// # fn main() -> Result<(), jwtgate_core::ConfigError> {
/// let resource = ResourceUri::parse("https://mcp.example.com/mcp")?;
/// let metadata = ProtectedResourceMetadata::new(resource.clone())
///     .authorization_server("https://auth.example.com")
///     .scopes_of(&Policy::any([Policy::scope("mcp:read"), Policy::scope("mcp:write")]))
///     .resource_name("Example MCP server")
///     .serve_at_root();
/// assert_eq!(metadata.document()?["scopes_supported"], serde_json::json!(["mcp:read", "mcp:write"]));
/// let service = metadata.into_service()?;
/// assert_eq!(service.paths().collect::<Vec<_>>(), [
///     "/.well-known/oauth-protected-resource/mcp",
///     "/.well-known/oauth-protected-resource",
/// ]);
/// // With axum: for path in service.paths() { router = router.route_service(path, service.clone()) }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct ProtectedResourceMetadata {
    resource: ResourceUri,
    authorization_servers: Vec<String>,
    scopes_supported: Vec<String>,
    bearer_methods: Vec<BearerMethod>,
    jwks_uri: Option<String>,
    resource_name: Option<String>,
    resource_documentation: Option<String>,
    dpop: Option<(Vec<Algorithm>, bool)>,
    certificate_bound: bool,
    fields: Map<String, Value>,
    signed_by: Option<(SigningKey, String)>,
    max_age: Duration,
    at_root: bool,
}

impl ProtectedResourceMetadata {
    /// The metadata of `resource`, which tokens for it carry in `aud`: with `bearer_methods_supported`
    /// `["header"]` and nothing else yet.
    pub fn new(resource: ResourceUri) -> Self {
        Self {
            resource,
            authorization_servers: Vec::new(),
            scopes_supported: Vec::new(),
            bearer_methods: vec![BearerMethod::Header],
            jwks_uri: None,
            resource_name: None,
            resource_documentation: None,
            dpop: None,
            certificate_bound: false,
            fields: Map::new(),
            signed_by: None,
            max_age: DEFAULT_METADATA_MAX_AGE,
            at_root: false,
        }
    }

    /// The resource the document describes.
    pub fn resource(&self) -> &ResourceUri {
        &self.resource
    }

    /// Adds an authorization server that issues tokens for the resource (`authorization_servers`): its
    /// issuer identifier, where clients find its RFC 8414 or OpenID metadata.
    pub fn authorization_server(mut self, issuer: impl Into<String>) -> Self {
        push_new(&mut self.authorization_servers, issuer.into());
        self
    }

    /// Replaces `authorization_servers` with `issuers`: for a resource whose clients should go to other
    /// authorization servers than the ones its validator names (a front door that federates them, say).
    pub fn authorization_servers<S: Into<String>>(mut self, issuers: impl IntoIterator<Item = S>) -> Self {
        self.authorization_servers.clear();
        for issuer in issuers {
            push_new(&mut self.authorization_servers, issuer.into());
        }
        self
    }

    /// Adds scopes to `scopes_supported`, in order, once each.
    pub fn scopes_supported<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        for scope in scopes {
            push_new(&mut self.scopes_supported, scope.into());
        }
        self
    }

    /// Adds the scopes `policy` names to `scopes_supported`: pass the policies of your guards, so that the
    /// document lists what they ask for.
    pub fn scopes_of(self, policy: &Policy) -> Self {
        self.scopes_supported(policy.required_scopes())
    }

    /// How clients may send their token (`bearer_methods_supported`). Default: `["header"]`. An empty list
    /// says that no bearer method is accepted.
    pub fn bearer_methods(mut self, methods: impl IntoIterator<Item = BearerMethod>) -> Self {
        self.bearer_methods.clear();
        for method in methods {
            push_new(&mut self.bearer_methods, method);
        }
        self
    }

    /// The URL of the resource's own JWK Set (`jwks_uri`), for resources that sign their responses. It is
    /// not where the authorization server's keys are.
    pub fn jwks_uri(mut self, uri: impl Into<String>) -> Self {
        self.jwks_uri = Some(uri.into());
        self
    }

    /// A name for people (`resource_name`), such as "Orders API".
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// The URL of the resource's documentation for developers (`resource_documentation`).
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.resource_documentation = Some(url.into());
        self
    }

    /// DPoP (RFC 9449): the proof algorithms accepted (`dpop_signing_alg_values_supported`), and whether
    /// every token must be DPoP-bound (`dpop_bound_access_tokens_required`).
    pub fn dpop(mut self, algorithms: impl IntoIterator<Item = Algorithm>, bound_tokens_required: bool) -> Self {
        self.dpop = Some((algorithms.into_iter().collect(), bound_tokens_required));
        self
    }

    /// Says that tokens are bound to the client's TLS certificate (RFC 8705,
    /// `tls_client_certificate_bound_access_tokens`).
    pub fn tls_client_certificate_bound_access_tokens(mut self) -> Self {
        self.certificate_bound = true;
        self
    }

    /// Adds a member that RFC 9728 does not name, or that a later specification registers. The members
    /// above are set by their own methods: [`into_service`](Self::into_service) refuses them here.
    pub fn field(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.fields.insert(name.into(), value.into());
        self
    }

    /// Adds `signed_metadata` (RFC 9728 §2.2): a JWT, signed with `key`, whose claims are the document's
    /// other members, with `iss` = `issuer` (the party that vouches for them) and `iat`. A client that
    /// trusts `issuer` takes the signed values over the plain ones.
    pub fn signed_by(mut self, key: SigningKey, issuer: impl Into<String>) -> Self {
        self.signed_by = Some((key, issuer.into()));
        self
    }

    /// How long clients may cache the document (`Cache-Control: max-age`), in whole seconds. Default
    /// [`DEFAULT_METADATA_MAX_AGE`].
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Serves the document at `/.well-known/oauth-protected-resource` too, not only at the path-inserted URL
    /// (RFC 9728 §3.1), for clients that probe the root, as MCP clients do. The same for a resource without
    /// a path, whose metadata is there anyway.
    pub fn serve_at_root(mut self) -> Self {
        self.at_root = true;
        self
    }

    /// The document, as JSON; with `signed_metadata` when [`signed_by`](Self::signed_by) was set.
    pub fn document(&self) -> Result<Value, ConfigError> {
        if let Some(name) = self.fields.keys().find(|name| STANDARD.contains(&name.as_str())) {
            return Err(metadata_error(&format!("the member {name:?} is set by its own method, not by field")));
        }
        let mut document = Map::new();
        document.insert("resource".into(), self.resource.as_str().into());
        if !self.authorization_servers.is_empty() {
            document.insert("authorization_servers".into(), self.authorization_servers.clone().into());
        }
        if let Some(uri) = &self.jwks_uri {
            document.insert("jwks_uri".into(), uri.clone().into());
        }
        if !self.scopes_supported.is_empty() {
            document.insert("scopes_supported".into(), self.scopes_supported.clone().into());
        }
        let methods: Vec<Value> = self.bearer_methods.iter().map(|method| method.as_str().into()).collect();
        document.insert("bearer_methods_supported".into(), methods.into());
        if let Some(name) = &self.resource_name {
            document.insert("resource_name".into(), name.clone().into());
        }
        if let Some(url) = &self.resource_documentation {
            document.insert("resource_documentation".into(), url.clone().into());
        }
        if self.certificate_bound {
            document.insert("tls_client_certificate_bound_access_tokens".into(), true.into());
        }
        if let Some((algorithms, required)) = &self.dpop {
            let algorithms: Vec<Value> = algorithms.iter().map(|alg| alg.as_str().into()).collect();
            document.insert("dpop_signing_alg_values_supported".into(), algorithms.into());
            document.insert("dpop_bound_access_tokens_required".into(), (*required).into());
        }
        document.extend(self.fields.clone());
        if let Some((key, issuer)) = &self.signed_by {
            let mut claims = document.clone();
            claims.insert("iss".into(), issuer.clone().into());
            claims.insert("iat".into(), jwtgate_core::__private::unix_now().into());
            let jwt = key.sign("JWT", &claims).map_err(|err| metadata_error(&format!("signed_metadata: {err}")))?;
            document.insert("signed_metadata".into(), jwt.into());
        }
        Ok(Value::Object(document))
    }

    /// The tower [`Service`] that serves the document. See [`MetadataService`].
    pub fn into_service(self) -> Result<MetadataService, ConfigError> {
        let body = serde_json::to_vec(&self.document()?).expect("JSON serializes");
        let document = Document::new(body, "application/json", self.max_age).public_to_browsers();
        let mut paths = vec![self.resource.metadata_path()];
        if self.at_root && paths[0] != METADATA_WELL_KNOWN {
            paths.push(METADATA_WELL_KNOWN.to_owned());
        }
        Ok(MetadataService { shared: Arc::new(Shared { document, paths }) })
    }
}

impl fmt::Debug for ProtectedResourceMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtectedResourceMetadata")
            .field("resource", &self.resource)
            .field("authorization_servers", &self.authorization_servers)
            .field("scopes_supported", &self.scopes_supported)
            .field("signed", &self.signed_by.is_some())
            .finish_non_exhaustive()
    }
}

fn push_new<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

fn metadata_error(message: &str) -> ConfigError {
    ConfigError::new(ConfigErrorKind::Resource, format!("protected resource metadata: {message}"))
}

/// A tower [`Service`] that serves a protected resource's metadata: see
/// [`ProtectedResourceMetadata::into_service`].
///
/// Mount it outside your `JwtAuthLayer` at each of its [`paths`](Self::paths); with axum,
/// `router.route_service(path, service.clone())`. On those paths it answers:
/// - `GET` and `HEAD` with the document as `application/json`, `Cache-Control: public, max-age=…`, and a
///   strong `ETag`; `304 Not Modified` when `If-None-Match` names it;
/// - `OPTIONS` with 204 and CORS headers, and every answer with `Access-Control-Allow-Origin: *`, since
///   browser-based clients fetch it from other origins and it is public;
/// - any other method with 405 and `Allow`.
///
/// Any other path gets 404, so that it can also sit in a plain tower stack as the handler of a prefix.
#[derive(Clone)]
pub struct MetadataService {
    shared: Arc<Shared>,
}

struct Shared {
    document: Document,
    paths: Vec<String>,
}

impl MetadataService {
    /// The paths it serves the document at: the path-inserted one first, then the root one when asked for.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.shared.paths.iter().map(String::as_str)
    }

    /// The encoded document.
    pub fn body(&self) -> &Bytes {
        self.shared.document.body()
    }
}

impl<B> Service<Request<B>> for MetadataService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let path = request.uri().path();
        let known = self.shared.paths.iter().any(|served| served.split('?').next() == Some(path));
        if !known {
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::NOT_FOUND;
            return ready(Ok(response));
        }
        ready(Ok(self.shared.document.respond(request.method(), request.headers())))
    }
}

impl fmt::Debug for MetadataService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetadataService").field("paths", &self.shared.paths).finish_non_exhaustive()
    }
}
