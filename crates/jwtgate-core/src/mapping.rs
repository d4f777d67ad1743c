//! Where authorities come from: presets for the claim shapes real identity providers issue.

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::claims::RawClaims;
use crate::principal::Authority;

type CustomFn = dyn Fn(&ClaimSet<'_>) -> Vec<(Authority, String)> + Send + Sync;

/// How a [`Validator`](crate::Validator) reads roles, scopes and permissions from a token's claims.
///
/// Combine as many presets as the tokens need. A claim that is absent or of another shape gives no
/// authorities; it is never an error. The default reads the `roles` array and the `scope` string.
///
/// ```
/// use jwtgate_core::AuthorityMapping;
/// // Keycloak: realm roles, the roles of client "orders", and OAuth scopes.
/// let mapping = AuthorityMapping::new().keycloak_realm_roles().keycloak_client_roles("orders").scope();
/// ```
#[derive(Clone)]
pub struct AuthorityMapping {
    rules: Vec<Rule>,
}

#[derive(Clone)]
enum Rule {
    Claim { name: String, shape: Shape, kind: Authority },
    Pointer { pointer: String, shape: Shape, kind: Authority },
    Custom(Arc<CustomFn>),
}

#[derive(Clone, Copy, Debug)]
enum Shape {
    /// An array of strings.
    Array,
    /// A string of space-separated values (RFC 8693 §4.2, RFC 9068 §2.2.3).
    SpaceSeparated,
    /// Either of the above.
    StringOrArray,
}

impl Default for AuthorityMapping {
    fn default() -> Self {
        Self::new().roles().scope()
    }
}

impl AuthorityMapping {
    /// A mapping that reads nothing. Add presets to it.
    pub fn new() -> Self {
        Self { rules: Vec::new() }
    }

    fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    fn claim(self, name: &str, shape: Shape, kind: Authority) -> Self {
        self.rule(Rule::Claim { name: name.to_owned(), shape, kind })
    }

    /// Roles from the `roles` array (also Microsoft Entra ID's app roles).
    #[must_use]
    pub fn roles(self) -> Self {
        self.claim("roles", Shape::Array, Authority::Role)
    }

    /// Scopes from the space-separated `scope` string (RFC 8693, RFC 9068).
    #[must_use]
    pub fn scope(self) -> Self {
        self.claim("scope", Shape::SpaceSeparated, Authority::Scope)
    }

    /// Scopes from `scp`, a space-separated string (Microsoft Entra ID) or an array (Okta).
    #[must_use]
    pub fn scp(self) -> Self {
        self.claim("scp", Shape::StringOrArray, Authority::Scope)
    }

    /// Permissions from Auth0's `permissions` array.
    #[must_use]
    pub fn permissions(self) -> Self {
        self.claim("permissions", Shape::Array, Authority::Permission)
    }

    /// Roles from Keycloak's `realm_access.roles`.
    #[must_use]
    pub fn keycloak_realm_roles(self) -> Self {
        self.rule(Rule::Pointer {
            pointer: "/realm_access/roles".to_owned(),
            shape: Shape::Array,
            kind: Authority::Role,
        })
    }

    /// Roles from Keycloak's `resource_access.<client>.roles`.
    #[must_use]
    pub fn keycloak_client_roles(self, client: &str) -> Self {
        let client = client.replace('~', "~0").replace('/', "~1");
        let pointer = format!("/resource_access/{client}/roles");
        self.rule(Rule::Pointer { pointer, shape: Shape::Array, kind: Authority::Role })
    }

    /// Roles from AWS Cognito's `cognito:groups` array.
    #[must_use]
    pub fn cognito_groups(self) -> Self {
        self.claim("cognito:groups", Shape::Array, Authority::Role)
    }

    /// Roles from Microsoft Entra ID's `roles` array (the same shape as [`roles`](Self::roles)).
    #[must_use]
    pub fn entra_roles(self) -> Self {
        self.roles()
    }

    /// Authorities of `kind` from the value at a JSON pointer (RFC 6901) into the claims set, such as
    /// `/app_metadata/roles`: an array of strings, or a space-separated string.
    #[must_use]
    pub fn pointer(self, pointer: &str, kind: Authority) -> Self {
        self.rule(Rule::Pointer { pointer: pointer.to_owned(), shape: Shape::StringOrArray, kind })
    }

    /// Authorities from your own function over the claims set.
    #[must_use]
    pub fn from_fn<F>(self, map: F) -> Self
    where
        F: Fn(&ClaimSet<'_>) -> Vec<(Authority, String)> + Send + Sync + 'static,
    {
        self.rule(Rule::Custom(Arc::new(map)))
    }

    /// Reads the authorities from `claims`, handing each to `add`.
    pub(crate) fn apply(&self, claims: &RawClaims<'_>, add: &mut dyn FnMut(Authority, String)) {
        // An empty value grants nothing. A scope is one word (RFC 6749 §3.3), so an array element holding
        // several is split, as the space-separated form is.
        let add = &mut |kind: Authority, item: String| match kind {
            Authority::Scope if item.contains(' ') => {
                item.split(' ').filter(|word| !word.is_empty()).for_each(|word| add(kind, word.to_owned()));
            }
            _ if item.is_empty() => {}
            _ => add(kind, item),
        };
        for rule in &self.rules {
            match rule {
                Rule::Claim { name, shape, kind } => {
                    if let Some(value) = claims.member(name) {
                        for item in values(value, *shape) {
                            add(*kind, item);
                        }
                    }
                }
                Rule::Pointer { pointer, shape, kind } => {
                    for item in pointed(claims, pointer, *shape) {
                        add(*kind, item);
                    }
                }
                Rule::Custom(map) => {
                    for (kind, item) in map(&ClaimSet { raw: claims }) {
                        add(kind, item);
                    }
                }
            }
        }
    }
}

/// The strings of `value` in `shape`; nothing when the value has another shape. The first byte of the raw
/// JSON says which shape it is, so each value is parsed once, straight into its type.
fn values(value: &RawValue, shape: Shape) -> Vec<String> {
    let json = value.get();
    match (shape, json.as_bytes().first()) {
        (Shape::Array | Shape::StringOrArray, Some(b'[')) => serde_json::from_str(json).unwrap_or_default(),
        (Shape::SpaceSeparated | Shape::StringOrArray, Some(b'"')) => serde_json::from_str::<&str>(json)
            .map(|text| text.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .or_else(|_| {
                // A string with escapes cannot be borrowed.
                serde_json::from_str::<String>(json)
                    .map(|text| text.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect())
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The strings at `pointer` (whose first segment names a top-level claim) in `shape`.
fn pointed(claims: &RawClaims<'_>, pointer: &str, shape: Shape) -> Vec<String> {
    let Some(rest) = pointer.strip_prefix('/') else { return Vec::new() };
    let (first, rest) = rest.split_once('/').map_or((rest, ""), |(first, rest)| (first, rest));
    let name = first.replace("~1", "/").replace("~0", "~");
    let Some(raw) = claims.member(&name) else { return Vec::new() };
    if rest.is_empty() {
        return values(raw, shape);
    }
    let Ok(value) = serde_json::from_str::<serde_json::Value>(raw.get()) else { return Vec::new() };
    match value.pointer(&format!("/{rest}")).and_then(|value| serde_json::value::to_raw_value(value).ok()) {
        Some(raw) => values(&raw, shape),
        None => Vec::new(),
    }
}

impl fmt::Debug for AuthorityMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for rule in &self.rules {
            match rule {
                Rule::Claim { name, shape, kind } => list.entry(&format_args!("{kind:?} from {name:?} ({shape:?})")),
                Rule::Pointer { pointer, shape, kind } => {
                    list.entry(&format_args!("{kind:?} from pointer {pointer:?} ({shape:?})"))
                }
                Rule::Custom(_) => list.entry(&format_args!("custom")),
            };
        }
        list.finish()
    }
}

/// A read-only view of a token's claims set, for custom mappings.
#[derive(Clone, Copy)]
pub struct ClaimSet<'a> {
    raw: &'a RawClaims<'a>,
}

impl ClaimSet<'_> {
    /// The top-level claim `name` as `T`; `None` when absent or of another shape.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Option<T> {
        self.raw.member(name).and_then(|value| serde_json::from_str(value.get()).ok())
    }

    /// The top-level claim `name` as raw JSON.
    pub fn raw(&self, name: &str) -> Option<&RawValue> {
        self.raw.member(name)
    }
}

impl fmt::Debug for ClaimSet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClaimSet(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::Principal;

    fn map(mapping: &AuthorityMapping, json: &str) -> Principal {
        Principal::from_claims(crate::RegisteredClaims::parse(json.to_owned()).unwrap(), Arc::new(mapping.clone()), 0)
    }

    #[test]
    fn keycloak_tokens() {
        let json = r#"{"realm_access":{"roles":["offline_access","admin"]},
            "resource_access":{"orders":{"roles":["writer"]},"account":{"roles":["view-profile"]}},
            "scope":"openid profile email"}"#;
        let principal =
            map(&AuthorityMapping::new().keycloak_realm_roles().keycloak_client_roles("orders").scope(), json);
        assert_eq!(principal.roles(), ["offline_access", "admin", "writer"]);
        assert_eq!(principal.scopes(), ["openid", "profile", "email"]);
    }

    #[test]
    fn auth0_cognito_entra_and_okta_tokens() {
        let auth0 = r#"{"permissions":["read:invoices","write:invoices"],"scope":"openid"}"#;
        assert_eq!(
            map(&AuthorityMapping::new().permissions(), auth0).permissions(),
            ["read:invoices", "write:invoices"]
        );
        let cognito = r#"{"cognito:groups":["admins"],"scope":"aws.cognito.signin.user.admin"}"#;
        assert_eq!(map(&AuthorityMapping::new().cognito_groups(), cognito).roles(), ["admins"]);
        let entra = r#"{"roles":["Task.Write"],"scp":"User.Read Mail.Send"}"#;
        let principal = map(&AuthorityMapping::new().entra_roles().scp(), entra);
        assert_eq!(
            (principal.roles(), principal.scopes()),
            (&["Task.Write".to_owned()][..], &["User.Read".to_owned(), "Mail.Send".to_owned()][..])
        );
        let okta = r#"{"scp":["openid","orders:read"]}"#;
        assert_eq!(map(&AuthorityMapping::new().scp(), okta).scopes(), ["openid", "orders:read"]);
    }

    #[test]
    fn wrong_shapes_map_to_nothing() {
        let all = AuthorityMapping::new()
            .roles()
            .scope()
            .scp()
            .permissions()
            .keycloak_realm_roles()
            .keycloak_client_roles("c")
            .cognito_groups()
            .pointer("/a/b/c", Authority::Role);
        for json in [
            r#"{"roles":"admin","scope":["a"],"scp":7,"permissions":{"a":1}}"#,
            r#"{"realm_access":["admin"],"resource_access":{"c":"x"},"cognito:groups":null}"#,
            r#"{"roles":[1,2],"realm_access":{"roles":"admin"},"a":{"b":3}}"#,
            r#"{"roles":null,"scope":null,"a":null}"#,
        ] {
            let principal = map(&all, json);
            assert!(principal.roles().is_empty() && principal.scopes().is_empty(), "{json}: {principal:?}");
            assert!(principal.permissions().is_empty(), "{json}");
        }
    }

    #[test]
    fn empty_values_grant_nothing_and_scopes_are_single_words() {
        // Found by the `mapping_presets` fuzz target: `"scp": [""]` mapped an empty scope.
        let mapping =
            AuthorityMapping::new().roles().scp().permissions().from_fn(|_| vec![(Authority::Role, String::new())]);
        let principal = map(&mapping, r#"{"roles":["", "a"],"scp":["", "read  write", "x"],"permissions":[""]}"#);
        assert_eq!(principal.roles(), ["a"]);
        assert_eq!(principal.scopes(), ["read", "write", "x"]);
        assert!(principal.permissions().is_empty());
        assert!(!principal.has_role("") && !principal.has_scope(""));
    }

    #[test]
    fn presets_combine_and_deduplicate() {
        let mapping = AuthorityMapping::default().pointer("/app/roles", Authority::Role).from_fn(|claims| {
            claims.get::<String>("tier").map(|tier| vec![(Authority::Role, format!("tier:{tier}"))]).unwrap_or_default()
        });
        let principal = map(&mapping, r#"{"roles":["a","b"],"app":{"roles":["b","c"]},"tier":"gold","scope":"x  y"}"#);
        assert_eq!(principal.roles(), ["a", "b", "c", "tier:gold"]);
        assert_eq!(principal.scopes(), ["x", "y"]);
    }

    #[test]
    fn client_names_are_escaped_in_pointers() {
        let json = r#"{"resource_access":{"a/b":{"roles":["r"]}}}"#;
        assert_eq!(map(&AuthorityMapping::new().keycloak_client_roles("a/b"), json).roles(), ["r"]);
    }
}
