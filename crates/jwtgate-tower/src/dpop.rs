//! DPoP (RFC 9449) on the resource server: the `DPoP` scheme, its proof, its nonces and its replay store, as
//! a [`JwtAuthLayer`](crate::JwtAuthLayer) checks them.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use http::header::AUTHORIZATION;
use jwtgate_core::__private::unix_now;
use jwtgate_core::{
    Algorithm, CheckedProof, ConfigError, ConfigErrorKind, DEFAULT_PROOF_ALGORITHMS, DpopNonces, Error, ErrorKind,
    KeyType, MemoryReplayStore, ProofError, ProofKeys, ProofRequirements, ProofUse, ReplayCheck, ReplayStore,
    check_proof,
};

use crate::head::only;
use crate::{RequestHead, ResourceUri, TrustedProxies};

/// The default window of a proof's `iat`, either way from the server's clock: 60 s.
pub const DEFAULT_PROOF_WINDOW: Duration = Duration::from_secs(60);

/// Seconds a proof is remembered past the end of its `iat` window: instances of a fleet whose clocks are up to
/// this far apart still refuse each other's used proofs.
pub const REPLAY_MARGIN: i64 = 5;

/// The `DPoP-Nonce` header (RFC 9449 §8).
pub const DPOP_NONCE: &str = "dpop-nonce";

/// Whether a [`Dpop`] layer also takes bearer tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DpopMode {
    /// DPoP-bound tokens under the `DPoP` scheme, and bearer tokens from the layer's sources.
    Allowed,
    /// DPoP-bound tokens under the `DPoP` scheme only: a bearer token, or a token without `cnf.jkt`, is
    /// refused with a `DPoP` challenge.
    Required,
}

/// Sender-constrained tokens with DPoP (RFC 9449), for [`JwtAuthLayer::dpop`](crate::JwtAuthLayer::dpop).
///
/// A DPoP request carries `Authorization: DPoP <token>` and one `DPoP: <proof>` header. The layer checks the
/// proof first, before any work on the token: its type, algorithm, key and signature; that `htm` and `htu`
/// are the request's method and URL (this layer's [origin](Self::allowed) and the request's path); that its
/// `iat` is within the [window](Self::iat_window); that `ath` is the token's hash; and its nonce, when
/// [nonces](Self::nonces) are on. Then it validates the token as any other, and requires its `cnf.jkt` to be
/// the thumbprint of the proof's key. Last, the [replay store](Self::replay_store) must never have seen the
/// proof: each proof is accepted once.
///
/// A token with `cnf.jkt` presented as a bearer token is refused in any case (RFC 9449 §7.2), with DPoP on or
/// off.
///
/// ```
/// use jwtgate_tower::Dpop;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dpop = Dpop::required("https://api.example.com")?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Dpop {
    mode: DpopMode,
    origin: ResourceUri,
    proxies: Option<TrustedProxies>,
    algorithms: Arc<[Algorithm]>,
    /// `algorithms`, space-separated, for the `algs` attribute of challenges.
    algs: Arc<str>,
    iat_window: i64,
    replay: Arc<dyn ReplayStore>,
    nonces: Option<DpopNonces>,
    /// The keys of proof headers already checked: a client's next proof skips its header's parsing.
    keys: ProofKeys,
}

impl Dpop {
    /// DPoP-bound tokens and bearer tokens, for a service that clients reach at `origin`
    /// (`scheme://host[:port]`, no path), the base of every proof's `htu`.
    ///
    /// Every asymmetric algorithm is accepted for proofs, `iat` may be 60 s away from the clock, and proofs
    /// are remembered in a [`MemoryReplayStore`] of this layer (use a shared store for a fleet).
    pub fn allowed(origin: &str) -> Result<Self, ConfigError> {
        Self::new(DpopMode::Allowed, origin)
    }

    /// DPoP-bound tokens only, for a service that clients reach at `origin`. See [`allowed`](Self::allowed).
    pub fn required(origin: &str) -> Result<Self, ConfigError> {
        Self::new(DpopMode::Required, origin)
    }

    fn new(mode: DpopMode, origin: &str) -> Result<Self, ConfigError> {
        let parsed =
            ResourceUri::parse(origin).ok().filter(|parsed| parsed.as_str() == parsed.origin()).ok_or_else(|| {
                ConfigError::new(
                    ConfigErrorKind::SenderConstraint,
                    format!("the DPoP origin {origin:?} is not an http or https origin, scheme://host[:port]"),
                )
            })?;
        Ok(Self {
            mode,
            origin: parsed,
            proxies: None,
            algorithms: DEFAULT_PROOF_ALGORITHMS.into(),
            algs: algs(DEFAULT_PROOF_ALGORITHMS),
            iat_window: DEFAULT_PROOF_WINDOW.as_secs() as i64,
            replay: Arc::new(MemoryReplayStore::new()),
            nonces: None,
            keys: ProofKeys::new(),
        })
    }

    /// The mode.
    pub fn mode(&self) -> DpopMode {
        self.mode
    }

    /// The algorithms a proof may use, advertised in `algs` and in the resource's metadata. Refuses an empty
    /// list, and HMAC: a proof's key is public.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Result<Self, ConfigError> {
        let algorithms: Arc<[Algorithm]> = algorithms.into_iter().collect();
        if algorithms.is_empty() || algorithms.iter().any(|alg| alg.key_type() == KeyType::Oct) {
            return Err(ConfigError::new(
                ConfigErrorKind::SenderConstraint,
                "DPoP proof algorithms must be asymmetric, and at least one",
            ));
        }
        self.algs = algs(&algorithms);
        self.algorithms = algorithms;
        Ok(self)
    }

    /// The proof algorithms accepted.
    pub fn accepted_algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// How far a proof's `iat` may be from the server's clock, either way. Default 60 s. Proofs are remembered
    /// for as long.
    #[must_use]
    pub fn iat_window(mut self, window: Duration) -> Self {
        self.iat_window = i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
        self
    }

    /// Where used proofs are remembered. Default: a [`MemoryReplayStore`] of this layer, which only sees the
    /// proofs this process gets. Behind a load balancer, give every instance one shared store, such as
    /// `jwtgate-redis`'s `RedisReplayStore`, or a proof refused by one instance is accepted by another.
    #[must_use]
    pub fn replay_store(mut self, store: impl ReplayStore) -> Self {
        self.replay = Arc::new(store);
        self
    }

    /// Requires every proof to carry a nonce from these [`DpopNonces`] (RFC 9449 §8). A proof without one, or
    /// with a stale one, gets 401 `use_dpop_nonce` and a fresh nonce in `DPoP-Nonce`; successful answers
    /// carry a fresh nonce when the client's is about to expire. Default: no nonces.
    #[must_use]
    pub fn nonces(mut self, nonces: DpopNonces) -> Self {
        self.nonces = Some(nonces);
        self
    }

    /// Takes the origin of `htu` from `Forwarded` or `X-Forwarded-Proto` and `X-Forwarded-Host` when the
    /// request comes straight from one of `proxies`; from any other peer, those headers are ignored and the
    /// configured origin is used. The request's path is always its own.
    #[must_use]
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.proxies = Some(proxies);
        self
    }

    /// The `algs` attribute of a `DPoP` challenge: the accepted algorithms, space-separated.
    pub(crate) fn algs(&self) -> &str {
        &self.algs
    }

    /// The request's URL as the client reached it, without query, in normal form: the origin (this layer's, or
    /// a trusted proxy's, both canonical) and the path.
    fn url(&self, head: &RequestHead<'_>) -> String {
        let forwarded = self.proxies.as_ref().and_then(|proxies| proxies.forwarded_origin(head));
        let origin = forwarded.as_ref().unwrap_or(&self.origin).origin();
        let path = head.uri().path();
        let mut url = String::with_capacity(origin.len() + path.len());
        url.push_str(origin);
        url.push_str(path);
        url
    }

    /// Checks the proof of a DPoP request for `token`, and its nonce.
    pub(crate) fn check(&self, head: &RequestHead<'_>, token: &str, proof: &str) -> Result<Proof, Error> {
        self.check_for(head, Some(token), proof)
    }

    /// Checks the DPoP proof of a request to your own token endpoint (RFC 9449 §5), such as a login or a
    /// refresh that `jwtgate-session` answers: its checks (with no `ath`: there is no access token yet), its
    /// nonce, and its replay. Answers the thumbprint of the proof's key, for the token's `cnf.jkt` (see
    /// `Sessions::login_bound` and `Sessions::refresh_bound`), or `None` when the request has no `DPoP` header.
    ///
    /// `htu` is this layer's origin (or a trusted proxy's) and the endpoint's path. Answer an error as RFC 9449
    /// §5 says: 400 with `{"error": "invalid_dpop_proof"}`, or, for [`ErrorKind::UseDpopNonce`], 400 with
    /// `{"error": "use_dpop_nonce"}` and a [`fresh_nonce`](Self::fresh_nonce) in `DPoP-Nonce`; 503 for
    /// [`ErrorKind::ReplayUnavailable`].
    pub async fn check_token_request(&self, head: &RequestHead<'_>) -> Result<Option<String>, Error> {
        let Some(proof) = proof_header(head)? else {
            return Ok(None);
        };
        let checked = self.check_for(head, None, proof)?.checked;
        let answer = match self.record(&checked) {
            ReplayCheck::Ready(answer) => answer,
            ReplayCheck::Pending(pending) => pending.await,
        };
        match answer {
            Ok(ProofUse::First) => Ok(Some(checked.jkt)),
            Ok(ProofUse::Replayed) => Err(invalid(ProofError::Replayed)),
            Err(error) => {
                tracing::warn!(%error, "jwtgate: DPoP replay store unavailable at the token endpoint");
                Err(ErrorKind::ReplayUnavailable.into())
            }
        }
    }

    fn check_for(&self, head: &RequestHead<'_>, token: Option<&str>, proof: &str) -> Result<Proof, Error> {
        let now = unix_now();
        let requirements = ProofRequirements {
            method: head.method().as_str(),
            url: &self.url(head),
            access_token: token,
            now,
            iat_window: self.iat_window,
            algorithms: &self.algorithms,
            keys: Some(&self.keys),
        };
        let checked = check_proof(proof, &requirements).map_err(invalid)?;
        let mut renew_nonce = false;
        if let Some(nonces) = &self.nonces {
            match checked.nonce.as_deref() {
                Some(nonce) if nonces.accepts_at(nonce, now) => renew_nonce = nonces.should_renew_at(nonce, now),
                _ => return Err(ErrorKind::UseDpopNonce.into()),
            }
        }
        Ok(Proof { checked, renew_nonce })
    }

    /// Records `proof` in the replay store, for as long as its `iat` keeps it acceptable: through the last
    /// second of its window, and [`REPLAY_MARGIN`] more for instances of a fleet whose clocks differ a little.
    pub(crate) fn record(&self, proof: &CheckedProof) -> ReplayCheck {
        let until = proof.iat.saturating_add(self.iat_window).saturating_add(1 + REPLAY_MARGIN);
        self.replay.record(&proof.jkt, &proof.jti, until)
    }

    /// A fresh nonce, for a `DPoP-Nonce` header; `None` without [nonces](Self::nonces). The layer sends one
    /// itself with every `use_dpop_nonce` refusal; a token endpoint of your own sends one with its own.
    pub fn fresh_nonce(&self) -> Option<HeaderValue> {
        let nonce = self.nonces.as_ref()?.issue_at(unix_now());
        HeaderValue::try_from(nonce).ok()
    }
}

/// A proof that passed its checks and its nonce's, waiting for the token's binding and the replay check.
#[derive(Debug)]
pub(crate) struct Proof {
    pub(crate) checked: CheckedProof,
    /// The proof's nonce is about to expire: the answer carries a fresh one.
    pub(crate) renew_nonce: bool,
}

/// The refusal of a proof for `reason`.
pub(crate) fn invalid(reason: ProofError) -> Error {
    ErrorKind::InvalidProof { reason }.into()
}

fn algs(algorithms: &[Algorithm]) -> Arc<str> {
    algorithms.iter().map(|alg| alg.as_str()).collect::<Vec<_>>().join(" ").into()
}

/// What a request presents under the `DPoP` scheme: `None` when its `Authorization` header is of another
/// scheme, or absent or repeated (the token sources decide those); otherwise the token and its one proof, or
/// why there is no usable proof.
pub(crate) fn presented<'a>(head: &RequestHead<'a>) -> Option<Result<(Cow<'a, str>, &'a str), Error>> {
    let token = dpop_credentials(head)?.trim_start_matches(' ');
    if token.is_empty() {
        return Some(Err(ErrorKind::Malformed.into()));
    }
    Some(match proof_header(head) {
        Ok(Some(proof)) => Ok((Cow::Borrowed(token), proof)),
        Ok(None) => Err(invalid(ProofError::Missing)),
        Err(error) => Err(error),
    })
}

/// What follows the `DPoP` scheme in the request's one `Authorization` header; `None` for another scheme, or no
/// such header, or two.
fn dpop_credentials<'a>(head: &RequestHead<'a>) -> Option<&'a str> {
    let value = only(head.headers(), AUTHORIZATION)?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    scheme.eq_ignore_ascii_case("dpop").then_some(rest)
}

/// The request's one `DPoP` header: `None` when there is none, an error when there are two or it is not text.
fn proof_header<'a>(head: &RequestHead<'a>) -> Result<Option<&'a str>, Error> {
    let mut proofs = head.headers().get_all("dpop").iter();
    let Some(proof) = proofs.next() else {
        return Ok(None);
    };
    if proofs.next().is_some() {
        return Err(invalid(ProofError::Multiple));
    }
    // A proof is base64url and dots: text, checked as UTF-8 at once, and byte by byte when it is decoded.
    std::str::from_utf8(proof.as_bytes()).map(Some).map_err(|_| invalid(ProofError::Malformed))
}

/// Whether the request speaks the `DPoP` scheme: its one `Authorization` header is `DPoP ...`. For the
/// responder, which answers such a request with a `DPoP` challenge.
pub(crate) fn is_dpop_scheme(head: &RequestHead<'_>) -> bool {
    dpop_credentials(head).is_some()
}

impl fmt::Debug for Dpop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dpop")
            .field("mode", &self.mode)
            .field("origin", &self.origin.as_str())
            .field("proxies", &self.proxies)
            .field("algorithms", &self.algorithms)
            .field("iat_window", &self.iat_window)
            .field("nonces", &self.nonces.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use http::Request;

    use super::*;

    #[test]
    fn the_origin_is_an_origin() {
        assert!(Dpop::allowed("https://API.example.com:443").is_ok());
        assert!(Dpop::required("http://127.0.0.1:3000").is_ok());
        for origin in ["https://api.example.com/v1", "api.example.com", "ftp://x", "https://a@b", "https://x/?q"] {
            let error = Dpop::allowed(origin).unwrap_err();
            assert_eq!(error.kind(), ConfigErrorKind::SenderConstraint, "{origin}");
        }
    }

    #[test]
    fn proof_algorithms_are_asymmetric() {
        let dpop = Dpop::allowed("https://api.example.com").unwrap();
        assert_eq!(dpop.algs(), "RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA");
        let dpop = dpop.algorithms([Algorithm::ES256, Algorithm::EdDSA]).unwrap();
        assert_eq!(dpop.algs(), "ES256 EdDSA");
        assert!(dpop.clone().algorithms([Algorithm::HS256]).is_err());
        assert!(dpop.algorithms([]).is_err());
    }

    /// A store that only remembers the last `until` it was given.
    #[derive(Default)]
    struct Until(std::sync::Mutex<i64>);

    impl ReplayStore for Until {
        fn record(&self, _jkt: &str, _jti: &str, until: i64) -> ReplayCheck {
            *self.0.lock().unwrap() = until;
            ReplayCheck::Ready(Ok(ProofUse::First))
        }
    }

    #[test]
    fn a_proof_is_remembered_past_the_last_second_it_is_accepted_in_and_a_margin() {
        let store = Arc::new(Until::default());
        let dpop = Dpop::allowed("https://api.example.com").unwrap().iat_window(Duration::from_secs(60));
        let dpop = dpop.replay_store(store.clone());
        let proof = CheckedProof { jti: "p".into(), jkt: "k".into(), iat: 1_000, nonce: None, alg: Algorithm::ES256 };
        assert!(matches!(dpop.record(&proof), ReplayCheck::Ready(Ok(ProofUse::First))));
        // Accepted while |now - iat| <= 60, through second 1,060; remembered until 1,061 and the margin.
        assert_eq!(*store.0.lock().unwrap(), 1_061 + REPLAY_MARGIN);
    }

    #[test]
    fn the_scheme_needs_one_authorization_and_one_proof() {
        let request = |headers: &[(&str, &str)]| {
            let mut builder = Request::builder();
            for (name, value) in headers {
                builder = builder.header(*name, *value);
            }
            builder.body(()).unwrap()
        };
        fn kind(request: &Request<()>) -> Option<Result<(Cow<'_, str>, &str), ErrorKind>> {
            presented(&RequestHead::new(request)).map(|found| found.map_err(|error| error.kind()))
        }
        let good = request(&[("authorization", "dpop  a.b.c"), ("dpop", "p.q.r")]);
        assert!(matches!(kind(&good), Some(Ok((token, "p.q.r"))) if token == "a.b.c"));
        assert!(is_dpop_scheme(&RequestHead::new(&good)));
        assert!(kind(&request(&[("authorization", "Bearer a.b.c"), ("dpop", "p.q.r")])).is_none());
        assert!(kind(&request(&[("authorization", "DPoP a"), ("authorization", "DPoP b")])).is_none());
        let missing = ErrorKind::InvalidProof { reason: ProofError::Missing };
        assert!(matches!(kind(&request(&[("authorization", "DPoP a.b.c")])), Some(Err(k)) if k == missing));
        let twice = request(&[("authorization", "DPoP a.b.c"), ("dpop", "p"), ("dpop", "q")]);
        let multiple = ErrorKind::InvalidProof { reason: ProofError::Multiple };
        assert!(matches!(kind(&twice), Some(Err(k)) if k == multiple));
        assert!(matches!(kind(&request(&[("authorization", "DPoP  ")])), Some(Err(ErrorKind::Malformed))));
        assert!(matches!(kind(&request(&[("authorization", "DPoP")])), Some(Err(ErrorKind::Malformed))));
    }
}
