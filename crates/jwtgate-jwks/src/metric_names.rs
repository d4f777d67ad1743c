//! The names of the metrics this crate records with its `metrics` feature.

/// Fetches of a remote JWK Set, a counter labelled `result` (`ok`, `error`, or `panic` for a fetch that
/// panicked and was contained).
pub const FETCHES_TOTAL: &str = "jwtgate_jwks_fetches_total";
