//! The memory a replica of revocations takes: the resident memory this process gains when a `MemoryDenylist`
//! (the replica inside `ReplicatedDenylist`) holds one million token ids, then one million subject cutoffs.
//! Run with `cargo bench -p jwtgate-benches --bench memory`.

#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout, reason = "benchmark code")]

use jwtgate::revocation::MemoryDenylist;
use jwtgate_tests::bench::rss_kib;

const ENTRIES: usize = 1_000_000;

fn main() {
    let filters: Vec<String> = std::env::args().skip(1).filter(|arg| !arg.starts_with("--")).collect();
    if filters.iter().any(|filter| !"memory".contains(filter.as_str())) {
        println!("memory: not run for the filter {filters:?}");
        return;
    }
    let until = jwtgate::__private::unix_now() + 3600;
    let before = rss_kib();
    let replica = MemoryDenylist::with_capacity(2 * ENTRIES);
    for i in 0..ENTRIES {
        // A jti as most issuers write it: a UUID, 36 characters.
        replica
            .revoke_now(&format!("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", i, i % 65_536, i % 4096, i % 4096, i), until)
            .unwrap();
    }
    let tokens = rss_kib();
    for i in 0..ENTRIES {
        replica.revoke_subject_now(&format!("user-{i:010}@example.com"), until - 60, until).unwrap();
    }
    let subjects = rss_kib();
    assert_eq!(replica.len(), 2 * ENTRIES);
    println!(
        "memory: {ENTRIES} token ids (36-character UUIDs): +{} MiB; {ENTRIES} subject cutoffs (27-character subjects): +{} MiB",
        (tokens - before) / 1024,
        (subjects - tokens) / 1024
    );
}
