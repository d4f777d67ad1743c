//! Publishing your own signing keys' public halves as a JWK Set.

use std::convert::Infallible;
use std::fmt;
use std::future::{Ready, ready};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use jwtgate_core::PublicJwk;
use jwtgate_tower::__private::Document;
use tower_service::Service;

use jwtgate_core::{ConfigError, ConfigErrorKind};

/// How long clients may cache the published JWK Set, by default: 5 minutes.
pub const DEFAULT_PUBLISHED_MAX_AGE: Duration = Duration::from_secs(300);

/// A tower [`Service`] that publishes the public half of your signing keys as a JWK Set (RFC 7517): the
/// current key first, then the previous keys that tokens still in circulation were signed with.
///
/// Mount it where your discovery document's `jwks_uri` points; with axum,
/// `Router::new().route_service("/.well-known/jwks.json", publisher.clone())`. It answers:
/// - `GET` and `HEAD` with the set as `application/jwk-set+json`, `Cache-Control: public, max-age=…`
///   ([`DEFAULT_PUBLISHED_MAX_AGE`] unless [`with_max_age`](Self::with_max_age) says otherwise), and a strong
///   `ETag` computed from the content, so every instance of a fleet gives the same tag for the same keys;
/// - a `GET` or `HEAD` whose `If-None-Match` holds the current tag with `304 Not Modified` and no body;
/// - any other method with `405 Method Not Allowed` and `Allow: GET, HEAD`.
///
/// Only [`PublicJwk`]s are accepted, so nothing private can be published: HMAC secrets are refused when the
/// `PublicJwk` is made. Reads are lock-free: the set and its encoded body live behind an [`ArcSwap`] and are
/// replaced whole by [`rotate`](Self::rotate) and [`retire`](Self::retire), which any clone may call.
///
/// ## Rotation
/// 1. [`rotate`](Self::rotate) in the new key *before* signing with it, and start signing with it once
///    relying parties can have fetched it (jwtgate's [`RemoteKeySet`](crate::RemoteKeySet) fetches an
///    unknown `kid` on first sight; other verifiers may wait out their cache, up to `max-age`).
/// 2. Keep the previous key published until the last token it signed has expired (its lifetime plus the
///    verifiers' clock leeway), then [`retire`](Self::retire) it.
#[derive(Clone)]
pub struct JwksPublisher {
    shared: Arc<Shared>,
}

struct Shared {
    published: ArcSwap<Published>,
    max_age: Duration,
    /// Serializes writers (rotate, retire) so that none loses another's change; requests never take it.
    writer: Mutex<()>,
}

/// One version of the set, encoded once for every request that serves it.
struct Published {
    keys: Vec<PublicJwk>,
    document: Document,
}

impl Published {
    fn new(keys: Vec<PublicJwk>, max_age: Duration) -> Self {
        let body = serde_json::to_vec(&serde_json::json!({ "keys": keys })).expect("a JWK Set serializes");
        Self { keys, document: Document::new(body, "application/jwk-set+json", max_age) }
    }
}

impl JwksPublisher {
    /// Publishes `current`, the key you sign with.
    pub fn new(current: PublicJwk) -> Self {
        Self::from_parts(vec![current], DEFAULT_PUBLISHED_MAX_AGE)
    }

    /// Publishes `keys`: the first is the current key, the others are previous keys still needed to verify
    /// tokens in circulation. Refuses an empty list and two keys with one `kid`.
    pub fn with_keys(keys: impl IntoIterator<Item = PublicJwk>) -> Result<Self, ConfigError> {
        let keys: Vec<PublicJwk> = keys.into_iter().collect();
        if keys.is_empty() {
            return Err(publish_error("a published JWK Set needs at least one key".to_owned()));
        }
        for (index, key) in keys.iter().enumerate() {
            if keys[..index].iter().any(|earlier| earlier.kid() == key.kid()) {
                return Err(duplicate(key.kid()));
            }
        }
        Ok(Self::from_parts(keys, DEFAULT_PUBLISHED_MAX_AGE))
    }

    fn from_parts(keys: Vec<PublicJwk>, max_age: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                published: ArcSwap::from_pointee(Published::new(keys, max_age)),
                max_age,
                writer: Mutex::new(()),
            }),
        }
    }

    /// How long clients may cache the set (`Cache-Control: max-age`), in whole seconds. Default 5 minutes.
    /// Keep it well under the time between publishing a key and signing with it. Call it while building:
    /// clones made before it keep the old setting.
    #[must_use]
    pub fn with_max_age(self, max_age: Duration) -> Self {
        Self::from_parts(self.keys(), max_age)
    }

    /// Publishes `key` as the new current key, in front of the keys already published, which stay. Refuses
    /// a `kid` that is already published.
    pub fn rotate(&self, key: PublicJwk) -> Result<(), ConfigError> {
        let _writer = self.shared.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let published = self.shared.published.load();
        if published.keys.iter().any(|existing| existing.kid() == key.kid()) {
            return Err(duplicate(key.kid()));
        }
        let keys = std::iter::once(key).chain(published.keys.iter().cloned()).collect();
        self.shared.published.store(Arc::new(Published::new(keys, self.shared.max_age)));
        Ok(())
    }

    /// Stops publishing the previous key `kid`, once no token it signed can still be valid. Refuses to
    /// retire the current key, and a `kid` that is not published.
    pub fn retire(&self, kid: &str) -> Result<(), ConfigError> {
        let _writer = self.shared.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let published = self.shared.published.load();
        match published.keys.iter().position(|key| key.kid() == kid) {
            Some(0) => {
                Err(publish_error(format!("key {kid:?} is the current key; rotate in another before retiring it")))
            }
            Some(index) => {
                let mut keys = published.keys.clone();
                keys.remove(index);
                self.shared.published.store(Arc::new(Published::new(keys, self.shared.max_age)));
                Ok(())
            }
            None => Err(publish_error(format!("key {kid:?} is not published"))),
        }
    }

    /// The published keys, the current one first.
    pub fn keys(&self) -> Vec<PublicJwk> {
        self.shared.published.load().keys.clone()
    }

    /// The current key: the one to sign with.
    pub fn current(&self) -> PublicJwk {
        self.shared.published.load().keys[0].clone()
    }
}

/// A [`ConfigErrorKind::Publish`] error.
fn publish_error(message: impl Into<String>) -> ConfigError {
    ConfigError::new(ConfigErrorKind::Publish, message)
}

fn duplicate(kid: &str) -> ConfigError {
    publish_error(format!("key {kid:?} is already published; every published key needs its own kid"))
}

impl<B> Service<Request<B>> for JwksPublisher {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        ready(Ok(self.shared.published.load().document.respond(request.method(), request.headers())))
    }
}

impl fmt::Debug for JwksPublisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let published = self.shared.published.load();
        f.debug_struct("JwksPublisher")
            .field("kids", &published.keys.iter().map(PublicJwk::kid).collect::<Vec<_>>())
            .field("max_age", &self.shared.max_age)
            .finish()
    }
}
