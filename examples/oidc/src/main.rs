//! An axum API protected by jwtgate and configured from an OpenID provider's issuer URL alone: discovery
//! finds the provider's signing keys, and jwtgate keeps them fresh. It works with any provider that
//! publishes `/.well-known/openid-configuration` (Keycloak, Auth0, Entra ID, Cognito, Google...).
//!
//! | variable | what it is | default |
//! |---|---|---|
//! | `OIDC_ISSUER` | the provider's issuer, exactly as the tokens' `iss` spells it | required |
//! | `OIDC_AUDIENCE` | this API's audience, as in the tokens' `aud` | required |
//! | `BIND` | the address to listen on | `127.0.0.1:3000` |
//! | `OIDC_EAGER` | `1`: fetch the keys before listening, and exit when that fails | `0`: start at once |
//! | `OIDC_RSA_ALG` | the algorithm of RSA keys published without `alg` (Entra ID's), such as `RS256` | such keys are skipped |
//!
//! Routes: `GET /health` (public), `GET /me` (any valid token), `GET /admin` (role, scope or permission
//! `admin`). A missing or bad configuration exits with code 2, and so does, with `OIDC_EAGER=1`, a provider
//! whose keys cannot be fetched at startup. `RUST_LOG` sets the log level (default `info`). See `README.md`
//! for each provider's issuer, audience and claims.

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use jwtgate::jwks::RemoteKeySet;
use jwtgate::{
    Algorithm, Claims, JwtAuthLayer, Validator,
    guards::AuthorityMapping,
    keys::{AlgorithmMapping, KeyType},
    require,
};
use serde_json::{Value, json};

/// The exit code for a missing or bad configuration, and for an eager start without keys.
const EXIT_CONFIG: u8 = 2;
/// The exit code for other failures, such as an address already in use.
const EXIT_FAILURE: u8 = 1;

/// What the example reads from the environment.
struct Config {
    issuer: String,
    audience: String,
    bind: SocketAddr,
    eager: bool,
    rsa_alg: Option<Algorithm>,
}

impl Config {
    /// Reads the configuration. The error names the variable at fault.
    fn from_env() -> Result<Self, String> {
        // Used as it is: `https://idp.example` and `https://idp.example/` are two issuers (Auth0's ends with
        // a slash, most others' do not). Copy it from the `issuer` of the discovery document.
        let issuer = var("OIDC_ISSUER")?
            .ok_or("OIDC_ISSUER is required: the provider's issuer, e.g. https://login.example.com/realms/demo")?;
        let audience =
            var("OIDC_AUDIENCE")?.ok_or("OIDC_AUDIENCE is required: this API's audience, as in the tokens' `aud`")?;
        let bind = match var("BIND")? {
            None => SocketAddr::from(([127, 0, 0, 1], 3000)),
            Some(bind) => {
                bind.parse().map_err(|_| format!("BIND={bind:?} is not an IP address and port (127.0.0.1:3000)"))?
            }
        };
        let eager = match var("OIDC_EAGER")?.as_deref() {
            None | Some("0") => false,
            Some("1") => true,
            Some(other) => return Err(format!("OIDC_EAGER={other:?}: use 1 to fetch the keys before listening, or 0")),
        };
        // A key without `alg` could serve any algorithm of its type, so jwtgate skips it unless told which one.
        let rsa_alg = match var("OIDC_RSA_ALG")? {
            None => None,
            Some(alg) => match alg.parse::<Algorithm>() {
                Ok(alg) if alg.key_type() == KeyType::Rsa => Some(alg),
                _ => return Err(format!("OIDC_RSA_ALG={alg:?} is not an RSA algorithm (RS256, PS256...)")),
            },
        };
        Ok(Self { issuer, audience, bind, eager, rsa_alg })
    }
}

/// The variable `name`, trimmed; `None` when it is unset or empty.
fn var(name: &str) -> Result<Option<String>, String> {
    match std::env::var(name) {
        Ok(value) if value.trim().is_empty() => Ok(None),
        Ok(value) => Ok(Some(value.trim().to_owned())),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{name} is not valid UTF-8")),
    }
}

/// The provider's keys, found by discovery. Lazy by default: the server listens at once, and tokens get
/// 503 with `Retry-After` until the first fetch succeeds. Eager: no listening without the keys.
async fn keys(config: &Config) -> Result<RemoteKeySet, jwtgate::ConfigError> {
    // The defaults (see docs/keys.md) suit most providers. To stop trusting keys that could not be
    // checked for a day, for instance: `.max_staleness(Duration::from_secs(24 * 3600))`.
    let mut discovery = RemoteKeySet::discover(&config.issuer);
    if let Some(alg) = config.rsa_alg {
        let mapping = AlgorithmMapping::new().map(KeyType::Rsa, alg).expect("an RSA algorithm, checked in from_env");
        discovery = discovery.algorithms(mapping);
    }
    if config.eager { discovery.build_eager().await } else { discovery.build() }
}

/// Where roles, scopes and permissions come from. Each preset reads one provider's claim, and an absent
/// claim gives nothing, so together they serve any provider. Keep those of yours.
fn authorities(audience: &str) -> AuthorityMapping {
    AuthorityMapping::new()
        .scope() // `scope`: RFC 9068, Keycloak, Auth0, Cognito
        .scp() // `scp`: Entra ID delegated scopes, Okta
        .roles() // `roles`: Entra ID app roles
        .permissions() // `permissions`: Auth0 with RBAC
        .keycloak_realm_roles() // `realm_access.roles`
        .keycloak_client_roles(audience) // `resource_access.<audience>.roles`
        .cognito_groups() // `cognito:groups`
}

/// Accepts tokens that the issuer signed for this API's audience.
fn validator(keys: RemoteKeySet, config: &Config) -> Validator {
    Validator::builder(keys)
        .issuer(&config.issuer)
        .audience(&config.audience)
        // RFC 9068 access tokens say `typ: at+jwt`, which tells them from ID tokens signed with the same
        // keys. Require it if your provider sets it (Auth0 does with its RFC 9068 profile); many send `JWT`
        // or nothing, so it is off here.
        // .required_types(["at+jwt"])
        .authorities(authorities(&config.audience))
        .build()
}

/// Public: the server is up, and whether it holds the provider's keys yet.
async fn health(State(keys): State<RemoteKeySet>) -> Json<Value> {
    Json(json!({ "status": "ok", "keys_ready": keys.is_ready() }))
}

/// Any valid token: who the caller is, and the authorities the mapping found in the token.
async fn me(claims: Claims<Value>) -> Json<Value> {
    let principal = claims.validated().principal();
    Json(json!({
        "sub": claims.registered().subject(),
        "roles": principal.roles(),
        "scopes": principal.scopes(),
        "permissions": principal.permissions(),
    }))
}

/// Administrators only: a realm, client or app role, a Cognito group, a scope, or an Auth0 permission named
/// `admin`. Others get 403 `insufficient_scope`, before the handler runs.
#[require(any(role = "admin", scope = "admin", permission = "admin"))]
async fn admin(claims: Claims<Value>) -> Json<Value> {
    Json(json!({ "admin": true, "sub": claims.registered().subject() }))
}

/// How many validated tokens the layer keeps: clients send the same access token until it expires, and a
/// cached one skips the RS256 or ES256 signature check. An entry never outlives its token, nor the key set
/// that verified it.
const CACHED_TOKENS: usize = 10_000;

/// The application: `/health` outside the layer, the rest behind it.
fn app(validator: Validator, keys: RemoteKeySet) -> Router {
    let layer = JwtAuthLayer::<Value>::new(validator).cache(CACHED_TOKENS);
    let protected = Router::new().route("/me", get(me)).route("/admin", get(admin)).layer(layer);
    Router::new().route("/health", get(health)).with_state(keys).merge(protected)
}

#[tokio::main]
async fn main() -> ExitCode {
    jwtgate_example_support::init_logs();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("oidc: {message}");
            ExitCode::from(code)
        }
    }
}

/// Configures and serves until Ctrl-C. Fails with the exit code and a message.
async fn run() -> Result<(), (u8, String)> {
    let config = Config::from_env().map_err(|err| (EXIT_CONFIG, err))?;
    let keys = keys(&config).await.map_err(|err| (EXIT_CONFIG, format!("OIDC_ISSUER: {err}")))?;
    tracing::info!(issuer = %config.issuer, audience = %config.audience, eager = config.eager, "trusting the provider");
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|err| (EXIT_FAILURE, format!("cannot listen on {}: {err}", config.bind)))?;
    let addr = listener.local_addr().unwrap_or(config.bind);
    // Listening for signals before `listening on` is logged, so that a signal sent right after it stops the
    // server cleanly.
    let shutdown = jwtgate_example_support::shutdown_signal()
        .map_err(|err| (EXIT_FAILURE, format!("cannot listen for signals: {err}")))?;
    tracing::info!("listening on http://{addr}");
    let app = app(validator(keys.clone(), &config), keys);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await.map_err(|err| (EXIT_FAILURE, err.to_string()))
}
