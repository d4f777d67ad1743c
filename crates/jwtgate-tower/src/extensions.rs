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
/// with [`Authenticated::new`]. A request has one: a `JwtAuthLayer` nested inside another replaces the outer
/// layer's, and the handlers see the inner layer's claims type.
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

    use jwtgate_core::{Algorithm, Secret, SigningKey, Validator};
    use serde_json::{Value, json};

    #[test]
    fn the_validated_token_is_found_by_its_claims_type_only() {
        let signer = SigningKey::hmac(Algorithm::HS256, &Secret::new(vec![7; 32]), "k1").unwrap();
        let token = signer.sign("JWT", &json!({ "sub": "ada", "exp": 4_000_000_000_i64 })).unwrap();
        let validator = Validator::builder(signer.verification_key().clone()).build();
        let authenticated = Authenticated::from_validated(Arc::new(validator.validate::<Value>(&token).unwrap()));
        assert_eq!(authenticated.principal().subject(), Some("ada"));
        assert_eq!(authenticated.validated::<Value>().unwrap().claims()["sub"], "ada");
        assert!(authenticated.validated::<String>().is_none(), "another claims type");
        // Another principal for the guards; the token's claims stay.
        let replaced = authenticated.with_principal(Principal::new(Some("bob".into())));
        assert_eq!(replaced.principal().subject(), Some("bob"));
        assert_eq!(replaced.validated::<Value>().unwrap().registered().subject(), Some("ada"));
    }

    #[test]
    fn a_caller_authenticated_otherwise_has_a_principal_and_no_token() {
        let authenticated = Authenticated::new(Principal::new(Some("service-a".into())));
        assert_eq!(authenticated.principal().subject(), Some("service-a"));
        assert!(authenticated.validated::<Value>().is_none());
    }
}
