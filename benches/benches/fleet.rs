//! A fleet soak: three demo processes on one real Redis Cluster (three primaries, three replicas), mixed
//! traffic spread over them, revocations through random instances, and a primary killed and restarted midway.
//! Reports requests by status, wrong answers (which must be zero), the propagation of revocations between
//! instances (p50, p99), and each process's resident memory. Not part of CI: run it with `scripts/soak-fleet.sh`.
//!
//! - `FLEET_SECS` (default 300): how long the traffic runs; the primary is killed at a third, restarted at half.
//! - `FLEET_CLIENTS` (default 16): concurrent clients.
//! - `FLEET_MODE` (default `replicated`): the demo's `JWTGATE_REDIS_MODE`.
//! - `FLEET_WAIT_REPLICAS` (default 1): the demo's `JWTGATE_REDIS_WAIT_REPLICAS`.
//! - `FLEET_DEMO`: the demo binary (`scripts/soak-fleet.sh` builds it in release mode).
//!
//! A wrong answer: 200 for a token whose logout was confirmed (204) before the request was sent; 401 for a
//! token never logged out; any status other than 200, 401, 204 or 503. A token whose logout got 503 may be
//! revoked or not (the write is kept on the primary when too few replicas confirm it): it is not used again. 503 is allowed: the contract lets a request
//! that needs the failing shard answer it while the cluster elects a new primary.

#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout, reason = "benchmark code")]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jwtgate::Algorithm;
use jwtgate::redis::DEFAULT_PREFIX;
use jwtgate_tests::bench::env_number;
use jwtgate_tests::{RedisCluster, TestKey, now};
use serde_json::json;

#[derive(Default)]
struct Tally {
    by_status: Mutex<BTreeMap<String, usize>>,
    wrong: AtomicUsize,
    wrong_examples: Mutex<Vec<String>>,
    propagation: Mutex<Vec<Duration>>,
}

impl Tally {
    fn count(&self, what: &str) {
        *self.by_status.lock().unwrap().entry(what.to_owned()).or_default() += 1;
    }

    fn wrong(&self, example: String) {
        self.wrong.fetch_add(1, Ordering::Relaxed);
        let mut examples = self.wrong_examples.lock().unwrap();
        if examples.len() < 10 {
            examples.push(example);
        }
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

async fn status(client: &reqwest::Client, base: &str, method: &str, token: &str) -> u16 {
    let request = match method {
        "POST" => client.post(format!("{base}/logout")),
        _ => client.get(format!("{base}/me")),
    };
    match request.bearer_auth(token).timeout(Duration::from_secs(10)).send().await {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(run());
}

#[allow(clippy::too_many_lines, reason = "one scenario, read top to bottom")]
async fn run() {
    let Ok(demo) = std::env::var("FLEET_DEMO") else {
        println!("fleet: not run; scripts/soak-fleet.sh builds the demo and sets FLEET_DEMO");
        return;
    };
    let secs = env_number("FLEET_SECS", 300);
    let clients = env_number("FLEET_CLIENTS", 16) as usize;
    let mode = std::env::var("FLEET_MODE").unwrap_or_else(|_| "replicated".to_owned());
    let wait_replicas = env_number("FLEET_WAIT_REPLICAS", 1).to_string();

    let mut cluster = RedisCluster::start();
    let key = Arc::new(TestKey::generate(Algorithm::HS256).with_kid("fleet"));
    let dir = std::env::temp_dir().join(format!("jwtgate-fleet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, json!({ "keys": [key.jwk()] }).to_string()).unwrap();
    let urls = cluster.urls().join(",");
    let mut demos = Vec::new();
    for _ in 0..3 {
        let mut command = tokio::process::Command::new(&demo);
        command
            .env("JWTGATE_ADDR", "127.0.0.1:0")
            .env("JWTGATE_JWKS_FILE", &jwks)
            .env("JWTGATE_REDIS_CLUSTER_URLS", &urls)
            .env("JWTGATE_REDIS_MODE", &mode)
            .env("JWTGATE_REDIS_WAIT_REPLICAS", &wait_replicas)
            .env("RUST_LOG", "warn");
        demos.push(jwtgate_tests::start_listening(command).await);
    }
    // The demo says `listening on <address>`; other examples say a URL.
    let bases: Arc<Vec<String>> = Arc::new(
        demos
            .iter()
            .map(|(_, at)| {
                let at = at.trim_end_matches('/');
                if at.starts_with("http") { at.to_owned() } else { format!("http://{at}") }
            })
            .collect(),
    );
    let pids: Vec<u32> = demos.iter().map(|(child, _)| child.id().unwrap()).collect();
    // Warm up, then the memory the processes start from.
    let client = reqwest::Client::new();
    let warm = key.sign(
        &json!({ "iss": "jwtgate-demo", "aud": "jwtgate-demo", "sub": "warm", "exp": now() + 3600, "jti": "warm" }),
    );
    for base in bases.iter() {
        let waiting = Instant::now();
        while status(&client, base, "GET", &warm).await != 200 {
            assert!(waiting.elapsed() < Duration::from_secs(30), "{base} did not accept a token within 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let rss_before: Vec<u64> = pids.iter().map(|pid| rss_kib(*pid)).collect();
    println!(
        "fleet: {secs} s, {clients} clients, 3 demos ({mode}, WAIT_REPLICAS {wait_replicas}) on a cluster of 3 primaries \
         and 3 replicas"
    );

    let tally = Arc::new(Tally::default());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for worker in 0..clients {
        let (tally, bases, key, next) = (tally.clone(), bases.clone(), key.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            // Each client's own tokens: live ones, and those whose logout was confirmed.
            let mut live: Vec<String> = Vec::new();
            let mut revoked: Vec<String> = Vec::new();
            let mut turn = worker;
            while Instant::now() < deadline {
                turn = turn.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let base = &bases[(turn >> 8) % bases.len()];
                let n = next.fetch_add(1, Ordering::Relaxed);
                let kind = if live.is_empty() { 0 } else { (turn >> 4) % 10 };
                match kind {
                    // A new token, used once.
                    0..=4 => {
                        let token = key.sign(&json!({
                            "iss": "jwtgate-demo", "aud": "jwtgate-demo", "sub": format!("user-{n}"),
                            "exp": now() + 3600, "jti": format!("t-{worker}-{n}"),
                        }));
                        match status(&client, base, "GET", &token).await {
                            200 => tally.count("200"),
                            503 => tally.count("503"),
                            other => tally.wrong(format!("{other} for a fresh token")),
                        }
                        live.push(token);
                    }
                    // A live token again.
                    5..=6 => {
                        let token = &live[(turn >> 12) % live.len()];
                        match status(&client, base, "GET", token).await {
                            200 => tally.count("200"),
                            503 => tally.count("503"),
                            other => tally.wrong(format!("{other} for a token never revoked")),
                        }
                    }
                    // A logout through this instance; once confirmed, the time until every other answers 401.
                    7 => {
                        let token = live.swap_remove((turn >> 12) % live.len());
                        match status(&client, base, "POST", &token).await {
                            204 => {
                                tally.count("204");
                                let confirmed = Instant::now();
                                let mut reached = Duration::ZERO;
                                for other in bases.iter().filter(|other| *other != base) {
                                    loop {
                                        match status(&client, other, "GET", &token).await {
                                            401 => break,
                                            // Not yet replicated: tried again; a 200 here is not wrong yet.
                                            200 | 503 => tokio::time::sleep(Duration::from_millis(1)).await,
                                            other => {
                                                tally.wrong(format!("{other} while a revocation propagates"));
                                                break;
                                            }
                                        }
                                        if confirmed.elapsed() > Duration::from_secs(10) {
                                            tally.wrong("a revocation did not reach another instance in 10 s".into());
                                            break;
                                        }
                                    }
                                    reached = reached.max(confirmed.elapsed());
                                }
                                tally.propagation.lock().unwrap().push(reached);
                                revoked.push(token);
                            }
                            // Not confirmed: the revocation may hold on the primary anyway (the contract says it is
                            // not undone), so the token is neither live nor surely revoked, and is not used again.
                            503 => tally.count("503"),
                            other => tally.wrong(format!("{other} for a logout")),
                        }
                    }
                    // A revoked token: never 200, on any instance.
                    _ => {
                        if let Some(token) = revoked.get((turn >> 12) % revoked.len().max(1)) {
                            match status(&client, base, "GET", token).await {
                                401 => tally.count("401"),
                                503 => tally.count("503"),
                                other => tally.wrong(format!("{other} for a revoked token")),
                            }
                        }
                    }
                }
            }
        }));
    }
    // A primary killed at a third of the run, restarted at half: in replicated mode the one that holds the
    // denylist's slot (its keys and its stream), otherwise the one that holds the first client's revocations.
    tokio::time::sleep(Duration::from_secs(secs / 3)).await;
    let victim = if mode == "replicated" {
        cluster.primary_of(&format!("{{{DEFAULT_PREFIX}}}stream"))
    } else {
        cluster.primary_of(&format!("{DEFAULT_PREFIX}jti:t-0-0"))
    };
    cluster.kill(victim);
    let killed_at = started.elapsed();
    tokio::time::sleep(Duration::from_secs(secs / 2 - secs / 3)).await;
    cluster.restart(victim);
    let restarted_at = started.elapsed();
    for task in tasks {
        task.await.unwrap();
    }
    let rss_after: Vec<u64> = pids.iter().map(|pid| rss_kib(*pid)).collect();

    let by_status = tally.by_status.lock().unwrap().clone();
    let requests: usize = by_status.values().sum::<usize>() + tally.wrong.load(Ordering::Relaxed);
    let mut propagation = tally.propagation.lock().unwrap().clone();
    propagation.sort();
    let percentile = |p: usize| propagation.get(propagation.len() * p / 100).copied().unwrap_or_default();
    println!("fleet: primary on port {victim} killed at {killed_at:.0?}, restarted at {restarted_at:.0?}");
    println!("fleet: {requests} requests ({:.0}/s): {by_status:?}", requests as f64 / secs as f64);
    println!(
        "fleet: propagation of {} revocations to both other instances: p50 {:?}, p99 {:?}, max {:?}",
        propagation.len(),
        percentile(50),
        percentile(99),
        propagation.last().copied().unwrap_or_default()
    );
    for (i, (before, after)) in rss_before.iter().zip(&rss_after).enumerate() {
        println!(
            "fleet: demo {i} RSS {before} KiB -> {after} KiB ({:+.1}%)",
            (*after as f64 - *before as f64) * 100.0 / (*before).max(1) as f64
        );
    }
    let wrong = tally.wrong.load(Ordering::Relaxed);
    println!("fleet: wrong answers: {wrong} {:?}", tally.wrong_examples.lock().unwrap());
    drop(demos);
    drop(cluster);
    let _ = std::fs::remove_dir_all(dir);
    assert_eq!(wrong, 0, "wrong answers");
}
