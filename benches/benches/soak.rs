//! A soak test over loopback: `SOAK_SECS` seconds (default 600) of mixed traffic against one server (valid,
//! revoked, expired, forged, tampered and garbage tokens, no token, another scheme), checking every answer.
//!
//! It fails when any answer is a 5xx, when any answer is not the one its token must get (status and
//! challenge), or when the process's resident memory grows by more than 10% between the end of the warm-up
//! and the end. The server is `JwtAuthLayer` with an HS256 key, a `MemoryDenylist` and a validated-token
//! cache, on a runtime of its own; the clients are `SOAK_CLIENTS` (default 32) concurrent reqwest tasks.
//! Traffic stays on 127.0.0.1. Run it with `scripts/soak.sh`; it is not part of CI.

#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout, reason = "benchmark code")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use jwtgate::{Algorithm, JwtAuthLayer, Validator, revocation::MemoryDenylist};
use jwtgate_test::TestKey;
use jwtgate_tests::bench::{env_number, rss_kib};
use jwtgate_tests::{AUDIENCE, ISSUER};
use serde_json::Value;

/// The kinds of request, and what each must get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Valid,
    Revoked,
    Expired,
    Forged,
    Tampered,
    Garbage,
    NoToken,
    OtherScheme,
}

const KINDS: [Kind; 8] = [
    Kind::Valid,
    Kind::Revoked,
    Kind::Expired,
    Kind::Forged,
    Kind::Tampered,
    Kind::Garbage,
    Kind::NoToken,
    Kind::OtherScheme,
];

impl Kind {
    /// The status and `WWW-Authenticate` the answer must have (`None`: no challenge).
    fn expected(self) -> (u16, Option<&'static str>) {
        let invalid = |description| Some(description);
        match self {
            Kind::Valid => (200, None),
            Kind::Revoked => {
                (401, invalid(r#"Bearer error="invalid_token", error_description="the token has been revoked""#))
            }
            Kind::Expired => {
                (401, invalid(r#"Bearer error="invalid_token", error_description="the token has expired""#))
            }
            Kind::Forged | Kind::Tampered => {
                (401, invalid(r#"Bearer error="invalid_token", error_description="the token's signature is invalid""#))
            }
            Kind::Garbage => {
                (401, invalid(r#"Bearer error="invalid_token", error_description="the token is malformed""#))
            }
            Kind::NoToken | Kind::OtherScheme => (401, Some("Bearer")),
        }
    }
}

/// Pools of tokens of each kind, made before the run.
struct Tokens {
    valid: Vec<String>,
    revoked: Vec<String>,
    expired: Vec<String>,
    forged: Vec<String>,
    tampered: Vec<String>,
    garbage: Vec<String>,
}

impl Tokens {
    fn new(key: &TestKey, denylist: &MemoryDenylist) -> Self {
        let other = TestKey::generate(Algorithm::HS256);
        fn token(key: &TestKey, i: usize) -> jwtgate_test::TokenBuilder<'_> {
            key.token().issuer(ISSUER).audience(AUDIENCE).subject(&format!("user-{i}")).token_id(&format!("jti-{i}"))
        }
        let valid: Vec<String> =
            (0..2_000).map(|i| token(key, i).expires_in(Duration::from_secs(7_200)).build()).collect();
        let revoked = (10_000..10_200)
            .map(|i| {
                denylist.revoke_now(&format!("jti-{i}"), jwtgate_test::now() + 7_200).unwrap();
                token(key, i).expires_in(Duration::from_secs(7_200)).build()
            })
            .collect();
        let expired = (0..200).map(|i| token(key, i).expired_since(Duration::from_secs(3_600)).build()).collect();
        let forged = (0..200).map(|i| token(&other, i).expires_in(Duration::from_secs(7_200)).build()).collect();
        // One character of the claims set changed for another base64url character: still decodable, so the
        // signature is what refuses it.
        let tampered = valid[..200]
            .iter()
            .map(|token| {
                let mut bytes = token.clone().into_bytes();
                let at = token.find('.').unwrap() + 10;
                bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
                String::from_utf8(bytes).unwrap()
            })
            .collect();
        let garbage = (0..200).map(|i| format!("not-a-token-{i}.{}", "x".repeat(i % 50))).collect();
        Self { valid, revoked, expired, forged, tampered, garbage }
    }

    fn header(&self, kind: Kind, n: usize) -> Option<String> {
        let pick = |pool: &Vec<String>| format!("Bearer {}", pool[n % pool.len()]);
        match kind {
            Kind::Valid => Some(pick(&self.valid)),
            Kind::Revoked => Some(pick(&self.revoked)),
            Kind::Expired => Some(pick(&self.expired)),
            Kind::Forged => Some(pick(&self.forged)),
            Kind::Tampered => Some(pick(&self.tampered)),
            Kind::Garbage => Some(pick(&self.garbage)),
            Kind::NoToken => None,
            Kind::OtherScheme => Some("Basic dXNlcjpwYXNz".to_owned()),
        }
    }
}

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    server_errors: AtomicU64,
    wrong: AtomicU64,
    transport_errors: AtomicU64,
}

fn main() {
    let filters: Vec<String> = std::env::args().skip(1).filter(|arg| !arg.starts_with("--")).collect();
    if filters.iter().any(|filter| !"soak".contains(filter.as_str())) {
        println!("soak: not run for the filter {filters:?}");
        return;
    }
    let secs = env_number("SOAK_SECS", 600);
    let clients = env_number("SOAK_CLIENTS", 32);

    let key = TestKey::generate(Algorithm::HS256);
    let denylist = MemoryDenylist::new();
    let tokens = Arc::new(Tokens::new(&key, &denylist));
    let validator = Validator::builder(key.key_set()).issuer(ISSUER).audience(AUDIENCE).build();
    let layer = JwtAuthLayer::<Value>::new(validator).denylist(denylist).cache(1_000);
    let addr = serve(Router::new().route("/", get(|| async { "ok" })).layer(layer));
    let url = format!("http://{addr}/");

    let counts = Arc::new(Counts::default());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let warm_up = Duration::from_secs(secs.min(30) / 3);
    println!("soak: {secs} s, {clients} clients, 8 kinds of request, server at {addr}");
    let (before, samples) = runtime.block_on(async {
        let client = reqwest::Client::new();
        let end = Instant::now() + Duration::from_secs(secs);
        let tasks: Vec<_> = (0..clients)
            .map(|task| {
                let (client, url, tokens, counts) = (client.clone(), url.clone(), tokens.clone(), counts.clone());
                tokio::spawn(async move {
                    let mut n = task as usize;
                    while Instant::now() < end {
                        // A stride coprime with the number of kinds, so that each task walks through all of them.
                        n = n.wrapping_add(7);
                        let kind = KINDS[n % KINDS.len()];
                        check(&client, &url, &tokens, kind, n / KINDS.len(), &counts).await;
                    }
                })
            })
            .collect();
        tokio::time::sleep(warm_up).await;
        let before = rss_kib();
        let mut samples = Vec::new();
        while Instant::now() < end {
            tokio::time::sleep(Duration::from_secs(10).min(end.saturating_duration_since(Instant::now()))).await;
            samples.push(rss_kib());
        }
        for task in tasks {
            task.await.unwrap();
        }
        (before, samples)
    });
    let after = *samples.last().unwrap_or(&before);
    let peak = samples.iter().copied().max().unwrap_or(before);
    let requests = counts.requests.load(Ordering::Relaxed);
    let growth = (after as f64 / before as f64 - 1.0) * 100.0;
    println!(
        "soak: {requests} requests ({:.0}/s); 5xx {}; wrong answers {}; transport errors {}",
        requests as f64 / secs as f64,
        counts.server_errors.load(Ordering::Relaxed),
        counts.wrong.load(Ordering::Relaxed),
        counts.transport_errors.load(Ordering::Relaxed),
    );
    println!(
        "soak: resident memory {before} KiB after the warm-up, {after} KiB at the end ({growth:+.1}%), peak {peak} KiB"
    );
    assert_eq!(counts.server_errors.load(Ordering::Relaxed), 0, "some answers were 5xx");
    assert_eq!(counts.wrong.load(Ordering::Relaxed), 0, "some answers were wrong");
    assert_eq!(counts.transport_errors.load(Ordering::Relaxed), 0, "some requests got no answer");
    assert!(growth < 10.0, "resident memory grew by {growth:.1}%");
    println!("soak: passed");
}

/// Sends one request of `kind` and checks its answer.
async fn check(client: &reqwest::Client, url: &str, tokens: &Tokens, kind: Kind, n: usize, counts: &Counts) {
    let mut request = client.get(url);
    if let Some(header) = tokens.header(kind, n) {
        request = request.header("authorization", header);
    }
    counts.requests.fetch_add(1, Ordering::Relaxed);
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            counts.transport_errors.fetch_add(1, Ordering::Relaxed);
            eprintln!("soak: {kind:?}: {error}");
            return;
        }
    };
    let status = response.status().as_u16();
    let challenge = response.headers().get("www-authenticate").map(|value| value.to_str().unwrap_or("").to_owned());
    let body = response.text().await.unwrap_or_default();
    if status >= 500 {
        counts.server_errors.fetch_add(1, Ordering::Relaxed);
    }
    let (expected_status, expected_challenge) = kind.expected();
    let right = status == expected_status
        && challenge.as_deref() == expected_challenge
        && (kind != Kind::Valid || body == "ok");
    if !right && counts.wrong.fetch_add(1, Ordering::Relaxed) < 10 {
        eprintln!("soak: {kind:?}: got {status} {challenge:?} {body}");
    }
}

/// Serves `router` on 127.0.0.1 from a thread with a runtime of its own (one worker).
fn serve(router: Router) -> SocketAddr {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            sender.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, router).await.unwrap();
        });
    });
    receiver.recv().unwrap()
}
