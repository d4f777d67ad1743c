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

use jwtgate_core::{Denylist, ValidatedCache, Validator};

use crate::response::LayerResponder;
use crate::{ResourceUri, TokenSources};
use events::ValidatedHook;

/// Everything a [`JwtAuthLayer`] was built with, in one `Arc` that its services and their futures share.
struct Config<C> {
    validator: Validator,
    sources: TokenSources,
    optional: bool,
    denylist: Option<Arc<dyn Denylist>>,
    require_jti: bool,
    fail_open: bool,
    /// `None` for the default, [`Rfc6750Responder`](crate::Rfc6750Responder).
    responder: Option<LayerResponder>,
    subject_in_logs: SubjectInLogs,
    /// Shared by the layer's clones, even by those whose other settings differ.
    cache: Option<ValidatedCache<C>>,
    on_validated: Option<ValidatedHook<C>>,
    /// The protected resource, for its metadata.
    resource: Option<ResourceUri>,
}

impl<C> Config<C> {
    fn new(validator: Validator) -> Self {
        Self {
            validator,
            sources: TokenSources::default(),
            optional: false,
            denylist: None,
            require_jti: false,
            fail_open: false,
            responder: None,
            subject_in_logs: SubjectInLogs::default(),
            cache: None,
            on_validated: None,
            resource: None,
        }
    }
}

impl<C> Clone for Config<C> {
    fn clone(&self) -> Self {
        Self {
            validator: self.validator.clone(),
            sources: self.sources.clone(),
            optional: self.optional,
            denylist: self.denylist.clone(),
            require_jti: self.require_jti,
            fail_open: self.fail_open,
            responder: self.responder.clone(),
            subject_in_logs: self.subject_in_logs.clone(),
            cache: self.cache.clone(),
            on_validated: self.on_validated.clone(),
            resource: self.resource.clone(),
        }
    }
}

impl<C> fmt::Debug for Config<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuth")
            .field("validator", &self.validator)
            .field("sources", &self.sources)
            .field("optional", &self.optional)
            .field("denylist", &self.denylist.is_some())
            .field("fail_open", &self.fail_open)
            .field("responder", &if self.responder.is_some() { "custom" } else { "Rfc6750Responder" })
            .field("subject_in_logs", &self.subject_in_logs)
            .field("cache", &self.cache)
            .field("on_token_validated", &self.on_validated.is_some())
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}
