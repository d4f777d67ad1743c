//! The demo, driven from outside as examples/demo/README.md describes it: a real process, real HTTP.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jwtgate::Algorithm;
use jwtgate::jwe::{ContentEncryption, KeyManagement};
use jwtgate_test::{Fault, IntrospectionServer, JweKey, JwksServer};
use jwtgate_tests::{RedisCluster, RedisServer, TestKey, now};
use rustix::process::{Pid, Signal};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

struct Demo {
    child: Child,
    base: String,
    stdout: Vec<String>,
    /// Everything the demo has logged so far (it logs to stderr), read as it comes so that it never blocks.
    stderr: Arc<Mutex<String>>,
    /// The task that reads it: it ends once the demo has exited and the log is whole.
    log_reader: tokio::task::JoinHandle<()>,
}

impl Demo {
    /// Starts the demo on a free port and waits for its `listening on` line.
    async fn start(vars: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_jwtgate-demo"));
        command.env("JWTGATE_ADDR", "127.0.0.1:0").stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        for (name, value) in vars {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut log = BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = stderr.clone();
        let log_reader = tokio::spawn(async move {
            while let Ok(Some(line)) = log.next_line().await {
                let mut sink = sink.lock().unwrap();
                sink.push_str(&line);
                sink.push('\n');
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut stdout = Vec::new();
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let line = lines.next_line().await.unwrap().expect("demo exited before listening");
                if let Some(addr) = line.strip_prefix("listening on ") {
                    return addr.to_owned();
                }
                stdout.push(line);
            }
        })
        .await
        .expect("demo did not start");
        Self { child, base: format!("http://{addr}"), stdout, stderr, log_reader }
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap, Value) {
        let answer = jwtgate_tests::get(&reqwest::Client::new(), &format!("{}{path}", self.base), headers).await;
        (answer.status, answer.headers, answer.body)
    }

    async fn post(&self, path: &str, token: &str) -> u16 {
        let response = reqwest::Client::new().post(format!("{}{path}", self.base)).bearer_auth(token).send().await;
        response.unwrap().status().as_u16()
    }

    /// `GET /me` with `token` as a bearer token: the status, the headers and the body.
    async fn bearer_me(&self, token: &str) -> (u16, reqwest::header::HeaderMap, Value) {
        self.get("/me", &[("authorization", &format!("Bearer {token}"))]).await
    }

    async fn me(&self, token: &str) -> (u16, Value) {
        let (status, _, body) = self.bearer_me(token).await;
        (status, body)
    }

    /// Sends SIGTERM and returns the exit status.
    async fn stop(self) -> i32 {
        self.stop_with(Signal::TERM).await
    }

    /// Sends `signal` and returns the exit status; a process ended by the signal itself has
    /// none, and fails the test.
    async fn stop_with(self, signal: Signal) -> i32 {
        self.stop_and_log(signal).await.0
    }

    /// Sends `signal`, and returns the exit status and the whole log, read to its end.
    async fn stop_and_log(mut self, signal: Signal) -> (i32, String) {
        let pid = Pid::from_raw(i32::try_from(self.child.id().unwrap()).unwrap()).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.unwrap().unwrap();
        let code =
            status.code().unwrap_or_else(|| panic!("{signal:?} killed the demo instead of stopping it: {status:?}"));
        tokio::time::timeout(Duration::from_secs(10), self.log_reader).await.unwrap().unwrap();
        let log = self.stderr.lock().unwrap().clone();
        (code, log)
    }

    /// The URL of the demo's metadata (RFC 9728), with the default resource: its own origin.
    fn metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource", self.base)
    }

    /// A `Bearer` challenge with `attributes` and the `resource_metadata` every challenge carries.
    fn challenge(&self, attributes: &str) -> String {
        let metadata = format!(r#"resource_metadata="{}""#, self.metadata_url());
        if attributes.is_empty() { format!("Bearer {metadata}") } else { format!("Bearer {attributes}, {metadata}") }
    }

    /// What the demo has logged so far.
    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

async fn misconfigured(vars: &[(&str, &str)]) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_jwtgate-demo"));
    command.env("JWTGATE_ADDR", "127.0.0.1:0").envs(vars.iter().copied()).kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(20), command.output())
        .await
        .unwrap_or_else(|_| panic!("the demo started with {vars:?} instead of refusing the configuration"))
        .unwrap();
    (output.status.code().unwrap(), String::from_utf8(output.stderr).unwrap())
}

/// A fresh temp dir holding `jwks.json` with these keys' JWKs; returns the dir and the file's path.
fn jwks_file(name: &str, keys: &[&TestKey]) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("jwtgate-demo-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("jwks.json");
    std::fs::write(&file, json!({ "keys": keys.iter().map(|key| key.jwk()).collect::<Vec<_>>() }).to_string()).unwrap();
    let path = file.to_str().unwrap().to_owned();
    (dir, path)
}

fn demo_claims() -> Value {
    json!({ "iss": "jwtgate-demo", "aud": "jwtgate-demo", "sub": "alice", "exp": now() + 300, "jti": "j1" })
}

#[tokio::test]
async fn with_no_configuration_it_prints_a_working_token_and_a_curl_line() {
    let demo = Demo::start(&[]).await;
    let token = demo.stdout.iter().find(|line| line.matches('.').count() == 2 && !line.contains(' ')).unwrap().clone();
    assert!(demo.stdout.iter().any(|line| line.starts_with("curl ") && line.contains(&token) && line.contains("/me")));
    let (status, body) = demo.me(&token).await;
    assert_eq!(status, 200);
    assert_eq!(body["sub"], "demo");
    assert_eq!(body["roles"], json!(["admin"]));
    assert!(body["jti"].is_string() && body["exp"].as_i64().unwrap() > now() + 800);
    let (status, _, _) = demo.get("/health", &[]).await;
    assert_eq!(status, 200);
    assert!(demo.log().contains("for development only"), "the ephemeral key is announced: {}", demo.log());
    assert_eq!(demo.stop().await, 0);
}

#[tokio::test]
async fn it_accepts_each_key_of_a_jwks_file_and_follows_the_error_contract() {
    let keys: Vec<TestKey> = [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA]
        .map(|alg| TestKey::generate(alg).with_kid(alg.as_str()))
        .into();
    let (dir, file) = jwks_file("jwks", &keys.iter().collect::<Vec<_>>());
    let demo = Demo::start(&[("JWTGATE_JWKS_FILE", &file)]).await;
    assert!(demo.stdout.is_empty(), "no sample token with a configured key set: {:?}", demo.stdout);

    for key in &keys {
        // One set of claims: the expected `exp` must be the token's, even across a second boundary.
        let claims = demo_claims();
        let (status, body) = demo.me(&key.sign(&claims)).await;
        assert_eq!(status, 200, "{:?}: {body}", key.alg());
        assert_eq!(
            body,
            json!({ "sub": "alice", "jti": "j1", "exp": claims["exp"], "iss": "jwtgate-demo", "aud": ["jwtgate-demo"], "roles": [] })
        );
    }
    let mut no_sub = demo_claims();
    no_sub.as_object_mut().unwrap().remove("sub");
    let (status, body) = demo.me(&keys[0].sign(&no_sub)).await;
    assert_eq!((status, &body["sub"]), (200, &Value::Null));

    let (status, headers, body) = demo.get("/me", &[]).await;
    assert_eq!((status, headers["www-authenticate"].to_str().unwrap()), (401, demo.challenge("").as_str()));
    assert_eq!(body["error_description"], "no bearer token was sent");
    let mut expired = demo_claims();
    expired["exp"] = json!(now() - 60);
    let (status, headers, body) =
        demo.get("/me", &[("authorization", &format!("bearer {}", keys[1].sign(&expired)))]).await;
    assert_eq!(status, 401);
    assert_eq!(
        headers["www-authenticate"].to_str().unwrap(),
        demo.challenge(r#"error="invalid_token", error_description="the token has expired""#)
    );
    assert_eq!(body, json!({ "error": "invalid_token", "error_description": "the token has expired" }));

    let good = keys[2].sign(&demo_claims());
    let cookie = format!("access_token={good}");
    let (status, _, _) = demo.get("/me", &[("cookie", &cookie)]).await;
    assert_eq!(status, 200, "the cookie is a token source");
    let (status, _, body) = demo.get("/me", &[("authorization", "Bearer nope"), ("cookie", &cookie)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token")),
        "a bad header is not rescued by the cookie"
    );

    let mut admin = demo_claims();
    admin["roles"] = json!(["user", "admin"]);
    let (status, _, body) = demo.get("/admin", &[("authorization", &format!("Bearer {}", keys[1].sign(&admin)))]).await;
    assert_eq!((status, &body["sub"]), (200, &json!("alice")));
    for claims in [demo_claims(), json!({ "roles": ["user"], "scope": "admin" })] {
        let mut claims_ = demo_claims();
        claims_.as_object_mut().unwrap().extend(claims.as_object().unwrap().clone());
        let bearer = format!("Bearer {}", keys[3].sign(&claims_));
        let (status, headers, body) = demo.get("/admin", &[("authorization", &bearer)]).await;
        assert_eq!(status, 403, "{body}");
        assert!(headers["www-authenticate"].to_str().unwrap().starts_with(r#"Bearer error="insufficient_scope""#));
        assert_eq!(body["error"], "insufficient_scope");
    }
    let (status, headers, _) = demo.get("/admin", &[]).await;
    assert_eq!((status, headers["www-authenticate"].to_str().unwrap()), (401, demo.challenge("").as_str()));

    let unknown = TestKey::generate(Algorithm::HS256).with_kid("HS256-other");
    assert_eq!(demo.me(&unknown.sign(&demo_claims())).await.0, 401);
    assert_eq!(demo.stop().await, 0);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn misconfigurations_stop_it_with_status_2_and_one_line() {
    let dir = std::env::temp_dir().join(format!("jwtgate-demo-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let oct = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"; // 32 test-only bytes
    let cases = [
        (write("nojson.json", "{not json"), "not valid JSON"),
        (write("nokid.json", &format!(r#"{{"keys":[{{"kty":"oct","alg":"HS256","k":"{oct}"}}]}}"#)), "has no kid"),
        (write("noalg.json", &format!(r#"{{"keys":[{{"kty":"oct","kid":"a","k":"{oct}"}}]}}"#)), "has no alg"),
        (
            write("badalg.json", &format!(r#"{{"keys":[{{"kty":"oct","kid":"a","alg":"HS999","k":"{oct}"}}]}}"#)),
            "unsupported alg",
        ),
        (
            write("misfit.json", &format!(r#"{{"keys":[{{"kty":"oct","kid":"a","alg":"RS256","k":"{oct}"}}]}}"#)),
            "does not fit",
        ),
        (write("short.json", r#"{"keys":[{"kty":"oct","kid":"a","alg":"HS256","k":"c2hvcnQ"}]}"#), "at least 32"),
        (
            write(
                "dup.json",
                &format!(
                    r#"{{"keys":[{{"kty":"oct","kid":"a","alg":"HS256","k":"{oct}"}},{{"kty":"oct","kid":"a","alg":"HS256","k":"{oct}"}}]}}"#
                ),
            ),
            "two keys have the kid",
        ),
        (dir.join("missing.json").to_str().unwrap().to_owned(), "cannot read"),
    ];
    for (path, expected) in &cases {
        let (code, stderr) = misconfigured(&[("JWTGATE_JWKS_FILE", path)]).await;
        assert_eq!(code, 2, "{path}: {stderr}");
        assert!(stderr.contains(expected), "{path}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(!stderr.contains(oct), "the secret leaked: {stderr}");
    }
    for vars in [
        vec![("JWTGATE_OIDC_ISSUER", "https://a.test"), ("JWTGATE_JWKS_URL", "https://b.test/jwks")],
        vec![("JWTGATE_OIDC_ISSUER", "https://a.test"), ("JWTGATE_ISSUER", "https://b.test")],
        vec![("JWTGATE_REDIS_URL", "not a url, with a secret")],
        vec![("JWTGATE_JWKS_URL", "http://idp.test/jwks")],
        vec![("JWTGATE_OIDC_ISSUER", "ftp://idp.test")],
        vec![("JWTGATE_JWKS_REFRESH_SECS", "0")],
        vec![("JWTGATE_REDIS_MODE", "replicated")],
        vec![("JWTGATE_LEEWAY_SECS", "soon")],
        vec![("JWTGATE_PUBLIC_URL", "https://api.test/with/a/path")],
        vec![("JWTGATE_PUBLIC_URL", "https://api.test"), ("JWTGATE_RESOURCE", "https://other.test/api")],
        vec![("JWTGATE_RESOURCE", "https://api.test/r#secret")],
        vec![("JWTGATE_STEP_UP_MAX_AGE_SECS", "five minutes")],
        vec![("JWTGATE_REDIS_URL", "redis://127.0.0.1:1/"), ("JWTGATE_REDIS_CLUSTER_URLS", "redis://127.0.0.1:2/")],
        vec![("JWTGATE_REDIS_CLUSTER_URLS", "redis://:secret@127.0.0.1:2/,not a url with a secret")],
        vec![("JWTGATE_REDIS_WAIT_REPLICAS", "1")],
        vec![("JWTGATE_REDIS_URL", "redis://127.0.0.1:1/"), ("JWTGATE_REDIS_WAIT_REPLICAS", "some")],
    ] {
        let (code, stderr) = misconfigured(&vars).await;
        assert_eq!(code, 2, "{vars:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(!stderr.contains("secret"), "the URL leaked: {stderr}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn its_size_limit_and_leeway_are_configurable() {
    let key = TestKey::generate(Algorithm::HS256).with_kid("k");
    let (dir, file) = jwks_file("limits", &[&key]);
    let demo = Demo::start(&[
        ("JWTGATE_JWKS_FILE", &file),
        ("JWTGATE_MAX_TOKEN_BYTES", "400"),
        ("JWTGATE_LEEWAY_SECS", "0"),
        ("JWTGATE_ISSUER", "https://other.test"),
        ("JWTGATE_AUDIENCE", "x,y"),
        ("JWTGATE_COOKIE", "session"),
    ])
    .await;
    let claims = json!({ "iss": "https://other.test", "aud": ["y"], "exp": now() + 60 });
    assert_eq!(demo.me(&key.sign(&claims)).await.0, 200);
    let mut big = claims.clone();
    big["pad"] = json!("p".repeat(400));
    assert_eq!(demo.me(&key.sign(&big)).await.1["error_description"], "the token is too large");
    let mut late = claims.clone();
    late["exp"] = json!(now() - 2);
    assert_eq!(demo.me(&key.sign(&late)).await.1["error_description"], "the token has expired");
    let (status, _, _) = demo.get("/me", &[("cookie", &format!("session={}", key.sign(&claims)))]).await;
    assert_eq!(status, 200);
    assert_eq!(demo.stop().await, 0);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn logout_revokes_the_token_everywhere_and_a_forged_token_revokes_nothing() {
    let key = TestKey::generate(Algorithm::ES256).with_kid("k");
    let (dir, file) = jwks_file("logout", &[&key]);
    let demo = Demo::start(&[("JWTGATE_JWKS_FILE", &file)]).await;

    let mut claims = demo_claims();
    claims["roles"] = json!(["admin"]);
    let token = key.sign(&claims);
    assert_eq!(demo.me(&token).await.0, 200);

    let forger = TestKey::generate(Algorithm::ES256).with_kid("k");
    assert_eq!(demo.post("/logout", &forger.sign(&claims)).await, 401, "a forged token is refused");
    assert_eq!(demo.me(&token).await.0, 200, "and revokes nothing");

    assert_eq!(demo.post("/logout", &token).await, 204);
    let (status, body) = demo.me(&token).await;
    assert_eq!((status, body["error_description"].as_str()), (401, Some("the token has been revoked")));
    let (status, _, _) = demo.get("/admin", &[("authorization", &format!("Bearer {token}"))]).await;
    assert_eq!(status, 401, "revoked on every route");
    assert_eq!(demo.post("/logout", &token).await, 401);

    let mut other = demo_claims();
    other["jti"] = json!("j2");
    assert_eq!(demo.me(&key.sign(&other)).await.0, 200, "other tokens are untouched");
    assert_eq!(demo.stop().await, 0);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn with_redis_a_logout_reaches_every_instance_and_an_outage_fails_closed() {
    let key = TestKey::generate(Algorithm::HS256).with_kid("k");
    let (dir, file) = jwks_file("redis", &[&key]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut redis = RedisServer::start_persistent(port, &dir);
    let vars = [("JWTGATE_JWKS_FILE", file), ("JWTGATE_REDIS_URL", redis.url())];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (a, b) = (Demo::start(&vars).await, Demo::start(&vars).await);

    let token = key.sign(&demo_claims());
    let mut other = demo_claims();
    other["jti"] = json!("j2");
    let other = key.sign(&other);
    assert_eq!((a.me(&token).await.0, b.me(&token).await.0), (200, 200));
    assert_eq!(a.post("/logout", &token).await, 204);
    assert_eq!((a.me(&token).await.0, b.me(&token).await.0), (401, 401), "revoked on every instance");

    redis.stop();
    let (status, headers, _) = b.bearer_me(&other).await;
    assert_eq!(status, 503, "never 200 for an unchecked token");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(b.post("/logout", &other).await, 503, "never 204 while the store is down");
    assert_eq!(b.get("/me", &[]).await.0, 401, "a request without a token needs no store");
    // A demo started while the store is down starts normally and answers 503.
    let c = Demo::start(&vars).await;
    assert_eq!(c.me(&other).await.0, 503);

    let _redis = RedisServer::start_persistent(port, &dir);
    let back = Instant::now();
    while b.me(&other).await.0 != 200 || c.me(&other).await.0 != 200 {
        assert!(back.elapsed() < Duration::from_secs(5), "service did not resume within 5 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(c.me(&token).await.0, 401, "the revocation made before the outage still holds");

    // A store that does not answer within 2 s counts as down: 503, not a request held until it answers.
    let mut control = _redis.connection().unwrap();
    redis::cmd("CLIENT").arg("PAUSE").arg(10_000).arg("ALL").exec(&mut control).unwrap();
    let asked = Instant::now();
    let (status, headers, _) = b.bearer_me(&other).await;
    assert_eq!((status, headers["retry-after"].to_str().unwrap()), (503, "5"));
    assert!(asked.elapsed() < Duration::from_secs(4), "answered after {:?}", asked.elapsed());
    assert_eq!(b.post("/logout", &other).await, 503);
    until_status(&b, &other, 200, &[503], Duration::from_secs(15)).await;
    assert_eq!(b.me(&token).await.0, 401);
    for demo in [a, b, c] {
        assert_eq!(demo.stop().await, 0);
    }
    drop(_redis);
    std::fs::remove_dir_all(dir).unwrap();
}

/// The keys of the contract's JWE section: every required `alg` (the `ECDH-ES` ones on P-256, and on P-384
/// and X25519 too), and a `dir` key for each content key length.
fn jwe_keys() -> Vec<JweKey> {
    let mut keys = Vec::new();
    for alg in [KeyManagement::RsaOaep256, KeyManagement::A128Kw, KeyManagement::A256Kw] {
        keys.push(JweKey::generate(alg));
    }
    for alg in [KeyManagement::EcdhEs, KeyManagement::EcdhEsA128Kw, KeyManagement::EcdhEsA256Kw] {
        for curve in ["P-256", "P-384", "X25519"] {
            keys.push(JweKey::generate_on(alg, curve).with_kid(&format!("{alg}-{curve}")));
        }
    }
    for enc in ContentEncryption::ALL {
        keys.push(JweKey::generate_dir(enc).with_kid(&format!("dir-{enc}")));
    }
    keys
}

/// The content encryptions a key can encrypt with: all, but a `dir` key's own (its JWK's `enc`).
fn encryptions(key: &JweKey) -> Vec<ContentEncryption> {
    ContentEncryption::ALL
        .into_iter()
        .filter(|enc| key.alg() != KeyManagement::Dir || key.private_jwk()["enc"] == enc.name())
        .collect()
}

/// `token` with its JWE protected header changed by `change` (the tag no longer matches: the header is the AAD).
fn with_jwe_header(token: &str, change: impl Fn(&mut serde_json::Map<String, Value>)) -> String {
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (header, rest) = token.split_once('.').unwrap();
    let mut json: serde_json::Map<String, Value> = serde_json::from_slice(&engine.decode(header).unwrap()).unwrap();
    change(&mut json);
    format!("{}.{rest}", engine.encode(serde_json::to_vec(&json).unwrap()))
}

#[tokio::test]
async fn encrypted_tokens_follow_the_contract() {
    let signer = TestKey::generate(Algorithm::ES256).with_kid("sig");
    let (dir, file) = jwks_file("jwe", &[&signer]);
    let keys = jwe_keys();
    let jwe_file = dir.join("jwe.json");
    let set = json!({ "keys": keys.iter().map(|key| key.private_jwk().clone()).collect::<Vec<_>>() });
    std::fs::write(&jwe_file, set.to_string()).unwrap();
    let jwe_file = jwe_file.to_str().unwrap().to_owned();
    let vars =
        [("JWTGATE_JWKS_FILE", file.as_str()), ("JWTGATE_JWE_KEYS_FILE", &jwe_file), ("JWTGATE_JWE_REQUIRED", "true")];
    let demo = Demo::start(&vars).await;
    let jws = signer.sign(&demo_claims());

    // Every key, with every content encryption it can use: decrypted, then validated.
    for key in &keys {
        for enc in encryptions(key) {
            let (status, body) = demo.me(&key.encrypt(&jws, enc)).await;
            assert_eq!((status, body["sub"].as_str()), (200, Some("alice")), "{} {enc}", key.kid());
        }
    }
    // Not encrypted: 401.
    let answer = demo.bearer_me(&jws).await;
    assert_invalid_token(&demo, answer, "the token must be encrypted");

    // Every failure up to the inner signature: 401 with one and the same description.
    let wrap = keys.iter().find(|key| key.alg() == KeyManagement::A256Kw).unwrap();
    let token = wrap.encrypt(&jws, ContentEncryption::A256Gcm);
    let unsigned = format!(
        "{}.{}.",
        jwtgate_test::b64(r#"{"alg":"none","typ":"JWT"}"#),
        jwtgate_test::b64(demo_claims().to_string())
    );
    let stranger = TestKey::generate(Algorithm::ES256).with_kid("sig");
    let mut tampered: Vec<u8> = token.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let failures = [
        ("RSA1_5", with_jwe_header(&token, |h| drop(h.insert("alg".into(), "RSA1_5".into())))),
        ("zip", with_jwe_header(&token, |h| drop(h.insert("zip".into(), "DEF".into())))),
        ("an unknown crit", with_jwe_header(&token, |h| drop(h.insert("crit".into(), json!(["x"]))))),
        ("another alg for the key", with_jwe_header(&token, |h| drop(h.insert("alg".into(), "A128KW".into())))),
        ("an unknown kid", with_jwe_header(&token, |h| drop(h.insert("kid".into(), "nobody".into())))),
        ("a tampered tag", tampered),
        ("an unsigned token inside", wrap.encrypt(&unsigned, ContentEncryption::A256Gcm)),
        ("a JWE inside", wrap.encrypt(&token, ContentEncryption::A256Gcm)),
        ("a signature by another key", wrap.encrypt(&stranger.sign(&demo_claims()), ContentEncryption::A256Gcm)),
    ];
    for (failure, forged) in &failures {
        let answer = demo.bearer_me(forged).await;
        assert_eq!(answer.0, 401, "{failure}");
        assert_invalid_token(&demo, answer, "the encrypted token could not be decrypted and verified");
    }
    // A verified token that fails a claim check says so.
    let mut expired = demo_claims();
    expired["exp"] = json!(now() - 600);
    let answer = demo.bearer_me(&wrap.encrypt(&signer.sign(&expired), ContentEncryption::A256Gcm)).await;
    assert_invalid_token(&demo, answer, "the token has expired");
    // Logout revokes the token inside, whichever way it travels.
    assert_eq!(demo.post("/logout", &token).await, 204);
    assert_eq!(demo.me(&token).await.0, 401);
    assert_eq!(demo.stop().await, 0);

    // Without JWTGATE_JWE_REQUIRED: encrypted and plain tokens side by side.
    let mixed = Demo::start(&vars[..2]).await;
    let mut fresh = demo_claims();
    fresh["jti"] = json!("j2");
    let plain = signer.sign(&fresh);
    assert_eq!(mixed.me(&plain).await.0, 200);
    assert_eq!(mixed.me(&wrap.encrypt(&plain, ContentEncryption::A128CbcHs256)).await.0, 200);
    assert_eq!(mixed.stop().await, 0);

    // Required, beside an introspection endpoint that would vouch for an opaque token: the opaque token is not
    // encrypted, so it gets 401 too, and the endpoint is never asked.
    let endpoint = IntrospectionServer::start().await;
    endpoint.activate("opaque-token", introspected(json!({})));
    let url = endpoint.url();
    let mut with_endpoint = vars.to_vec();
    with_endpoint.push(("JWTGATE_INTROSPECTION_URL", &url));
    let strict = Demo::start(&with_endpoint).await;
    let answer = strict.bearer_me("opaque-token").await;
    assert_invalid_token(&strict, answer, "the token must be encrypted");
    assert_eq!(strict.me(&wrap.encrypt(&plain, ContentEncryption::A256Gcm)).await.0, 200);
    assert_eq!(endpoint.calls(), 0, "the endpoint was asked");
    assert!(strict.log().contains("the introspection endpoint is not used"), "{}", strict.log());
    assert_eq!(strict.stop().await, 0);

    // Misconfigurations: exit 2, one line, no key material.
    let secret = wrap.private_jwk()["k"].as_str().unwrap().to_owned();
    let bad_file = dir.join("bad-jwe.json");
    let mut bad = wrap.private_jwk().clone();
    bad["use"] = "sig".into();
    std::fs::write(&bad_file, json!({ "keys": [bad] }).to_string()).unwrap();
    let bad_file = bad_file.to_str().unwrap().to_owned();
    let rsa1_5 = dir.join("rsa1_5.json");
    let mut old = keys[0].private_jwk().clone();
    old["alg"] = "RSA1_5".into();
    std::fs::write(&rsa1_5, json!({ "keys": [old] }).to_string()).unwrap();
    let rsa1_5 = rsa1_5.to_str().unwrap().to_owned();
    for vars in [
        vec![("JWTGATE_JWKS_FILE", file.as_str()), ("JWTGATE_JWE_REQUIRED", "yes")],
        vec![("JWTGATE_JWKS_FILE", file.as_str()), ("JWTGATE_JWE_REQUIRED", "true")],
        vec![("JWTGATE_JWKS_FILE", file.as_str()), ("JWTGATE_JWE_KEYS_FILE", "/nonexistent/jwe.json")],
        vec![("JWTGATE_JWKS_FILE", file.as_str()), ("JWTGATE_JWE_KEYS_FILE", &bad_file)],
        vec![("JWTGATE_JWKS_FILE", file.as_str()), ("JWTGATE_JWE_KEYS_FILE", &rsa1_5)],
        vec![("JWTGATE_JWKS_FILE", file.as_str()), ("JWTGATE_JWE_KEYS_FILE", &file)],
        // Introspection alone has no keys for the signed tokens inside encrypted ones.
        vec![("JWTGATE_INTROSPECTION_URL", url.as_str()), ("JWTGATE_JWE_KEYS_FILE", &jwe_file)],
    ] {
        let (code, stderr) = misconfigured(&vars).await;
        assert_eq!(code, 2, "{vars:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains("JWTGATE_JWE_"), "{stderr}");
        assert!(!stderr.contains(&secret), "key material leaked: {stderr}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// `rediss://`: TLS to Redis, the server's certificate checked against the platform's authorities, which a
/// private authority joins through `SSL_CERT_FILE`. A server the demo cannot trust is never talked to: 503.
#[tokio::test]
async fn with_rediss_the_store_is_reached_over_tls_and_an_untrusted_server_fails_closed() {
    let key = TestKey::generate(Algorithm::HS256).with_kid("k");
    let (dir, file) = jwks_file("rediss", &[&key]);
    let files = jwtgate_tests::RedisTlsFiles::new(&["127.0.0.1"]);
    let redis = RedisServer::start_tls(&files, "no");
    let url = redis.tls_url();
    let ca = files.path("ca.pem");
    let trusting = [("JWTGATE_JWKS_FILE", file.as_str()), ("JWTGATE_REDIS_URL", &url), ("SSL_CERT_FILE", &ca)];
    let demo = Demo::start(&trusting).await;
    let token = key.sign(&demo_claims());
    assert_eq!(demo.me(&token).await.0, 200);
    assert_eq!(demo.post("/logout", &token).await, 204);
    assert_eq!(demo.me(&token).await.0, 401);
    let mut connection = redis.connection().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("jwtgate:*").query(&mut connection).unwrap();
    assert_eq!(keys, ["jwtgate:denylist:jti:j1"], "the revocation went through the TLS port");

    // Another authority in `SSL_CERT_FILE`: the demo starts, and answers 503 for every token, never 200.
    let other = jwtgate_tests::RedisTlsFiles::new(&["127.0.0.1"]);
    let other_ca = other.path("ca.pem");
    let untrusting = [("JWTGATE_JWKS_FILE", file.as_str()), ("JWTGATE_REDIS_URL", &url), ("SSL_CERT_FILE", &other_ca)];
    let stranger = Demo::start(&untrusting).await;
    let mut fresh = demo_claims();
    fresh["jti"] = json!("j2");
    let fresh = key.sign(&fresh);
    let (status, headers, _) = stranger.bearer_me(&fresh).await;
    assert_eq!(status, 503);
    assert!(headers.contains_key("retry-after"));
    assert_eq!(stranger.post("/logout", &fresh).await, 503);
    let log = stranger.log();
    assert!(!log.contains(&fresh) && !log.contains("BEGIN"), "{log}");
    for demo in [demo, stranger] {
        assert_eq!(demo.stop().await, 0);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Asks for `/me` until it answers 200, for at most 10 s (a hung test fails; it never passes).
async fn until_accepted(demo: &Demo, token: &str) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while demo.me(token).await.0 != 200 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the demo accepted the token within 10 s");
}

#[track_caller]
fn assert_invalid_token(demo: &Demo, answer: (u16, reqwest::header::HeaderMap, Value), description: &str) {
    let (status, headers, body) = answer;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        headers["www-authenticate"],
        demo.challenge(&format!(r#"error="invalid_token", error_description="{description}""#)).as_str()
    );
    assert_eq!(body, json!({ "error": "invalid_token", "error_description": description }));
}

#[tokio::test]
async fn with_a_remote_jwks_it_listens_at_once_answers_503_until_the_keys_arrive_and_follows_rotation() {
    let key = TestKey::generate(Algorithm::RS256).with_kid("r1");
    let server = JwksServer::start(json!({ "keys": [key.jwk()] })).await;
    server.set_fault(Fault::Status(500));
    let demo = Demo::start(&[("JWTGATE_JWKS_URL", &server.jwks_url())]).await;
    let token = key.sign(&demo_claims());
    let bearer = format!("Bearer {token}");

    let (status, headers, body) = demo.get("/me", &[("authorization", &bearer)]).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(headers["retry-after"], "5");
    assert!(headers.get("www-authenticate").is_none());
    assert_eq!(
        body,
        json!({
            "error": "temporarily_unavailable",
            "error_description": "the signing keys are unavailable; try again later",
        })
    );
    assert_eq!(demo.get("/health", &[]).await.0, 200, "routes without a token do not wait for keys");

    server.set_fault(Fault::None);
    until_accepted(&demo, &token).await;
    assert_eq!(demo.me(&token).await.1["sub"], "alice");

    // A key rotated in is accepted on first sight.
    let fetches = server.fetches();
    let new = TestKey::generate(Algorithm::EdDSA).with_kid("r2");
    server.set_keys(json!({ "keys": [new.jwk(), key.jwk()] }));
    assert_eq!(demo.me(&new.sign(&demo_claims())).await.0, 200);
    assert_eq!(server.fetches(), fetches + 1, "one fetch for the new kid");
    assert_eq!(demo.me(&token).await.0, 200, "the old key is still published");

    // An unknown kid is refused.
    let stranger = TestKey::generate(Algorithm::RS256).with_kid("r3");
    assert_invalid_token(
        &demo,
        demo.bearer_me(&stranger.sign(&demo_claims())).await,
        "the token's signing key is unknown",
    );
    assert_eq!(demo.stop().await, 0);
}

#[tokio::test]
async fn remote_oct_keys_and_keys_without_alg_are_never_trusted() {
    let remote = TestKey::generate(Algorithm::ES256).with_kid("e1");
    let secret = TestKey::generate(Algorithm::HS256).with_kid("h1");
    let no_alg = TestKey::generate(Algorithm::RS256).with_kid("r1");
    let mut no_alg_jwk = no_alg.jwk();
    no_alg_jwk.as_object_mut().unwrap().remove("alg");
    let server = JwksServer::start(json!({ "keys": [remote.jwk(), secret.jwk(), no_alg_jwk] })).await;
    let demo = Demo::start(&[("JWTGATE_JWKS_URL", &server.jwks_url())]).await;
    until_accepted(&demo, &remote.sign(&demo_claims())).await;
    for skipped in [&secret, &no_alg] {
        assert_invalid_token(
            &demo,
            demo.bearer_me(&skipped.sign(&demo_claims())).await,
            "the token's signing key is unknown",
        );
    }
    assert_eq!(demo.stop().await, 0);
}

#[tokio::test]
async fn the_refresh_interval_and_the_cooldown_are_configurable() {
    let key = TestKey::generate(Algorithm::ES256).with_kid("e1");
    let server = JwksServer::start(json!({ "keys": [key.jwk()] })).await;
    let demo = Demo::start(&[("JWTGATE_JWKS_URL", &server.jwks_url()), ("JWTGATE_JWKS_REFRESH_SECS", "1")]).await;
    until_accepted(&demo, &key.sign(&demo_claims())).await;
    // The background refresh runs every second.
    tokio::time::timeout(Duration::from_secs(10), async {
        while server.fetches() < 3 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("three fetches within 10 s at a 1 s interval");
    assert_eq!(demo.stop().await, 0);

    // Unknown kids start one fetch per cooldown (the default refresh, 5 minutes, stays out of the way): with
    // a 1 s cooldown, the first one fetches, the next is refused at once, and one after the cooldown (which
    // the default 10 s would still hold back) fetches again.
    let server = JwksServer::start(json!({ "keys": [key.jwk()] })).await;
    let demo = Demo::start(&[("JWTGATE_JWKS_URL", &server.jwks_url()), ("JWTGATE_JWKS_COOLDOWN_SECS", "1")]).await;
    until_accepted(&demo, &key.sign(&demo_claims())).await;
    let running = &demo;
    let unknown = |kid: &str| {
        let stranger = TestKey::generate(Algorithm::ES256).with_kid(kid).sign(&demo_claims());
        async move {
            assert_invalid_token(running, running.bearer_me(&stranger).await, "the token's signing key is unknown")
        }
    };
    let fetches = server.fetches();
    unknown("x1").await;
    let first = Instant::now();
    unknown("x2").await;
    assert_eq!(server.fetches(), fetches + 1, "one fetch for two unknown kids within the cooldown");
    // Let the configured cooldown pass: the time itself is what is tested.
    tokio::time::sleep(Duration::from_millis(1200).saturating_sub(first.elapsed())).await;
    unknown("x3").await;
    assert_eq!(server.fetches(), fetches + 2, "the next unknown kid after the cooldown fetches again");
    assert_eq!(demo.stop().await, 0);
}

#[tokio::test]
async fn with_an_oidc_issuer_it_discovers_the_keys_and_requires_that_issuer() {
    let key = TestKey::generate(Algorithm::ES256).with_kid("o1");
    let server = JwksServer::start(json!({ "keys": [key.jwk()] })).await;
    let issuer = server.issuer();
    let demo = Demo::start(&[("JWTGATE_OIDC_ISSUER", &issuer), ("JWTGATE_JWKS_COOLDOWN_SECS", "1")]).await;
    let mut claims = demo_claims();
    claims["iss"] = json!(issuer);
    until_accepted(&demo, &key.sign(&claims)).await;
    assert_eq!(server.discoveries(), 1);
    assert_invalid_token(&demo, demo.bearer_me(&key.sign(&demo_claims())).await, "the token's issuer is not accepted");
    assert_eq!(demo.stop().await, 0);
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_never_trusted() {
    let key = TestKey::generate(Algorithm::ES256).with_kid("o1");
    let server = JwksServer::start(json!({ "keys": [key.jwk()] })).await;
    server.set_discovered_issuer("https://evil.test");
    let issuer = server.issuer();
    let demo = Demo::start(&[("JWTGATE_OIDC_ISSUER", &issuer)]).await;
    let mut claims = demo_claims();
    claims["iss"] = json!(issuer);
    // Wait for discovery to have been tried, then check that nothing was trusted.
    tokio::time::timeout(Duration::from_secs(10), async {
        while server.discoveries() == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap();
    let (status, headers, body) = demo.bearer_me(&key.sign(&claims)).await;
    assert_eq!((status, headers["retry-after"].to_str().unwrap()), (503, "5"));
    assert!(headers.get("www-authenticate").is_none());
    assert_eq!(
        body,
        json!({
            "error": "temporarily_unavailable",
            "error_description": "the signing keys are unavailable; try again later",
        })
    );
    assert_eq!(server.fetches(), 0, "the JWK Set of an untrusted document is never fetched");
    assert_eq!(demo.stop().await, 0);
}

#[tokio::test]
async fn a_jwks_file_and_a_remote_jwks_combine() {
    let local = TestKey::generate(Algorithm::HS256).with_kid("local");
    let (dir, file) = jwks_file("combined", &[&local]);
    let remote = TestKey::generate(Algorithm::RS256).with_kid("remote");
    let server = JwksServer::start(json!({ "keys": [remote.jwk()] })).await;
    let demo = Demo::start(&[("JWTGATE_JWKS_FILE", &file), ("JWTGATE_JWKS_URL", &server.jwks_url())]).await;
    until_accepted(&demo, &remote.sign(&demo_claims())).await;
    assert_eq!(demo.me(&local.sign(&demo_claims())).await.0, 200);
    assert_eq!(demo.stop().await, 0);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_cookie_logout_needs_a_same_origin_request_when_a_browser_sends_it() {
    let key = TestKey::generate(Algorithm::HS256).with_kid("k");
    let (dir, file) = jwks_file("csrf", &[&key]);
    let demo = Demo::start(&[("JWTGATE_JWKS_FILE", &file)]).await;
    let client = reqwest::Client::new();
    let logout = |token: String, headers: &'static [(&'static str, &'static str)]| {
        let mut request =
            client.post(format!("{}/logout", demo.base)).header("cookie", format!("access_token={token}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };
    let mut claims = demo_claims();
    claims["jti"] = json!("forged-target");
    let token = key.sign(&claims);
    // A cross-site form post carries the cookie: refused, and the token stays valid.
    let response =
        logout(token.clone(), &[("sec-fetch-site", "cross-site"), ("origin", "https://evil.test")]).await.unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.headers().get("www-authenticate").is_none());
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(
        body,
        json!({ "error": "csrf_rejected", "error_description": "the request's origin may not use the session cookie" })
    );
    assert_eq!(demo.me(&token).await.0, 200, "the forged logout revoked nothing");
    // The app's own page, and a client that is not a browser, may log out with the cookie.
    assert_eq!(logout(token.clone(), &[("sec-fetch-site", "same-origin")]).await.unwrap().status(), 204);
    assert_eq!(demo.me(&token).await.0, 401);
    let mut claims = demo_claims();
    claims["jti"] = json!("plain-client");
    let other = key.sign(&claims);
    assert_eq!(logout(other.clone(), &[]).await.unwrap().status(), 204);
    assert_eq!(demo.me(&other).await.0, 401);
    assert_eq!(demo.stop().await, 0);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_signal_sent_the_moment_it_listens_stops_it_with_status_0() {
    // The signal goes out as soon as the test reads `listening on`: the handlers must already be in place.
    for signal in [Signal::INT, Signal::TERM].repeat(5) {
        let demo = Demo::start(&[]).await;
        assert_eq!(demo.stop_with(signal).await, 0, "{signal:?}");
    }
    let key = TestKey::generate(Algorithm::RS256).with_kid("r1");
    let server = JwksServer::start(json!({ "keys": [key.jwk()] })).await;
    for signal in [Signal::INT, Signal::TERM] {
        let demo = Demo::start(&[("JWTGATE_JWKS_URL", &server.jwks_url())]).await;
        assert_eq!(demo.stop_with(signal).await, 0, "with remote keys, {signal:?}");
    }
}

#[tokio::test]
async fn a_cold_start_serves_the_first_request_with_the_keys_of_the_first_fetch() {
    let key = TestKey::generate(Algorithm::ES256).with_kid("e1");
    let server = JwksServer::start(json!({ "keys": [key.jwk()] })).await;
    // A provider that answers in about a second: the first request arrives while the first fetch runs.
    server.set_fault(Fault::Delay(Duration::from_secs(1)));
    let demo = Demo::start(&[("JWTGATE_JWKS_URL", &server.jwks_url())]).await;
    // The first fetch has not been answered yet: the request below can only be served by waiting for it.
    assert!(server.in_flight() == 1 || server.fetches() == 0, "the first fetch is still running");
    let (status, body) = demo.me(&key.sign(&demo_claims())).await;
    assert_eq!((status, &body["sub"]), (200, &json!("alice")), "{body}");
    assert_eq!(server.fetches(), 1, "the request joined the first fetch");
    assert_eq!(demo.stop().await, 0);
}

#[tokio::test]
async fn a_provider_that_hangs_holds_a_cold_request_5_s_at_most_then_503() {
    let key = TestKey::generate(Algorithm::ES256).with_kid("e1");
    let server = JwksServer::start(json!({ "keys": [key.jwk()] })).await;
    server.set_fault(Fault::Delay(Duration::from_secs(60)));
    let demo = Demo::start(&[("JWTGATE_JWKS_URL", &server.jwks_url())]).await;
    let started = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(8), demo.bearer_me(&key.sign(&demo_claims())))
        .await
        .expect("answered within the bound");
    assert_eq!((answer.0, answer.1["retry-after"].to_str().unwrap()), (503, "5"));
    assert!(started.elapsed() >= Duration::from_secs(5), "it waited for the fetch first: {:?}", started.elapsed());
    assert_eq!(
        answer.2,
        json!({
            "error": "temporarily_unavailable",
            "error_description": "the signing keys are unavailable; try again later",
        })
    );
    assert_eq!(demo.stop().await, 0);
}

#[tokio::test]
async fn its_token_rules_follow_the_contract() {
    let (key, other) =
        (TestKey::generate(Algorithm::RS256).with_kid("k1"), TestKey::generate(Algorithm::RS256).with_kid("k2"));
    let (dir, file) = jwks_file("rules", &[&key, &other]);
    let demo = Demo::start(&[("JWTGATE_JWKS_FILE", &file), ("RUST_LOG", "debug")]).await;
    let bearer = |token: &str| format!("Bearer {token}");
    let mut tokens = Vec::new();

    // `typ` is not pinned.
    for typ in [Some("JWT"), Some("at+jwt"), None] {
        let mut header = json!({ "alg": "RS256", "kid": "k1" });
        if let Some(typ) = typ {
            header["typ"] = json!(typ);
        }
        let token = key.sign_raw(&header.to_string(), &demo_claims().to_string());
        assert_eq!(demo.me(&token).await.0, 200, "typ {typ:?}");
        tokens.push(token);
    }
    // `aud` as an array with one match; `sub` and `jti` optional (a token without `jti` is accepted).
    let mut claims = demo_claims();
    claims["aud"] = json!(["other", "jwtgate-demo"]);
    claims.as_object_mut().unwrap().remove("jti");
    let token = key.sign(&claims);
    let (status, body) = demo.me(&token).await;
    assert_eq!((status, &body["jti"], &body["roles"]), (200, &Value::Null, &json!([])));
    tokens.push(token);

    // A key accepts exactly its own `alg`: an ES256 token naming the RS256 key is refused.
    let es256 = TestKey::generate(Algorithm::ES256);
    let mismatch = es256.sign_raw(&json!({ "alg": "ES256", "kid": "k1" }).to_string(), &demo_claims().to_string());
    assert_invalid_token(&demo, demo.bearer_me(&mismatch).await, "the token's algorithm does not match its key");
    tokens.push(mismatch);
    // A token is checked against the key its `kid` names only: signed by k2 but naming k1, it is refused.
    let impostor = other.sign_raw(&json!({ "alg": "RS256", "kid": "k1" }).to_string(), &demo_claims().to_string());
    assert_invalid_token(&demo, demo.bearer_me(&impostor).await, "the token's signature is invalid");
    tokens.push(impostor);

    // Required claims, and registered claims of the wrong type (null included), are refused as invalid.
    for (claim, value, description) in [
        ("exp", None, "the token has no exp claim"),
        ("iss", None, "the token has no iss claim"),
        ("aud", None, "the token has no aud claim"),
        ("exp", Some(Value::Null), "the token's exp claim is not a number"),
        ("iss", Some(json!(7)), "the token's iss claim is not a string"),
        ("aud", Some(json!([1])), "the token's aud claim is not a string or an array of strings"),
        ("sub", Some(Value::Null), "the token's sub claim is not a string"),
        ("nbf", Some(json!(now() + 120)), "the token is not valid yet"),
        ("iat", Some(json!(now() + 120)), "the token was issued in the future"),
        ("iss", Some(json!("https://evil.test")), "the token's issuer is not accepted"),
        ("aud", Some(json!("other")), "the token's audience is not accepted"),
    ] {
        let mut claims = demo_claims();
        match value {
            Some(value) => claims[claim] = value,
            None => drop(claims.as_object_mut().unwrap().remove(claim)),
        }
        let token = key.sign(&claims);
        assert_invalid_token(&demo, demo.bearer_me(&token).await, description);
        tokens.push(token);
    }

    // No credentials, or another scheme: a bare challenge.
    for headers in [vec![], vec![("authorization", "Basic YWxpY2U6cHc=")]] {
        let (status, headers, body) = demo.get("/me", &headers).await;
        assert_eq!((status, headers["www-authenticate"].to_str().unwrap()), (401, demo.challenge("").as_str()));
        assert_eq!(body, json!({ "error": "unauthorized", "error_description": "no bearer token was sent" }));
    }
    // A valid token without the role: 403 with the JSON body.
    let (status, headers, body) = demo.get("/admin", &[("authorization", &bearer(&tokens[0]))]).await;
    assert_eq!(status, 403);
    assert!(headers["www-authenticate"].to_str().unwrap().starts_with(r#"Bearer error="insufficient_scope""#));
    assert_eq!(body["error"], "insufficient_scope");
    assert!(body["error_description"].is_string());

    // However malformed or large, a token, header or cookie gets a 4xx, never a 5xx.
    let huge = "a".repeat(20_000);
    let garbage = [
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        "Bearer a.b".to_owned(),
        "Bearer a.b.c.d".to_owned(),
        "Bearer !!!.$$$.%%%".to_owned(),
        format!("Bearer {huge}"),
        format!("Bearer {huge}.{huge}.{huge}"),
        "Bearer eyJhbGciOiJub25lIn0.e30.".to_owned(),
    ];
    for value in &garbage {
        let (status, _, _) = demo.get("/me", &[("authorization", value)]).await;
        assert!((400..500).contains(&status), "{value:.40}: {status}");
    }
    for cookie in [format!("access_token={huge}"), "access_token=".to_owned(), "access_token=a.b.c".to_owned()] {
        let (status, _, _) = demo.get("/me", &[("cookie", &cookie)]).await;
        assert!((400..500).contains(&status), "{cookie:.40}: {status}");
    }

    // Logs, at debug level, never hold a token (nor its signature): read once the demo has exited.
    let (code, log) = demo.stop_and_log(Signal::INT).await;
    assert_eq!(code, 0);
    assert!(log.contains("jwtgate: request not authenticated"), "the demo logged its refusals at debug level");
    for token in &tokens {
        let signature = token.rsplit('.').next().unwrap();
        assert!(!log.contains(token.as_str()) && !log.contains(signature), "a token was logged");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Polls `token` on `demos` until `until` has passed, every 20 ms; it must never get 200.
async fn never_accepted(demos: &[&Demo], token: &str, until: Instant) {
    while Instant::now() < until {
        for demo in demos {
            let (status, body) = demo.me(token).await;
            assert_ne!(status, 200, "a revoked token was accepted: {body}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asks `demo` for `/me` with `token` until it answers `status`, for at most `within`; returns how long that
/// took. Every other answer on the way must be one of `allowed`.
async fn until_status(demo: &Demo, token: &str, status: u16, allowed: &[u16], within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let (got, body) = demo.me(token).await;
        if got == status {
            return started.elapsed();
        }
        assert!(allowed.contains(&got), "unexpected {got}: {body}");
        assert!(started.elapsed() < within, "no {status} within {within:?}; last {got}: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn replicated_revocations_reach_every_instance_and_outages_never_admit_a_revoked_token() {
    let key = TestKey::generate(Algorithm::HS256).with_kid("k");
    let (dir, file) = jwks_file("replicated", &[&key]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut redis = RedisServer::start_persistent(port, &dir);
    let stale = Duration::from_secs(2);
    let vars = [
        ("JWTGATE_JWKS_FILE", file),
        ("JWTGATE_REDIS_URL", redis.url()),
        ("JWTGATE_REDIS_MODE", "replicated".to_owned()),
        ("JWTGATE_REDIS_STALE_SECS", stale.as_secs().to_string()),
    ];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (a, b) = (Demo::start(&vars).await, Demo::start(&vars).await);
    let token_with = |jti: &str| {
        let mut claims = demo_claims();
        claims["jti"] = json!(jti);
        key.sign(&claims)
    };
    let (revoked, good) = (token_with("revoked"), token_with("good"));
    // Each replica loads its snapshot before it answers from memory.
    until_status(&a, &good, 200, &[503], Duration::from_secs(10)).await;
    until_status(&b, &good, 200, &[503], Duration::from_secs(10)).await;

    // A logout through one instance reaches the other.
    assert_eq!(a.post("/logout", &revoked).await, 204);
    assert_eq!(a.me(&revoked).await.0, 401, "at once on the instance that revoked it");
    until_status(&b, &revoked, 401, &[200], Duration::from_secs(2)).await;
    assert_eq!(b.me(&revoked).await.1["error_description"], "the token has been revoked");

    // Redis is killed: each instance may answer from its replica for the staleness window, then 503; the
    // revoked token is never accepted.
    redis.stop();
    let down = Instant::now();
    let waited = until_status(&b, &good, 503, &[200], stale + Duration::from_secs(3)).await;
    assert!(waited <= stale + Duration::from_secs(2), "answered from a stale replica for {waited:?}");
    let (status, headers, _) = b.bearer_me(&good).await;
    assert_eq!((status, headers["retry-after"].to_str().unwrap()), (503, "5"));
    assert_eq!(b.post("/logout", &good).await, 503, "never 204 while the store is down");
    assert_eq!(b.get("/me", &[]).await.0, 401, "a request without a token needs no store");
    never_accepted(&[&a, &b], &revoked, down + stale + Duration::from_secs(1)).await;
    // An instance started during the outage starts and answers 503 until it has its snapshot.
    let c = Demo::start(&vars).await;
    assert_eq!(c.me(&good).await.0, 503);

    // Redis restarts: service resumes within 5 s, and the revocation made before the outage holds.
    redis = RedisServer::start_persistent(port, &dir);
    for demo in [&a, &b, &c] {
        until_status(demo, &good, 200, &[503], Duration::from_secs(5)).await;
        assert_eq!(demo.me(&revoked).await.0, 401);
    }

    // Redis stops answering (CLIENT PAUSE) without closing a connection: the same window, then 503.
    let mut control = redis.connection().unwrap();
    let pause = Duration::from_secs(6);
    redis::cmd("CLIENT").arg("PAUSE").arg(pause.as_millis() as u64).arg("ALL").exec(&mut control).unwrap();
    let paused = Instant::now();
    let waited = until_status(&a, &good, 503, &[200], stale + Duration::from_secs(3)).await;
    assert!(waited <= stale + Duration::from_secs(2), "answered from a stale replica for {waited:?}");
    never_accepted(&[&a, &b, &c], &revoked, paused + stale + Duration::from_secs(1)).await;
    for demo in [&a, &b, &c] {
        until_status(demo, &good, 200, &[503], pause + Duration::from_secs(5)).await;
        assert_eq!(demo.me(&revoked).await.0, 401);
    }
    for demo in [a, b, c] {
        assert_eq!(demo.stop().await, 0);
    }
    drop(redis);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A token of `key` for the demo with `extra` claims.
fn demo_token(key: &TestKey, extra: Value) -> String {
    let mut claims = demo_claims();
    if let Value::Object(extra) = extra {
        claims.as_object_mut().unwrap().extend(extra);
    }
    key.sign(&claims)
}

#[tokio::test]
async fn it_publishes_its_metadata_and_every_challenge_names_it() {
    let key = TestKey::generate(Algorithm::HS256).with_kid("k");
    let (dir, file) = jwks_file("metadata", &[&key]);
    let demo = Demo::start(&[("JWTGATE_JWKS_FILE", &file)]).await;
    // The default resource is the demo's own origin: the metadata is at the root well-known URL.
    let (status, headers, body) = demo.get("/.well-known/oauth-protected-resource", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        body,
        json!({
            "resource": demo.base,
            "authorization_servers": ["jwtgate-demo"],
            "scopes_supported": ["demo:read"],
            "bearer_methods_supported": ["header"],
            "dpop_signing_alg_values_supported": ALGS.split(' ').collect::<Vec<_>>(),
            "dpop_bound_access_tokens_required": false,
        })
    );
    let etag = headers["etag"].to_str().unwrap().to_owned();
    assert_eq!(demo.get("/.well-known/oauth-protected-resource", &[("if-none-match", &etag)]).await.0, 304);

    // 401 and 403 of the layer and of every guard name it.
    let (status, headers, _) = demo.get("/scoped", &[]).await;
    assert_eq!((status, headers["www-authenticate"].to_str().unwrap()), (401, demo.challenge("").as_str()));
    let forbidden =
        r#"error="insufficient_scope", error_description="the token does not grant access to this resource""#;
    let bearer = |extra: Value| format!("Bearer {}", demo_token(&key, extra));
    let (status, headers, body) = demo.get("/admin", &[("authorization", &bearer(json!({})))]).await;
    assert_eq!((status, headers["www-authenticate"].to_str().unwrap()), (403, demo.challenge(forbidden).as_str()));
    assert_eq!(body["error"], "insufficient_scope");

    // `/scoped` needs `demo:read` in the space-separated `scope`.
    let (status, headers, body) = demo.get("/scoped", &[("authorization", &bearer(json!({ "scope": "other" })))]).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(headers["www-authenticate"], demo.challenge(&format!(r#"{forbidden}, scope="demo:read""#)).as_str());
    assert_eq!(
        body,
        json!({ "error": "insufficient_scope", "error_description": "the token does not grant access to this resource" })
    );
    let reader = bearer(json!({ "scope": "profile demo:read" }));
    assert_eq!(demo.get("/scoped", &[("authorization", &reader)]).await.0, 200);
    assert_eq!(demo.stop().await, 0);

    // A resource with a path: the metadata at the path-inserted URL, and at the root for clients that probe it.
    let demo = Demo::start(&[
        ("JWTGATE_JWKS_FILE", &file),
        ("JWTGATE_PUBLIC_URL", "https://API.example.test"),
        ("JWTGATE_RESOURCE", "https://api.example.test/v1"),
    ])
    .await;
    for path in ["/.well-known/oauth-protected-resource/v1", "/.well-known/oauth-protected-resource"] {
        let (status, _, body) = demo.get(path, &[]).await;
        assert_eq!((status, &body["resource"]), (200, &json!("https://api.example.test/v1")), "{path}");
    }
    let (status, headers, _) = demo.get("/me", &[]).await;
    assert_eq!(
        (status, headers["www-authenticate"].to_str().unwrap()),
        (401, r#"Bearer resource_metadata="https://api.example.test/.well-known/oauth-protected-resource/v1""#)
    );
    assert_eq!(demo.stop().await, 0);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn sensitive_needs_a_recent_sign_in_of_the_configured_strength() {
    let key = TestKey::generate(Algorithm::HS256).with_kid("k");
    let (dir, file) = jwks_file("step-up", &[&key]);
    let description = "the resource needs a stronger or more recent authentication of the user";
    let step_up = |wants: &str| {
        format!(r#"error="insufficient_user_authentication", error_description="{description}", {wants}"#)
    };
    let signed_in = |acr: &str, seconds_ago: i64| {
        format!("Bearer {}", demo_token(&key, json!({ "acr": acr, "auth_time": now() - seconds_ago })))
    };
    let demo = Demo::start(&[("JWTGATE_JWKS_FILE", &file)]).await;
    let token = signed_in("urn:jwtgate:mfa", 10);
    let (status, _, body) = demo.get("/sensitive", &[("authorization", &token)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((&body["sub"], &body["acr"]), (&json!("alice"), &json!("urn:jwtgate:mfa")));
    assert!(body["auth_time"].as_i64().unwrap() >= now() - 20);
    // `auth_time` may be as old as the maximum plus the leeway (30 s).
    assert_eq!(demo.get("/sensitive", &[("authorization", &signed_in("urn:jwtgate:mfa", 320))]).await.0, 200);
    for (token, wants) in [
        (signed_in("urn:jwtgate:pwd", 10), r#"acr_values="urn:jwtgate:mfa""#.to_owned()),
        (signed_in("urn:jwtgate:mfa", 400), "max_age=300".to_owned()),
        (signed_in("urn:jwtgate:pwd", 400), r#"acr_values="urn:jwtgate:mfa", max_age=300"#.to_owned()),
        (format!("Bearer {}", demo_token(&key, json!({}))), r#"acr_values="urn:jwtgate:mfa", max_age=300"#.to_owned()),
    ] {
        let (status, headers, body) = demo.get("/sensitive", &[("authorization", &token)]).await;
        assert_eq!(status, 401, "{wants}: {body}");
        assert_eq!(headers["www-authenticate"], demo.challenge(&step_up(&wants)).as_str());
        assert_eq!(body, json!({ "error": "insufficient_user_authentication", "error_description": description }));
    }
    let (status, headers, _) = demo.get("/sensitive", &[]).await;
    assert_eq!((status, headers["www-authenticate"].to_str().unwrap()), (401, demo.challenge("").as_str()));
    assert_eq!(demo.stop().await, 0);

    let demo = Demo::start(&[
        ("JWTGATE_JWKS_FILE", &file),
        ("JWTGATE_STEP_UP_ACR", "urn:example:hwk"),
        ("JWTGATE_STEP_UP_MAX_AGE_SECS", "60"),
        ("JWTGATE_LEEWAY_SECS", "0"),
    ])
    .await;
    assert_eq!(demo.get("/sensitive", &[("authorization", &signed_in("urn:example:hwk", 30))]).await.0, 200);
    let (status, headers, _) = demo.get("/sensitive", &[("authorization", &signed_in("urn:example:hwk", 90))]).await;
    assert_eq!(
        (status, headers["www-authenticate"].to_str().unwrap()),
        (401, demo.challenge(&step_up("max_age=60")).as_str())
    );
    let (status, headers, _) = demo.get("/sensitive", &[("authorization", &signed_in("urn:jwtgate:mfa", 5))]).await;
    assert_eq!(
        (status, headers["www-authenticate"].to_str().unwrap()),
        (401, demo.challenge(&step_up(r#"acr_values="urn:example:hwk""#)).as_str())
    );
    assert_eq!(demo.stop().await, 0);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Every `WWW-Authenticate` value of an answer, in order.
fn challenges(headers: &reqwest::header::HeaderMap) -> Vec<String> {
    headers.get_all("www-authenticate").iter().map(|value| value.to_str().unwrap().to_owned()).collect()
}

const ALGS: &str = "RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA";

impl Demo {
    /// `GET path` with `token` under the `DPoP` scheme and `proof`.
    async fn dpop(&self, path: &str, token: &str, proof: &str) -> (u16, reqwest::header::HeaderMap, Value) {
        self.get(path, &[("authorization", &format!("DPoP {token}")), ("dpop", proof)]).await
    }

    /// A `DPoP` challenge with `attributes`, `algs` and `resource_metadata`.
    fn dpop_challenge(&self, attributes: &str) -> String {
        format!(
            r#"DPoP {attributes}{}algs="{ALGS}", resource_metadata="{}""#,
            if attributes.is_empty() { "" } else { ", " },
            self.metadata_url()
        )
    }
}

#[track_caller]
fn assert_dpop_refusal(demo: &Demo, answer: (u16, reqwest::header::HeaderMap, Value), error: &str, description: &str) {
    let (status, headers, body) = answer;
    assert_eq!(status, 401, "{description}: {body}");
    let attributes = format!(r#"error="{error}", error_description="{description}""#);
    assert_eq!(challenges(&headers), [demo.dpop_challenge(&attributes)]);
    assert_eq!(body, json!({ "error": error, "error_description": description }));
}

#[tokio::test]
async fn dpop_is_allowed_by_default_and_follows_the_contract() {
    let key = TestKey::generate(Algorithm::ES256).with_kid("k");
    let (dir, file) = jwks_file("dpop", &[&key]);
    let demo = Demo::start(&[("JWTGATE_JWKS_FILE", &file)]).await;
    let client = jwtgate_test::DpopKey::generate(Algorithm::ES256);
    let bound = demo_token(&key, json!({ "cnf": { "jkt": client.thumbprint() }, "scope": "other" }));
    let url = |path: &str| format!("{}{path}", demo.base);

    // A bound token with a fresh proof for the request's method and URL.
    let proof = client.proof("GET", &url("/me")).access_token(&bound).build();
    let (status, _, body) = demo.dpop("/me", &bound, &proof).await;
    assert_eq!((status, &body["sub"]), (200, &json!("alice")), "{body}");
    // The same proof again, on any route.
    let replayed = demo.dpop("/me", &bound, &proof).await;
    assert_dpop_refusal(&demo, replayed, "invalid_dpop_proof", "the DPoP proof was used before");
    // A proof for another route, and no proof at all.
    let proof = client.proof("GET", &url("/admin")).access_token(&bound).build();
    let answer = demo.dpop("/me", &bound, &proof).await;
    assert_dpop_refusal(&demo, answer, "invalid_dpop_proof", "the DPoP proof's htu does not match the request");
    let answer = demo.get("/me", &[("authorization", &format!("DPoP {bound}"))]).await;
    assert_dpop_refusal(&demo, answer, "invalid_dpop_proof", "the request has no DPoP proof");
    // Another key's proof, and a token without cnf.jkt, under the DPoP scheme.
    let thief = jwtgate_test::DpopKey::generate(Algorithm::ES256);
    let proof = thief.proof("GET", &url("/me")).access_token(&bound).build();
    let unbound_error = "the token is not bound to the DPoP proof's key";
    assert_dpop_refusal(&demo, demo.dpop("/me", &bound, &proof).await, "invalid_token", unbound_error);
    let unbound = demo_token(&key, json!({}));
    let proof = client.proof("GET", &url("/me")).access_token(&unbound).build();
    assert_dpop_refusal(&demo, demo.dpop("/me", &unbound, &proof).await, "invalid_token", unbound_error);
    // The bound token as a bearer token, in the header or the cookie.
    let downgrade = "the token is sender-constrained and cannot be used as a bearer token";
    assert_invalid_token(&demo, demo.bearer_me(&bound).await, downgrade);
    assert_invalid_token(&demo, demo.get("/me", &[("cookie", &format!("access_token={bound}"))]).await, downgrade);
    // An unbound token is still fine as a bearer token.
    assert_eq!(demo.me(&unbound).await.0, 200);
    // A missing scope, and a step-up refusal, under the DPoP scheme.
    let proof = client.proof("GET", &url("/scoped")).access_token(&bound).build();
    let (status, headers, body) = demo.dpop("/scoped", &bound, &proof).await;
    assert_eq!((status, &body["error"]), (403, &json!("insufficient_scope")));
    let forbidden = r#"error="insufficient_scope", error_description="the token does not grant access to this resource", scope="demo:read""#;
    assert_eq!(challenges(&headers), [demo.dpop_challenge(forbidden)]);
    let proof = client.proof("GET", &url("/sensitive")).access_token(&bound).build();
    let (status, headers, _) = demo.dpop("/sensitive", &bound, &proof).await;
    assert_eq!(status, 401);
    assert!(challenges(&headers)[0].starts_with(r#"DPoP error="insufficient_user_authentication""#), "{headers:?}");
    // No credentials: both schemes.
    let (status, headers, body) = demo.get("/me", &[]).await;
    assert_eq!(status, 401);
    assert_eq!(challenges(&headers), [demo.challenge(""), demo.dpop_challenge("")]);
    assert_eq!(body["error"], "unauthorized");
    // The metadata advertises DPoP, not required.
    let (_, _, metadata) = demo.get("/.well-known/oauth-protected-resource", &[]).await;
    assert_eq!(metadata["dpop_signing_alg_values_supported"], json!(ALGS.split(' ').collect::<Vec<_>>()));
    assert_eq!(metadata["dpop_bound_access_tokens_required"], json!(false));
    assert_eq!(demo.stop().await, 0);

    // Required: bearer requests and unbound tokens get a DPoP challenge; no credentials, only DPoP.
    let demo = Demo::start(&[("JWTGATE_JWKS_FILE", &file), ("JWTGATE_DPOP", "required")]).await;
    let answer = demo.bearer_me(&unbound).await;
    assert_dpop_refusal(&demo, answer, "invalid_token", "the resource accepts DPoP-bound tokens only");
    let proof = client.proof("GET", &format!("{}/me", demo.base)).access_token(&unbound).build();
    assert_dpop_refusal(&demo, demo.dpop("/me", &unbound, &proof).await, "invalid_token", unbound_error);
    let proof = client.proof("GET", &format!("{}/me", demo.base)).access_token(&bound).build();
    assert_eq!(demo.dpop("/me", &bound, &proof).await.0, 200);
    let (_, headers, _) = demo.get("/me", &[]).await;
    assert_eq!(challenges(&headers), [demo.dpop_challenge("")]);
    let (_, _, metadata) = demo.get("/.well-known/oauth-protected-resource", &[]).await;
    assert_eq!(metadata["dpop_bound_access_tokens_required"], json!(true));
    assert_eq!(demo.stop().await, 0);

    // Off: the DPoP scheme is an unknown scheme, the metadata says nothing of DPoP, and a bound token is still
    // no bearer token.
    let demo = Demo::start(&[("JWTGATE_JWKS_FILE", &file), ("JWTGATE_DPOP", "off")]).await;
    let proof = client.proof("GET", &format!("{}/me", demo.base)).access_token(&bound).build();
    let (status, headers, _) = demo.dpop("/me", &bound, &proof).await;
    assert_eq!((status, challenges(&headers)), (401, vec![demo.challenge("")]));
    assert_invalid_token(&demo, demo.bearer_me(&bound).await, downgrade);
    let (_, _, metadata) = demo.get("/.well-known/oauth-protected-resource", &[]).await;
    assert!(metadata.get("dpop_signing_alg_values_supported").is_none(), "{metadata}");
    assert_eq!(demo.stop().await, 0);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn dpop_nonces_the_iat_window_and_the_public_url_are_configurable() {
    let key = TestKey::generate(Algorithm::ES256).with_kid("k");
    let (dir, file) = jwks_file("dpop-settings", &[&key]);
    let client = jwtgate_test::DpopKey::generate(Algorithm::EdDSA);
    let bound = demo_token(&key, json!({ "cnf": { "jkt": client.thumbprint() } }));
    let demo = Demo::start(&[
        ("JWTGATE_JWKS_FILE", &file),
        ("JWTGATE_DPOP_NONCE", "on"),
        ("JWTGATE_DPOP_IAT_SECS", "5"),
        ("JWTGATE_PUBLIC_URL", "https://API.example.test"),
    ])
    .await;
    let url = "https://api.example.test/me";
    // No nonce: 401 use_dpop_nonce with a nonce to retry with.
    let proof = client.proof("GET", url).access_token(&bound).build();
    let (status, headers, body) = demo.dpop("/me", &bound, &proof).await;
    assert_eq!(status, 401);
    let description = "the DPoP proof must carry a nonce this server issued";
    let attributes = format!(r#"error="use_dpop_nonce", error_description="{description}""#);
    let metadata = "https://api.example.test/.well-known/oauth-protected-resource";
    assert_eq!(challenges(&headers), [format!(r#"DPoP {attributes}, algs="{ALGS}", resource_metadata="{metadata}""#)]);
    assert_eq!(body, json!({ "error": "use_dpop_nonce", "error_description": description }));
    let nonce = headers["dpop-nonce"].to_str().unwrap().to_owned();
    let proof = client.proof("GET", url).access_token(&bound).nonce(&nonce).build();
    assert_eq!(demo.dpop("/me", &bound, &proof).await.0, 200);
    // A made-up nonce is refused the same way.
    let proof = client.proof("GET", url).access_token(&bound).nonce("made-up").build();
    let (status, headers, _) = demo.dpop("/me", &bound, &proof).await;
    assert_eq!(status, 401);
    assert!(challenges(&headers)[0].starts_with(r#"DPoP error="use_dpop_nonce""#));
    assert!(headers.contains_key("dpop-nonce"));
    // iat within 5 s only.
    let proof = client.proof("GET", url).access_token(&bound).nonce(&nonce).issued_at(now() - 30).build();
    let (status, headers, _) = demo.dpop("/me", &bound, &proof).await;
    assert_eq!(status, 401);
    assert!(challenges(&headers)[0].contains("the DPoP proof's iat is outside the accepted window"));
    // htu is the public URL, not the address the demo listens on.
    let proof = client.proof("GET", &format!("{}/me", demo.base)).access_token(&bound).nonce(&nonce).build();
    let (status, headers, _) = demo.dpop("/me", &bound, &proof).await;
    assert_eq!(status, 401);
    assert!(challenges(&headers)[0].contains("the DPoP proof's htu does not match the request"));
    assert_eq!(demo.stop().await, 0);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_dpop_proof_is_accepted_once_across_demos_sharing_redis_and_an_outage_fails_closed() {
    let key = TestKey::generate(Algorithm::ES256).with_kid("k");
    let (dir, file) = jwks_file("dpop-redis", &[&key]);
    let mut redis = RedisServer::start();
    let url = redis.url();
    let public = "http://api.example.test";
    let vars = [("JWTGATE_JWKS_FILE", file.as_str()), ("JWTGATE_REDIS_URL", &url), ("JWTGATE_PUBLIC_URL", public)];
    let (a, b) = (Demo::start(&vars).await, Demo::start(&vars).await);
    let client = jwtgate_test::DpopKey::generate(Algorithm::ES256);
    let bound = demo_token(&key, json!({ "cnf": { "jkt": client.thumbprint() } }));
    let proof = client.proof("GET", &format!("{public}/me")).access_token(&bound).build();
    assert_eq!(a.dpop("/me", &bound, &proof).await.0, 200);
    let (status, headers, _) = b.dpop("/me", &bound, &proof).await;
    assert_eq!(status, 401, "replayed on another instance");
    assert!(challenges(&headers)[0].contains("the DPoP proof was used before"));
    redis.stop();
    let proof = client.proof("GET", &format!("{public}/me")).access_token(&bound).build();
    let (status, headers, body) = b.dpop("/me", &bound, &proof).await;
    assert_eq!(status, 503, "never an unchecked 200: {body}");
    assert!(headers.contains_key("retry-after"));
    for demo in [a, b] {
        assert_eq!(demo.stop().await, 0);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_client_key_over_its_replay_quota_gets_503_never_an_unchecked_200() {
    let key = TestKey::generate(Algorithm::ES256).with_kid("k");
    let (dir, file) = jwks_file("dpop-quota", &[&key]);
    let demo = Demo::start(&[("JWTGATE_JWKS_FILE", &file)]).await;
    let client = jwtgate_test::DpopKey::generate(Algorithm::ES256);
    let bound = demo_token(&key, json!({ "cnf": { "jkt": client.thumbprint() } }));
    let url = format!("{}/me", demo.base);
    // The memory replay store remembers 1,000 proofs per client key at a time (60 s each).
    for i in 0..1_000 {
        let proof = client.proof("GET", &url).access_token(&bound).build();
        assert_eq!(demo.dpop("/me", &bound, &proof).await.0, 200, "proof {i}");
    }
    let proof = client.proof("GET", &url).access_token(&bound).build();
    let (status, headers, body) = demo.dpop("/me", &bound, &proof).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(headers["retry-after"], "5");
    assert_eq!(
        body,
        json!({
            "error": "temporarily_unavailable",
            "error_description": "the DPoP proof could not be checked for replay; try again later",
        })
    );
    // Another client's key has its own quota.
    let other = jwtgate_test::DpopKey::generate(Algorithm::ES256);
    let token = demo_token(&key, json!({ "cnf": { "jkt": other.thumbprint() } }));
    let proof = other.proof("GET", &url).access_token(&token).build();
    assert_eq!(demo.dpop("/me", &token, &proof).await.0, 200);
    assert_eq!(demo.stop().await, 0);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A loopback address with nothing listening, for an endpoint that comes up later.
fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// An active answer for the demo's issuer and audience, as an authorization server would give it.
fn introspected(extra: Value) -> Value {
    let mut answer = json!({
        "iss": "jwtgate-demo",
        "aud": "jwtgate-demo",
        "sub": "alice",
        "jti": "opaque-1",
        "exp": now() + 300,
        "roles": ["admin"],
        "scope": "demo:read",
    });
    let Value::Object(extra) = extra else { panic!("claims are an object") };
    for (name, value) in extra {
        match value {
            Value::Null => answer.as_object_mut().unwrap().remove(&name),
            value => answer.as_object_mut().unwrap().insert(name, value),
        };
    }
    answer
}

const NOT_INTROSPECTED: &str = "the token could not be introspected; try again later";

#[track_caller]
fn assert_unavailable(answer: (u16, reqwest::header::HeaderMap, Value), description: &str) {
    let (status, headers, body) = answer;
    assert_eq!((status, headers["retry-after"].to_str().unwrap()), (503, "5"), "{body}");
    assert_eq!(body, json!({ "error": "temporarily_unavailable", "error_description": description }));
}

#[tokio::test]
async fn opaque_tokens_are_introspected_as_the_contract_says() {
    let addr = free_addr();
    let secret = "p@ss:w+rd/secret";
    let demo = Demo::start(&[
        ("JWTGATE_INTROSPECTION_URL", &format!("http://{addr}/introspect")),
        ("JWTGATE_INTROSPECTION_CLIENT_ID", "demo client"),
        ("JWTGATE_INTROSPECTION_CLIENT_SECRET", secret),
    ])
    .await;
    // No key configured: no ephemeral key, and no sample token.
    assert!(demo.stdout.iter().all(|line| !line.contains("sample token")), "{:?}", demo.stdout);
    assert!(!demo.log().contains("ephemeral"), "{}", demo.log());

    // Started while the endpoint is down: refused connections are 503, never 401.
    assert_unavailable(demo.bearer_me("opaque-1").await, NOT_INTROSPECTED);
    let endpoint = IntrospectionServer::start_at(addr).await;
    endpoint.activate("opaque-1", introspected(json!({})));
    let back = until_status(&demo, "opaque-1", 200, &[503], Duration::from_secs(5)).await;
    assert!(back < Duration::from_secs(5), "{back:?}");

    let (status, body) = demo.me("opaque-1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((&body["sub"], &body["jti"], &body["roles"]), (&json!("alice"), &json!("opaque-1"), &json!(["admin"])));
    assert!(body["exp"].as_i64().unwrap() > now());
    let (status, _, _) = demo.get("/scoped", &[("authorization", "Bearer opaque-1")]).await;
    assert_eq!(status, 200, "scope from the answer");
    // RFC 7662 §2.1 and RFC 6749 §2.3.1: a form POST, and Basic over the form-encoded id and secret.
    assert_eq!(endpoint.last_form("token").as_deref(), Some("opaque-1"));
    assert_eq!(endpoint.last_form("token_type_hint").as_deref(), Some("access_token"));
    let basic = endpoint.last_authorization().unwrap();
    let basic =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, basic.strip_prefix("Basic ").unwrap())
            .unwrap();
    assert_eq!(String::from_utf8(basic).unwrap(), "demo+client:p%40ss%3Aw%2Brd%2Fsecret");

    // An answer without jti, roles, exp, iss or aud is accepted; /me shows null and [].
    endpoint.activate("bare", json!({ "sub": "bob" }));
    let (status, body) = demo.me("bare").await;
    assert_eq!((status, &body["sub"], &body["jti"], &body["roles"]), (200, &json!("bob"), &Value::Null, &json!([])));
    let (status, _, _) = demo.get("/scoped", &[("authorization", "Bearer bare")]).await;
    assert_eq!(status, 403, "no scope in the answer");

    // What is not active, or fails a check, is 401 invalid_token.
    let cases = [
        ("unknown", None, "the token is not active"),
        ("inactive", Some(json!({ "active": false, "sub": "alice" })), "the token is not active"),
        ("missing", Some(json!({ "sub": "alice" })), "the token is not active"),
        ("string", Some(json!({ "active": "true", "sub": "alice" })), "the token is not active"),
        ("expired", Some(introspected(json!({ "active": true, "exp": now() - 31 }))), "the token has expired"),
        ("issuer", Some(introspected(json!({ "active": true, "iss": "other" }))), "the token's issuer is not accepted"),
        (
            "audience",
            Some(introspected(json!({ "active": true, "aud": ["other"] }))),
            "the token's audience is not accepted",
        ),
    ];
    for (token, answer, description) in cases {
        if let Some(answer) = answer {
            endpoint.answer(token, answer);
        }
        assert_invalid_token(&demo, demo.bearer_me(token).await, description);
    }
    // Within the leeway, and an audience among several: accepted.
    endpoint.activate(
        "leeway",
        introspected(json!({ "exp": now() - 10, "iat": now() - 60, "aud": ["x", "jwtgate-demo"] })),
    );
    assert_eq!(demo.me("leeway").await.0, 200);

    // A JWT is never introspected; with no key configured, it is refused.
    let calls = endpoint.calls();
    let key = TestKey::generate(Algorithm::HS256);
    let (status, _, _) = demo.bearer_me(&key.sign(&demo_claims())).await;
    assert_eq!(status, 401);
    assert_eq!(endpoint.calls(), calls);

    // Concurrent requests with one token share one call.
    endpoint.activate("shared", introspected(json!({})));
    endpoint.set_fault(Fault::Delay(Duration::from_millis(500)));
    let calls = endpoint.calls();
    // Sent together: every request reaches the demo while the one call is held at the endpoint.
    let answers = jwtgate_tests::join_all((0..20).map(|_| demo.me("shared"))).await;
    assert!(answers.iter().all(|(status, _)| *status == 200), "{answers:?}");
    assert_eq!(endpoint.calls() - calls, 1);
    endpoint.set_fault(Fault::None);

    let (code, log) = demo.stop_and_log(Signal::TERM).await;
    assert_eq!(code, 0);
    for token in ["opaque-1", "bare", "shared"] {
        assert!(!log.contains(token), "a token in the log: {log}");
    }
    assert!(!log.contains(secret) && !log.contains("p%40ss"), "the secret in the log: {log}");
}

#[tokio::test]
async fn a_failing_endpoint_gets_503_for_new_tokens_and_cached_answers_are_still_served() {
    let endpoint = IntrospectionServer::start().await;
    let demo = Demo::start(&[("JWTGATE_INTROSPECTION_URL", &endpoint.url())]).await;
    endpoint.activate("cached", introspected(json!({})));
    assert_eq!(demo.me("cached").await.0, 200);
    let calls = endpoint.calls();

    // Every failure: a token with no answer to reuse gets 503; a cached one still gets 200.
    for fault in [
        Fault::Status(500),
        Fault::Status(302),
        Fault::Status(401),
        Fault::Body("not json".into()),
        Fault::Body("[true]".into()),
        Fault::Html,
        Fault::Delay(Duration::from_secs(3)),
    ] {
        endpoint.set_fault(fault.clone());
        assert_unavailable(demo.bearer_me("fresh").await, NOT_INTROSPECTED);
        assert_eq!(demo.me("cached").await.0, 200, "{fault:?}");
    }
    endpoint.set_fault(Fault::None);
    assert_eq!(endpoint.calls() - calls, 7, "one call per fresh request, none for the cached token");
    endpoint.activate("fresh", introspected(json!({})));
    assert_eq!(demo.me("fresh").await.0, 200, "a failure is not reused");
}

#[tokio::test]
async fn introspection_answers_are_reused_within_their_bounds_only() {
    let endpoint = IntrospectionServer::start().await;
    let demo = Demo::start(&[
        ("JWTGATE_INTROSPECTION_URL", &endpoint.url()),
        ("JWTGATE_INTROSPECTION_CACHE_SECS", "2"),
        ("JWTGATE_LEEWAY_SECS", "0"),
    ])
    .await;
    endpoint.activate("cached", introspected(json!({})));
    assert_eq!(demo.me("cached").await.0, 200);
    assert_eq!(endpoint.last_authorization(), None, "no credentials configured: no client authentication");

    // A revocation at the provider takes effect once the cache's 2 s are over.
    endpoint.revoke("cached");
    assert_eq!(demo.me("cached").await.0, 200, "still cached");
    until_status(&demo, "cached", 401, &[200], Duration::from_secs(4)).await;

    // Never past exp: a token that expires in 1 s is refused once it has, whatever the cache's TTL.
    endpoint.activate("short", introspected(json!({ "exp": now() + 1 })));
    assert_eq!(demo.me("short").await.0, 200);
    until_status(&demo, "short", 401, &[200], Duration::from_secs(3)).await;
    assert_invalid_token(&demo, demo.bearer_me("short").await, "the token has expired");

    // An inactive answer is reused for 5 s at most: the token, activated meanwhile, passes after that.
    assert_eq!(demo.me("late").await.0, 401);
    endpoint.activate("late", introspected(json!({})));
    let calls = endpoint.calls();
    assert_eq!(demo.me("late").await.0, 401, "the inactive answer, reused");
    assert_eq!(endpoint.calls(), calls);
    let took = until_status(&demo, "late", 200, &[401], Duration::from_secs(7)).await;
    assert!(took <= Duration::from_secs(6), "{took:?}");
}

#[tokio::test]
async fn jwts_and_opaque_tokens_side_by_side() {
    let endpoint = IntrospectionServer::start().await;
    let key = TestKey::generate(Algorithm::ES256).with_kid("k1");
    let (dir, file) = jwks_file("hybrid", &[&key]);
    let demo = Demo::start(&[("JWTGATE_INTROSPECTION_URL", &endpoint.url()), ("JWTGATE_JWKS_FILE", &file)]).await;
    endpoint.activate("opaque", introspected(json!({ "sub": "opaque-user" })));
    let (status, body) = demo.me("opaque").await;
    assert_eq!((status, &body["sub"]), (200, &json!("opaque-user")), "{body}");
    let (status, body) = demo.me(&demo_token(&key, json!({}))).await;
    assert_eq!((status, &body["sub"]), (200, &json!("alice")), "{body}");
    let forged = demo_token(&TestKey::generate(Algorithm::ES256).with_kid("k1"), json!({}));
    assert_invalid_token(&demo, demo.bearer_me(&forged).await, "the token's signature is invalid");
    assert_eq!(endpoint.calls(), 1, "no JWT reached the endpoint");

    // Revocation through /logout works for introspected tokens too.
    assert_eq!(demo.post("/logout", "opaque").await, 204);
    assert_invalid_token(&demo, demo.bearer_me("opaque").await, "the token has been revoked");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn introspection_misconfigurations_stop_it_with_status_2() {
    for vars in [
        vec![("JWTGATE_INTROSPECTION_URL", "ftp://idp.test/introspect")],
        vec![("JWTGATE_INTROSPECTION_URL", "http://idp.test/introspect")],
        vec![("JWTGATE_INTROSPECTION_URL", "http://127.0.0.1:1/i"), ("JWTGATE_INTROSPECTION_CLIENT_ID", "id")],
        vec![("JWTGATE_INTROSPECTION_URL", "http://127.0.0.1:1/i"), ("JWTGATE_INTROSPECTION_CLIENT_SECRET", "secret")],
        vec![("JWTGATE_INTROSPECTION_URL", "http://127.0.0.1:1/i"), ("JWTGATE_INTROSPECTION_CACHE_SECS", "soon")],
        vec![("JWTGATE_INTROSPECTION_CACHE_SECS", "30")],
    ] {
        let (code, stderr) = misconfigured(&vars).await;
        assert_eq!(code, 2, "{vars:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(!stderr.contains("secret"), "the secret leaked: {stderr}");
    }
}

/// A demo's token with `jti`, signed by `key`.
fn token_with_jti(key: &TestKey, jti: &str) -> String {
    demo_token(key, json!({ "jti": jti }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_redis_cluster_with_one_replica_required_revocations_survive_a_failover_and_never_get_200() {
    let key = TestKey::generate(Algorithm::HS256).with_kid("k");
    let (dir, file) = jwks_file("cluster", &[&key]);
    let mut cluster = RedisCluster::start();
    let urls = cluster.urls().join(",");
    let vars = [
        ("JWTGATE_JWKS_FILE", file.as_str()),
        ("JWTGATE_REDIS_CLUSTER_URLS", &urls),
        ("JWTGATE_REDIS_WAIT_REPLICAS", "1"),
    ];
    let (a, b) = (Demo::start(&vars).await, Demo::start(&vars).await);

    // Thirty revocations, their keys over every shard, through either demo: each refused by both.
    let revoked: Vec<String> = (0..30).map(|i| token_with_jti(&key, &format!("c{i}"))).collect();
    for (i, token) in revoked.iter().enumerate() {
        let demo = if i % 2 == 0 { &a } else { &b };
        assert_eq!(demo.post("/logout", token).await, 204, "logout {i}");
    }
    for token in &revoked {
        assert_eq!((a.me(token).await.0, b.me(token).await.0), (401, 401));
    }

    // The primary that holds the first revocation is killed: 503 is allowed while the cluster elects, 200 never;
    // service resumes within 5 s of the failover.
    let primary = cluster.primary_of("jwtgate:denylist:jti:c0");
    cluster.kill(primary);
    let fresh = token_with_jti(&key, "fresh");
    let failing = Instant::now();
    while cluster.primary_of("jwtgate:denylist:jti:c0") == primary {
        for token in &revoked {
            let status = a.me(token).await.0;
            assert!(status == 401 || status == 503, "a revoked token got {status} during the failover");
        }
        assert!(failing.elapsed() < Duration::from_secs(30), "no failover within 30 s");
    }
    cluster.wait_until_ok(Duration::from_secs(30));
    let failed_over = Instant::now();
    for demo in [&a, &b] {
        until_status(demo, &fresh, 200, &[503], Duration::from_secs(5)).await;
    }
    assert!(failed_over.elapsed() < Duration::from_secs(5), "resumed after {:?}", failed_over.elapsed());
    for token in &revoked {
        assert_eq!((a.me(token).await.0, b.me(token).await.0), (401, 401), "a confirmed revocation was lost");
    }
    cluster.restart(primary);
    cluster.wait_until_ok(Duration::from_secs(30));

    // No replica to confirm: the logout is 503 after 2 s, and the revocation holds on the primary anyway.
    let unconfirmed = token_with_jti(&key, "unconfirmed");
    let replica = cluster.replica_of("jwtgate:denylist:jti:unconfirmed");
    cluster.kill(replica);
    let asked = Instant::now();
    assert_eq!(a.post("/logout", &unconfirmed).await, 503);
    assert!(asked.elapsed() >= Duration::from_secs(2) && asked.elapsed() < Duration::from_secs(5));
    assert_eq!((a.me(&unconfirmed).await.0, b.me(&unconfirmed).await.0), (401, 401));
    cluster.restart(replica);

    // The whole cluster down: 503, never 200; a demo started meanwhile starts normally; and back within 5 s of
    // the cluster, with nothing lost.
    cluster.stop_all();
    assert_eq!(b.me(&fresh).await.0, 503);
    assert_eq!(b.post("/logout", &fresh).await, 503);
    let c = Demo::start(&vars).await;
    assert_eq!(c.me(&fresh).await.0, 503);
    cluster.start_all();
    let back = Instant::now();
    for demo in [&b, &c] {
        until_status(demo, &fresh, 200, &[503], Duration::from_secs(5)).await;
    }
    assert!(back.elapsed() < Duration::from_secs(5));
    for token in revoked.iter().chain([&unconfirmed]) {
        assert_eq!(c.me(token).await.0, 401, "lost in the restart");
    }
    for demo in [a, b, c] {
        assert_eq!(demo.stop().await, 0);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicated_mode_and_dpop_replay_work_on_a_redis_cluster_too() {
    let key = TestKey::generate(Algorithm::HS256).with_kid("k");
    let (dir, file) = jwks_file("cluster-replicated", &[&key]);
    let cluster = RedisCluster::start();
    let urls = cluster.urls().join(",");
    let vars = [
        ("JWTGATE_JWKS_FILE", file.as_str()),
        ("JWTGATE_REDIS_CLUSTER_URLS", &urls),
        ("JWTGATE_REDIS_MODE", "replicated"),
        ("JWTGATE_REDIS_WAIT_REPLICAS", "1"),
        // One origin for both, as behind one load balancer: a proof for one is good for the other.
        ("JWTGATE_PUBLIC_URL", "https://api.test"),
    ];
    let (a, b) = (Demo::start(&vars).await, Demo::start(&vars).await);
    let token = token_with_jti(&key, "r1");
    until_accepted(&b, &token).await;
    assert_eq!(a.post("/logout", &token).await, 204);
    until_status(&b, &token, 401, &[200], Duration::from_secs(1)).await;
    // A DPoP proof used on one demo is refused by the other: the replay store is on the cluster.
    let client = jwtgate_test::DpopKey::generate(Algorithm::ES256);
    let bound = demo_token(&key, json!({ "jti": "d1", "cnf": { "jkt": client.thumbprint() } }));
    let proof = client.proof("GET", "https://api.test/me").access_token(&bound).build();
    assert_eq!(a.dpop("/me", &bound, &proof).await.0, 200);
    assert_eq!(b.dpop("/me", &bound, &proof).await.0, 401, "the same proof on the other demo");
    let another = client.proof("GET", "https://api.test/me").access_token(&bound).build();
    assert_eq!(b.dpop("/me", &bound, &another).await.0, 200);
    for demo in [a, b] {
        assert_eq!(demo.stop().await, 0);
    }
    std::fs::remove_dir_all(dir).unwrap();
}
