//! Helpers for jwtgate's own integration tests and benchmarks: keys generated at test time, token signing,
//! and a loopback server. Nothing here is for production.

pub mod bench;
pub mod interop;
pub mod jwks;
pub mod logs;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jwtgate::{Algorithm, Key, Secret};
use serde_json::{Value, json};

/// base64url without padding, as JWS uses.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_secs() as i64
}

/// The issuer the test apps require.
pub const ISSUER: &str = "https://issuer.test";
/// The audience the test apps require.
pub const AUDIENCE: &str = "api";

/// Valid claims for the test apps: `iss`, `aud`, `sub`, `iat`, `exp` in five minutes, and a `jti`.
pub fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "iat": now(),
        "exp": now() + 300,
        "jti": "jti-1",
    })
}

/// A signing key generated for one test run, with the matching verification key.
pub struct TestKey {
    alg: Algorithm,
    kid: Option<String>,
    material: Material,
}

enum Material {
    Hmac(Vec<u8>),
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl TestKey {
    /// A fresh key for `alg`: a random secret as long as the hash for HMAC, RSA 2048, P-256 or P-384, or
    /// Ed25519.
    pub fn generate(alg: Algorithm) -> Self {
        let material = match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                let len = match alg {
                    Algorithm::HS256 => 32,
                    Algorithm::HS384 => 48,
                    _ => 64,
                };
                let mut secret = vec![0; len];
                SystemRandom::new().fill(&mut secret).expect("random bytes");
                Material::Hmac(secret)
            }
            Algorithm::ES256 => {
                Material::Ec(EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_FIXED_SIGNING).expect("P-256 key"))
            }
            Algorithm::ES384 => {
                Material::Ec(EcdsaKeyPair::generate(&sig::ECDSA_P384_SHA384_FIXED_SIGNING).expect("P-384 key"))
            }
            Algorithm::EdDSA => Material::Ed(Ed25519KeyPair::generate().expect("Ed25519 key")),
            _ => Material::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key")),
        };
        Self { alg, kid: None, material }
    }

    /// An HMAC key with the given secret (for peers that take their secret as text).
    pub fn hmac_with_secret(alg: Algorithm, secret: &[u8]) -> Self {
        Self { alg, kid: None, material: Material::Hmac(secret.to_vec()) }
    }

    /// The same key material, bound to another algorithm (to forge algorithm swaps).
    pub fn with_alg(mut self, alg: Algorithm) -> Self {
        self.alg = alg;
        self
    }

    /// Sets the `kid` put in the header of tokens and in the verification key.
    pub fn with_kid(mut self, kid: &str) -> Self {
        self.kid = Some(kid.to_owned());
        self
    }

    /// The algorithm.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The secret of an HMAC key.
    pub fn secret(&self) -> Option<&[u8]> {
        match &self.material {
            Material::Hmac(secret) => Some(secret),
            _ => None,
        }
    }

    /// The public key as PEM (`PUBLIC KEY`), for asymmetric keys.
    pub fn public_pem(&self) -> Option<String> {
        let der = match &self.material {
            Material::Hmac(_) => return None,
            Material::Rsa(pair) => pair.public_key().as_der().expect("RSA SPKI").as_ref().to_vec(),
            Material::Ec(pair) => pair.public_key().as_der().expect("EC SPKI").as_ref().to_vec(),
            Material::Ed(pair) => pair.public_key().as_der().expect("Ed25519 SPKI").as_ref().to_vec(),
        };
        Some(pem("PUBLIC KEY", &der))
    }

    /// jwtgate's verification key for this key.
    pub fn verification_key(&self) -> Key {
        let key = match &self.material {
            Material::Hmac(secret) => Key::hmac(self.alg, &Secret::new(secret.clone())),
            _ => Key::from_pem(self.alg, self.public_pem().expect("public key")),
        }
        .expect("test key loads");
        match &self.kid {
            Some(kid) => key.with_kid(kid.clone()),
            None => key,
        }
    }

    /// The verification key as a JWK with `kid` (if set) and `alg`.
    pub fn jwk(&self) -> Value {
        let mut jwk = match &self.material {
            Material::Hmac(secret) => json!({ "kty": "oct", "k": b64(secret) }),
            Material::Rsa(pair) => {
                let public = pair.public_key();
                json!({
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                })
            }
            Material::Ec(pair) => {
                let point = pair.public_key().as_ref();
                let half = (point.len() - 1) / 2;
                let crv = if half == 32 { "P-256" } else { "P-384" };
                json!({ "kty": "EC", "crv": crv, "x": b64(&point[1..1 + half]), "y": b64(&point[1 + half..]) })
            }
            Material::Ed(pair) => json!({ "kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref()) }),
        };
        jwk["alg"] = json!(self.alg.as_str());
        if let Some(kid) = &self.kid {
            jwk["kid"] = json!(kid);
        }
        jwk
    }

    /// The signature of `message` with this key under its algorithm.
    pub fn signature(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.material {
            Material::Hmac(secret) => {
                let alg = match self.alg {
                    Algorithm::HS384 => hmac::HMAC_SHA384,
                    Algorithm::HS512 => hmac::HMAC_SHA512,
                    _ => hmac::HMAC_SHA256,
                };
                hmac::sign(&hmac::Key::new(alg, secret), message).as_ref().to_vec()
            }
            Material::Rsa(pair) => {
                let encoding: &'static dyn sig::RsaEncoding = match self.alg {
                    Algorithm::RS384 => &sig::RSA_PKCS1_SHA384,
                    Algorithm::RS512 => &sig::RSA_PKCS1_SHA512,
                    Algorithm::PS256 => &sig::RSA_PSS_SHA256,
                    Algorithm::PS384 => &sig::RSA_PSS_SHA384,
                    Algorithm::PS512 => &sig::RSA_PSS_SHA512,
                    _ => &sig::RSA_PKCS1_SHA256,
                };
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(encoding, &rng, message, &mut signature).expect("RSA signature");
                signature
            }
            Material::Ec(pair) => pair.sign(&rng, message).expect("ECDSA signature").as_ref().to_vec(),
            Material::Ed(pair) => pair.sign(message).as_ref().to_vec(),
        }
    }

    /// A compact JWS of the given header and claims JSON texts, signed with this key.
    pub fn sign_raw(&self, header: &str, claims: &str) -> String {
        let input = format!("{}.{}", b64(header), b64(claims));
        let signature = self.signature(input.as_bytes());
        format!("{input}.{}", b64(signature))
    }

    /// The header this key puts on tokens: `alg`, `typ: JWT`, and `kid` when set.
    pub fn header(&self) -> Value {
        let mut header = json!({ "alg": self.alg.as_str(), "typ": "JWT" });
        if let Some(kid) = &self.kid {
            header["kid"] = json!(kid);
        }
        header
    }

    /// A token with this key's header and `claims`.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_raw(&self.header().to_string(), &claims.to_string())
    }
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKey").field("alg", &self.alg).field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl TestKey {
    /// A self-signed X.509 certificate (PEM) for this key's public half, for asymmetric keys.
    pub fn certificate_pem(&self) -> Option<String> {
        let pkcs8 = match &self.material {
            Material::Hmac(_) => return None,
            Material::Rsa(pair) => pair.as_der().expect("RSA PKCS#8").as_ref().to_vec(),
            Material::Ec(pair) => pair.to_pkcs8v1().expect("EC PKCS#8").as_ref().to_vec(),
            Material::Ed(pair) => pair.to_pkcs8v1().expect("Ed25519 PKCS#8").as_ref().to_vec(),
        };
        let der = rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8);
        let sig_alg = match &self.material {
            Material::Rsa(_) => &rcgen::PKCS_RSA_SHA256,
            Material::Ec(_) if self.alg == Algorithm::ES384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            Material::Ec(_) => &rcgen::PKCS_ECDSA_P256_SHA256,
            _ => &rcgen::PKCS_ED25519,
        };
        let key_pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, sig_alg).expect("rcgen key pair");
        let params = rcgen::CertificateParams::new(vec!["jwtgate.test".to_owned()]).expect("certificate params");
        Some(params.self_signed(&key_pair).expect("self-signed certificate").pem())
    }
}

/// The encodings a private key's PEM can take.
#[derive(Clone, Copy, Debug)]
pub enum PrivateForm {
    /// `PRIVATE KEY`, PKCS#8 v1 (what `openssl genpkey` writes).
    Pkcs8,
    /// `PRIVATE KEY`, PKCS#8 v2 (with the public key inside), for Ed25519.
    Pkcs8V2,
    /// `EC PRIVATE KEY`, SEC1 (RFC 5915), for EC keys.
    Sec1,
}

impl TestKey {
    /// The private key as PEM in `form`, for asymmetric keys (`None` for HMAC, or a form the type lacks).
    pub fn private_pem(&self, form: PrivateForm) -> Option<String> {
        let (label, der) = match (&self.material, form) {
            (Material::Rsa(pair), PrivateForm::Pkcs8) => {
                ("PRIVATE KEY", pair.as_der().expect("RSA PKCS#8").as_ref().to_vec())
            }
            (Material::Ec(pair), PrivateForm::Pkcs8) => {
                ("PRIVATE KEY", pair.to_pkcs8v1().expect("EC PKCS#8").as_ref().to_vec())
            }
            (Material::Ec(pair), PrivateForm::Sec1) => {
                ("EC PRIVATE KEY", pair.private_key().as_der().expect("EC SEC1").as_ref().to_vec())
            }
            (Material::Ed(pair), PrivateForm::Pkcs8) => {
                ("PRIVATE KEY", pair.to_pkcs8v1().expect("Ed25519 PKCS#8 v1").as_ref().to_vec())
            }
            (Material::Ed(pair), PrivateForm::Pkcs8V2) => {
                ("PRIVATE KEY", pair.to_pkcs8().expect("Ed25519 PKCS#8 v2").as_ref().to_vec())
            }
            _ => return None,
        };
        Some(pem(label, &der))
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> =
        body.as_bytes().chunks(64).map(|chunk| std::str::from_utf8(chunk).expect("base64")).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// A response, read whole: status, headers, and the body as JSON (`Null` when empty, a JSON string when
/// it is not JSON).
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body.
    pub body: Value,
}

impl Answer {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().expect("header is text"))
    }

    /// 401 with `error="invalid_token"`, the description in the challenge and in the JSON body.
    #[track_caller]
    pub fn assert_invalid_token(&self, description: &str) {
        assert_eq!(self.status, 401, "{description}: body {}", self.body);
        assert_eq!(
            self.header("www-authenticate"),
            Some(format!(r#"Bearer error="invalid_token", error_description="{description}""#).as_str())
        );
        assert_eq!(self.body, json!({ "error": "invalid_token", "error_description": description }));
        assert_eq!(self.header("content-type"), Some("application/json"));
    }

    /// 401 with a bare `WWW-Authenticate: Bearer` challenge.
    #[track_caller]
    pub fn assert_no_credentials(&self) {
        assert_eq!(self.status, 401, "body {}", self.body);
        assert_eq!(self.header("www-authenticate"), Some("Bearer"));
        assert_eq!(self.body, json!({ "error": "unauthorized", "error_description": "no bearer token was sent" }));
    }

    /// 503 with `Retry-After: 5`, no challenge, and `temporarily_unavailable` with `description`.
    #[track_caller]
    pub fn assert_unavailable(&self, description: &str) {
        assert_eq!(self.status, 503, "body {}", self.body);
        assert_eq!(self.header("retry-after"), Some("5"));
        assert_eq!(self.header("www-authenticate"), None);
        assert_eq!(self.body, json!({ "error": "temporarily_unavailable", "error_description": description }));
    }
}

/// Sends `GET url` with `headers` and reads the whole answer.
pub async fn get(client: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("the server answered");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    let body = match text.as_str() {
        "" => Value::Null,
        text => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned())),
    };
    Answer { status, headers, body }
}

/// Serves `app` on a free loopback port until the test's runtime ends, and returns its address.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    addr
}

/// A `redis-server` on a free loopback port, started by a test and stopped when dropped.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// A server with no persistence.
    pub fn start() -> Self {
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("a free port").port();
        Self::start_with(port, &["--save", "", "--appendonly", "no"])
    }

    /// A server that writes every change to an append-only file in `dir` before answering, so a restart on
    /// the same `dir` finds every revocation.
    pub fn start_persistent(port: u16, dir: &std::path::Path) -> Self {
        let dir = dir.to_str().expect("a UTF-8 temp dir");
        Self::start_with(port, &["--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", dir])
    }

    /// A server with these extra `redis-server` options.
    pub fn start_with(port: u16, options: &[&str]) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(options)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be on PATH (./scripts/test.sh installs it)");
        let server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.connection().is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A plain connection, answering PING.
    pub fn connection(&self) -> redis::RedisResult<redis::Connection> {
        let mut connection = redis::Client::open(self.url())?.get_connection()?;
        redis::cmd("PING").query::<String>(&mut connection)?;
        Ok(connection)
    }

    /// Kills the server.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `command` (an example's binary) with its log on a pipe, and waits up to 30 s for the log line
/// `listening on <url>`. Returns the process, killed when dropped, and the URL. The rest of the log is
/// drained, so the process never blocks on a full pipe.
pub async fn start_listening(mut command: tokio::process::Command) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = command
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let mut lines = tokio::io::BufReader::new(child.stderr.take().expect("piped stderr")).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let line = lines.next_line().await.expect("read the log").expect("the binary exited before listening");
            if let Some(at) = line.find("listening on ") {
                return line[at + "listening on ".len()..].trim().to_owned();
            }
        }
    })
    .await
    .expect("the binary was listening within 30 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

/// Refreshes `count` times with one refresh token, all released at once across `servers` (in turn), and
/// asserts what must come of it: exactly one succeeds, at least one is caught as reuse, and every other one
/// is refused (once reuse has revoked the family, the token is simply invalid). Returns the winner's pair.
pub async fn race_refreshes<S: jwtgate::session::RefreshStore>(
    servers: &[std::sync::Arc<jwtgate::session::Sessions<S>>],
    token: &str,
    count: usize,
) -> jwtgate::session::TokenPair {
    use jwtgate::session::SessionError;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(count));
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let (sessions, barrier, token) = (servers[i % servers.len()].clone(), barrier.clone(), token.to_owned());
            tokio::spawn(async move {
                barrier.wait().await;
                sessions.refresh(&token, |_| Some(())).await
            })
        })
        .collect();
    let (mut won, mut reused, mut refused) = (Vec::new(), 0, 0);
    for task in tasks {
        match task.await.expect("the refresh task ran") {
            Ok(pair) => won.push(pair),
            Err(SessionError::RefreshTokenReused) => reused += 1,
            Err(SessionError::InvalidRefreshToken) => refused += 1,
            Err(err) => panic!("unexpected {err}"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one refresh succeeds");
    assert!(reused >= 1, "the second one is caught as reuse");
    assert_eq!(reused + refused, count - 1, "every other one is denied");
    won.remove(0)
}
