use std::fmt;
use std::future::Future;
use std::sync::Arc;

use http::Extensions;
use jwtgate_core::{ConfigError, ConfigErrorKind, Denylist, Error, Introspect, ValidatedCache, Validator};
use tower_layer::Layer;

use super::events;
use super::{Config, JwtAuthService, SubjectInLogs, TokenValidated};
use crate::response::LayerResponder;
use crate::{
    CertificateBinding, CertificateMode, Dpop, DpopMode, ProtectedResourceMetadata, ResourceUri, Responder,
    TokenSources,
};

/// A tower layer that authenticates requests with JWTs.
///
/// For each request it takes the token from the first present [`TokenSources`] entry (by default
/// `Authorization: Bearer`), validates it with the [`Validator`], and asks the [`Denylist`] if one is set. On
/// success the inner service sees the request with one [`Authenticated`](crate::Authenticated) in its
/// extensions, the principal and the `Validated<C>`; handlers read it directly or through `jwtgate-axum`'s
/// `Claims<C>`. Otherwise the [`Responder`] answers (by default as
/// RFC 6750 says, and with `grpc-status` for gRPC) and the inner service is not called.
///
/// `C` is your claims type, deserialized from the token's claims set.
///
/// ```
/// use jwtgate_core::{Algorithm, Key, KeySet, Secret, Validator};
/// use jwtgate_tower::{JwtAuthLayer, TokenSource, TokenSources};
///
/// #[derive(serde::Deserialize)]
/// struct MyClaims {
///     #[serde(default)]
///     roles: Vec<String>,
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let secret = Secret::new(vec![42; 32]);
/// // let secret = Secret::from_env("JWT_SECRET")?;
/// let keys = KeySet::new([Key::hmac(Algorithm::HS256, &secret)?])?;
/// let validator = Validator::builder(keys).issuer("https://auth.example").audience("api").build();
/// let layer = JwtAuthLayer::<MyClaims>::new(validator)
///     .sources(TokenSources::new([TokenSource::bearer(), TokenSource::cookie("access_token")]));
/// # Ok(())
/// # }
/// ```
pub struct JwtAuthLayer<C> {
    config: Arc<Config<C>>,
}

impl<C> JwtAuthLayer<C> {
    /// A layer that requires a valid token on every request, from `Authorization: Bearer`, with no
    /// denylist and RFC 6750 responses.
    pub fn new(validator: Validator) -> Self {
        Self { config: Arc::new(Config::new(Some(validator), None)) }
    }

    /// A layer for opaque tokens only (RFC 7662): every token that is not shaped as a JWT is sent to
    /// `introspection`, usually `jwtgate-introspection`'s `Introspector`, and a JWT is refused as signed by an
    /// unknown key ([`introspect_jwts`](Self::introspect_jwts) sends JWTs to it too). To accept JWTs and
    /// opaque tokens side by side, start from [`new`](Self::new) and add [`introspection`](Self::introspection).
    pub fn introspected(introspection: impl Introspect<C>) -> Self {
        Self { config: Arc::new(Config::new(None, Some(Arc::new(introspection)))) }
    }

    /// Accepts opaque tokens beside JWTs (RFC 7662): a token shaped as a compact JWS (exactly two dots, as
    /// three parts have) is validated locally by the layer's [`Validator`], and is never sent to
    /// `introspection`; every other token is sent there, never to the validator. Either way the token then
    /// goes through the same steps: the layer's rules (`jti`, the `cnf` binding), the denylist, the hook, the
    /// guards.
    #[must_use]
    pub fn introspection(mut self, introspection: impl Introspect<C>) -> Self {
        self.config_mut().introspection = Some(Arc::new(introspection));
        self
    }

    /// Sends tokens shaped as JWTs to the [`introspection`](Self::introspection) too, instead of the
    /// validator: for an authorization server whose JWTs should be judged by it, with revocation taking
    /// effect at once, at the cost of a call per token not cached. Default: JWTs are validated locally.
    #[must_use]
    pub fn introspect_jwts(mut self) -> Self {
        self.config_mut().introspect_jwts = true;
        self
    }

    /// The configuration, to change: shared with no clone of this layer nor with any service built before.
    fn config_mut(&mut self) -> &mut Config<C> {
        Arc::make_mut(&mut self.config)
    }

    /// Where tokens come from, in order. Default: `Authorization: Bearer` alone.
    #[must_use]
    pub fn sources(mut self, sources: TokenSources) -> Self {
        self.config_mut().sources = sources;
        self
    }

    /// Lets requests without a token through as anonymous: they reach the inner service with an
    /// [`Anonymous`](crate::Anonymous) marker instead of claims. Credentials of another scheme (such as
    /// `Basic`) count as no token. A bad bearer token is still refused.
    #[must_use]
    pub fn optional(mut self) -> Self {
        self.config_mut().optional = true;
        self
    }

    /// Asks `denylist` about every valid token; a revoked one is refused with 401, and a denylist that
    /// cannot answer makes the request fail with 503. Default: no denylist.
    #[must_use]
    pub fn denylist(mut self, denylist: impl Denylist) -> Self {
        self.config_mut().denylist = Some(Arc::new(denylist));
        self
    }

    /// When the denylist cannot answer, lets the request through unchecked instead of answering 503, and
    /// logs a warning for every such request. Default: fail closed (503 with `Retry-After`). Choose this
    /// only where availability matters more than revocation taking effect.
    #[must_use]
    pub fn denylist_fail_open(mut self) -> Self {
        self.config_mut().fail_open = true;
        self
    }

    /// Refuses tokens without `jti`, which no denylist can revoke (401, "the token has no jti claim").
    /// Default: such tokens are accepted.
    #[must_use]
    pub fn require_jti(mut self) -> Self {
        self.config_mut().require_jti = true;
        self
    }

    /// Keeps up to `capacity` validated tokens, so that a token seen again skips the signature check, the
    /// parse and the mapping: its claims and principal come from the cache. Default: no cache.
    ///
    /// The cache belongs to this layer and its clones. An entry is never served after the token's `exp` (the
    /// leeway is not granted from the cache) or after the keys that verified it change, and the denylist is
    /// asked about every token, cached or not, so revocation stays immediate. See
    /// [`ValidatedCache`] for the details, and for its memory: about three times the token's length per
    /// entry.
    ///
    /// It pays off when clients send the same token many times, as browsers and API clients do between
    /// refreshes. Where every request brings a new token it only adds a lookup and an insert.
    #[must_use]
    pub fn cache(mut self, capacity: usize) -> Self {
        self.config_mut().cache = Some(ValidatedCache::new(capacity));
        self
    }

    /// The layer's cache of validated tokens, if [`cache`](Self::cache) set one: for its length, in metrics.
    pub fn validated_cache(&self) -> Option<&ValidatedCache<C>> {
        self.config.cache.as_ref()
    }

    /// What the `authenticate` span records about a token's subject. Default: nothing
    /// ([`SubjectInLogs::omitted`]).
    ///
    /// Every request gets a span named `authenticate` (target `jwtgate`, debug level) with the `outcome`
    /// (`authenticated`, `anonymous`, `refused`, or `fail_open`), the `reason` for a refusal (the
    /// [`ErrorKind::name`](jwtgate_core::ErrorKind::name), such as `expired`), and for a valid token its `kid`, `iss`,
    /// and `sub` as chosen here. The token itself is never recorded.
    #[must_use]
    pub fn subject_in_logs(mut self, subject: SubjectInLogs) -> Self {
        self.config_mut().subject_in_logs = subject;
        self
    }

    /// Builds the responses to refused requests: the layer's own, and those of the guards and extractors
    /// after it ([`RequireLayer`](crate::RequireLayer), `jwtgate-axum`'s `Claims` and `Require`, and
    /// `jwtgate-tonic`'s `authorize`), which find it in the request. Default:
    /// [`Rfc6750Responder`](crate::Rfc6750Responder).
    ///
    /// To observe refusals or rewrite their responses, as ASP.NET's `OnAuthenticationFailed`, `OnChallenge`
    /// and `OnForbidden` do, wrap the responder with [`ResponderExt`](crate::ResponderExt); for a
    /// `Token-Expired` header, see [`Rfc6750Responder::token_expired_header`](crate::Rfc6750Responder::token_expired_header).
    #[must_use]
    pub fn responder(mut self, responder: impl Responder) -> Self {
        let config = self.config_mut();
        config.responder = Some(LayerResponder(Arc::new(responder)));
        config.custom_responder = true;
        self
    }

    /// Makes the layer protect `resource` (RFC 9728): with the default responder, every challenge, 401 and
    /// 403, of this layer and of the guards after it, names the resource's metadata URL in
    /// `resource_metadata`, and [`metadata`](Self::metadata) gives the document to serve there.
    ///
    /// The validator must accept tokens for the resource: build it with `.audience(resource.clone())`, so
    /// that `aud` must name the resource (RFC 8707), with its scheme and host compared without case. A
    /// [`responder`](Self::responder) of your own replaces the default one, before or after this call; give
    /// it [`Rfc6750Responder::resource_metadata`](crate::Rfc6750Responder::resource_metadata) itself.
    #[must_use]
    pub fn resource(mut self, resource: ResourceUri) -> Self {
        let config = self.config_mut();
        config.edit_defaults(|responder| responder.resource_metadata(&resource));
        config.resource = Some(resource);
        self
    }

    /// Accepts DPoP-bound tokens (RFC 9449) under the `DPoP` scheme, beside bearer tokens from the
    /// [sources](Self::sources) or instead of them: see [`Dpop`]. Without this call, `Authorization: DPoP` is
    /// a scheme like any other that the layer does not take; a token with `cnf.jkt` is refused as a bearer
    /// token either way.
    ///
    /// The default responder answers in kind
    /// ([`Rfc6750Responder::dpop`](crate::Rfc6750Responder::dpop)); a [`responder`](Self::responder) of your
    /// own gets that setting from you. The resource's [`metadata`](Self::metadata) advertises the proof
    /// algorithms, and whether DPoP is required.
    ///
    /// ```
    /// use jwtgate_core::{Algorithm, Key, KeySet, Secret, Validator};
    /// use jwtgate_tower::{Dpop, JwtAuthLayer};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let key = Key::hmac(Algorithm::HS256, &Secret::new(vec![42; 32]))?;
    /// let validator = Validator::builder(KeySet::new([key])?).issuer("https://auth.example.com").build();
    /// let layer = JwtAuthLayer::<serde_json::Value>::new(validator).dpop(Dpop::allowed("https://api.example.com")?);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn dpop(mut self, dpop: Dpop) -> Self {
        let config = self.config_mut();
        config.edit_defaults(|responder| responder.dpop(&dpop));
        config.dpop = Some(dpop);
        self
    }

    /// Checks certificate-bound tokens (RFC 8705 §3): a token whose `cnf` holds `x5t#S256` is accepted only with
    /// the TLS client certificate that hashes to it; see [`CertificateBinding`] for the modes and where the
    /// certificate comes from. Without this call, a token with `x5t#S256` is refused as a bearer token.
    ///
    /// The resource's [`metadata`](Self::metadata) then says `tls_client_certificate_bound_access_tokens`.
    #[must_use]
    pub fn certificate_binding(mut self, binding: CertificateBinding) -> Self {
        self.config_mut().certificates = Some(binding);
        self
    }

    /// The metadata of the protected [`resource`](Self::resource), built from this layer's configuration so
    /// that the two cannot disagree: `resource`, `authorization_servers` (the validator's issuers), and
    /// `bearer_methods_supported` (from the token sources). Add the scopes your guards ask for with
    /// [`scopes_of`](ProtectedResourceMetadata::scopes_of), and serve it with
    /// [`into_service`](ProtectedResourceMetadata::into_service).
    ///
    /// Refuses a layer without a resource, and one whose validator would refuse a token whose `aud` is the
    /// resource. A layer that only [introspects](Self::introspected) has no validator to ask: its metadata names
    /// no authorization server, and its introspection's `AnswerRules` must accept the resource as `aud`
    /// themselves; add the server with
    /// [`authorization_server`](ProtectedResourceMetadata::authorization_server).
    ///
    /// ```
    /// use jwtgate_core::{Algorithm, Key, KeySet, Secret, Validator};
    /// use jwtgate_tower::{JwtAuthLayer, ResourceUri};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let key = Key::hmac(Algorithm::HS256, &Secret::new(vec![42; 32]))?;
    /// let resource = ResourceUri::parse("https://api.example.com")?;
    /// let validator = Validator::builder(KeySet::new([key])?)
    ///     .issuer("https://auth.example.com")
    ///     .audience(resource.clone())
    ///     .build();
    /// let layer = JwtAuthLayer::<serde_json::Value>::new(validator).resource(resource);
    /// let document = layer.metadata()?.document()?;
    /// assert_eq!(document["resource"], "https://api.example.com");
    /// assert_eq!(document["authorization_servers"], serde_json::json!(["https://auth.example.com"]));
    /// # Ok(())
    /// # }
    /// ```
    pub fn metadata(&self) -> Result<ProtectedResourceMetadata, ConfigError> {
        let config = &self.config;
        let Some(resource) = &config.resource else {
            return Err(ConfigError::new(
                ConfigErrorKind::Resource,
                "the layer protects no resource: call JwtAuthLayer::resource first",
            ));
        };
        if let Some(validator) = &config.validator
            && !validator.accepts_audience(resource.as_str())
        {
            return Err(ConfigError::new(
                ConfigErrorKind::Resource,
                format!("the validator refuses tokens for the resource {resource}: build it with .audience(resource)"),
            ));
        }
        let mut metadata =
            ProtectedResourceMetadata::new(resource.clone()).bearer_methods(config.sources.bearer_methods());
        if let Some(dpop) = &config.dpop {
            metadata = metadata.dpop(dpop.accepted_algorithms().iter().copied(), dpop.mode() == DpopMode::Required);
        }
        if config.certificates.as_ref().is_some_and(|binding| binding.mode() != CertificateMode::Off) {
            metadata = metadata.tls_client_certificate_bound_access_tokens();
        }
        for issuer in config.validator.iter().flat_map(Validator::issuers) {
            metadata = metadata.authorization_server(issuer);
        }
        Ok(metadata)
    }

    /// Runs `hook` for every token that passed validation, the denylist and the layer's own rules, before the
    /// inner service sees the request. ASP.NET's `OnTokenValidated`.
    ///
    /// The hook is `async`: it can look the subject up in a database. It answers with extensions for the
    /// request, which handlers read like any extension (return `Extensions::new()` to add nothing; an
    /// `Arc<Principal>` or a `Principal` among them replaces the token's, so that guards see roles from your database), or
    /// with an error that refuses the request: usually [`ErrorKind::Refused`](jwtgate_core::ErrorKind::Refused)
    /// (401), [`ErrorKind::Forbidden`](jwtgate_core::ErrorKind::Forbidden) (403), or
    /// [`ErrorKind::Unavailable`](jwtgate_core::ErrorKind::Unavailable) (503) when it cannot decide.
    ///
    /// It runs for cached tokens too. Default: no hook, and no cost.
    #[must_use]
    pub fn on_token_validated<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(TokenValidated<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Extensions, Error>> + Send + 'static,
    {
        self.config_mut().on_validated = Some(events::validated_hook(hook));
        self
    }
}

impl<S, C> Layer<S> for JwtAuthLayer<C> {
    type Service = JwtAuthService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        JwtAuthService::new(inner, self.config.clone())
    }
}

impl<C> Clone for JwtAuthLayer<C> {
    fn clone(&self) -> Self {
        Self { config: self.config.clone() }
    }
}

impl<C> fmt::Debug for JwtAuthLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthLayer").field("config", &self.config).finish()
    }
}
