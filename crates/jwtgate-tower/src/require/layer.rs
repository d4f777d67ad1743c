use std::fmt;
use std::sync::Arc;

use jwtgate_core::Policy;
use tower_layer::Layer;

use super::RequireService;

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
    /// A layer that requires `policy`. It answers a refusal with the responder of the `JwtAuthLayer` before
    /// it (see [`JwtAuthLayer::responder`](crate::JwtAuthLayer::responder)).
    pub fn new(policy: Policy) -> Self {
        Self { guarded: Arc::new(Guarded { policy }) }
    }
}

/// The policy that one `RequireLayer` shares with its services.
#[derive(Debug)]
pub(super) struct Guarded {
    pub(super) policy: Policy,
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
