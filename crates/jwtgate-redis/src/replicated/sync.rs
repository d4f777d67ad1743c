//! The sync task of a [`ReplicatedDenylist`](super::ReplicatedDenylist): a snapshot of the revocations,
//! then the stream followed, with every gap caught up by a new snapshot.

use std::sync::Weak;
use std::time::Duration;

use jwtgate_core::{__private::unix_now, DenylistError};
use redis::Value;

use super::{BLOCK, Inner};
use crate::conn::{Conn, Endpoint};
use crate::{DEFAULT_TIMEOUT, within};

/// The sync task: connects, catches up (by resuming or by a snapshot), then follows the stream; after any
/// failure it waits a little and starts over. It ends when the denylist is dropped.
pub(super) async fn sync(inner: Weak<Inner>, endpoint: Endpoint, prefix: String) {
    let mut last_id: Option<String> = None;
    let mut failures = 0u32;
    let mut out_of_sync_logged = false;
    loop {
        let result = follow(&inner, &endpoint, &prefix, &mut last_id, &mut out_of_sync_logged, &mut failures).await;
        let Some(strong) = inner.upgrade() else { return };
        if let Err(error) = result {
            #[cfg(feature = "metrics")]
            if failures == 0 {
                metrics::counter!("jwtgate_denylist_replica_lost_total").increment(1);
                metrics::gauge!("jwtgate_denylist_replica_in_sync").set(0.0);
            }
            failures = failures.saturating_add(1);
            if failures == 1 || failures.is_power_of_two() {
                tracing::warn!(%error, failures, "jwtgate: the replicated denylist lost Redis; reconnecting");
            }
            if !strong.in_sync() && !out_of_sync_logged {
                out_of_sync_logged = true;
                tracing::warn!(fallback = ?strong.fallback, "jwtgate: the replicated denylist is out of sync; falling back");
            }
        }
        drop(strong);
        let backoff = Duration::from_millis(100u64 << failures.min(4));
        tokio::time::sleep(backoff).await;
    }
}

/// One connection's life: catch up, then read the stream until something fails.
async fn follow(
    inner: &Weak<Inner>,
    endpoint: &Endpoint,
    prefix: &str,
    last_id: &mut Option<String>,
    out_of_sync_logged: &mut bool,
    failures: &mut u32,
) -> Result<(), DenylistError> {
    // A connection of its own, which `XREAD BLOCK` may hold: on a cluster, to the node that serves the stream's
    // slot (every key of the denylist shares it), followed through a failover.
    let conn = &Conn::connect_waiting(endpoint, BLOCK).map_err(DenylistError::new)?;
    let Some(strong) = inner.upgrade() else { return Ok(()) };
    let stream = strong.stream.clone();
    // After a disconnection, resume only from a position the stream still follows on from; otherwise (a
    // Redis restarted without its stream, or a replica that never read an event) load a snapshot, which also
    // picks up keys a plain `RedisDenylist` wrote without an event.
    let resumable = match last_id.as_deref() {
        Some(id) if id != "0-0" => match stream_ids(conn, &stream).await? {
            Some(ids) => !stream_missed(&ids, id),
            None => false,
        },
        _ => false,
    };
    if !resumable {
        *last_id = Some(snapshot(&strong, conn, prefix, &stream).await?);
        #[cfg(feature = "metrics")]
        metrics::counter!("jwtgate_denylist_replica_snapshots_total").increment(1);
    }
    strong.heard();
    strong.ready.send_replace(true);
    // Caught up: the next failure starts a new streak, logged and counted, with a short backoff.
    *failures = 0;
    #[cfg(feature = "metrics")]
    metrics::gauge!("jwtgate_denylist_replica_in_sync").set(1.0);
    if *out_of_sync_logged {
        *out_of_sync_logged = false;
        tracing::info!("jwtgate: the replicated denylist is in sync again");
    }
    drop(strong);
    loop {
        let from = last_id.clone().unwrap_or_else(|| "0-0".to_owned());
        let mut read = redis::cmd("XREAD");
        read.arg("COUNT").arg(1000).arg("BLOCK").arg(BLOCK.as_millis() as u64).arg("STREAMS").arg(&stream).arg(&from);
        let reply: Value = within(BLOCK + DEFAULT_TIMEOUT, conn.query(&read)).await?;
        let Some(strong) = inner.upgrade() else { return Ok(()) };
        for (id, fields) in events(reply) {
            apply_event(&strong, &fields);
            *last_id = Some(id);
        }
        // An XREAD from an id that was trimmed away is no error: it returns what is left, and the events in
        // between are gone. So every read, empty ones included (the events may have been added and trimmed
        // between two reads), is followed by a check that nothing after `from` was trimmed.
        if missed(conn, &stream, &from).await? {
            tracing::warn!("jwtgate: the replicated denylist fell behind the stream's trimming; loading a snapshot");
            *last_id = Some(snapshot(&strong, conn, prefix, &stream).await?);
            #[cfg(feature = "metrics")]
            metrics::counter!("jwtgate_denylist_replica_snapshots_total").increment(1);
        }
        strong.heard();
    }
}

/// What `XINFO STREAM` says of the stream's ids, or `None` when there is no stream.
struct StreamIds {
    /// The id of the last entry ever added (`0-0` before any).
    last_generated: String,
    /// The id of the oldest entry still there; `None` when the stream is empty.
    first_entry: Option<String>,
    /// The highest id removed by `XDEL` (Redis 7 and later; trimming does not move it).
    max_deleted: Option<String>,
    /// How many entries the stream holds, and how many were ever added (Redis 7 and later).
    length: u64,
    entries_added: Option<u64>,
}

async fn stream_ids(conn: &Conn, stream: &str) -> Result<Option<StreamIds>, DenylistError> {
    let reply =
        tokio::time::timeout(DEFAULT_TIMEOUT, conn.query::<Value>(redis::cmd("XINFO").arg("STREAM").arg(stream)))
            .await
            .map_err(|_| DenylistError::new(format!("Redis did not answer within {DEFAULT_TIMEOUT:?}")))?;
    let reply: Value = match reply {
        Ok(reply) => reply,
        Err(error) if error.to_string().contains("no such key") => return Ok(None),
        Err(error) => return Err(DenylistError::new(error)),
    };
    let pairs: Vec<(Value, Value)> = match reply {
        Value::Map(pairs) => pairs,
        Value::Array(items) => {
            let mut items = items.into_iter();
            std::iter::from_fn(|| Some((items.next()?, items.next()?))).collect()
        }
        _ => Vec::new(),
    };
    let mut ids = StreamIds {
        last_generated: "0-0".to_owned(),
        first_entry: None,
        max_deleted: None,
        length: 0,
        entries_added: None,
    };
    for (field, value) in pairs {
        match (text(field).as_deref(), value) {
            (Some("last-generated-id"), value) => ids.last_generated = text(value).unwrap_or(ids.last_generated),
            (Some("max-deleted-entry-id"), value) => ids.max_deleted = text(value),
            (Some("length"), Value::Int(length)) => ids.length = u64::try_from(length).unwrap_or(0),
            (Some("entries-added"), Value::Int(added)) => ids.entries_added = u64::try_from(added).ok(),
            // `[id, [field, value, ...]]`, or nil for an empty stream.
            (Some("first-entry"), Value::Array(mut entry)) if !entry.is_empty() => {
                ids.first_entry = text(entry.swap_remove(0));
            }
            _ => {}
        }
    }
    Ok(Some(ids))
}

/// Whether an event after `from` (the position a read started from) may have been removed before it was
/// read: then reading on from `from` lost it, and only a snapshot catches up. Trimming removes the oldest
/// entries first, so nothing after `from` is gone while the oldest entry left is not after `from`; a doubt
/// (the oldest entry left is after `from`, which happens only to an instance about a whole stream behind)
/// counts as a gap, since a snapshot is always safe.
async fn missed(conn: &Conn, stream: &str, from: &str) -> Result<bool, DenylistError> {
    let Some(ids) = stream_ids(conn, stream).await? else {
        // The stream is gone (a restart without persistence, say): only a replica that never saw it is whole.
        return Ok(from != "0-0");
    };
    Ok(stream_missed(&ids, from))
}

fn stream_missed(ids: &StreamIds, from: &str) -> bool {
    if from == ids.last_generated {
        // Nothing was added since `from`.
        return false;
    }
    if id_after(from, &ids.last_generated) {
        // The stream was replaced by a younger one.
        return true;
    }
    if ids.max_deleted.as_deref().is_some_and(|deleted| id_after(deleted, from)) {
        // An entry after `from` was deleted (`XDEL`).
        return true;
    }
    if from == "0-0" {
        // Nothing seen yet: an entry was removed if fewer remain than were ever added (Redis 7 and later).
        return ids.entries_added.is_some_and(|added| added > ids.length);
    }
    match &ids.first_entry {
        // Entries were added after `from`, and none is left.
        None => true,
        Some(first) => id_after(first, from),
    }
}

/// Whether the stream id `a` comes after `b` (`<ms>-<seq>`; a malformed id counts as after, so that a doubt
/// resyncs rather than loses events).
fn id_after(a: &str, b: &str) -> bool {
    let parse =
        |id: &str| id.split_once('-').and_then(|(ms, seq)| Some((ms.parse::<u64>().ok()?, seq.parse::<u64>().ok()?)));
    match (parse(a), parse(b)) {
        (Some(a), Some(b)) => a > b,
        _ => true,
    }
}

/// Loads every live revocation into the replica, and returns the stream id to read on from: the last event
/// before the snapshot began, so that nothing written during it is missed (events seen twice do no harm).
async fn snapshot(inner: &Inner, conn: &Conn, prefix: &str, stream: &str) -> Result<String, DenylistError> {
    // Read on, after the snapshot, from the last id the stream ever generated: every later event is one the
    // snapshot may have missed, and a trim of any of them is seen by `missed`.
    let from = stream_ids(conn, stream).await?.map_or_else(|| "0-0".to_owned(), |ids| ids.last_generated);
    let now = unix_now();
    // The prefix is matched literally (its glob characters escaped), and only string keys are read: other
    // keys under the prefix (a nested prefix's stream, another store's hashes) are not revocations.
    let pattern = format!("{}*", glob_escape(prefix));
    let mut cursor = 0u64;
    loop {
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(1000).arg("TYPE").arg("string");
        // On a cluster, the node that serves the stream's slot holds every key of the denylist.
        let (next, keys): (u64, Vec<String>) = within(DEFAULT_TIMEOUT, conn.query_at(stream, scan)).await?;
        let keys: Vec<String> = keys.into_iter().filter(|key| key.as_str() != stream).collect();
        if !keys.is_empty() {
            let mut pipeline = redis::pipe();
            for key in &keys {
                pipeline.get(key).ttl(key);
            }
            // Values are read as text: a key under the prefix that is not ours must not stop the snapshot.
            let values: Vec<(Option<String>, i64)> = within(DEFAULT_TIMEOUT, conn.pipeline(&pipeline)).await?;
            for (key, (value, ttl)) in keys.iter().zip(values) {
                let until = match ttl {
                    // Gone since the scan.
                    -2 => continue,
                    // No expiry (jwtgate always sets one): kept for a day, rather than dropped.
                    -1 => now.saturating_add(86_400),
                    ttl => now.saturating_add(ttl),
                };
                let value = value.and_then(|value| value.parse::<i64>().ok());
                if let Some(jti) = key.strip_prefix(prefix).and_then(|rest| rest.strip_prefix("jti:")) {
                    inner.apply(inner.replica.revoke_now(jti, until));
                } else if let (Some(subject), Some(cutoff)) =
                    (key.strip_prefix(prefix).and_then(|rest| rest.strip_prefix("sub:")), value)
                {
                    inner.apply(inner.replica.revoke_subject_now(subject, cutoff, until));
                }
            }
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    Ok(from)
}

/// `text` as a `SCAN MATCH` pattern that matches it literally: `*`, `?`, `[`, `]` and `\\` escaped.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Applies one stream event to the replica.
fn apply_event(inner: &Inner, fields: &[(String, String)]) {
    let field = |name: &str| fields.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str());
    let until = field("until").and_then(|until| until.parse::<i64>().ok());
    match (field("k"), field("v"), until) {
        (Some("jti"), Some(jti), Some(until)) => inner.apply(inner.replica.revoke_now(jti, until)),
        (Some("sub"), Some(subject), Some(until)) => {
            if let Some(cutoff) = field("cut").and_then(|cut| cut.parse::<i64>().ok()) {
                inner.apply(inner.replica.revoke_subject_now(subject, cutoff, until));
            }
        }
        _ => tracing::warn!("jwtgate: skipping a malformed event in the denylist stream"),
    }
}

/// The entries of an `XREAD` reply: `[[stream, [[id, [field, value, ...]], ...]], ...]` (RESP2), as (id,
/// fields). Anything else gives nothing.
fn events(reply: Value) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let streams = match reply {
        Value::Array(streams) => streams,
        Value::Map(pairs) => pairs.into_iter().map(|(key, value)| Value::Array(vec![key, value])).collect(),
        _ => return out,
    };
    for stream in streams {
        let Value::Array(mut parts) = stream else { continue };
        let Some(Value::Array(entries)) = parts.pop() else { continue };
        for entry in entries {
            let Value::Array(mut entry) = entry else { continue };
            if entry.len() != 2 {
                continue;
            }
            let fields = entry.pop();
            let id = entry.pop();
            let (Some(id), Some(Value::Array(fields))) = (id.and_then(text), fields) else { continue };
            let fields: Vec<String> = fields.into_iter().filter_map(text).collect();
            let pairs = fields.chunks_exact(2).map(|pair| (pair[0].clone(), pair[1].clone())).collect();
            out.push((id, pairs));
        }
    }
    out
}

fn text(value: Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes).ok(),
        Value::SimpleString(text) => Some(text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_compare_by_time_then_sequence() {
        assert!(id_after("2-0", "1-5"));
        assert!(id_after("1-6", "1-5"));
        assert!(!id_after("1-5", "1-5"));
        assert!(!id_after("0-0", "1-0"));
        assert!(id_after("garbage", "1-0"), "a doubt resyncs");
    }

    fn ids(last: &str, first: Option<&str>, length: u64, added: u64) -> StreamIds {
        StreamIds {
            last_generated: last.to_owned(),
            first_entry: first.map(str::to_owned),
            max_deleted: Some("0-0".to_owned()),
            length,
            entries_added: Some(added),
        }
    }

    #[test]
    fn a_gap_is_any_entry_after_the_read_position_that_is_gone() {
        // Nothing new, or new entries all still there: no gap.
        assert!(!stream_missed(&ids("5-0", Some("1-0"), 5, 5), "5-0"));
        assert!(!stream_missed(&ids("9-0", Some("1-0"), 9, 9), "5-0"));
        assert!(!stream_missed(&ids("9-0", Some("5-0"), 5, 9), "5-0"), "trimmed up to the position only");
        // Entries after the position trimmed away, or all of them.
        assert!(stream_missed(&ids("9-0", Some("8-0"), 2, 9), "5-0"));
        assert!(stream_missed(&ids("9-0", None, 0, 9), "5-0"));
        // A stream replaced by a younger one, and an XDEL after the position.
        assert!(stream_missed(&ids("3-0", Some("1-0"), 3, 3), "5-0"));
        let mut deleted = ids("9-0", Some("1-0"), 8, 9);
        deleted.max_deleted = Some("7-0".to_owned());
        assert!(stream_missed(&deleted, "5-0"));
        // From the start: a gap only if something was ever removed.
        assert!(!stream_missed(&ids("3-0", Some("1-0"), 3, 3), "0-0"));
        assert!(stream_missed(&ids("3-0", None, 0, 3), "0-0"));
    }

    #[test]
    fn glob_characters_of_a_prefix_are_escaped() {
        assert_eq!(glob_escape(r"app:[a]*?\x:"), r"app:\[a\]\*\?\\x:");
        assert_eq!(glob_escape("jwtgate:denylist:"), "jwtgate:denylist:");
    }
}
