//! jwtgate's reference application. See `examples/demo/README.md` for its interface.
//!
//! ```text
//! cargo run --release -p jwtgate-demo
//! ```
//!
//! With no configuration it trusts an ephemeral HS256 key and prints a sample token and a `curl` line.

mod config;

use std::process::ExitCode;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use config::{Config, Keys, Location, RedisAt, Remote, Revocations};
use jwtgate::dpop::{Dpop, DpopMode, DpopNonces};
use jwtgate::introspection::{AnswerRules, Introspector};
use jwtgate::jwks::RemoteKeySet;
use jwtgate::resource::{ProtectedResourceMetadata, ResourceUri};
use jwtgate::{
    Algorithm, Claims, JwtAuthLayer, Key, KeySet, Policy, RequireLayer, Validator,
    guards::AuthorityMapping,
    keys::TrustedKeys,
    revocation::{Denylist, MemoryDenylist},
    sources::{TokenSource, TokenSources},
};
use jwtgate_example_support::say;
use serde::Deserialize;
use serde_json::{Value, json};

/// The demo's claims: the registered ones, plus `roles`.
#[derive(Debug, Deserialize)]
struct DemoClaims {
    #[serde(default)]
    roles: Vec<String>,
}

async fn health() -> &'static str {
    "ok"
}

async fn me(claims: Claims<DemoClaims>) -> Json<Value> {
    let registered = claims.registered();
    Json(json!({
        "sub": registered.subject(),
        "jti": registered.token_id(),
        "exp": registered.expires_at(),
        "iss": registered.issuer(),
        "aud": registered.audience().collect::<Vec<_>>(),
        "roles": claims.roles,
    }))
}

/// `GET /admin`: only for tokens whose `roles` contain `"admin"`, checked by `RequireLayer` before the
/// handler runs.
async fn admin(claims: Claims<DemoClaims>) -> Json<Value> {
    Json(json!({ "sub": claims.registered().subject(), "admin": true }))
}

/// `GET /scoped`: only for tokens whose `scope` holds `demo:read`.
async fn scoped(claims: Claims<DemoClaims>) -> Json<Value> {
    Json(json!({ "sub": claims.registered().subject(), "scope": "demo:read" }))
}

/// `GET /sensitive`: only after a recent sign-in of the configured strength (RFC 9470), checked by
/// `RequireLayer` before the handler runs. `acr` and `auth_time` are read from the principal, not from the
/// claims type, so that no other route depends on their form.
async fn sensitive(claims: Claims<DemoClaims>) -> Json<Value> {
    let principal = claims.validated().principal();
    Json(json!({
        "sub": claims.registered().subject(),
        "acr": principal.claim::<Value>("acr"),
        "auth_time": principal.claim::<Value>("auth_time"),
    }))
}

/// What the handlers share: the revocation store, and the leeway a revocation must outlast.
#[derive(Clone)]
struct AppState {
    denylist: Arc<dyn Denylist>,
    leeway: i64,
}

/// `POST /logout`: revokes the (valid) token's `jti` until its `exp` plus the leeway. A forged token never
/// gets here: the layer refuses it first.
async fn logout(State(state): State<AppState>, claims: Claims<DemoClaims>) -> Response {
    let registered = claims.registered();
    let Some(jti) = registered.token_id() else {
        let body =
            json!({ "error": "invalid_request", "error_description": "the token has no jti, so it cannot be revoked" });
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    };
    let until = registered.expires_at().unwrap_or(i64::MAX).saturating_add(state.leeway);
    match state.denylist.revoke(jti, until).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => {
            tracing::warn!(%err, "logout: the revocation could not be stored");
            let body = json!({
                "error": "temporarily_unavailable",
                "error_description": "the revocation list is unavailable; try again later",
            });
            (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "2")], Json(body)).into_response()
        }
    }
}

/// The revocation store: Redis at `JWTGATE_REDIS_URL`, asked on every request or replicated into this
/// process (`JWTGATE_REDIS_MODE=replicated`), or this process's memory. Redis is connected lazily: a Redis
/// that is down only makes requests answer 503 until it is back.
fn denylist(config: &Config) -> Result<Arc<dyn Denylist>, String> {
    use jwtgate::redis::{RedisDenylist, ReplicatedDenylist};

    let durability = durability(config);
    Ok(match &config.revocations {
        Revocations::Memory => Arc::new(MemoryDenylist::new()),
        Revocations::Redis(at) => {
            let denylist = match at {
                RedisAt::Url(url) => RedisDenylist::new(url),
                RedisAt::Cluster(nodes) => RedisDenylist::cluster(nodes),
            };
            let denylist = denylist.and_then(|denylist| denylist.with_durability(durability));
            Arc::new(denylist.map_err(|err| unusable(at, err.kind()))?)
        }
        Revocations::Replicated { at, staleness } => {
            let builder = match at {
                RedisAt::Url(url) => ReplicatedDenylist::builder(url),
                RedisAt::Cluster(nodes) => ReplicatedDenylist::cluster(nodes),
            };
            let denylist = builder.staleness(*staleness).durability(durability).start();
            Arc::new(denylist.map_err(|err| unusable(at, err.kind()))?)
        }
    })
}

/// `JWTGATE_REDIS_WAIT_REPLICAS`: a revocation is confirmed once that many replicas hold it, within 2 s.
fn durability(config: &Config) -> jwtgate::redis::Durability {
    use jwtgate::redis::Durability;

    match config.wait_replicas {
        0 => Durability::Primary,
        count => Durability::replicas(count, std::time::Duration::from_secs(2)),
    }
}

/// A Redis URL that cannot be used. The URL may hold a password: the error never repeats it.
fn unusable(at: &RedisAt, kind: impl std::fmt::Debug) -> String {
    let name = match at {
        RedisAt::Url(_) => "JWTGATE_REDIS_URL is not a usable Redis URL",
        RedisAt::Cluster(_) => "JWTGATE_REDIS_CLUSTER_URLS holds a URL that is not a usable Redis URL",
    };
    format!("{name} ({kind:?})")
}

/// A remote JWK Set, started lazily: the demo listens at once. A request that needs the keys while the first
/// fetch runs waits for it (at most 5 s, the library's default); only when there are still no keys does it
/// get 503 with `Retry-After`.
fn remote_keys(remote: &Remote) -> Result<RemoteKeySet, String> {
    let (builder, name) = match &remote.location {
        Location::Jwks(url) => (RemoteKeySet::jwks(url), "JWTGATE_JWKS_URL"),
        Location::Discover(issuer) => (RemoteKeySet::discover(issuer), "JWTGATE_OIDC_ISSUER"),
    };
    builder.cooldown(remote.cooldown).refresh_interval(remote.refresh).build().map_err(|err| format!("{name}: {err}"))
}

/// DPoP as `JWTGATE_DPOP*` ask, with `htu` based on `origin`; `None` when it is `off`. Proofs are remembered in
/// Redis when revocations are (so that a proof used on one instance is refused by every other), else in this
/// process. Nonces come from a secret of this process.
fn dpop(config: &Config, origin: &str) -> Result<Option<Dpop>, String> {
    let settings = &config.dpop;
    let Some(required) = settings.required else {
        return Ok(None);
    };
    let dpop = if required { Dpop::required(origin) } else { Dpop::allowed(origin) };
    let mut dpop = dpop.map_err(|err| err.to_string())?.iat_window(settings.iat_window);
    if let Some(at) = config.redis() {
        let store = match at {
            RedisAt::Url(url) => jwtgate::redis::RedisReplayStore::new(url),
            RedisAt::Cluster(nodes) => jwtgate::redis::RedisReplayStore::cluster(nodes),
        };
        dpop = dpop.replay_store(store.map_err(|err| unusable(at, err.kind()))?);
    }
    if settings.nonce {
        let mut secret = vec![0; 32];
        aws_lc_rs::rand::fill(&mut secret).map_err(|_| "cannot generate a DPoP nonce secret")?;
        dpop = dpop.nonces(DpopNonces::new(&jwtgate::Secret::new(secret)).map_err(|err| err.to_string())?);
    }
    Ok(Some(dpop))
}

/// The validator of JWTs, from `keys` and the configured issuer, audiences, leeway and size limit.
fn validator(config: &Config, keys: TrustedKeys) -> Validator {
    let mut validator = Validator::builder(keys)
        .authorities(AuthorityMapping::new().roles().scope())
        .issuer(config.issuer.clone())
        .leeway(config.leeway)
        .max_token_bytes(config.max_token_bytes);
    for audience in &config.audiences {
        validator = validator.audience(audience.clone());
    }
    if let Some(jwe) = &config.jwe {
        validator = validator.decryption_keys(jwe.keys.clone()).require_encryption(jwe.required);
    }
    validator.build()
}

/// The introspector of opaque tokens, when `JWTGATE_INTROSPECTION_URL` is set: the answers' `iss` and `aud`,
/// when present, checked as a JWT's are, with the same leeway.
fn introspector(config: &Config) -> Result<Option<Introspector<DemoClaims>>, String> {
    let Some(settings) = &config.introspection else { return Ok(None) };
    let mut rules = AnswerRules::new()
        .authorities(AuthorityMapping::new().roles().scope())
        .issuer(config.issuer.clone())
        .leeway(config.leeway);
    for audience in &config.audiences {
        rules = rules.audience(audience.clone());
    }
    let mut builder = Introspector::builder(settings.url.clone())
        .rules(rules)
        .cache_ttl(settings.cache)
        .max_token_bytes(config.max_token_bytes);
    if let Some((id, secret)) = &settings.client {
        builder = builder.client_secret_basic(id, secret);
    }
    builder.build().map(Some).map_err(|err| format!("JWTGATE_INTROSPECTION_URL: {err}"))
}

fn app(
    config: &Config,
    keys: Option<TrustedKeys>,
    denylist: Arc<dyn Denylist>,
    resource: ResourceUri,
    origin: &str,
) -> Result<Router, String> {
    let sources = TokenSources::new([TokenSource::bearer(), TokenSource::cookie(config.cookie.clone())]);
    // A token with two dots is a JWT, validated locally; any other is introspected, when an endpoint is set.
    // When encryption is required, every token that is not encrypted gets 401, opaque ones too: the validator
    // refuses them, and the endpoint is not asked.
    let introspector = introspector(config)?;
    let introspector = match (&config.jwe, introspector) {
        (Some(jwe), Some(_)) if jwe.required => {
            tracing::warn!(
                "JWTGATE_JWE_REQUIRED=true: opaque tokens are refused, the introspection endpoint is not used"
            );
            None
        }
        (_, introspector) => introspector,
    };
    let auth = match (keys, introspector) {
        (Some(keys), None) => JwtAuthLayer::<DemoClaims>::new(validator(config, keys)),
        (Some(keys), Some(introspector)) => JwtAuthLayer::new(validator(config, keys)).introspection(introspector),
        (None, Some(introspector)) => JwtAuthLayer::introspected(introspector),
        (None, None) => return Err("no keys and no introspection endpoint".into()),
    };
    // Every challenge, 401 and 403, names the resource's metadata.
    let mut auth = auth.sources(sources).denylist(denylist.clone()).resource(resource.clone());
    let dpop = dpop(config, origin)?;
    if let Some(dpop) = &dpop {
        auth = auth.dpop(dpop.clone());
    }
    let state = AppState { denylist, leeway: i64::try_from(config.leeway.as_secs()).unwrap_or(i64::MAX) };
    let read = Policy::scope("demo:read");
    let step_up =
        Policy::all([Policy::acr([config.step_up.acr.clone()]), Policy::max_auth_age(config.step_up.max_age)]);
    let guarded = Router::new()
        .route("/admin", get(admin).route_layer(RequireLayer::new(Policy::role("admin"))))
        .route("/scoped", get(scoped).route_layer(RequireLayer::new(read.clone())))
        .route("/sensitive", get(sensitive).route_layer(RequireLayer::new(step_up)));
    let protected = Router::new()
        .route("/me", get(me))
        .route("/logout", post(logout))
        .merge(guarded)
        .route_layer(auth)
        .with_state(state);
    // The metadata is public: outside the layer. Its `aud` is `JWTGATE_AUDIENCE`'s, as the contract says, so
    // the document is written here rather than by `JwtAuthLayer::metadata`, which insists that the validator
    // accept the resource itself as `aud`.
    let mut metadata =
        ProtectedResourceMetadata::new(resource).authorization_server(config.issuer.clone()).scopes_of(&read);
    if let Some(dpop) = &dpop {
        metadata = metadata.dpop(dpop.accepted_algorithms().iter().copied(), dpop.mode() == DpopMode::Required);
    }
    let metadata = metadata.serve_at_root().into_service().map_err(|err| err.to_string())?;
    let mut app = Router::new().route("/health", get(health)).merge(protected);
    for path in metadata.paths() {
        app = app.route_service(path, metadata.clone());
    }
    Ok(app)
}

/// A sample token for the ephemeral key: `sub` "demo", `roles` ["admin"], valid 15 minutes.
fn sample_token(config: &Config, secret: &jwtgate::Secret) -> Result<String, String> {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_err(|e| e.to_string())?.as_secs();
    let mut jti = [0u8; 16];
    aws_lc_rs::rand::fill(&mut jti).map_err(|_| "cannot generate a jti")?;
    let header = json!({ "alg": "HS256", "typ": "JWT" });
    let claims = json!({
        "iss": config.issuer,
        "aud": config.audiences[0],
        "sub": "demo",
        "roles": ["admin"],
        "iat": now,
        "exp": now + 15 * 60,
        "jti": B64.encode(jti),
    });
    let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
    // jsonwebtoken's aws-lc-rs signer, named explicitly: the process-level provider is never consulted.
    let key = jsonwebtoken::EncodingKey::from_secret(secret.expose());
    let signer = (jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.signer_factory)(&jsonwebtoken::Algorithm::HS256, &key)
        .map_err(|e| e.to_string())?;
    let signature = signer.try_sign(input.as_bytes()).map_err(|e| e.to_string())?;
    Ok(format!("{input}.{}", B64.encode(signature)))
}

#[tokio::main]
async fn main() -> ExitCode {
    jwtgate_example_support::init_logs();

    let config = match Config::from_lookup(|name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("jwtgate-demo: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    let denylist = match denylist(&config) {
        Ok(denylist) => denylist,
        Err(err) => {
            eprintln!("jwtgate-demo: configuration error: {err}");
            return ExitCode::from(2);
        }
    };

    let (keys, sample): (Option<TrustedKeys>, _) = match &config.keys {
        Keys::None => (None, None),
        Keys::File(set) => (Some(set.clone().into()), None),
        Keys::Remote { file, remote } => {
            let remote = match remote_keys(remote) {
                Ok(remote) => remote,
                Err(err) => {
                    eprintln!("jwtgate-demo: configuration error: {err}");
                    return ExitCode::from(2);
                }
            };
            let keys = match file {
                Some(file) => TrustedKeys::from(file.clone()).with_source(remote),
                None => TrustedKeys::from_source(remote),
            };
            (Some(keys), None)
        }
        Keys::Ephemeral(secret) => {
            tracing::warn!("no keys configured: using an ephemeral HS256 key, for development only");
            let key = Key::hmac(Algorithm::HS256, secret).and_then(|key| KeySet::new([key]));
            let token = sample_token(&config, secret);
            match (key, token) {
                (Ok(keys), Ok(token)) => (Some(keys.into()), Some(token)),
                (Err(err), _) => {
                    eprintln!("jwtgate-demo: {err}");
                    return ExitCode::from(2);
                }
                (_, Err(err)) => {
                    eprintln!("jwtgate-demo: cannot sign the sample token: {err}");
                    return ExitCode::FAILURE;
                }
            }
        }
    };

    let listener = match tokio::net::TcpListener::bind(config.addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("jwtgate-demo: cannot listen on {}: {err}", config.addr);
            return ExitCode::FAILURE;
        }
    };
    // The signal handlers go in before `listening on` is printed: a signal sent the moment the line appears
    // must stop the demo cleanly (status 0), not kill it.
    let signal = match jwtgate_example_support::shutdown_signal() {
        Ok(signal) => signal,
        Err(err) => {
            eprintln!("jwtgate-demo: cannot listen for SIGINT and SIGTERM: {err}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = async {
        signal.await;
        tracing::info!("shutting down");
    };
    let addr = listener.local_addr().unwrap_or(config.addr);
    let origin = config.origin(addr);
    let app = match config.resource(addr).and_then(|resource| app(&config, keys, denylist, resource, &origin)) {
        Ok(app) => app,
        Err(err) => {
            eprintln!("jwtgate-demo: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    if let Some(token) = sample {
        say("sample token (sub \"demo\", roles [\"admin\"], valid 15 minutes; development key):");
        say(&token);
        say(&format!("curl -H 'Authorization: Bearer {token}' http://{addr}/me"));
    }
    say(&format!("listening on {addr}"));

    match axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("jwtgate-demo: server error: {err}");
            ExitCode::FAILURE
        }
    }
}
