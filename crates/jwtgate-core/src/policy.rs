//! Authorization policies over a [`Principal`]: roles, scopes, permissions, claims and step-up (`acr`,
//! `auth_time`), combined with `any`, `all` and `not`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

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
    Acr(Vec<String>),
    MaxAuthAge(u64),
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

    /// Step-up (RFC 9470): the user was authenticated in one of the ways `values` name, read from the token's
    /// `acr` claim (an OpenID Connect authentication context class reference, such as `urn:example:mfa`,
    /// compared exactly). A valid token that fails it is answered 401 `insufficient_user_authentication` with
    /// `acr_values`, not 403: the client can send the user back to the authorization server for it.
    pub fn acr<S: Into<String>>(values: impl IntoIterator<Item = S>) -> Self {
        Self::new(Node::Acr(values.into_iter().map(Into::into).collect()))
    }

    /// Step-up (RFC 9470): the user was authenticated at most `max_age` ago (whole seconds), read from the
    /// token's `auth_time` claim, with the validator's clock leeway on top. A token without `auth_time`, or
    /// with one further in the future than the leeway, fails it. A valid token that fails it is answered 401
    /// `insufficient_user_authentication` with `max_age`, not 403.
    pub fn max_auth_age(max_age: Duration) -> Self {
        Self::new(Node::MaxAuthAge(max_age.as_secs()))
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
        self.holds(principal, None)
    }

    /// What the policy says of `principal`: allowed, forbidden (403), or allowed only after the user
    /// authenticates again, more strongly or more recently (401, RFC 9470). A refusal is a step-up when the
    /// principal would pass were every `acr` and `max_auth_age` condition met; it then names the conditions
    /// that failed.
    ///
    /// ```
    /// use std::time::Duration;
    /// use jwtgate_core::{Authority, Policy, Principal, Verdict};
    ///
    /// let policy = Policy::all([
    ///     Policy::scope("payments:write"),
    ///     Policy::acr(["urn:example:mfa"]),
    ///     Policy::max_auth_age(Duration::from_secs(300)),
    /// ]);
    /// let caller = Principal::new(Some("ada".into())).with(Authority::Scope, "payments:write");
    /// let Verdict::StepUp(step_up) = policy.verdict(&caller) else { panic!("a step-up") };
    /// assert_eq!(step_up.acr_values(), ["urn:example:mfa"]);
    /// assert_eq!(step_up.max_age(), Some(300));
    /// assert_eq!(policy.verdict(&Principal::new(None)), Verdict::Forbidden);
    /// ```
    pub fn verdict(&self, principal: &Principal) -> Verdict {
        if self.allows(principal) {
            return Verdict::Allowed;
        }
        if !self.holds(principal, Some(true)) {
            return Verdict::Forbidden;
        }
        let mut step_up = StepUp::default();
        self.collect_step_up(principal, &mut step_up);
        Verdict::StepUp(step_up)
    }

    /// Whether the policy holds; with `assume` set, every step-up condition is taken to be `assume` (and
    /// its opposite under a `not`), whatever the principal carries.
    fn holds(&self, principal: &Principal, assume: Option<bool>) -> bool {
        match &self.node {
            Node::Role(role) => principal.has_role(role),
            Node::Scope(scope) => principal.has_scope(scope),
            Node::Permission(permission) => principal.has_permission(permission),
            Node::ClaimEquals { name, value } => principal.claim::<Value>(name).is_some_and(|claim| claim == *value),
            Node::ClaimPresent { name } => principal.has_claim(name),
            Node::Acr(values) => assume.unwrap_or_else(|| acr_matches(principal, values)),
            Node::MaxAuthAge(max_age) => assume.unwrap_or_else(|| recent_enough(principal, *max_age)),
            Node::Any(policies) => policies.iter().any(|policy| policy.holds(principal, assume)),
            Node::All(policies) => policies.iter().all(|policy| policy.holds(principal, assume)),
            Node::Not(policy) => !policy.holds(principal, assume.map(|assume| !assume)),
            Node::Predicate(predicate) => predicate(principal),
        }
    }

    /// Adds the step-up conditions that `principal` fails, in the branches that would hold were they met.
    fn collect_step_up(&self, principal: &Principal, step_up: &mut StepUp) {
        match &self.node {
            Node::Acr(values) if !acr_matches(principal, values) => {
                for value in values {
                    if !step_up.acr_values.contains(value) {
                        step_up.acr_values.push(value.clone());
                    }
                }
            }
            Node::MaxAuthAge(max_age) if !recent_enough(principal, *max_age) => {
                step_up.max_age = Some(step_up.max_age.map_or(*max_age, |other| other.min(*max_age)));
            }
            Node::All(policies) => policies.iter().for_each(|policy| policy.collect_step_up(principal, step_up)),
            Node::Any(policies) => policies
                .iter()
                .filter(|policy| policy.holds(principal, Some(true)))
                .for_each(|policy| policy.collect_step_up(principal, step_up)),
            _ => {}
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

fn acr_matches(principal: &Principal, values: &[String]) -> bool {
    principal.claim::<String>("acr").is_some_and(|acr| values.contains(&acr))
}

/// Whether `auth_time` is at most `max_age` seconds old, give or take the leeway. `auth_time` is a
/// NumericDate, which may have a fraction.
fn recent_enough(principal: &Principal, max_age: u64) -> bool {
    let Some(auth_time) = principal.claim::<f64>("auth_time").filter(|time| time.is_finite()) else {
        return false;
    };
    let now = crate::validator::unix_now() as f64;
    let leeway = principal.leeway() as f64;
    auth_time <= now + leeway && now - auth_time <= max_age as f64 + leeway
}

/// What a [`Policy`] says of a principal: see [`Policy::verdict`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// The principal satisfies the policy.
    Allowed,
    /// The principal does not satisfy the policy, and a new authentication would not change that: 403.
    Forbidden,
    /// The principal would satisfy the policy after a stronger or more recent authentication: 401
    /// `insufficient_user_authentication` (RFC 9470).
    StepUp(StepUp),
}

/// The step-up conditions a principal failed (RFC 9470 §3): the `acr_values` and the `max_age` a client
/// asks the authorization server for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepUp {
    acr_values: Vec<String>,
    max_age: Option<u64>,
}

impl StepUp {
    /// The authentication context classes any of which would do; empty when `acr` did not fail.
    pub fn acr_values(&self) -> &[String] {
        &self.acr_values
    }

    /// The greatest age, in seconds, that the user's authentication may have; `None` when `auth_time` did
    /// not fail.
    pub fn max_age(&self) -> Option<u64> {
        self.max_age
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
            Node::Acr(values) => write!(f, "acr({values:?})"),
            Node::MaxAuthAge(max_age) => write!(f, "max_auth_age({max_age}s)"),
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

    fn authenticated(acr: &str, seconds_ago: i64, leeway: i64) -> Principal {
        let auth_time = crate::validator::unix_now() - seconds_ago;
        let json = format!(r#"{{"sub":"u","acr":"{acr}","auth_time":{auth_time},"scope":"pay"}}"#);
        let mapping = Arc::new(crate::AuthorityMapping::default());
        Principal::from_claims(crate::RegisteredClaims::parse(json).unwrap(), mapping, leeway)
    }

    #[test]
    fn acr_is_one_of_a_set_compared_exactly() {
        let mfa = Policy::acr(["urn:mfa", "urn:hwk"]);
        assert!(mfa.allows(&authenticated("urn:mfa", 0, 0)) && mfa.allows(&authenticated("urn:hwk", 0, 0)));
        assert!(!mfa.allows(&authenticated("urn:pwd", 0, 0)) && !mfa.allows(&authenticated("URN:MFA", 0, 0)));
        assert!(!mfa.allows(&principal()), "no acr claim");
        assert!(!Policy::acr(Vec::<String>::new()).allows(&authenticated("urn:mfa", 0, 0)));
    }

    #[test]
    fn max_auth_age_counts_from_auth_time_with_the_validators_leeway() {
        let recent = Policy::max_auth_age(Duration::from_secs(300));
        assert!(recent.allows(&authenticated("a", 299, 0)) && recent.allows(&authenticated("a", 300, 0)));
        assert!(!recent.allows(&authenticated("a", 302, 0)), "too old without leeway");
        assert!(recent.allows(&authenticated("a", 320, 30)), "within the leeway");
        assert!(!recent.allows(&authenticated("a", 340, 30)), "beyond the leeway");
        assert!(recent.allows(&authenticated("a", -20, 30)), "a clock a little ahead");
        assert!(!recent.allows(&authenticated("a", -40, 30)), "authenticated in the future");
        assert!(!recent.allows(&principal()), "no auth_time");
        let mut text = Principal::new(None);
        text.set_claims(r#"{"auth_time":"1700000000"}"#.to_owned());
        assert!(!recent.allows(&text), "auth_time that is not a number");
    }

    #[test]
    fn a_refusal_is_a_step_up_only_when_authenticating_again_would_be_enough() {
        let policy = Policy::all([
            Policy::scope("pay"),
            Policy::acr(["urn:mfa"]),
            Policy::max_auth_age(Duration::from_secs(60)),
        ]);
        let scoped = |acr, age| authenticated(acr, age, 0).with(Authority::Scope, "pay");
        assert_eq!(policy.verdict(&scoped("urn:mfa", 10)), Verdict::Allowed);
        let step_up = |acr: &[&str], max_age| {
            Verdict::StepUp(StepUp { acr_values: acr.iter().map(|v| v.to_string()).collect(), max_age })
        };
        assert_eq!(policy.verdict(&scoped("urn:pwd", 10)), step_up(&["urn:mfa"], None));
        assert_eq!(policy.verdict(&scoped("urn:mfa", 600)), step_up(&[], Some(60)));
        assert_eq!(policy.verdict(&scoped("urn:pwd", 600)), step_up(&["urn:mfa"], Some(60)));
        // Without the scope, no new authentication helps.
        assert_eq!(policy.verdict(&principal()), Verdict::Forbidden);
        // Only the alternatives that could pass name their conditions.
        let either = Policy::any([
            Policy::all([Policy::role("editor"), Policy::acr(["urn:mfa"])]),
            Policy::all([Policy::role("admin"), Policy::acr(["urn:hwk"])]),
            Policy::all([Policy::role("editor"), Policy::max_auth_age(Duration::from_secs(5))]),
            Policy::all([Policy::role("editor"), Policy::max_auth_age(Duration::from_secs(9))]),
        ]);
        let editor = authenticated("urn:pwd", 600, 0).with(Authority::Role, "editor");
        assert_eq!(either.verdict(&editor), step_up(&["urn:mfa"], Some(5)));
        assert_eq!(
            Policy::acr(["urn:mfa"]).to_string() + " " + &Policy::max_auth_age(Duration::from_secs(300)).to_string(),
            r#"acr(["urn:mfa"]) max_auth_age(300s)"#
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
