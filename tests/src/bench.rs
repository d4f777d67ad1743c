//! What the benchmarks and the allocation test share: one realistic access token, the claims type
//! a handler would read from it, and the process readings of the load, soak and memory benchmarks.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::{AUDIENCE, ISSUER, now};

/// The claims type every benchmark case deserializes.
#[derive(Clone, Debug, Deserialize)]
pub struct BenchClaims {
    /// `sub`.
    pub sub: String,
    /// `roles`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// `scope`.
    #[serde(default)]
    pub scope: String,
}

/// A realistic access token's claims: registered claims, roles, scope and a little profile, about 525
/// bytes once signed with HS256. Valid for an hour.
pub fn bench_claims() -> Value {
    claims("2b1c6f0e-5d0a-4c38-9f1e-7a8d5e4c3b2a", "9f4c2e7a-1b3d-4e5f-8a6b-0c7d9e1f2a3b")
}

/// [`bench_claims`] for the subject `sub`, with a `jti` of its own.
pub fn bench_claims_of(sub: &str) -> Value {
    claims(sub, &format!("jti-{sub}"))
}

fn claims(sub: &str, jti: &str) -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "iat": now(),
        "nbf": now(),
        "exp": now() + 3600,
        "jti": jti,
        "roles": ["admin", "billing", "support"],
        "scope": "orders:read orders:write invoices:read",
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "tenant": "acme",
    })
}

/// This process's resident memory, in KiB, for the benchmarks that watch memory.
///
/// # Panics
///
/// Where `/proc/self/status` has no `VmRSS` line (outside Linux).
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).expect("a VmRSS line");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("VmRSS in kB")
}

/// The whole number in the environment variable `name`, or `default` when it is unset or not a number.
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}
