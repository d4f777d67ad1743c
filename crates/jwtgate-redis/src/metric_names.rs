//! The names of the metrics [`ReplicatedDenylist`](crate::ReplicatedDenylist) records with the `metrics`
//! feature.

/// Snapshots the replica loaded (at startup, and after a gap it could not resume), a counter.
pub const REPLICA_SNAPSHOTS_TOTAL: &str = "jwtgate_denylist_replica_snapshots_total";

/// 1 while the replica's sync task follows the stream, 0 from when it loses Redis: a gauge.
pub const REPLICA_IN_SYNC: &str = "jwtgate_denylist_replica_in_sync";

/// The times the replica's sync task lost Redis, a counter.
pub const REPLICA_LOST_TOTAL: &str = "jwtgate_denylist_replica_lost_total";

/// Lookups answered by the fallback while the replica was not trusted, a counter labelled `fallback`
/// (`closed`, `redis`).
pub const REPLICA_FALLBACKS_TOTAL: &str = "jwtgate_denylist_replica_fallbacks_total";
