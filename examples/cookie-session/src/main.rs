//! A web app that is its own issuer: a login page, short-lived access tokens and rotated refresh tokens in
//! HttpOnly cookies, transparent refresh, CSRF defence, and logout that ends everything.
//!
//! ```text
//! cargo run -p jwtgate-example-cookie-session            # http://127.0.0.1:3000, users from users.json
//! cargo run -p jwtgate-example-cookie-session -- hash-password < password.txt
//! ```
//!
//! | variable | what it is | default |
//! |---|---|---|
//! | `BIND` | the address to listen on | `127.0.0.1:3000` |
//! | `USERS_FILE` | the users: name, argon2 hash, roles | this example's `users.json` (test-only demo users) |
//! | `ACCESS_TTL_SECS` | the access tokens' lifetime | `900` |
//! | `SIGNING_KEY_PEM` | an ES256 private key (PKCS#8 PEM file) | a key generated at start (tokens die with the process) |
//! | `COOKIE_INSECURE_DEV` | `1`: cookies without `Secure`, for plain http on a LAN address | off: `Secure`, `__Host-` |
//!
//! Browsers treat `http://localhost` and `http://127.0.0.1` as secure contexts, so the secure cookies work
//! there without `COOKIE_INSECURE_DEV`.

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderValue, Request, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jwtgate::session::{MemoryRefreshStore, SessionCookies, SessionError, Sessions, TokenIssuer, TokenPair};
use jwtgate::{
    Algorithm, Claims, JwtAuthLayer, Validator,
    keys::SigningKey,
    revocation::MemoryDenylist,
    sources::{Csrf, RequestHead, TokenSource, TokenSources},
};
use serde::{Deserialize, Serialize};
use serde_json::json;

const ISSUER: &str = "https://cookie-session.example";
const AUDIENCE: &str = "cookie-session";

/// The access token's own claims: the roles, nothing more (tokens travel with every request).
#[derive(Clone, Debug, Serialize)]
struct AppClaims {
    roles: Vec<String>,
}

/// What handlers read from a validated access token: the roles, and `sid`, the session it belongs to.
#[derive(Clone, Debug, Deserialize)]
struct TokenClaims {
    #[serde(default)]
    roles: Vec<String>,
    sid: String,
}

#[derive(Deserialize)]
struct UsersFile {
    users: Vec<User>,
}

#[derive(Clone, Deserialize)]
struct User {
    name: String,
    /// An argon2 PHC string.
    password_hash: String,
    #[serde(default)]
    roles: Vec<String>,
}

#[derive(Clone)]
struct AppState {
    sessions: Arc<Sessions<MemoryRefreshStore>>,
    cookies: SessionCookies,
    csrf: Csrf,
    validator: Validator,
    denylist: MemoryDenylist,
    users: Arc<HashMap<String, User>>,
    /// Hashed at start, checked for unknown names so that they take as long as known ones.
    decoy_hash: Arc<str>,
    notes: Arc<Mutex<Vec<String>>>,
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

fn error(status: StatusCode, code: &str, description: &str) -> Response {
    (status, Json(json!({ "error": code, "error_description": description }))).into_response()
}

fn csrf_refused() -> Response {
    error(StatusCode::FORBIDDEN, "csrf_rejected", "the request's origin may not use the session cookie")
}

/// A response that sets the session's cookies.
fn with_cookies(state: &AppState, pair: &TokenPair, body: serde_json::Value) -> Response {
    match state.cookies.set(pair) {
        Ok(values) => {
            let mut response = Json(body).into_response();
            for value in values {
                response.headers_mut().append(SET_COOKIE, value);
            }
            response
        }
        Err(err) => {
            tracing::error!(%err, "cannot set the session cookies");
            error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "the session could not be started")
        }
    }
}

fn cleared(state: &AppState, mut response: Response) -> Response {
    for value in state.cookies.clear() {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

fn allowed(state: &AppState, request: &Request<axum::body::Body>) -> bool {
    state.csrf.allows(&RequestHead::new(request))
}

/// `POST /login` with `{"username", "password"}`.
async fn login(State(state): State<AppState>, request: Request<axum::body::Body>) -> Response {
    if !allowed(&state, &request) {
        return csrf_refused();
    }
    let Ok(body) = axum::body::to_bytes(request.into_body(), 16 * 1024).await else {
        return error(StatusCode::BAD_REQUEST, "invalid_request", "the body is too large");
    };
    let Ok(login) = serde_json::from_slice::<Login>(&body) else {
        return error(StatusCode::BAD_REQUEST, "invalid_request", "expected {\"username\", \"password\"}");
    };
    let user = state.users.get(&login.username).cloned();
    // Unknown names are checked against a decoy hash (made with the same parameters as `hash-password`),
    // so that they take as long as known ones. Argon2 is slow on purpose: off the async workers.
    let hash = user.as_ref().map_or_else(|| state.decoy_hash.to_string(), |user| user.password_hash.clone());
    let verified = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .is_ok_and(|hash| Argon2::default().verify_password(login.password.as_bytes(), &hash).is_ok())
    })
    .await
    .unwrap_or(false);
    let Some(user) = user.filter(|_| verified) else {
        tracing::info!("login refused");
        return error(StatusCode::UNAUTHORIZED, "invalid_grant", "the name or the password is wrong");
    };
    match state.sessions.login(&user.name, &AppClaims { roles: user.roles.clone() }).await {
        Ok(pair) => with_cookies(&state, &pair, json!({ "sub": user.name })),
        Err(err) => session_error(&state, &err),
    }
}

/// `POST /refresh`: the refresh cookie for a new pair.
async fn refresh(State(state): State<AppState>, request: Request<axum::body::Body>) -> Response {
    if !allowed(&state, &request) {
        return csrf_refused();
    }
    let Some(presented) = state.cookies.refresh_token(request.headers()) else {
        return error(StatusCode::UNAUTHORIZED, "invalid_grant", "no refresh token");
    };
    // A user removed from the file since the login has no session any more.
    let users = state.users.clone();
    let roles = move |user: &str| users.get(user).map(|user| AppClaims { roles: user.roles.clone() });
    match state.sessions.refresh(presented, roles).await {
        Ok(pair) => with_cookies(&state, &pair, json!({ "refreshed": true })),
        Err(err) => session_error(&state, &err),
    }
}

fn session_error(state: &AppState, err: &SessionError) -> Response {
    match err {
        SessionError::InvalidRefreshToken | SessionError::RefreshTokenReused | SessionError::ProofKeyMismatch => {
            cleared(state, error(StatusCode::UNAUTHORIZED, "invalid_grant", "the session has ended; sign in again"))
        }
        SessionError::Store(_) => {
            let mut response =
                error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "try again in a moment");
            response.headers_mut().insert("retry-after", HeaderValue::from_static("2"));
            response
        }
        SessionError::Issue(_) => {
            tracing::error!(%err, "cannot issue tokens");
            error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "the session could not be renewed")
        }
    }
}

/// `POST /logout`, behind the layer (a same-origin request with a valid access token): revokes the
/// session's refresh-token family and the access token, and clears the cookies.
async fn logout(State(state): State<AppState>, claims: Claims<TokenClaims>) -> Response {
    let registered = claims.registered();
    let access = registered.token_id().zip(registered.expires_at());
    match state.sessions.logout(&claims.sid, access).await {
        Ok(()) => cleared(&state, StatusCode::NO_CONTENT.into_response()),
        Err(err) => session_error(&state, &err),
    }
}

/// `GET /me`: who the access token says you are.
async fn me(claims: Claims<TokenClaims>) -> Json<serde_json::Value> {
    let registered = claims.registered();
    Json(json!({ "sub": registered.subject(), "roles": claims.roles, "exp": registered.expires_at() }))
}

/// `GET /notes` and `POST /notes`: a state change that a forged cross-site request must never reach.
async fn notes(State(state): State<AppState>, _claims: Claims<TokenClaims>) -> Json<Vec<String>> {
    Json(state.notes.lock().unwrap_or_else(PoisonError::into_inner).clone())
}

async fn add_note(State(state): State<AppState>, claims: Claims<TokenClaims>) -> StatusCode {
    let note = format!("note by {}", claims.registered().subject().unwrap_or("?"));
    state.notes.lock().unwrap_or_else(PoisonError::into_inner).push(note);
    StatusCode::CREATED
}

async fn protected(claims: Claims<TokenClaims>) -> Html<String> {
    let name = claims.registered().subject().unwrap_or("?").replace(['<', '>', '&', '"'], "");
    Html(format!("<!doctype html><title>Protected</title><h1>Protected page for {name}</h1>"))
}

fn app(state: AppState) -> Router {
    let sources = TokenSources::new([
        TokenSource::bearer(),
        // Unsafe requests with the cookie must be same-origin (fetch metadata, then Origin).
        TokenSource::cookie(state.cookies.access_name()).csrf(state.csrf.clone()),
    ]);
    let denylist = state.denylist.clone();
    let layer = JwtAuthLayer::<TokenClaims>::new(state.validator.clone()).sources(sources).denylist(denylist);
    let protected = Router::new()
        .route("/me", get(me))
        .route("/logout", post(logout))
        .route("/notes", get(notes).post(add_note))
        .route("/protected", get(protected))
        .route_layer(layer);
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/login", post(login))
        .route("/refresh", post(refresh))
        .merge(protected)
        .with_state(state)
}

struct Config {
    bind: SocketAddr,
    users_file: String,
    access_ttl: Duration,
    signing_key: Option<String>,
    insecure_dev: bool,
}

fn config() -> Result<Config, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let bind = match var("BIND") {
        Some(bind) => bind.parse().map_err(|_| format!("BIND={bind:?} is not an IP address and port"))?,
        None => SocketAddr::from(([127, 0, 0, 1], 3000)),
    };
    let access_ttl = match var("ACCESS_TTL_SECS") {
        Some(secs) => {
            Duration::from_secs(secs.parse().map_err(|_| format!("ACCESS_TTL_SECS={secs:?} is not a number"))?)
        }
        None => Duration::from_secs(900),
    };
    let insecure_dev = match var("COOKIE_INSECURE_DEV").as_deref() {
        None | Some("0") => false,
        Some("1") => true,
        Some(other) => return Err(format!("COOKIE_INSECURE_DEV={other:?}: use 1 or 0")),
    };
    Ok(Config {
        bind,
        users_file: var("USERS_FILE").unwrap_or_else(|| DEMO_USERS.to_owned()),
        access_ttl,
        signing_key: var("SIGNING_KEY_PEM"),
        insecure_dev,
    })
}

/// The example's own users, whose passwords are published in the file: for trying the example only.
const DEMO_USERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/users.json");

fn state(config: &Config) -> Result<AppState, String> {
    if config.users_file == DEMO_USERS {
        tracing::warn!(
            "no USERS_FILE: using the example's demo users, whose passwords are published (an admin among \
             them); for trying the example only"
        );
    }
    let text = std::fs::read_to_string(&config.users_file)
        .map_err(|err| format!("USERS_FILE {}: {err}", config.users_file))?;
    let file: UsersFile =
        serde_json::from_str(&text).map_err(|err| format!("USERS_FILE {}: {err}", config.users_file))?;
    for user in &file.users {
        PasswordHash::new(&user.password_hash)
            .map_err(|_| format!("USERS_FILE: the password hash of {:?} is not a PHC string", user.name))?;
    }
    let users = file.users.into_iter().map(|user| (user.name.clone(), user)).collect();
    let key = match &config.signing_key {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|err| format!("SIGNING_KEY_PEM {path}: {err}"))?;
            SigningKey::from_pem(Algorithm::ES256, pem, "key-1").map_err(|err| format!("SIGNING_KEY_PEM: {err}"))?
        }
        None => {
            tracing::warn!("no SIGNING_KEY_PEM: signing with a key generated at start; tokens end with the process");
            SigningKey::generate(Algorithm::ES256, "ephemeral").map_err(|err| err.to_string())?
        }
    };
    let issuer = TokenIssuer::builder(ISSUER, key)
        .audience(AUDIENCE)
        .lifetime(config.access_ttl)
        .build()
        .map_err(|err| format!("ACCESS_TTL_SECS: {err}"))?;
    let validator = Validator::builder(issuer.clone()).issuer(ISSUER).audience(AUDIENCE).build();
    let denylist = MemoryDenylist::new();
    let sessions = Sessions::new(issuer, MemoryRefreshStore::new()).denylist(denylist.clone());
    let cookies = if config.insecure_dev { SessionCookies::new().insecure_dev_mode() } else { SessionCookies::new() };
    let decoy = hash_password("decoy password, never valid").map_err(|err| err.to_string())?;
    Ok(AppState {
        sessions: Arc::new(sessions),
        cookies,
        csrf: Csrf::same_origin(),
        validator,
        denylist,
        users: Arc::new(users),
        decoy_hash: decoy.into(),
        notes: Arc::default(),
    })
}

fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    Ok(Argon2::default().hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))?.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    jwtgate_example_support::init_logs();
    if std::env::args().nth(1).as_deref() == Some("hash-password") {
        let mut password = String::new();
        if std::io::stdin().read_to_string(&mut password).is_err() {
            eprintln!("cookie-session: cannot read the password from stdin");
            return ExitCode::from(2);
        }
        return match hash_password(password.trim_end_matches(['\r', '\n'])) {
            Ok(hash) => {
                tracing::info!("argon2 hash follows on stdout");
                #[allow(clippy::print_stdout, reason = "the hash is this command's output")]
                {
                    println!("{hash}");
                }
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("cookie-session: {err}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match config() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("cookie-session: {err}");
            return ExitCode::from(2);
        }
    };
    let state = match state(&config) {
        Ok(state) => state,
        Err(err) => {
            eprintln!("cookie-session: {err}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.bind).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("cookie-session: cannot listen on {}: {err}", config.bind);
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().unwrap_or(config.bind);
    // Listening for signals before `listening on` is logged, so that a signal sent right after it stops the
    // server cleanly.
    let shutdown = match jwtgate_example_support::shutdown_signal() {
        Ok(shutdown) => shutdown,
        Err(err) => {
            eprintln!("cookie-session: cannot listen for signals: {err}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!("listening on http://{addr}");
    match axum::serve(listener, app(state)).with_graceful_shutdown(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("cookie-session: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The page: a login form, then who you are, your notes, and logout. Its `api` helper refreshes the session
/// once when a call answers 401, then retries.
const PAGE: &str = include_str!("page.html");
