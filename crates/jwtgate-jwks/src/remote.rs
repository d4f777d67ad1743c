//! `RemoteKeySet`: an identity provider's JWK Set, fetched and refreshed in the background.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use jwtgate_core::{AlgorithmMapping, KeySet, KeySource, KeysUnavailable, PendingRefresh, RefreshOutcome, TrustedKeys};
use reqwest::{Client, Url};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::fetch::{self, Validators};
use jwtgate_core::{ConfigError, ConfigErrorKind};

mod task;

use task::{TaskState, spawn};

/// A [`ConfigErrorKind::RemoteKeys`] error.
fn setup_error(message: impl Into<String>) -> ConfigError {
    ConfigError::new(ConfigErrorKind::RemoteKeys, message)
}

/// The default interval of the background refresh.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(300);
/// The default minimum time between two fetches triggered by unknown `kid`s.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(10);
/// The default time one fetch may take, connection included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default longest time a request waits for a fetch of the keys it needs.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(5);
/// The default limit on the size of a JWK Set or discovery document.
pub const DEFAULT_MAX_BODY_BYTES: usize = 512 * 1024;
/// The longest wait between two attempts while the provider fails.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// An identity provider's JWK Set, fetched over HTTPS and kept fresh in the background.
///
/// ```no_run
/// # async fn run() -> Result<(), jwtgate_core::ConfigError> {
/// use jwtgate_core::Validator;
/// use jwtgate_jwks::RemoteKeySet;
///
/// let keys = RemoteKeySet::discover("https://idp.example/realms/acme").build()?;
/// let validator = Validator::builder(keys).issuer("https://idp.example/realms/acme").audience("api").build();
/// # Ok(()) }
/// ```
///
/// - **Lock-free reads.** The keys sit behind an `ArcSwap`; a request that has the keys it needs loads them
///   and never waits for a fetch or a lock.
/// - **Cold start.** Built lazily, the set starts its first fetch at once. A request that needs the keys
///   while that fetch runs joins it and waits for it, at most [`max_wait`](RemoteKeySetBuilder::max_wait)
///   (default 5 s), so the first requests after a deploy are served rather than refused. `poll_ready` never
///   waits: the wait is in the response future.
/// - **Refresh** in the background every [`refresh_interval`](RemoteKeySetBuilder::refresh_interval)
///   (default 5 minutes), sooner when the provider's `Cache-Control: max-age` says so (but never more often
///   than the cooldown), with conditional GETs (`If-None-Match`, `If-Modified-Since`).
/// - **Unknown `kid`s.** A token naming a `kid` the set lacks triggers a fetch, and waits for it (at most
///   [`max_wait`](RemoteKeySetBuilder::max_wait)), so keys the provider has just rotated in are accepted on
///   first sight. Only one fetch runs at a time (other tokens wait for it), and unknown `kid`s start at most
///   one fetch per [`cooldown`](RemoteKeySetBuilder::cooldown) (default 10 s): a flood of random `kid`s
///   cannot make it hammer the provider. Outside those limits the token is refused at once as an unknown
///   key. A token whose wait ends before the fetch does is answered 503 with `Retry-After`: its key may be
///   on its way.
/// - **Filtering.** Keys whose `use` is not `sig`, whose `key_ops` lack `verify`, whose `alg` is not
///   supported (or absent, without a [mapping](RemoteKeySetBuilder::algorithms)), and `oct` secrets are
///   skipped, each logged once at warn level. One bad key never rejects the rest.
/// - **Failure.** An unreachable or misbehaving provider leaves the last good keys in place
///   (stale-while-error), optionally for at most [`max_staleness`](RemoteKeySetBuilder::max_staleness).
///   Failed fetches are retried after 1 s, 2 s, 4 s… up to a minute. Before the first success, and once the
///   keys are too stale, tokens that need them are answered 503 with `Retry-After`: at once when no fetch
///   is running, else once the fetch they join fails or `max_wait` passes.
///
/// Clones share the keys and the background task. The task stops when the last clone is dropped.
#[derive(Clone)]
pub struct RemoteKeySet {
    handle: Arc<Handle>,
}

/// Owns the background task: aborts it when the last [`RemoteKeySet`] clone goes.
struct Handle {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Shared {
    keys: ArcSwapOption<Snapshot>,
    config: Config,
    /// Whether a fetch is running or asked for (`busy`), and how many have finished. `busy` is set by the
    /// timer, by an unknown `kid`, and from the start of a lazy build; requests that wait for a fetch wait
    /// for `finished` to grow.
    flight: watch::Sender<Flight>,
    /// When an unknown `kid` last started a fetch, in milliseconds since `started` (`u64::MAX`: never).
    last_kid_fetch: AtomicU64,
    started: Instant,
    /// The issuer, when the keys come from discovery.
    issuer: Option<String>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Flight {
    busy: bool,
    finished: u64,
}

struct Snapshot {
    keys: Arc<KeySet>,
    fresh_at: Instant,
}

#[derive(Clone)]
struct Config {
    location: Location,
    client: Client,
    refresh_interval: Duration,
    cooldown: Duration,
    timeout: Duration,
    max_wait: Duration,
    max_body_bytes: usize,
    max_staleness: Option<Duration>,
    mapping: AlgorithmMapping,
    on_demand: bool,
}

#[derive(Clone, Debug)]
enum Location {
    Jwks(Url),
    /// The documents to try in order: the first that names the issuer's JWK Set wins.
    Discovery {
        issuer: String,
        documents: Vec<Url>,
    },
}

/// Configures a [`RemoteKeySet`]. Start from [`RemoteKeySet::jwks`], [`RemoteKeySet::discover`] or
/// [`RemoteKeySet::discover_oauth`].
#[must_use]
pub struct RemoteKeySetBuilder {
    location: Result<Location, ConfigError>,
    client: Option<Client>,
    refresh_interval: Duration,
    cooldown: Duration,
    timeout: Duration,
    max_wait: Duration,
    max_body_bytes: usize,
    max_staleness: Option<Duration>,
    mapping: AlgorithmMapping,
    on_demand: bool,
}

impl RemoteKeySet {
    /// Trusts the JWK Set at `url`. It must be `https`, or `http` to a loopback address.
    pub fn jwks(url: &str) -> RemoteKeySetBuilder {
        RemoteKeySetBuilder::new(fetch::parse_url(url).map(Location::Jwks).map_err(setup_error))
    }

    /// Trusts the JWK Set of the OpenID provider `issuer`: its `jwks_uri`, read from
    /// `<issuer>/.well-known/openid-configuration` (the issuer's path kept, as OpenID Connect Discovery §4
    /// says). The document is trusted only when its `issuer` equals `issuer` exactly. Pass the same issuer
    /// to the validator, or read it back from [`RemoteKeySet::issuer`].
    pub fn discover(issuer: &str) -> RemoteKeySetBuilder {
        let location = fetch::discovery_url(issuer)
            .map(|document| Location::Discovery { issuer: issuer.to_owned(), documents: vec![document] })
            .map_err(setup_error);
        RemoteKeySetBuilder::new(location)
    }

    /// Trusts the JWK Set of the OAuth 2.0 authorization server `issuer`: its `jwks_uri`, read from its
    /// authorization server metadata (RFC 8414) at the path-inserted URL
    /// `https://host/.well-known/oauth-authorization-server/<issuer's path>`. Many authorization servers in front
    /// of MCP servers publish only this document, not an OpenID configuration. As with
    /// [`discover`](Self::discover), the document is trusted only when its `issuer` equals `issuer` exactly, and
    /// the issuer must have no query or fragment.
    pub fn discover_oauth(issuer: &str) -> RemoteKeySetBuilder {
        let location = fetch::oauth_discovery_url(issuer)
            .map(|document| Location::Discovery { issuer: issuer.to_owned(), documents: vec![document] })
            .map_err(setup_error);
        RemoteKeySetBuilder::new(location)
    }

    /// Trusts the JWK Set of `issuer`, found by its RFC 8414 authorization server metadata
    /// ([`discover_oauth`](Self::discover_oauth)) or, when that document cannot be had or does not name the
    /// issuer's keys, by its OpenID configuration ([`discover`](Self::discover)). Each document is trusted
    /// only when its `issuer` equals `issuer` exactly. For servers that accept tokens from an authorization
    /// server of either kind, as the MCP authorization specification asks clients to look for both.
    pub fn discover_any(issuer: &str) -> RemoteKeySetBuilder {
        let location = fetch::oauth_discovery_url(issuer)
            .and_then(|oauth| Ok(vec![oauth, fetch::discovery_url(issuer)?]))
            .map(|documents| Location::Discovery { issuer: issuer.to_owned(), documents })
            .map_err(setup_error);
        RemoteKeySetBuilder::new(location)
    }

    /// The issuer this set was discovered from, if it was.
    pub fn issuer(&self) -> Option<&str> {
        self.handle.shared.issuer.as_deref()
    }

    /// Whether keys have been fetched (and are not too stale).
    pub fn is_ready(&self) -> bool {
        self.handle.shared.current().is_ok()
    }

    /// Waits until the current fetch, or the next one, has finished, whatever its outcome. For tests and
    /// for startup code that wants to know the first attempt is over.
    pub async fn wait_for_fetch(&self) {
        let mut flight = self.handle.shared.flight.subscribe();
        let finished = flight.borrow_and_update().finished;
        // The sender lives as long as `self`, so this only ends when a fetch does.
        let _ = flight.wait_for(|flight| flight.finished > finished).await;
    }
}

impl RemoteKeySetBuilder {
    fn new(location: Result<Location, ConfigError>) -> Self {
        Self {
            location,
            client: None,
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
            cooldown: DEFAULT_COOLDOWN,
            timeout: DEFAULT_TIMEOUT,
            max_wait: DEFAULT_MAX_WAIT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_staleness: None,
            mapping: AlgorithmMapping::new(),
            on_demand: false,
        }
    }

    /// The HTTP client, for a private CA, client certificates (mTLS) or a proxy. Default: reqwest with
    /// rustls, the platform's roots, the [`timeout`](Self::timeout), and no redirects to plain http.
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// How often the keys are fetched in the background. A shorter `Cache-Control: max-age` from the
    /// provider wins, down to the [`cooldown`](Self::cooldown). Default 5 minutes.
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// The minimum time between two fetches that unknown `kid`s trigger, and the shortest refresh interval
    /// a provider's `max-age` can impose. Default 10 s.
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// The time one fetch may take, from connecting to the last byte. Applies to a client passed with
    /// [`client`](Self::client) too. Default 10 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The longest time a request waits for a fetch of the keys it needs: the first fetch after a cold start,
    /// or the one its unknown `kid` triggered. Past it, the request is answered 503 with `Retry-After` and
    /// the fetch goes on. However long the provider takes (up to the [`timeout`](Self::timeout)), no request
    /// is held longer. Default 5 s.
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// The largest JWK Set (or discovery document) accepted, in bytes. Default 512 KiB.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// How long the last good keys may serve while the provider fails. After that, tokens that need them
    /// are answered 503 until a fetch succeeds. Default: no limit (keys are trusted until the provider
    /// answers with others). It must be longer than the refresh interval plus the timeout, or keys would go
    /// stale between two healthy refreshes: `build` refuses it.
    pub fn max_staleness(mut self, staleness: Duration) -> Self {
        self.max_staleness = Some(staleness);
        self
    }

    /// The algorithm for keys published without `alg`, by key type. Default: none; such keys are skipped.
    pub fn algorithms(mut self, mapping: AlgorithmMapping) -> Self {
        self.mapping = mapping;
        self
    }

    /// Fetches nothing until a token needs the keys: no fetch at [`build`](Self::build), none in the
    /// background while there are no keys, and a token that finds no keys starts a fetch (or joins the
    /// one running) and waits for it, at most [`max_wait`](Self::max_wait). A failed attempt does not hold
    /// the next one back: the first request after the provider becomes reachable gets the keys. Once they
    /// are there, they are refreshed in the background as usual.
    ///
    /// For a server that must start before its authorization server, and that no one calls until both are
    /// up. The price: while the provider is down, every request without keys starts a fetch (one at a time,
    /// never more); by default, requests only ever join fetches the background task starts, with back-off.
    pub fn on_demand(mut self) -> Self {
        self.on_demand = true;
        self
    }

    /// Starts lazily: returns at once, and starts the first fetch in the background. Tokens that need the
    /// keys while it runs wait for it, at most [`max_wait`](Self::max_wait); if it fails, or outlasts that,
    /// they are answered 503 with `Retry-After`. Must be called within a Tokio runtime.
    ///
    /// Fails for a URL jwtgate will not fetch from, or outside a Tokio runtime.
    pub fn build(self) -> Result<RemoteKeySet, ConfigError> {
        let (shared, validators) = self.prepare()?;
        if !shared.config.on_demand {
            // The first fetch is under way from now on: requests that come before the task runs join it.
            shared.flight.send_modify(|flight| flight.busy = true);
        }
        Ok(spawn(shared, validators, Duration::ZERO, false))
    }

    /// Starts eagerly: fetches the keys (after discovery) before returning, and fails if that fetch
    /// fails, so a server can refuse to start without them.
    pub async fn build_eager(self) -> Result<RemoteKeySet, ConfigError> {
        let (shared, mut state) = self.prepare()?;
        let delay = match state.fetch(&shared).await {
            Ok(delay) => delay,
            Err(err) => return Err(setup_error(format!("the first fetch of the keys failed: {err}"))),
        };
        Ok(spawn(shared, state, delay, true))
    }

    fn prepare(self) -> Result<(Arc<Shared>, TaskState), ConfigError> {
        let location = self.location?;
        if self.refresh_interval.is_zero() {
            return Err(setup_error("the refresh interval must be positive".to_owned()));
        }
        if let Some(staleness) = self.max_staleness
            && staleness <= self.refresh_interval + self.timeout
        {
            // Keys would go stale between two healthy refreshes, and requests would get 503 for nothing.
            return Err(setup_error(format!(
                "max_staleness ({staleness:?}) must be longer than the refresh interval plus the timeout ({:?})",
                self.refresh_interval + self.timeout
            )));
        }
        tokio::runtime::Handle::try_current()
            .map_err(|_| setup_error("a RemoteKeySet needs a Tokio runtime for its background refresh".to_owned()))?;
        let client = match self.client {
            Some(client) => client,
            None => default_client(self.timeout, &location)?,
        };
        let issuer = match &location {
            Location::Discovery { issuer, .. } => Some(issuer.clone()),
            Location::Jwks(_) => None,
        };
        let config = Config {
            location,
            client,
            refresh_interval: self.refresh_interval,
            cooldown: self.cooldown,
            timeout: self.timeout,
            max_wait: self.max_wait,
            max_body_bytes: self.max_body_bytes,
            max_staleness: self.max_staleness,
            mapping: self.mapping,
            on_demand: self.on_demand,
        };
        let jwks_url = match &config.location {
            Location::Jwks(url) => Some(url.clone()),
            Location::Discovery { .. } => None,
        };
        let shared = Arc::new(Shared {
            keys: ArcSwapOption::empty(),
            config,
            flight: watch::Sender::new(Flight::default()),
            last_kid_fetch: AtomicU64::new(u64::MAX),
            started: Instant::now(),
            issuer,
        });
        let state = TaskState {
            jwks_url,
            validators: Validators::default(),
            logged: HashSet::new(),
            document: None,
            failures: 0,
        };
        Ok((shared, state))
    }
}

fn default_client(timeout: Duration, location: &Location) -> Result<Client, ConfigError> {
    let url = match location {
        Location::Jwks(url) => url,
        Location::Discovery { documents, .. } => documents.first().ok_or_else(|| setup_error("no document"))?,
    };
    Client::builder()
        .user_agent(concat!("jwtgate/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .timeout(timeout)
        .redirect(redirect_policy())
        // An https location never follows a redirect to plain http.
        .https_only(url.scheme() == "https")
        .build()
        .map_err(|err| setup_error(format!("cannot build the HTTP client: {err}")))
}

/// At most 3 redirects, each to a URL jwtgate would fetch from itself (https, or http to loopback), and
/// never from https down to http.
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let downgrade =
            attempt.previous().iter().any(|url| url.scheme() == "https") && attempt.url().scheme() != "https";
        if attempt.previous().len() > 3 {
            attempt.error("more than 3 redirects")
        } else if downgrade || fetch::parse_url(attempt.url().as_str()).is_err() {
            attempt.error("a redirect to a URL keys are never fetched from")
        } else {
            attempt.follow()
        }
    })
}

impl Shared {
    fn current(&self) -> Result<Arc<KeySet>, KeysUnavailable> {
        let guard = self.keys.load();
        let snapshot = guard.as_ref().ok_or(KeysUnavailable)?;
        if let Some(max) = self.config.max_staleness
            && snapshot.fresh_at.elapsed() > max
        {
            return Err(KeysUnavailable);
        }
        Ok(snapshot.keys.clone())
    }

    /// A wait for the running fetch, or for one started now as `start` allows; `None` otherwise. The wait
    /// ends with the fetch, or after `max_wait`, whichever comes first.
    fn join_fetch(&self, start_new: Start, reason: &dyn fmt::Debug) -> Option<PendingRefresh> {
        let mut wait_past = None;
        let mut start = false;
        self.flight.send_if_modified(|flight| {
            if flight.busy {
                // Single flight: join the fetch that is running.
                wait_past = Some(flight.finished);
                false
            } else if start_new == Start::Always || (start_new == Start::AfterCooldown && self.take_cooldown()) {
                flight.busy = true;
                start = true;
                wait_past = Some(flight.finished);
                true
            } else {
                false
            }
        });
        let finished = wait_past?;
        if start {
            tracing::debug!(?reason, "jwtgate: fetching the JWK Set for a request");
        }
        let mut flight = self.flight.subscribe();
        let max_wait = self.config.max_wait;
        Some(Box::pin(async move {
            // Ends when the fetch does (or the set is dropped), or when the request has waited long enough.
            let ended =
                tokio::time::timeout(max_wait, flight.wait_for(|flight| flight.finished > finished)).await.is_ok();
            // A fetch that ended just as the bound passed counts as finished: its keys decide.
            if ended || flight.borrow().finished > finished {
                RefreshOutcome::Finished
            } else {
                RefreshOutcome::TimedOut
            }
        }))
    }

    /// Whether an unknown `kid` may start a fetch now, and if so, records that it did.
    fn take_cooldown(&self) -> bool {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        let cooldown = u64::try_from(self.config.cooldown.as_millis()).unwrap_or(u64::MAX);
        let last = self.last_kid_fetch.load(Ordering::Acquire);
        if last != u64::MAX && now.saturating_sub(last) < cooldown {
            return false;
        }
        self.last_kid_fetch.compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }
}

impl KeySource for RemoteKeySet {
    fn current(&self) -> Result<Arc<KeySet>, KeysUnavailable> {
        self.handle.shared.current()
    }

    fn refresh_for(&self, kid: &str) -> Option<PendingRefresh> {
        let reason = format_args!("unknown kid {:?}", kid.chars().take(64).collect::<String>());
        self.handle.shared.join_fetch(Start::AfterCooldown, &reason)
    }

    fn wait_for_keys(&self) -> Option<PendingRefresh> {
        let shared = &self.handle.shared;
        // By default only a fetch under way is joined (the first one, or a retry): while the provider fails,
        // its retries back off, and requests never add fetches of their own. On demand, the request is what
        // starts the fetch.
        let start = if shared.config.on_demand { Start::Always } else { Start::Never };
        shared.join_fetch(start, &"no keys yet")
    }
}

/// Whether a request may start a fetch when none is running.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Start {
    Never,
    /// Once per cooldown: unknown `kid`s.
    AfterCooldown,
    /// Whenever none runs: requests that find no keys, on demand.
    Always,
}

impl From<RemoteKeySet> for TrustedKeys {
    fn from(keys: RemoteKeySet) -> Self {
        TrustedKeys::from_source(keys)
    }
}

impl fmt::Debug for RemoteKeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.handle.shared;
        let keys = shared.keys.load();
        f.debug_struct("RemoteKeySet")
            .field("location", &shared.config.location)
            .field("keys", &keys.as_ref().map(|snapshot| &snapshot.keys))
            .field("refresh_interval", &shared.config.refresh_interval)
            .field("cooldown", &shared.config.cooldown)
            .field("max_wait", &shared.config.max_wait)
            .field("max_staleness", &shared.config.max_staleness)
            .field("on_demand", &shared.config.on_demand)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for RemoteKeySetBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteKeySetBuilder")
            .field("location", &self.location)
            .field("refresh_interval", &self.refresh_interval)
            .field("cooldown", &self.cooldown)
            .field("timeout", &self.timeout)
            .field("max_wait", &self.max_wait)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_staleness", &self.max_staleness)
            .finish_non_exhaustive()
    }
}
