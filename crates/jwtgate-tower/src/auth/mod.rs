//! `JwtAuthLayer`: authenticates every request with a JWT before the inner service sees it.
//!
//! - `layer.rs` builds one [`Config`] and shares it, behind an `Arc`, with every service and future.
//! - `service.rs` hands each request, with the service that was polled ready, to a new [`ResponseFuture`].
//! - `future.rs` takes the request through its stages, each transition written there once: the token is
//!   extracted and validated; then, where needed, the future awaits a key fetch, the denylist's answer and
//!   the `on_token_validated` hook; then it calls the inner service, or answers the refusal itself.
//! - `observe.rs` writes every log line, span field and metric of the path.
//! - `events.rs` holds the `on_token_validated` hook's types.

mod events;
mod future;
mod layer;
mod observe;
mod service;

pub use events::TokenValidated;
pub use future::ResponseFuture;
pub use layer::JwtAuthLayer;
pub use observe::SubjectInLogs;
pub use service::JwtAuthService;

use std::fmt;
use std::sync::Arc;

use jwtgate_core::{Denylist, Introspect, ValidatedCache, Validator};

use crate::response::LayerResponder;
use crate::{CertificateBinding, Dpop, ResourceUri, Rfc6750Responder, TokenSources};
use events::ValidatedHook;

/// Everything a [`JwtAuthLayer`] was built with, in one `Arc` that its services and their futures share.
struct Config<C> {
    /// Validates JWTs; `None` for a layer that only introspects.
    validator: Option<Validator>,
    /// Asks an authorization server about opaque tokens.
    introspection: Option<Arc<dyn Introspect<C>>>,
    /// Whether tokens shaped as a compact JWS are introspected too, rather than validated locally.
    introspect_jwts: bool,
    sources: TokenSources,
    optional: bool,
    denylist: Option<Arc<dyn Denylist>>,
    require_jti: bool,
    fail_open: bool,
    /// `None` for [`Rfc6750Responder::default`]; otherwise `custom`, or `defaults` once a setting changed
    /// them.
    responder: Option<LayerResponder>,
    /// Whether `responder` is the user's own.
    custom_responder: bool,
    /// The default responder, with what the layer's settings add to it.
    defaults: Rfc6750Responder,
    subject_in_logs: SubjectInLogs,
    /// Shared by the layer's clones, even by those whose other settings differ.
    cache: Option<ValidatedCache<C>>,
    on_validated: Option<ValidatedHook<C>>,
    /// The protected resource, for its metadata.
    resource: Option<ResourceUri>,
    dpop: Option<Dpop>,
    certificates: Option<CertificateBinding>,
}

impl<C> Config<C> {
    fn new(validator: Option<Validator>, introspection: Option<Arc<dyn Introspect<C>>>) -> Self {
        Self {
            validator,
            introspection,
            introspect_jwts: false,
            sources: TokenSources::default(),
            optional: false,
            denylist: None,
            require_jti: false,
            fail_open: false,
            responder: None,
            custom_responder: false,
            defaults: Rfc6750Responder::default(),
            subject_in_logs: SubjectInLogs::default(),
            cache: None,
            on_validated: None,
            resource: None,
            dpop: None,
            certificates: None,
        }
    }

    /// Changes the default responder's settings; they take effect unless the user chose a responder.
    fn edit_defaults(&mut self, edit: impl FnOnce(Rfc6750Responder) -> Rfc6750Responder) {
        self.defaults = edit(std::mem::take(&mut self.defaults));
        if !self.custom_responder {
            self.responder = Some(LayerResponder(Arc::new(self.defaults.clone())));
        }
    }
}

impl<C> Clone for Config<C> {
    fn clone(&self) -> Self {
        Self {
            validator: self.validator.clone(),
            introspection: self.introspection.clone(),
            introspect_jwts: self.introspect_jwts,
            sources: self.sources.clone(),
            optional: self.optional,
            denylist: self.denylist.clone(),
            require_jti: self.require_jti,
            fail_open: self.fail_open,
            responder: self.responder.clone(),
            custom_responder: self.custom_responder,
            defaults: self.defaults.clone(),
            subject_in_logs: self.subject_in_logs.clone(),
            cache: self.cache.clone(),
            on_validated: self.on_validated.clone(),
            resource: self.resource.clone(),
            dpop: self.dpop.clone(),
            certificates: self.certificates.clone(),
        }
    }
}

impl<C> fmt::Debug for Config<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuth")
            .field("validator", &self.validator)
            .field("introspection", &self.introspection.is_some())
            .field("introspect_jwts", &self.introspect_jwts)
            .field("sources", &self.sources)
            .field("optional", &self.optional)
            .field("denylist", &self.denylist.is_some())
            .field("fail_open", &self.fail_open)
            .field("responder", &if self.custom_responder { "custom" } else { "Rfc6750Responder" })
            .field("subject_in_logs", &self.subject_in_logs)
            .field("cache", &self.cache)
            .field("on_token_validated", &self.on_validated.is_some())
            .field("resource", &self.resource)
            .field("dpop", &self.dpop)
            .field("certificates", &self.certificates)
            .finish_non_exhaustive()
    }
}
