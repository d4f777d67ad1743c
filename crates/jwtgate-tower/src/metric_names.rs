//! The names of the metrics `JwtAuthLayer` records with the `metrics` feature, for dashboards and for
//! recorders that describe metrics ahead of time. See `docs/observability.md` for their labels.

/// Requests the layer decided, a counter labelled `outcome` (`authenticated`, `anonymous`, `refused`,
/// `fail_open`) and `reason` (for `refused`, one of
/// [`ErrorKind::NAMES`](jwtgate_core::ErrorKind::NAMES); otherwise empty).
pub const REQUESTS_TOTAL: &str = "jwtgate_requests_total";

/// The time a token's validation took (signature, parse, checks; not the denylist), a histogram in seconds.
pub const VALIDATION_SECONDS: &str = "jwtgate_validation_seconds";

/// Lookups in the layer's cache of validated tokens, a counter labelled `result` (`hit`, `miss`).
pub const CACHE_LOOKUPS_TOTAL: &str = "jwtgate_cache_lookups_total";

/// Denylist lookups that could not be answered, a counter.
pub const DENYLIST_ERRORS_TOTAL: &str = "jwtgate_denylist_errors_total";
