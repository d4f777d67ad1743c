//! The names of the metrics this crate records with its `metrics` feature. Neither a token nor a client
//! secret is ever a label.

/// Calls to the introspection endpoint, a counter labelled `outcome`: `active`, `inactive`, `refused` (an
/// active answer whose claims failed a check: expired, another issuer or audience), or `error` (no usable
/// answer).
pub const INTROSPECTION_CALLS_TOTAL: &str = "jwtgate_introspection_calls_total";

/// The time a call to the introspection endpoint took, in seconds, a histogram labelled `outcome` as above.
pub const INTROSPECTION_CALL_SECONDS: &str = "jwtgate_introspection_call_seconds";

/// Lookups in the cache of answers, a counter labelled `result`: `hit` (an active answer reused),
/// `negative_hit` (a refusal reused), `miss`, or `shared` (a miss that joined a call already under way).
pub const INTROSPECTION_CACHE_TOTAL: &str = "jwtgate_introspection_cache_total";
