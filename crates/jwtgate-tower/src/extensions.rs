//! What [`JwtAuthLayer`](crate::JwtAuthLayer) puts in a request's extensions for the services after it.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use jwtgate_core::{Principal, Validated};

/// The one extension [`JwtAuthLayer`](crate::JwtAuthLayer) adds to a request it authenticated: the
/// [`Principal`] that guards read, and the validated token.
///
/// The axum extractors (`Claims<C>`, `Require<G>`), `RequireLayer` and the tonic helpers read it for you. A
/// plain tower or hyper service reads it from the extensions:
///
/// ```
/// use jwtgate_tower::Authenticated;
///
/// #[derive(serde::Deserialize)]
/// struct MyClaims {
///     tenant: String,
/// }
///
/// fn tenant<B>(request: &http::Request<B>) -> Option<String> {
///     let authenticated = request.extensions().get::<Authenticated>()?;
///     let validated = authenticated.validated::<MyClaims>()?;
///     Some(validated.claims().tenant.clone())
/// }
/// ```
///
/// Authentication of your own (an API key, a client certificate) can hand a principal to the same guards
/// with [`Authenticated::new`].
#[derive(Clone)]
pub struct Authenticated {
    principal: Arc<Principal>,
    /// The `Arc<Validated<C>>` of the token, whatever its `C`; `None` without a token.
    token: Option<Arc<dyn Any + Send + Sync>>,
}

impl Authenticated {
    /// A caller authenticated without a token, by your own means: guards read `principal`, and there are no
    /// claims to extract.
    pub fn new(principal: impl Into<Arc<Principal>>) -> Self {
        Self { principal: principal.into(), token: None }
    }

    /// The caller of a validated token: guards read the token's principal.
    pub fn from_validated<C: Send + Sync + 'static>(validated: Arc<Validated<C>>) -> Self {
        Self { principal: validated.principal().clone(), token: Some(validated) }
    }

    /// The same caller with another principal for the guards (one enriched from your database, say); the
    /// token's claims stay as they were.
    #[must_use]
    pub fn with_principal(mut self, principal: impl Into<Arc<Principal>>) -> Self {
        self.principal = principal.into();
        self
    }

    /// The caller's principal, which guards read.
    pub fn principal(&self) -> &Arc<Principal> {
        &self.principal
    }

    /// The validated token, if the caller was authenticated by a token whose claims are a `C`: `None` for
    /// another claims type, or without a token.
    pub fn validated<C: Send + Sync + 'static>(&self) -> Option<Arc<Validated<C>>> {
        self.token.clone()?.downcast::<Validated<C>>().ok()
    }
}

impl fmt::Debug for Authenticated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticated")
            .field("principal", &self.principal)
            .field("token", &self.token.is_some())
            .finish()
    }
}

/// The marker [`JwtAuthLayer`](crate::JwtAuthLayer) puts in the extensions of a request that passed without a
/// token in optional mode. Its presence tells an extractor that the layer ran.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Anonymous;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_validated_token_is_found_by_its_claims_type_only() {
        let principal = Principal::new(Some("ada".into()));
        let authenticated = Authenticated::new(principal);
        assert_eq!(authenticated.principal().subject(), Some("ada"));
        assert!(authenticated.validated::<()>().is_none(), "no token");
        let authenticated = authenticated.with_principal(Principal::new(Some("bob".into())));
        assert_eq!(authenticated.principal().subject(), Some("bob"));
    }
}
