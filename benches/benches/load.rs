//! Requests per second over loopback, measured by `wrk`, and the server's memory under a long run.
//!
//! Each case is an axum server on 127.0.0.1, on a single-threaded tokio runtime (wrk has the other core):
//! - `no_auth`: the handler alone;
//! - `jwtgate`: `JwtAuthLayer` with an HS256 key;
//! - `jwtgate_cached`: the same with a validated-token cache.
//!
//! The cases take turns, `LOAD_ROUNDS` rounds (default 3) of `LOAD_SECS` seconds each (default 10), with the
//! same token, and the median of each case's rounds is reported with its ratio to `no_auth`. Then the soak:
//! `SOAK_SECS` seconds (default 60) of the cached layer against 50,000 distinct tokens, five times its
//! capacity of 10,000, so that the cache fills, evicts and expires all along; the process's resident memory
//! (the server's, since the server runs in it) is read after a warm-up and at the end.
//!
//! Needs `wrk` on the PATH: `scripts/load.sh` installs it and runs this. Traffic stays on 127.0.0.1.

#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout, reason = "benchmark code")]

use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;

use axum::Router;
use axum::routing::get;
use jwtgate::{Algorithm, JwtAuthLayer, KeySet, Validator};
use jwtgate_tests::bench::{BenchClaims, bench_claims, bench_claims_of, env_number, rss_kib};
use jwtgate_tests::{AUDIENCE, ISSUER, TestKey};

const CACHE_CAPACITY: usize = 10_000;
const SOAK_TOKENS: usize = 50_000;

fn main() {
    // `cargo bench` passes `--bench`, and a filter if one was given: this target runs as a whole, and only
    // when no filter is given or the filter names it, so that `cargo bench -- denylist` leaves it out.
    let filters: Vec<String> = std::env::args().skip(1).filter(|arg| !arg.starts_with("--")).collect();
    if filters.iter().any(|filter| !"load".contains(filter.as_str())) {
        println!("load: not run for the filter {filters:?}");
        return;
    }
    let secs = env_number("LOAD_SECS", 10);
    let rounds = env_number("LOAD_ROUNDS", 3);
    let soak_secs = env_number("SOAK_SECS", 60);
    let installed = Command::new("wrk").arg("--version").output();
    assert!(installed.is_ok(), "wrk is not installed: run scripts/load.sh, which installs it");

    let key = TestKey::generate(Algorithm::HS256);
    let validator =
        Validator::builder(KeySet::new([key.verification_key()]).unwrap()).issuer(ISSUER).audience(AUDIENCE).build();
    let layer = JwtAuthLayer::<BenchClaims>::new(validator);
    let token = key.sign(&bench_claims());

    let cases = [
        ("no_auth", serve(router())),
        ("jwtgate", serve(router().layer(layer.clone()))),
        ("jwtgate_cached", serve(router().layer(layer.clone().cache(CACHE_CAPACITY)))),
    ];
    println!("load: {rounds} rounds of {secs} s per case, wrk -t1 -c32, HS256 token of {} bytes", token.len());
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for round in 0..rounds {
        for (i, (name, addr)) in cases.iter().enumerate() {
            let rps = wrk(*addr, secs, &[("authorization", &format!("Bearer {token}"))], None);
            println!("round {round} {name}: {rps:.0} requests/s");
            results[i].push(rps);
        }
    }
    let medians: Vec<f64> = results.iter_mut().map(|rounds| median(rounds)).collect();
    for ((name, _), rps) in cases.iter().zip(&medians) {
        println!("median {name}: {rps:.0} requests/s, {:.2} x no_auth", rps / medians[0]);
    }

    // The soak: many distinct tokens through the cached layer.
    let soak = layer.cache(CACHE_CAPACITY);
    let addr = serve(router().layer(soak.clone()));
    let script = soak_script(&key);
    wrk(addr, 5, &[], Some(&script));
    let before = rss_kib();
    let rps = wrk(addr, soak_secs, &[], Some(&script));
    let after = rss_kib();
    let cached = soak.validated_cache().unwrap().len();
    println!(
        "soak: {soak_secs} s, {SOAK_TOKENS} tokens, {rps:.0} requests/s; RSS {before} KiB after warm-up, {after} KiB \
         at the end ({:+.1}%); {cached} tokens cached (capacity {CACHE_CAPACITY})",
        (after as f64 / before as f64 - 1.0) * 100.0
    );
    assert!(cached <= CACHE_CAPACITY, "the cache holds {cached} tokens");
}

fn router() -> Router {
    Router::new().route("/", get(|| async { "ok" }))
}

/// Serves `router` on 127.0.0.1 from a thread with a single-threaded runtime of its own.
fn serve(router: Router) -> SocketAddr {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            sender.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, router).await.unwrap();
        });
    });
    receiver.recv().unwrap()
}

/// Runs wrk against `addr` for `secs` seconds and returns its requests per second. Every answer must be 200.
fn wrk(addr: SocketAddr, secs: u64, headers: &[(&str, &str)], script: Option<&std::path::Path>) -> f64 {
    let mut command = Command::new("wrk");
    command.args(["-t1", "-c32", &format!("-d{secs}s"), "--timeout", "5s"]);
    for (name, value) in headers {
        command.args(["-H", &format!("{name}: {value}")]);
    }
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    let output = command.arg(format!("http://{addr}/")).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "wrk failed: {stdout} {}", String::from_utf8_lossy(&output.stderr));
    assert!(!stdout.contains("Non-2xx"), "some requests were refused:\n{stdout}");
    let line = stdout.lines().find(|line| line.starts_with("Requests/sec:")).unwrap();
    line.trim_start_matches("Requests/sec:").trim().parse().unwrap()
}

/// A wrk script sending each of `SOAK_TOKENS` distinct tokens in turn.
fn soak_script(key: &TestKey) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("jwtgate-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tokens = dir.join("tokens.txt");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&tokens).unwrap());
    for i in 0..SOAK_TOKENS {
        writeln!(file, "{}", key.sign(&bench_claims_of(&format!("user-{i}")))).unwrap();
    }
    file.flush().unwrap();
    let script = dir.join("tokens.lua");
    std::fs::write(
        &script,
        format!(
            r#"local tokens = {{}}
for line in io.lines("{}") do tokens[#tokens + 1] = line end
local i = math.random(#tokens)
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", "/", {{ ["Authorization"] = "Bearer " .. tokens[i] }})
end
"#,
            tokens.display()
        ),
    )
    .unwrap();
    script
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
