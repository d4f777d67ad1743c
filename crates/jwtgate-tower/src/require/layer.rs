use std::fmt;
use std::sync::Arc;

use jwtgate_core::Policy;
use tower_layer::Layer;

use super::{Guarded, RequireService};
use crate::Responder;

/// A tower layer that lets a request through only when its principal satisfies a [`Policy`].
///
/// Put it after (inside) `JwtAuthLayer`, for example with axum's `Router::route_layer`. A principal that
/// fails the policy gets 403 with `error="insufficient_scope"` (and `scope="..."` when the policy names
/// scopes), or `grpc-status` 7 for gRPC. An anonymous request (optional mode) gets 401. The request body
/// is never read.
///
/// ```
/// use jwtgate_core::Policy;
/// use jwtgate_tower::RequireLayer;
/// let admins_or_writers = RequireLayer::new(Policy::any([Policy::role("admin"), Policy::scope("orders:write")]));
/// ```
#[derive(Clone)]
pub struct RequireLayer {
    guarded: Arc<Guarded>,
}

impl RequireLayer {
    /// A layer that requires `policy`, answering refusals as RFC 6750 says.
    pub fn new(policy: Policy) -> Self {
        Self { guarded: Arc::new(Guarded::new(policy)) }
    }

    /// Builds the responses to refused requests. Default: [`Rfc6750Responder`](crate::Rfc6750Responder).
    #[must_use]
    pub fn responder(self, responder: impl Responder) -> Self {
        let mut guarded = Arc::unwrap_or_clone(self.guarded);
        guarded.responder = Arc::new(responder);
        Self { guarded: Arc::new(guarded) }
    }
}

impl<S> Layer<S> for RequireLayer {
    type Service = RequireService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireService::new(inner, self.guarded.clone())
    }
}

impl fmt::Debug for RequireLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireLayer").field("policy", &self.guarded.policy).finish()
    }
}
