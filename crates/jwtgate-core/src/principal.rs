//! The authenticated caller: the authorities (roles, scopes, permissions) read from the claims once, at
//! validation, and the claims set itself for claim policies.

use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::AuthorityMapping;
use crate::claims::{RawClaims, RegisteredClaims};

/// The kind of an authority.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Authority {
    /// A role, such as `admin`.
    Role,
    /// An OAuth scope, such as `orders:write`.
    Scope,
    /// A permission, such as Auth0's `read:invoices`.
    Permission,
}

/// Who the caller is and what they may do.
///
/// Guards read the authorities without parsing the claims again. A principal the validator made computes
/// them on first use, with the validator's [`AuthorityMapping`]: a request that no guard checks never pays
/// for reading roles and scopes. The claims set is kept as the token carried it, for
/// [`claim`](Principal::claim) lookups by claim policies.
#[derive(Clone, Default)]
pub struct Principal {
    /// The subject of a principal made by hand; one the validator made reads `sub` from its claims.
    subject: Option<String>,
    /// The token's registered claims, and its claims set: empty for a principal made by hand.
    claims: RegisteredClaims,
    mapping: Option<Arc<AuthorityMapping>>,
    authorities: OnceLock<Authorities>,
    /// The validator's clock leeway, in seconds, which step-up policies grant `auth_time` too.
    leeway: i64,
}

#[derive(Clone, Default)]
struct Authorities {
    roles: Vec<String>,
    scopes: Vec<String>,
    permissions: Vec<String>,
}

impl Authorities {
    fn add(&mut self, kind: Authority, value: String) {
        let list = match kind {
            Authority::Role => &mut self.roles,
            Authority::Scope => &mut self.scopes,
            Authority::Permission => &mut self.permissions,
        };
        if !list.contains(&value) {
            list.push(value);
        }
    }
}

impl Principal {
    /// A principal with the given subject and no authorities (for tests and custom authentication).
    pub fn new(subject: Option<String>) -> Self {
        Self { subject, ..Self::default() }
    }

    /// The principal of a validated token: its authorities are read from the claims set by `mapping` when
    /// first asked for.
    pub(crate) fn from_claims(claims: RegisteredClaims, mapping: Arc<AuthorityMapping>, leeway: i64) -> Self {
        Self { subject: None, claims, mapping: Some(mapping), authorities: OnceLock::new(), leeway }
    }

    /// The clock leeway of the validator that made this principal, in seconds; 0 for one made by hand.
    pub(crate) fn leeway(&self) -> i64 {
        self.leeway
    }

    /// The registered claims of the token this principal was made from.
    pub(crate) fn registered(&self) -> &RegisteredClaims {
        &self.claims
    }

    /// Adds an authority.
    #[must_use]
    pub fn with(mut self, kind: Authority, value: impl Into<String>) -> Self {
        self.authorities();
        if let Some(authorities) = self.authorities.get_mut() {
            authorities.add(kind, value.into());
        }
        self
    }

    #[cfg(test)]
    pub(crate) fn set_claims(&mut self, json: String) {
        self.claims = RegisteredClaims::parse(json).expect("a claims set");
    }

    /// The authorities, read from the claims the first time they are asked for.
    fn authorities(&self) -> &Authorities {
        self.authorities.get_or_init(|| {
            let mut authorities = Authorities::default();
            if let Some(mapping) = &self.mapping
                && let Ok(raw) = RawClaims::parse(self.claims.json())
            {
                mapping.apply(&raw, &mut |kind, value| authorities.add(kind, value));
            }
            authorities
        })
    }

    /// `sub`, if the token has one.
    pub fn subject(&self) -> Option<&str> {
        self.claims.subject().or(self.subject.as_deref())
    }

    /// The roles, in the order the mapping found them, without duplicates.
    pub fn roles(&self) -> &[String] {
        &self.authorities().roles
    }

    /// The scopes.
    pub fn scopes(&self) -> &[String] {
        &self.authorities().scopes
    }

    /// The permissions.
    pub fn permissions(&self) -> &[String] {
        &self.authorities().permissions
    }

    /// Whether the caller has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles().iter().any(|r| r == role)
    }

    /// Whether the caller has `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().iter().any(|s| s == scope)
    }

    /// Whether the caller has `permission`.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions().iter().any(|p| p == permission)
    }

    /// The top-level claim `name`, deserialized as `T`; `None` when it is absent or of another shape.
    ///
    /// This reads the claims set again, so it costs a little more than the authority checks; only claim
    /// policies use it.
    pub fn claim<T: DeserializeOwned>(&self, name: &str) -> Option<T> {
        let raw = RawClaims::parse(self.claims.json()).ok()?;
        raw.member(name).and_then(|value: &RawValue| serde_json::from_str(value.get()).ok())
    }

    /// Whether the top-level claim `name` is present (with any value, `null` included).
    pub fn has_claim(&self, name: &str) -> bool {
        RawClaims::parse(self.claims.json()).is_ok_and(|raw| raw.member(name).is_some())
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("subject", &self.subject())
            .field("roles", &self.roles())
            .field("scopes", &self.scopes())
            .field("permissions", &self.permissions())
            .finish_non_exhaustive()
    }
}
