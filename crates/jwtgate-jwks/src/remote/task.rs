//! The background task of a [`RemoteKeySet`](super::RemoteKeySet): it fetches on a schedule and when asked,
//! backs off after failures, and survives a panic in a fetch.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use jwtgate_core::KeySet;
use reqwest::Url;
use tokio::sync::watch;

use super::{Flight, Handle, Location, MAX_RETRY_DELAY, RemoteKeySet, Shared, Snapshot};
use crate::fetch::{self, FetchError, Fetched, Shown, Validators};

pub(super) fn spawn(shared: Arc<Shared>, state: TaskState, first_delay: Duration, fetched: bool) -> RemoteKeySet {
    if fetched {
        // `build_eager` fetched once already: count it, so `wait_for_fetch` sees a consistent history.
        shared.flight.send_modify(|flight| flight.finished += 1);
    }
    let task = tokio::spawn(refresh_loop(shared.clone(), state, first_delay));
    RemoteKeySet { handle: Arc::new(Handle { shared, task }) }
}

/// What only the background task touches: no lock needed.
pub(super) struct TaskState {
    /// The JWK Set's URL, once known (discovery finds it on the first successful fetch).
    pub(super) jwks_url: Option<Url>,
    pub(super) validators: Validators,
    /// Skipped keys already logged, so each is logged once.
    pub(super) logged: HashSet<String>,
    /// The last document accepted: the same one again keeps the same key set.
    pub(super) document: Option<String>,
    pub(super) failures: u32,
}

async fn refresh_loop(shared: Arc<Shared>, mut state: TaskState, first_delay: Duration) {
    let mut delay = first_delay;
    let mut flight = shared.flight.subscribe();
    loop {
        // `refresh_for` sets `busy` for an unknown `kid`, and a lazy build for the first fetch; otherwise the
        // timer does. Either way one fetch follows, and requests that see `busy` wait for it rather than
        // start another.
        let asked = if shared.config.on_demand && shared.keys.load().is_none() {
            // On demand, no keys yet: only a request starts a fetch, whatever the schedule says.
            let _ = flight.wait_for(|flight| flight.busy).await;
            true
        } else {
            tokio::time::timeout(delay, flight.wait_for(|flight| flight.busy)).await.is_ok()
        };
        if !asked {
            shared.flight.send_modify(|flight| flight.busy = true);
        }
        // Releases the requests waiting on this fetch however it ends: done, or the task aborted or panicking.
        let _done = FlightDone(&shared.flight);
        // A panic in a fetch (a parser's bug on hostile input, a client's callback) is caught here: it fails
        // this fetch like any error, and the schedule goes on. Uncaught, it would end the task for good, and
        // the keys would never be refreshed again.
        let fetched = AssertUnwindSafe(state.fetch(&shared)).catch_unwind().await.unwrap_or_else(|_| {
            state.failures = state.failures.saturating_add(1);
            #[cfg(feature = "metrics")]
            metrics::counter!("jwtgate_jwks_fetches_total", "result" => "panic").increment(1);
            Err(FetchError("the fetch panicked".to_owned()))
        });
        delay = match fetched {
            Ok(delay) => delay,
            Err(err) => {
                let retry = retry_delay(state.failures, shared.config.refresh_interval);
                let held = if shared.keys.load().is_some() { "keeping the last good keys" } else { "no keys yet" };
                tracing::warn!(error = %err, retry_in = ?retry, "jwtgate: fetching the JWK Set failed; {held}");
                retry
            }
        };
    }
}

/// Ends a fetch for the requests that wait on it, when dropped.
struct FlightDone<'a>(&'a watch::Sender<Flight>);

impl Drop for FlightDone<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|flight| {
            flight.busy = false;
            flight.finished += 1;
        });
    }
}

/// 1 s, 2 s, 4 s… after consecutive failures, up to a minute, and never beyond the refresh interval.
fn retry_delay(failures: u32, interval: Duration) -> Duration {
    let backoff = Duration::from_secs(1u64 << failures.saturating_sub(1).min(6));
    backoff.min(MAX_RETRY_DELAY).min(interval)
}

impl TaskState {
    /// One fetch, after discovery if needed. Returns the delay until the next refresh.
    pub(super) async fn fetch(&mut self, shared: &Shared) -> Result<Duration, FetchError> {
        let result = self.fetch_keys(shared).await;
        match &result {
            Ok(_) => self.failures = 0,
            Err(_) => self.failures = self.failures.saturating_add(1),
        }
        // With the `metrics` feature: `jwtgate_jwks_fetches_total`, labelled `result` (`ok` or `error`).
        #[cfg(feature = "metrics")]
        match &result {
            Ok(_) => metrics::counter!("jwtgate_jwks_fetches_total", "result" => "ok").increment(1),
            Err(_) => metrics::counter!("jwtgate_jwks_fetches_total", "result" => "error").increment(1),
        }
        result
    }

    async fn fetch_keys(&mut self, shared: &Shared) -> Result<Duration, FetchError> {
        let config = &shared.config;
        let url = match (&self.jwks_url, &config.location) {
            (Some(url), _) => url.clone(),
            (None, Location::Discovery { issuer, documents }) => {
                let mut errors = Vec::new();
                let mut found = None;
                for document in documents {
                    match discover(config, document, issuer).await {
                        Ok(url) => {
                            found = Some(url);
                            break;
                        }
                        Err(err) => errors.push(err.0),
                    }
                }
                let url = found.ok_or_else(|| FetchError(errors.join("; ")))?;
                self.jwks_url = Some(url.clone());
                url
            }
            (None, Location::Jwks(url)) => url.clone(),
        };
        let validators = shared.keys.load().is_some().then_some(&self.validators);
        let shown = Shown(&url);
        let max_age =
            match fetch::get_json(&config.client, &url, validators, config.timeout, config.max_body_bytes).await? {
                Fetched::NotModified { max_age } => {
                    if let Some(snapshot) = &*shared.keys.load() {
                        shared
                            .keys
                            .store(Some(Arc::new(Snapshot { keys: snapshot.keys.clone(), fresh_at: Instant::now() })));
                    }
                    tracing::debug!(url = %shown, "jwtgate: the JWK Set is unchanged (304)");
                    max_age
                }
                Fetched::Body { body, max_age, validators } if self.document.as_deref() == Some(body.as_str()) => {
                    // The same document, sent whole (a provider without `ETag` or `Last-Modified`): the same
                    // key set stays in place, so that a cache of validated tokens keeps its entries.
                    if let Some(snapshot) = &*shared.keys.load() {
                        shared
                            .keys
                            .store(Some(Arc::new(Snapshot { keys: snapshot.keys.clone(), fresh_at: Instant::now() })));
                    }
                    tracing::debug!(url = %shown, "jwtgate: the JWK Set is unchanged");
                    self.validators = validators;
                    max_age
                }
                Fetched::Body { body, max_age, validators } => {
                    let (keys, skipped) = KeySet::from_remote_jwks(&body, &config.mapping)
                        .map_err(|err| FetchError(format!("{shown}: {err}")))?;
                    // Each skipped key is logged once while the provider keeps publishing it.
                    let skipped: HashSet<String> = skipped.iter().map(ToString::to_string).collect();
                    for message in skipped.difference(&self.logged) {
                        tracing::warn!(url = %shown, key = ?message, "jwtgate: skipping a key of the JWK Set");
                    }
                    self.logged = skipped;
                    let kids: Vec<&str> = keys.keys().iter().filter_map(|key| key.kid()).collect();
                    tracing::info!(url = %shown, keys = keys.keys().len(), ?kids, "jwtgate: JWK Set loaded");
                    // One store: a request sees the old set or the new one, never a mix.
                    shared.keys.store(Some(Arc::new(Snapshot { keys: Arc::new(keys), fresh_at: Instant::now() })));
                    // Only an accepted document's validators are sent back: a 304 must confirm keys we hold.
                    self.validators = validators;
                    self.document = Some(body);
                    max_age
                }
            };
        let interval = config.refresh_interval;
        Ok(max_age.map_or(interval, |max_age| max_age.clamp(config.cooldown.min(interval), interval)))
    }
}

/// The JWK Set URL that the discovery document at `document` names for `issuer`.
async fn discover(config: &super::Config, document: &Url, issuer: &str) -> Result<Url, FetchError> {
    let Fetched::Body { body, .. } =
        fetch::get_json(&config.client, document, None, config.timeout, config.max_body_bytes).await?
    else {
        return Err(FetchError(format!("{}: unexpected 304", Shown(document))));
    };
    fetch::read_discovery(&body, issuer).map_err(|err| FetchError(format!("{}: {err}", Shown(document))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_a_minute_within_the_interval() {
        let delays: Vec<u64> = (1..=9).map(|n| retry_delay(n, Duration::from_secs(300)).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(retry_delay(5, Duration::from_secs(3)), Duration::from_secs(3));
    }
}
