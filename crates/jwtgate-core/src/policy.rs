//! Authorization policies over a [`Principal`]: roles, scopes, permissions and claims, combined with
//! `any`, `all` and `not`.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::Principal;

type PredicateFn = dyn Fn(&Principal) -> bool + Send + Sync;

/// What a caller needs to reach a resource.
///
/// ```
/// use jwtgate_core::{Authority, Policy, Principal};
/// let policy = Policy::any([
///     Policy::role("admin"),
///     Policy::all([Policy::scope("orders:write"), Policy::claim_eq("tenant", "acme")]),
/// ]);
/// let admin = Principal::new(Some("ada".into())).with(Authority::Role, "admin");
/// assert!(policy.allows(&admin));
/// assert!(!policy.allows(&Principal::new(None)));
/// ```
#[derive(Clone)]
pub struct Policy {
    node: Node,
}

#[derive(Clone)]
enum Node {
    Role(String),
    Scope(String),
    Permission(String),
    ClaimEquals { name: String, value: Value },
    ClaimPresent { name: String },
    Any(Vec<Policy>),
    All(Vec<Policy>),
    Not(Box<Policy>),
    Predicate(Arc<PredicateFn>),
}

impl Policy {
    fn new(node: Node) -> Self {
        Self { node }
    }

    /// The caller has `role`.
    pub fn role(role: impl Into<String>) -> Self {
        Self::new(Node::Role(role.into()))
    }

    /// The caller has `scope`.
    pub fn scope(scope: impl Into<String>) -> Self {
        Self::new(Node::Scope(scope.into()))
    }

    /// The caller has `permission`.
    pub fn permission(permission: impl Into<String>) -> Self {
        Self::new(Node::Permission(permission.into()))
    }

    /// The top-level claim `name` equals `value` (compared as JSON: `"1"` is not `1`).
    pub fn claim_eq(name: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::new(Node::ClaimEquals { name: name.into(), value: value.into() })
    }

    /// The top-level claim `name` is present.
    pub fn claim_present(name: impl Into<String>) -> Self {
        Self::new(Node::ClaimPresent { name: name.into() })
    }

    /// At least one of `policies` holds. `any([])` never holds.
    pub fn any(policies: impl IntoIterator<Item = Policy>) -> Self {
        Self::new(Node::Any(policies.into_iter().collect()))
    }

    /// Every one of `policies` holds. `all([])` always holds.
    pub fn all(policies: impl IntoIterator<Item = Policy>) -> Self {
        Self::new(Node::All(policies.into_iter().collect()))
    }

    /// `policy` does not hold.
    #[allow(clippy::should_implement_trait, reason = "a constructor, named as the policy language names it")]
    pub fn not(policy: Policy) -> Self {
        Self::new(Node::Not(Box::new(policy)))
    }

    /// Your own predicate over the principal (which also gives access to the claims).
    pub fn predicate<F>(predicate: F) -> Self
    where
        F: Fn(&Principal) -> bool + Send + Sync + 'static,
    {
        Self::new(Node::Predicate(Arc::new(predicate)))
    }

    /// Whether `principal` satisfies the policy.
    pub fn allows(&self, principal: &Principal) -> bool {
        match &self.node {
            Node::Role(role) => principal.has_role(role),
            Node::Scope(scope) => principal.has_scope(scope),
            Node::Permission(permission) => principal.has_permission(permission),
            Node::ClaimEquals { name, value } => principal.claim::<Value>(name).is_some_and(|claim| claim == *value),
            Node::ClaimPresent { name } => principal.has_claim(name),
            Node::Any(policies) => policies.iter().any(|policy| policy.allows(principal)),
            Node::All(policies) => policies.iter().all(|policy| policy.allows(principal)),
            Node::Not(policy) => !policy.allows(principal),
            Node::Predicate(predicate) => predicate(principal),
        }
    }

    /// The scopes the policy asks for (outside any `not`), for the `scope` attribute of an
    /// `insufficient_scope` challenge (RFC 6750 §3). Empty when the policy names no scope.
    pub fn required_scopes(&self) -> Vec<&str> {
        let mut scopes = Vec::new();
        self.collect_scopes(&mut scopes);
        scopes
    }

    /// The sets of scopes that can satisfy the policy, one per alternative of its `any`s: a token with every
    /// scope of one set meets the policy's scope conditions. A branch that needs no scope (a role, a claim,
    /// a `not`) is the empty set, as its conditions are not scopes. For OpenAPI, whose security requirements
    /// are alternatives of scope sets. Past 32 alternatives, the policy is given as one set of all its scopes.
    pub fn scope_alternatives(&self) -> Vec<Vec<&str>> {
        const MAX: usize = 32;
        fn alternatives(policy: &Policy) -> Option<Vec<Vec<&str>>> {
            Some(match &policy.node {
                Node::Scope(scope) => vec![vec![scope.as_str()]],
                Node::Any(policies) => {
                    let mut all: Vec<Vec<&str>> = Vec::new();
                    for policy in policies {
                        for set in alternatives(policy)? {
                            if !all.contains(&set) {
                                all.push(set);
                            }
                        }
                    }
                    if all.len() > MAX {
                        return None;
                    }
                    all
                }
                Node::All(policies) => {
                    let mut all = vec![Vec::new()];
                    for policy in policies {
                        let mut next = Vec::new();
                        for set in &all {
                            for other in alternatives(policy)? {
                                let mut joined: Vec<&str> = set.clone();
                                joined.extend(other.into_iter().filter(|scope| !set.contains(scope)));
                                if !next.contains(&joined) {
                                    next.push(joined);
                                }
                            }
                        }
                        if next.len() > MAX {
                            return None;
                        }
                        all = next;
                    }
                    all
                }
                _ => vec![Vec::new()],
            })
        }
        alternatives(self).unwrap_or_else(|| vec![self.required_scopes()])
    }

    fn collect_scopes<'a>(&'a self, scopes: &mut Vec<&'a str>) {
        match &self.node {
            Node::Scope(scope) if !scopes.contains(&scope.as_str()) => scopes.push(scope),
            Node::Any(policies) | Node::All(policies) => policies.iter().for_each(|p| p.collect_scopes(scopes)),
            _ => {}
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, name: &str, policies: &[Policy]| {
            write!(f, "{name}(")?;
            for (i, policy) in policies.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{policy}")?;
            }
            f.write_str(")")
        };
        match &self.node {
            Node::Role(role) => write!(f, "role({role:?})"),
            Node::Scope(scope) => write!(f, "scope({scope:?})"),
            Node::Permission(permission) => write!(f, "permission({permission:?})"),
            Node::ClaimEquals { name, value } => write!(f, "claim({name} = {value})"),
            Node::ClaimPresent { name } => write!(f, "claim({name})"),
            Node::Any(policies) => list(f, "any", policies),
            Node::All(policies) => list(f, "all", policies),
            Node::Not(policy) => write!(f, "not({policy})"),
            Node::Predicate(_) => f.write_str("predicate(..)"),
        }
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Policy({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Authority;

    fn principal() -> Principal {
        let mut p = Principal::new(Some("u".into()))
            .with(Authority::Role, "editor")
            .with(Authority::Scope, "orders:read")
            .with(Authority::Permission, "read:invoices");
        p.set_claims(r#"{"tenant":"acme","level":3,"flag":null}"#.to_owned());
        p
    }

    #[test]
    fn leaves() {
        let p = principal();
        assert!(Policy::role("editor").allows(&p) && !Policy::role("admin").allows(&p));
        assert!(Policy::scope("orders:read").allows(&p) && !Policy::scope("orders:write").allows(&p));
        assert!(Policy::permission("read:invoices").allows(&p) && !Policy::permission("x").allows(&p));
        assert!(Policy::claim_eq("tenant", "acme").allows(&p) && !Policy::claim_eq("tenant", "evil").allows(&p));
        assert!(Policy::claim_eq("level", 3).allows(&p) && !Policy::claim_eq("level", "3").allows(&p));
        assert!(Policy::claim_present("flag").allows(&p) && !Policy::claim_present("nope").allows(&p));
        assert!(Policy::predicate(|p| p.subject() == Some("u")).allows(&p));
    }

    #[test]
    fn combinators() {
        let p = principal();
        let yes = Policy::role("editor");
        let no = Policy::role("admin");
        assert!(Policy::any([no.clone(), yes.clone()]).allows(&p));
        assert!(!Policy::any([no.clone(), no.clone()]).allows(&p));
        assert!(!Policy::any([]).allows(&p));
        assert!(Policy::all([yes.clone(), yes.clone()]).allows(&p));
        assert!(!Policy::all([yes.clone(), no.clone()]).allows(&p));
        assert!(Policy::all([]).allows(&p));
        assert!(Policy::not(no).allows(&p) && !Policy::not(yes).allows(&p));
    }

    #[test]
    fn required_scopes_and_display() {
        let policy = Policy::any([
            Policy::role("admin"),
            Policy::all([Policy::scope("orders:write"), Policy::claim_eq("tenant", "acme")]),
            Policy::not(Policy::scope("banned")),
            Policy::scope("orders:write"),
        ]);
        assert_eq!(policy.required_scopes(), ["orders:write"]);
        assert_eq!(
            policy.to_string(),
            r#"any(role("admin"), all(scope("orders:write"), claim(tenant = "acme")), not(scope("banned")), scope("orders:write"))"#
        );
    }

    #[test]
    fn a_principal_without_claims_fails_claim_policies() {
        let p = Principal::new(None);
        assert!(!Policy::claim_present("x").allows(&p) && !Policy::claim_eq("x", 1).allows(&p));
    }

    #[test]
    fn scope_alternatives_follow_any_and_all() {
        let read = || Policy::scope("orders:read");
        let write = || Policy::scope("orders:write");
        assert_eq!(read().scope_alternatives(), [vec!["orders:read"]]);
        assert_eq!(Policy::any([read(), write()]).scope_alternatives(), [vec!["orders:read"], vec!["orders:write"]]);
        assert_eq!(Policy::all([read(), write()]).scope_alternatives(), [vec!["orders:read", "orders:write"]]);
        let mixed = Policy::any([Policy::role("admin"), Policy::all([write(), read()])]);
        assert_eq!(mixed.scope_alternatives(), [vec![], vec!["orders:write", "orders:read"]]);
        let product =
            Policy::all([Policy::any([read(), write()]), Policy::any([Policy::scope("a"), Policy::scope("b")])]);
        assert_eq!(product.scope_alternatives().len(), 4);
        assert_eq!(Policy::role("admin").scope_alternatives(), [Vec::<&str>::new()]);
        // Too many alternatives: one set of every scope.
        let wide = |prefix: &str| Policy::any((0..6).map(|i| Policy::scope(format!("{prefix}{i}"))));
        let huge = Policy::all([wide("a"), wide("b")]);
        assert_eq!(huge.scope_alternatives(), [huge.required_scopes()]);
    }
}
