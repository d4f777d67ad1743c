//! The way of one request through the layer: every stage, and every transition between them.
//!
//! ```text
//! extract ─► [Keys] ─► validated ─► [Replay] ─► checked ─► [Revocation] ─► admitted ─► [Hook] ─► call ─► [Inner]
//!    │                                                                                          ▲
//!    └──────────────────────── no token, optional layer: anonymous ─────────────────────────────┘
//!
//! Any stage may refuse instead: ─► [Refused]
//! ```
//!
//! A request waits in a bracketed state only when it must: `Keys` when its token names a `kid` the remote
//! keys lack, `Introspect` when an opaque token is not in the introspection's cache (it takes the place of
//! `Keys`), `Replay` when a DPoP proof's replay store answers asynchronously, `Revocation` when the denylist
//! does, `Hook` when there is an `on_token_validated` hook.
//!
//! A DPoP proof is checked in `extract`, before any work on the token; its key binding with the token's
//! `cnf.jkt` once the token is valid (cached or not); and its replay last, so that only the holder of a valid
//! bound token can fill the replay store.
//!
//! Synchronous work happens in [`advance`], which goes from [`Step`] to [`Step`] until the request needs to
//! wait (a [`Stage`] with a future of its own) or is decided. Adding an asynchronous stage is one `Stage`, one
//! `Step` that leads to it, and the transition out of it in [`Stage::poll`].
//!
//! The request and what it needs on its way ([`InFlight`]) are carried once, in the one state that waits,
//! beside its stage. The future is then as large as its largest state, not the sum of them: axum moves it
//! several times per request.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Extensions, HeaderValue, Request, Response};
use jwtgate_core::__private::unix_now;
use jwtgate_core::{
    Attempt, Confirmation, DenylistError, Error, ErrorKind, Introspection, Lookup, PendingIntrospection, PendingLookup,
    PendingRefresh, PendingReplayCheck, Principal, ProofError, ProofUse, RefreshOutcome, ReplayCheck, ReplayError,
    TokenStatus, Validated,
};
use pin_project_lite::pin_project;
use serde::de::DeserializeOwned;
use tower_service::Service;
use tracing::Span;

use super::events::HookFuture;
use super::observe::{self, Outcome};
use super::{Config, TokenValidated};
use crate::binding::Possession;
use crate::dpop;
use crate::response::{LayerResponder, respond_with};
use crate::source::Extracted;
use crate::{
    Anonymous, Authenticated, DPOP_NONCE, Dpop, DpopMode, Rejection, RequestHead, ResponseBody, Rfc6750Responder,
};

pin_project! {
    /// The response future of [`JwtAuthService`](super::JwtAuthService).
    ///
    /// A state machine with no boxing of its own: it waits for a key fetch when a token names a `kid` the
    /// remote keys lack or there are no remote keys yet, for an asynchronous denylist when there is one, and
    /// for the `on_token_validated` hook when there is one; then it runs the inner service's future, or
    /// yields jwtgate's answer to a refused request.
    pub struct ResponseFuture<S, ReqBody, C>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody, C>,
    }
}

pin_project! {
    /// Where a request is: waiting for a stage, with the request in flight beside it; in the inner service;
    /// or refused.
    #[project = StateProj]
    #[project_replace = StateProjReplace]
    enum State<S, ReqBody, C>
    where
        S: Service<Request<ReqBody>>,
    {
        /// For an asynchronous stage, with the request that goes on once it is over.
        Waiting {
            stage: Stage<C>,
            in_flight: InFlight<S, ReqBody, C>,
        },
        /// For the inner service; `nonce` goes in the answer's `DPoP-Nonce`.
        Inner {
            #[pin]
            future: S::Future,
            nonce: Option<Box<HeaderValue>>,
        },
        /// For nothing: jwtgate's answer to a refused request.
        Refused {
            response: Option<Response<Bytes>>,
        },
    }
}

/// An asynchronous stage. Each holds only what is its own.
enum Stage<C> {
    /// A key fetch; then `token` is checked again.
    Keys { refresh: PendingRefresh, token: String, possession: Option<Box<Possession>> },
    /// The introspection endpoint's answer about an opaque token, or a call already under way for it.
    Introspect { pending: PendingIntrospection<C>, possession: Option<Box<Possession>> },
    /// The replay store's answer about a DPoP proof.
    Replay { check: PendingReplayCheck, validated: Arc<Validated<C>> },
    /// The denylist's answer about a valid token.
    Revocation { lookup: PendingLookup, validated: Arc<Validated<C>> },
    /// The `on_token_validated` hook; `outcome` is what the request counts as once admitted.
    Hook { hook: HookFuture, validated: Arc<Validated<C>>, outcome: Outcome },
}

/// A request on its way, and what it needs until it is decided.
struct InFlight<S, ReqBody, C> {
    request: Request<ReqBody>,
    /// The service that was polled ready, which handles this request.
    service: S,
    config: Arc<Config<C>>,
    /// The `authenticate` span, entered around jwtgate's own work only.
    span: Span,
    /// The DPoP proof's nonce is about to expire: the answer carries a fresh one.
    renew_nonce: bool,
}

/// Where a request goes next, once a stage is over.
enum Step<C> {
    /// Await a key fetch, then check the token again.
    AwaitKeys(PendingRefresh, String, Option<Box<Possession>>),
    /// Await the introspection of an opaque token.
    AwaitIntrospection(PendingIntrospection<C>, Option<Box<Possession>>),
    /// A valid token, bound to its DPoP proof's key if it came with one; next, the proof's replay check.
    Validated(Arc<Validated<C>>, Option<Box<Possession>>),
    /// A valid token whose proof, if any, is used for the first time; next, the denylist.
    Checked(Arc<Validated<C>>),
    /// Admitted by the layer's checks; next, the `on_token_validated` hook. `Outcome` is what the request
    /// counts as (`authenticated`, or `fail_open`).
    Admitted(Arc<Validated<C>>, Outcome),
    /// Hand the claims, and the hook's extensions if any, to the inner service.
    Call(Arc<Validated<C>>, Option<Extensions>, Outcome),
    /// No token, in optional mode: hand the request to the inner service as anonymous.
    Anonymous,
    /// Answer with this refusal.
    Refuse(Error),
}

impl<S, ReqBody, C> ResponseFuture<S, ReqBody, C>
where
    S: Service<Request<ReqBody>>,
    C: DeserializeOwned + Send + Sync + 'static,
{
    /// Starts a request on its way: finds and validates its token, and goes as far as it can without waiting.
    ///
    /// `service` was polled ready. The request takes it, and leaves a clone for the next request, unless it is
    /// refused at once: then `service` stays ready.
    pub(super) fn new(request: Request<ReqBody>, service: &mut S, config: &Arc<Config<C>>) -> Self
    where
        S: Clone,
    {
        let span = observe::span();
        let step = observe::within(&span, || config.extract(&RequestHead::new(&request)));
        if let Step::Refuse(error) = step {
            observe::refused(&span, &error);
            return Self::refused(config.refuse(&error, &request));
        }
        let ready = std::mem::replace(service, service.clone());
        let in_flight = InFlight { request, service: ready, config: config.clone(), span, renew_nonce: false };
        let state = advance(in_flight, step);
        Self { state }
    }

    fn refused(response: Response<Bytes>) -> Self {
        Self { state: State::Refused { response: Some(response) } }
    }
}

/// Takes the request through every step that needs no waiting, and answers where it must wait next, or how
/// it ends.
fn advance<S, ReqBody, C>(mut in_flight: InFlight<S, ReqBody, C>, mut step: Step<C>) -> State<S, ReqBody, C>
where
    S: Service<Request<ReqBody>>,
    C: Send + Sync + 'static,
{
    loop {
        let InFlight { request, config, span, renew_nonce, .. } = &mut in_flight;
        step = match step {
            Step::AwaitKeys(refresh, token, possession) => {
                return State::Waiting { stage: Stage::Keys { refresh, token, possession }, in_flight };
            }
            Step::AwaitIntrospection(pending, possession) => {
                return State::Waiting { stage: Stage::Introspect { pending, possession }, in_flight };
            }
            Step::Validated(validated, possession) => {
                observe::validated(span, &validated, &config.subject_in_logs);
                match (possession.and_then(|possession| possession.proof), &config.dpop) {
                    (Some(proof), Some(dpop)) => {
                        *renew_nonce = proof.renew_nonce;
                        match observe::within(span, || dpop.record(&proof.checked)) {
                            ReplayCheck::Ready(answer) => config.replay(validated, answer, span),
                            ReplayCheck::Pending(check) => {
                                return State::Waiting { stage: Stage::Replay { check, validated }, in_flight };
                            }
                        }
                    }
                    _ => Step::Checked(validated),
                }
            }
            Step::Checked(validated) => match &config.denylist {
                None => Step::Admitted(validated, Outcome::Authenticated),
                Some(denylist) => match observe::within(span, || denylist.check(validated.registered())) {
                    Lookup::Ready(answer) => config.revocation(validated, answer, span),
                    Lookup::Pending(lookup) => {
                        return State::Waiting { stage: Stage::Revocation { lookup, validated }, in_flight };
                    }
                },
            },
            Step::Admitted(validated, outcome) => match &config.on_validated {
                None => Step::Call(validated, None, outcome),
                Some(hook) => {
                    let hook = hook(TokenValidated::new(validated.clone(), &RequestHead::new(request)));
                    return State::Waiting { stage: Stage::Hook { hook, validated, outcome }, in_flight };
                }
            },
            Step::Call(validated, from_hook, outcome) => {
                let nonce = match (&config.dpop, *renew_nonce) {
                    (Some(dpop), true) => dpop.fresh_nonce().map(Box::new),
                    _ => None,
                };
                observe::outcome(span, outcome);
                return State::Inner { future: in_flight.call(validated, from_hook), nonce };
            }
            Step::Anonymous => {
                let InFlight { mut request, mut service, config, span, .. } = in_flight;
                observe::outcome(&span, Outcome::Anonymous);
                let extensions = request.extensions_mut();
                extensions.insert(Anonymous);
                config.hand_on_responder(extensions);
                return State::Inner { future: service.call(request), nonce: None };
            }
            Step::Refuse(error) => {
                observe::refused(span, &error);
                return State::Refused { response: Some(config.refuse(&error, request)) };
            }
        };
    }
}

impl<C: DeserializeOwned + Send + Sync + 'static> Stage<C> {
    /// Waits for the stage to end, and tells where the request goes next.
    fn poll<S, ReqBody>(&mut self, cx: &mut Context<'_>, in_flight: &InFlight<S, ReqBody, C>) -> Poll<Step<C>> {
        let InFlight { config, span, .. } = in_flight;
        Poll::Ready(match self {
            Self::Keys { refresh, token, possession } => {
                let outcome = ready!(refresh.as_mut().poll(cx));
                observe::within(span, || config.recheck(token, outcome, possession.take()))
            }
            Self::Introspect { pending, possession } => {
                let answer = ready!(pending.as_mut().poll(cx));
                observe::within(span, || config.introspected(answer, possession.take()))
            }
            Self::Replay { check, validated } => {
                let answer = ready!(check.as_mut().poll(cx));
                config.replay(validated.clone(), answer, span)
            }
            Self::Revocation { lookup, validated } => {
                let answer = ready!(lookup.as_mut().poll(cx));
                config.revocation(validated.clone(), answer, span)
            }
            Self::Hook { hook, validated, outcome } => match ready!(hook.as_mut().poll(cx)) {
                Ok(extensions) => Step::Call(validated.clone(), Some(extensions), *outcome),
                Err(error) => {
                    observe::hook_refused(span, &error);
                    Step::Refuse(error)
                }
            },
        })
    }
}

impl<C: DeserializeOwned + 'static> Config<C> {
    /// Finds the request's token, and its DPoP proof, which is checked at once; then validates the token unless
    /// the cache holds it.
    fn extract(&self, head: &RequestHead<'_>) -> Step<C> {
        let certificate = self.certificates.as_ref().and_then(|binding| binding.thumbprint(head));
        if let Some(dpop) = &self.dpop
            && let Some(presented) = dpop::presented(head)
        {
            let checked = presented.and_then(|(token, proof)| Ok((dpop.check(head, &token, proof)?, token)));
            return match checked {
                Ok((proof, token)) => {
                    self.authenticate(token, Some(Box::new(Possession { proof: Some(proof), certificate })))
                }
                Err(error) => {
                    observe::not_authenticated(&error, None);
                    Step::Refuse(error)
                }
            };
        }
        let token = match self.sources.extract(head) {
            Extracted::Token(_) if self.dpop.as_ref().is_some_and(|dpop| dpop.mode() == DpopMode::Required) => {
                let error = ErrorKind::DpopRequired.into();
                observe::not_authenticated(&error, None);
                return Step::Refuse(error);
            }
            Extracted::Token(token) => token,
            Extracted::Absent if self.optional => return Step::Anonymous,
            Extracted::Absent => return Step::Refuse(ErrorKind::Missing.into()),
            // Credentials of another scheme (say `Basic`, for another layer) are no bearer token at all.
            Extracted::Invalid(error) if self.optional && error.kind() == ErrorKind::Missing => return Step::Anonymous,
            Extracted::Invalid(error) => {
                observe::not_authenticated(&error, None);
                return Step::Refuse(error);
            }
        };
        let possession =
            certificate.map(|certificate| Box::new(Possession { proof: None, certificate: Some(certificate) }));
        self.authenticate(token, possession)
    }

    /// Validates `token` unless the cache holds it, and checks it against what the request holds beside it: its
    /// DPoP proof, its client certificate.
    fn authenticate(&self, token: Cow<'_, str>, possession: Option<Box<Possession>>) -> Step<C> {
        let validator = match (&self.validator, &self.introspection) {
            (_, Some(introspection)) if self.introspect_jwts || !self.is_jwt(&token) => {
                return match introspection.introspect(&token) {
                    Introspection::Ready(answer) => self.introspected(answer, possession),
                    Introspection::Pending(pending) => Step::AwaitIntrospection(pending, possession),
                };
            }
            (Some(validator), _) => validator,
            // A layer that only introspects, and a JWT it was not told to introspect: no key can verify it.
            (None, _) => {
                let error = ErrorKind::UnknownKey.into();
                observe::not_authenticated(&error, Some(&token));
                return Step::Refuse(error);
            }
        };
        if let Some(cache) = &self.cache {
            let hit = cache.get(&token, unix_now());
            observe::cache_lookup(hit.is_some());
            if let Some(hit) = hit {
                // Clones of a layer share its cache, and a clone may have other rules: they apply to a hit as
                // to a fresh validation.
                return self.layer_rules(hit, Some(&token), possession);
            }
        }
        match observe::timed(|| validator.validate_or_wait::<C>(&token), |v| matches!(v, Attempt::Done(_))) {
            Attempt::Done(result) => self.checked(result, &token, possession),
            // Rare: the token names a `kid` the remote keys lack, or there are no remote keys yet (a cold
            // start), and they are being fetched. Only then is the token copied, to be checked again once the
            // fetch is over.
            Attempt::WaitForKeys(refresh) => Step::AwaitKeys(refresh, token.into_owned(), possession),
        }
    }

    /// Checks a token again once the key fetch it waited for is over; a token waits once at most.
    fn recheck(&self, token: &str, outcome: RefreshOutcome, possession: Option<Box<Possession>>) -> Step<C> {
        let Some(validator) = &self.validator else {
            unreachable!("only a validator waits for keys");
        };
        let result = observe::timed(|| validator.after_refresh::<C>(token, outcome), |_| true);
        self.checked(result, token, possession)
    }

    /// What the introspection of an opaque token answered: the layer's own rules apply to an active token as to
    /// a JWT. Its answer is cached, if at all, by the introspection itself, not in the layer's cache.
    fn introspected(&self, answer: Result<Arc<Validated<C>>, Error>, possession: Option<Box<Possession>>) -> Step<C> {
        match answer {
            Ok(validated) => self.layer_rules(validated, None, possession),
            Err(error) => {
                observe::not_authenticated(&error, None);
                Step::Refuse(error)
            }
        }
    }

    /// Applies the layer's own rules to a validation's result, and caches a token that passes.
    fn checked(
        &self,
        result: Result<Validated<C>, Error>,
        token: &str,
        possession: Option<Box<Possession>>,
    ) -> Step<C> {
        let step = match result {
            Ok(validated) => self.layer_rules(Arc::new(validated), Some(token), possession),
            Err(error) => {
                observe::not_authenticated(&error, Some(token));
                Step::Refuse(error)
            }
        };
        if let (Step::Validated(validated, _), Some(cache)) = (&step, &self.cache) {
            cache.insert(token, validated, unix_now());
        }
        step
    }
}

impl<C> Config<C> {
    /// Whether `token` takes the JWT path: a compact JWS, or a compact JWE when the validator decrypts. Only a
    /// token of that shape can pass the validator, so any other is introspected.
    fn is_jwt(&self, token: &str) -> bool {
        is_compact_jws(token) || (is_compact_jwe(token) && self.validator.as_ref().is_some_and(|v| v.decrypts()))
    }

    /// The layer's own rules, beyond the validator's, for a token the validator accepted: `jti` if required,
    /// and the key the token is bound to, if any (RFC 9449 §7, RFC 8705 §3).
    fn layer_rules(
        &self,
        validated: Arc<Validated<C>>,
        token: Option<&str>,
        possession: Option<Box<Possession>>,
    ) -> Step<C> {
        let registered = validated.registered();
        let refusal = if self.require_jti && registered.token_id().is_none() {
            Some(ErrorKind::MissingClaim { claim: "jti" })
        } else {
            self.binding_refusal(registered.confirmation(), possession.as_deref())
        };
        if let Some(kind) = refusal {
            let error = kind.into();
            observe::not_authenticated(&error, token);
            return Step::Refuse(error);
        }
        Step::Validated(validated, possession)
    }

    /// Why the key the token is bound to (its `cnf`), if any, refuses the request: the DPoP proof's key
    /// (RFC 9449 §7), and the client certificate (RFC 8705 §3). A bound token whose binding nothing checks is
    /// no bearer token (RFC 9449 §7.2).
    fn binding_refusal(&self, cnf: Option<&Confirmation>, possession: Option<&Possession>) -> Option<ErrorKind> {
        let proof = possession.and_then(|possession| possession.proof.as_ref());
        let Some(cnf) = cnf else {
            // Unbound: only a DPoP request, or a layer that requires certificate-bound tokens, refuses it.
            return match (proof, &self.certificates) {
                (Some(_), _) => Some(ErrorKind::UnboundToken),
                (None, Some(binding)) if !binding.allows(None, None) => Some(ErrorKind::CertificateMismatch),
                _ => None,
            };
        };
        if cnf.jwk_thumbprint().is_none() && cnf.certificate_thumbprint().is_none() {
            // Bound by a method no one here checks (`jwk`, `kid`...), or `cnf` empty: no bearer token either.
            return Some(if proof.is_some() { ErrorKind::UnboundToken } else { ErrorKind::BoundTokenAsBearer });
        }
        let jkt = match (proof, cnf.jwk_thumbprint()) {
            (Some(proof), Some(jkt)) if jkt == proof.checked.jkt => None,
            (Some(_), _) => Some(ErrorKind::UnboundToken),
            (None, Some(_)) => Some(ErrorKind::BoundTokenAsBearer),
            (None, None) => None,
        };
        let certificate = possession.and_then(|possession| possession.certificate.as_deref());
        let x5t = match (&self.certificates, cnf.certificate_thumbprint()) {
            (None, Some(_)) => Some(ErrorKind::BoundTokenAsBearer),
            (None, None) => None,
            (Some(binding), x5t) => (!binding.allows(x5t, certificate)).then_some(ErrorKind::CertificateMismatch),
        };
        jkt.or(x5t)
    }

    /// What the replay store's answer about a valid token's DPoP proof means for the request. A store that
    /// cannot answer refuses the request: a proof is never accepted unchecked.
    fn replay(&self, validated: Arc<Validated<C>>, answer: Result<ProofUse, ReplayError>, span: &Span) -> Step<C> {
        match answer {
            Ok(ProofUse::First) => Step::Checked(validated),
            Ok(ProofUse::Replayed) => {
                let error = dpop::invalid(ProofError::Replayed);
                observe::not_authenticated(&error, None);
                Step::Refuse(error)
            }
            Err(error) => {
                observe::replay_failed(span, &error);
                Step::Refuse(ErrorKind::ReplayUnavailable.into())
            }
        }
    }

    /// What the denylist's answer about a valid token means for the request.
    fn revocation(
        &self,
        validated: Arc<Validated<C>>,
        answer: Result<TokenStatus, DenylistError>,
        span: &Span,
    ) -> Step<C> {
        match answer {
            Ok(TokenStatus::Active) => Step::Admitted(validated, Outcome::Authenticated),
            Ok(TokenStatus::Revoked) => {
                observe::revoked(span, validated.kid());
                Step::Refuse(ErrorKind::Revoked.into())
            }
            Err(error) if self.fail_open => {
                observe::denylist_failed_open(span, &error, validated.kid());
                Step::Admitted(validated, Outcome::FailOpen)
            }
            Err(error) => {
                observe::denylist_failed_closed(span, &error);
                Step::Refuse(ErrorKind::DenylistUnavailable.into())
            }
        }
    }

    /// The layer's own answer to a refusal, from its responder.
    fn refuse<B>(&self, error: &Error, request: &Request<B>) -> Response<Bytes> {
        let rejection = Rejection::new(error, RequestHead::new(request));
        let mut response = match &self.responder {
            Some(LayerResponder(responder)) => respond_with(&**responder, &rejection),
            None => respond_with(&Rfc6750Responder::default(), &rejection),
        };
        if error.kind() == ErrorKind::UseDpopNonce
            && let Some(nonce) = self.dpop.as_ref().and_then(Dpop::fresh_nonce)
        {
            response.headers_mut().insert(DPOP_NONCE, nonce);
        }
        response
    }

    /// Puts the layer's responder in the request, for the guards and extractors after it (see
    /// [`respond`](crate::respond)), in place of an outer layer's.
    fn hand_on_responder(&self, extensions: &mut Extensions) {
        match &self.responder {
            Some(responder) => extensions.insert(responder.clone()),
            None => extensions.remove::<LayerResponder>(),
        };
    }
}

/// Whether `token` is shaped as a compact JWS: exactly two dots.
fn is_compact_jws(token: &str) -> bool {
    let mut dots = token.bytes().filter(|&byte| byte == b'.');
    dots.next().is_some() && dots.next().is_some() && dots.next().is_none()
}

/// Whether `token` is shaped as a compact JWE: exactly four dots.
fn is_compact_jwe(token: &str) -> bool {
    token.bytes().filter(|&byte| byte == b'.').count() == 4
}

impl<S, ReqBody, C> InFlight<S, ReqBody, C>
where
    S: Service<Request<ReqBody>>,
    C: Send + Sync + 'static,
{
    /// Hands the validated token, and the principal that guards read, to the inner service with the request
    /// (one [`Authenticated`]), with the layer's responder for the guards and the `on_token_validated` hook's
    /// extensions, if any.
    fn call(mut self, validated: Arc<Validated<C>>, from_hook: Option<Extensions>) -> S::Future {
        let mut authenticated = Authenticated::from_validated(validated);
        let extensions = self.request.extensions_mut();
        if let Some(mut from_hook) = from_hook {
            // A principal from the hook, plain or shared, replaces the token's for the guards; a plain one wins
            // over a shared one. Neither stays behind as an extension of its own.
            let plain = from_hook.remove::<Principal>().map(Arc::new);
            let shared = from_hook.remove::<Arc<Principal>>();
            if let Some(principal) = plain.or(shared) {
                authenticated = authenticated.with_principal(principal);
            }
            extensions.extend(from_hook);
        }
        extensions.insert(authenticated);
        self.config.hand_on_responder(extensions);
        self.service.call(self.request)
    }
}

impl<S, ReqBody, ResBody, C> Future for ResponseFuture<S, ReqBody, C>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    C: DeserializeOwned + Send + Sync + 'static,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let step = match this.state.as_mut().project() {
                StateProj::Inner { future, nonce } => {
                    let mut response = ready!(future.poll(cx))?.map(ResponseBody::inner);
                    if let Some(nonce) = nonce.take() {
                        response.headers_mut().insert(DPOP_NONCE, *nonce);
                    }
                    return Poll::Ready(Ok(response));
                }
                StateProj::Refused { response } => {
                    let response = response.take().expect("ResponseFuture polled after completion");
                    return Poll::Ready(Ok(response.map(ResponseBody::own)));
                }
                StateProj::Waiting { stage, in_flight } => ready!(stage.poll(cx, in_flight)),
            };
            // The stage is over: the request goes on, out of the waiting state.
            let StateProjReplace::Waiting { in_flight, .. } =
                this.state.as_mut().project_replace(State::Refused { response: None })
            else {
                unreachable!("only a waiting state has a stage to end");
            };
            this.state.set(advance(in_flight, step));
        }
    }
}

impl<S, ReqBody, C> fmt::Debug for ResponseFuture<S, ReqBody, C>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Waiting { stage: Stage::Keys { .. }, .. } => "Keys",
            State::Waiting { stage: Stage::Introspect { .. }, .. } => "Introspect",
            State::Waiting { stage: Stage::Replay { .. }, .. } => "Replay",
            State::Waiting { stage: Stage::Revocation { .. }, .. } => "Revocation",
            State::Waiting { stage: Stage::Hook { .. }, .. } => "Hook",
            State::Inner { .. } => "Inner",
            State::Refused { .. } => "Refused",
        };
        f.debug_struct("ResponseFuture").field("state", &state).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::{Ready, ready};
    use std::mem::size_of;

    use super::*;

    /// A service whose future is large, as axum's are.
    #[derive(Clone)]
    struct Large;

    impl Service<Request<()>> for Large {
        type Response = Response<()>;
        type Error = Infallible;
        type Future = Ready<Result<Response<()>, Infallible>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _request: Request<()>) -> Self::Future {
            ready(Ok(Response::new(())))
        }
    }

    #[test]
    fn the_future_is_as_large_as_its_largest_state_not_their_sum() {
        type Future = ResponseFuture<Large, (), ()>;
        let inner = size_of::<<Large as Service<Request<()>>>::Future>();
        let waiting = size_of::<Stage<()>>() + size_of::<InFlight<Large, (), ()>>();
        let refused = size_of::<Option<Response<Bytes>>>();
        // The request in flight is never carried beside the inner service's future, which holds a request of
        // its own in most routers.
        assert!(size_of::<Future>() <= inner.max(waiting).max(refused) + 8, "{} bytes", size_of::<Future>());
        assert!(size_of::<Future>() < inner + size_of::<InFlight<Large, (), ()>>());
    }
}
