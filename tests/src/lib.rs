//! Helpers for jwtgate's own integration tests and benchmarks, over `jwtgate-test` (keys generated at test
//! time, token signing, the mock JWKS server): the test apps' claims, HTTP answers, Redis and other servers.
//! Nothing here is for production.

pub mod bench;
pub mod interop;
pub mod logs;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jwtgate::Algorithm;
use serde_json::{Value, json};

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

/// The keys, the token signing and the mock JWKS server come from `jwtgate-test`, the crate our users'
/// tests use.
pub use jwtgate_test::{PrivateForm, TestKey, b64, now};

/// A self-signed X.509 certificate for a test key's public half, as PEM.
pub trait CertificatePem {
    /// The certificate, for asymmetric keys; `None` for HMAC.
    fn certificate_pem(&self) -> Option<String>;
}

impl CertificatePem for TestKey {
    fn certificate_pem(&self) -> Option<String> {
        let pem = self.private_pem(PrivateForm::Pkcs8)?;
        let body: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
        let pkcs8 = STANDARD.decode(body).expect("PEM body");
        let der = rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8);
        let sig_alg = match self.alg() {
            Algorithm::ES256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Algorithm::ES384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            Algorithm::EdDSA => &rcgen::PKCS_ED25519,
            _ => &rcgen::PKCS_RSA_SHA256,
        };
        let key_pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, sig_alg).expect("rcgen key pair");
        let params = rcgen::CertificateParams::new(vec!["jwtgate.test".to_owned()]).expect("certificate params");
        Some(params.self_signed(&key_pair).expect("self-signed certificate").pem())
    }
}

/// A denylist whose store never answers: every lookup and revocation fails, as with Redis down.
#[derive(Debug)]
pub struct DownDenylist;

impl jwtgate::revocation::Denylist for DownDenylist {
    fn check(&self, _claims: &jwtgate::validation::RegisteredClaims) -> jwtgate::revocation::Lookup {
        jwtgate::revocation::Lookup::Ready(Err(jwtgate::revocation::DenylistError::new("connection refused")))
    }

    fn revoke(&self, _jti: &str, _until: i64) -> jwtgate::revocation::PendingRevocation {
        Box::pin(async { Err(jwtgate::revocation::DenylistError::new("connection refused")) })
    }

    fn revoke_subject(
        &self,
        _subject: &str,
        _issued_before: i64,
        _until: i64,
    ) -> jwtgate::revocation::PendingRevocation {
        Box::pin(async { Err(jwtgate::revocation::DenylistError::new("connection refused")) })
    }
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
        assert_eq!(self.header("cache-control"), Some("no-store"), "a refusal is never cached");
    }

    /// 401 with a bare `WWW-Authenticate: Bearer` challenge.
    #[track_caller]
    pub fn assert_no_credentials(&self) {
        assert_eq!(self.status, 401, "body {}", self.body);
        assert_eq!(self.header("www-authenticate"), Some("Bearer"));
        assert_eq!(self.body, json!({ "error": "unauthorized", "error_description": "no bearer token was sent" }));
        assert_eq!(self.header("cache-control"), Some("no-store"), "a refusal is never cached");
    }

    /// 503 with `Retry-After: 5`, no challenge, and `temporarily_unavailable` with `description`.
    #[track_caller]
    pub fn assert_unavailable(&self, description: &str) {
        assert_eq!(self.status, 503, "body {}", self.body);
        assert_eq!(self.header("retry-after"), Some("5"));
        assert_eq!(self.header("www-authenticate"), None);
        assert_eq!(self.body, json!({ "error": "temporarily_unavailable", "error_description": description }));
        assert_eq!(self.header("cache-control"), Some("no-store"), "a refusal is never cached");
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
    tls_port: Option<u16>,
}

impl RedisServer {
    /// A server with no persistence.
    pub fn start() -> Self {
        Self::start_on_free_ports(|_| Vec::new())
    }

    /// A server with no persistence on a free port, plus the options `extra` gives for a second free port;
    /// started again on other ports when another process takes one first (a few times at most).
    fn start_on_free_ports(extra: impl Fn(u16) -> Vec<String>) -> Self {
        for attempt in 1.. {
            let (port, second) = (free_port(), free_port());
            let extra = extra(second);
            let uses_second = !extra.is_empty();
            let mut options: Vec<String> = ["--save", "", "--appendonly", "no"].map(str::to_owned).to_vec();
            options.extend(extra);
            let options: Vec<&str> = options.iter().map(String::as_str).collect();
            match Self::try_start(port, &options) {
                Ok(mut server) => {
                    server.tls_port = uses_second.then_some(second);
                    return server;
                }
                Err(error) => assert!(attempt < 5, "{error}, after {attempt} attempts"),
            }
        }
        unreachable!("the loop returns or fails")
    }

    /// A server with no persistence that also serves TLS with `files`' certificates, on a port of its own
    /// ([`tls_url`](Self::tls_url)); `auth_clients` is `tls-auth-clients` (`yes`, `optional`, `no`).
    pub fn start_tls(files: &RedisTlsFiles, auth_clients: &str) -> Self {
        Self::start_on_free_ports(|tls_port| files.server_options(tls_port, auth_clients))
    }

    /// A server that writes every change to an append-only file in `dir` before answering, so a restart on
    /// the same `dir` finds every revocation.
    pub fn start_persistent(port: u16, dir: &std::path::Path) -> Self {
        let dir = dir.to_str().expect("a UTF-8 temp dir");
        Self::start_with(port, &["--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", dir])
    }

    /// A server with these extra `redis-server` options.
    pub fn start_with(port: u16, options: &[&str]) -> Self {
        Self::try_start(port, options).unwrap_or_else(|error| panic!("{error}"))
    }

    /// A server on `port`; an error when it exits (the port was taken) or does not answer within 10 s.
    fn try_start(port: u16, options: &[&str]) -> Result<Self, String> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(options)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be on PATH (./scripts/test.sh installs it)");
        let mut server = Self { child, port, tls_port: None };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // A server that exited did not get the port: whatever answers there is another process's.
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("redis-server did not start on port {port} ({status})"));
            }
            if server.connection().is_ok() {
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err(format!("redis-server did not answer on port {port} within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// `rediss://127.0.0.1:<tls port>/`, for a server started with [`start_tls`](Self::start_tls).
    pub fn tls_url(&self) -> String {
        format!("rediss://127.0.0.1:{}/", self.tls_port.expect("a server started with start_tls"))
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

/// Certificates for Redis over TLS, made for one test and written to a directory of their own (removed when
/// dropped): a CA, a server certificate for `127.0.0.1` and `localhost` (for server and client use, as the
/// nodes of a cluster present it to each other), and a client certificate.
#[derive(Debug)]
pub struct RedisTlsFiles {
    dir: std::path::PathBuf,
    /// The CA's certificate, PEM.
    pub ca_pem: String,
    /// A client certificate signed by the CA, PEM.
    pub client_pem: String,
    /// The client certificate's private key, PEM.
    pub client_key_pem: String,
}

impl RedisTlsFiles {
    /// A new CA, and a server certificate for `names` (IP addresses or DNS names).
    pub fn new(names: &[&str]) -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
            IsCa, KeyPair, KeyUsagePurpose,
        };
        // Each certificate with a name of its own: OpenSSL (redis-server, redis-cli) takes a certificate whose
        // subject is its issuer's for a self-signed one.
        let named = |name: &str| {
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, name);
            dn
        };
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "jwtgate-redis-tls-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("a temp dir for the certificates");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        params.distinguished_name = named("jwtgate test CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("a key")).expect("a CA");
        let leaf = |names: Vec<String>, usages: Vec<ExtendedKeyUsagePurpose>| {
            let mut params = CertificateParams::new(names.clone()).expect("leaf params");
            params.distinguished_name = named(&names[0]);
            params.extended_key_usages = usages;
            let key = KeyPair::generate().expect("a key");
            (params.signed_by(&key, &ca).expect("a certificate").pem(), key.serialize_pem())
        };
        let (server_pem, server_key_pem) = leaf(
            names.iter().map(|name| (*name).to_owned()).collect(),
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth],
        );
        let (client_pem, client_key_pem) =
            leaf(vec!["jwtgate-client".to_owned()], vec![ExtendedKeyUsagePurpose::ClientAuth]);
        let files = Self { dir, ca_pem: ca.pem(), client_pem, client_key_pem };
        for (name, contents) in [
            ("ca.pem", &files.ca_pem),
            ("server.pem", &server_pem),
            ("server.key", &server_key_pem),
            ("client.pem", &files.client_pem),
            ("client.key", &files.client_key_pem),
        ] {
            std::fs::write(files.path(name), contents).expect("a certificate file");
        }
        files
    }

    /// The path of one of the files: `ca.pem`, `server.pem`, `server.key`, `client.pem`, `client.key`.
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().expect("a UTF-8 temp dir").to_owned()
    }

    /// `redis-server`'s options to serve TLS on `tls_port` with these files; `auth_clients` is
    /// `tls-auth-clients` (`yes`, `optional`, `no`).
    pub fn server_options(&self, tls_port: u16, auth_clients: &str) -> Vec<String> {
        [
            "--tls-port",
            &tls_port.to_string(),
            "--tls-cert-file",
            &self.path("server.pem"),
            "--tls-key-file",
            &self.path("server.key"),
            "--tls-ca-cert-file",
            &self.path("ca.pem"),
            "--tls-auth-clients",
            auth_clients,
        ]
        .map(str::to_owned)
        .to_vec()
    }
}

impl Drop for RedisTlsFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("a free port").port()
}

/// Drives every future at once and returns their outputs in order: requests built by reqwest start only when
/// polled, so awaiting them one after another would send them one after another.
pub async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (future, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
    })
    .await;
    outputs.into_iter().map(|output| output.expect("every future is done")).collect()
}

/// A real Redis Cluster on loopback: three primaries and three replicas, each a `redis-server` on a free port
/// with its own directory, joined by `redis-cli --cluster create --cluster-replicas 1`, with a 1 s
/// `cluster-node-timeout` so that a failover takes seconds. Every node is killed when this drops.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<ClusterNode>,
    dir: std::path::PathBuf,
    /// `redis-server`'s TLS options but the port: the cluster speaks TLS between its nodes and to clients.
    tls: Option<Vec<String>>,
}

#[derive(Debug)]
struct ClusterNode {
    port: u16,
    /// The cluster bus's port, chosen free as the others: Redis's default, the port plus 10,000, may be in use
    /// (by any connection's ephemeral port).
    bus_port: u16,
    /// The port that serves TLS, in a cluster started with [`RedisCluster::start_tls`].
    tls_port: Option<u16>,
    child: Option<Child>,
}

impl ClusterNode {
    /// Whether this node listens on `port`, plain or TLS (a TLS cluster lists either, by who asks).
    fn is_on(&self, port: u16) -> bool {
        self.port == port || self.tls_port == Some(port)
    }
}

impl RedisCluster {
    /// Starts six nodes and joins them, then waits until every node says `cluster_state:ok`.
    pub fn start() -> Self {
        Self::start_on(None)
    }

    /// The same cluster, speaking TLS with `files`' certificates between its nodes (the cluster bus and
    /// replication) and to clients, on ports of their own ([`tls_urls`](Self::tls_urls)); no client
    /// certificate is asked for. Each node serves plain TCP on another port too, for this helper.
    pub fn start_tls(files: &RedisTlsFiles) -> Self {
        let mut options = files.server_options(0, "no");
        // The port is per node: `spawn` puts it back.
        options.drain(..2);
        options.extend(["--tls-cluster", "yes", "--tls-replication", "yes"].map(str::to_owned));
        Self::start_on(Some((options, files.path("ca.pem"))))
    }

    fn start_on(tls: Option<(Vec<String>, String)>) -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "jwtgate-cluster-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("a temp dir for the cluster");
        let (tls, ca) = match tls {
            Some((options, ca)) => (Some(options), Some(ca)),
            None => (None, None),
        };
        let mut cluster = Self { nodes: Vec::new(), dir, tls };
        // Ports are free when chosen, but another process may take one before its node binds it: then every
        // node is stopped and the cluster starts again on new ports (a few times at most).
        for attempt in 1.. {
            // Free ports (a third more with TLS), held until all are chosen so that none repeats.
            let count = if cluster.tls.is_some() { 18 } else { 12 };
            let listeners: Vec<_> =
                (0..count).map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port")).collect();
            let ports: Vec<u16> = listeners.iter().map(|l| l.local_addr().expect("a free port").port()).collect();
            drop(listeners);
            let mut started = true;
            for index in 0..6 {
                let tls_port = cluster.tls.as_ref().map(|_| ports[index + 12]);
                let node = ClusterNode { port: ports[index], bus_port: ports[index + 6], tls_port, child: None };
                match cluster.spawn(&node) {
                    Ok(child) => cluster.nodes.push(ClusterNode { child: Some(child), ..node }),
                    Err(error) => {
                        assert!(attempt < 5, "{error}, after {attempt} attempts");
                        started = false;
                        break;
                    }
                }
            }
            if started {
                break;
            }
            for mut node in cluster.nodes.drain(..) {
                if let Some(mut child) = node.child.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        // The nodes meet on the ports they will be known by: the TLS ones, in a TLS cluster.
        let addresses: Vec<String> =
            cluster.nodes.iter().map(|node| format!("127.0.0.1:{}", node.tls_port.unwrap_or(node.port))).collect();
        let mut command = Command::new("redis-cli");
        if let Some(ca) = &ca {
            command.args(["--tls", "--cacert", ca]);
        }
        let output = command
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli must be on PATH (./scripts/test.sh installs it)");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        cluster.wait_until_ok(Duration::from_secs(30));
        cluster
    }

    /// Starts the node `node` describes; an error when it exits or does not answer within 10 s.
    fn spawn(&self, node: &ClusterNode) -> Result<Child, String> {
        let port = node.port;
        let dir = self.dir.join(port.to_string());
        std::fs::create_dir_all(&dir).expect("a node's dir");
        let mut command = Command::new("redis-server");
        if let (Some(options), Some(tls_port)) = (&self.tls, node.tls_port) {
            command.args(["--tls-port", &tls_port.to_string()]).args(options);
        }
        let child = command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"])
            .args(["--cluster-port", &node.bus_port.to_string()])
            .args(["--cluster-config-file", "nodes.conf", "--dir", dir.to_str().expect("a UTF-8 dir")])
            // Every write on disk before it is answered: a whole cluster stopped and started again keeps them.
            .args(["--save", "", "--appendonly", "yes", "--appendfsync", "always"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be on PATH (./scripts/test.sh installs it)");
        let mut child = child;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Self::node_connection(port).is_err() {
            let exited = child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("cluster node on port {port} did not start ({exited:?})"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(child)
    }

    fn node_connection(port: u16) -> redis::RedisResult<redis::Connection> {
        let mut connection = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?.get_connection()?;
        redis::cmd("PING").query::<String>(&mut connection)?;
        Ok(connection)
    }

    /// Waits until every running node reports `cluster_state:ok` with every slot served, and every primary
    /// whose replica runs has it online (its initial sync done): `WAIT` can then be answered.
    pub fn wait_until_ok(&self, within: Duration) {
        let deadline = Instant::now() + within;
        let running = self.nodes.iter().filter(|node| node.child.is_some()).count();
        loop {
            let mut replicas_online = 0;
            let ok = self.nodes.iter().filter(|node| node.child.is_some()).all(|node| {
                let Ok(mut connection) = Self::node_connection(node.port) else { return false };
                let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut connection).unwrap_or_default();
                let replication: String =
                    redis::cmd("INFO").arg("replication").query(&mut connection).unwrap_or_default();
                replicas_online += replication.lines().filter(|line| line.contains("state=online")).count();
                info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
            });
            // Three primaries: every running node beyond them is a replica that must be online.
            let ok = ok && replicas_online >= running.saturating_sub(3);
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "the cluster was not ok within {within:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The seed URLs of every node, `redis://127.0.0.1:<port>/`.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|node| format!("redis://127.0.0.1:{}/", node.port)).collect()
    }

    /// The TLS seed URLs of every node, `rediss://127.0.0.1:<tls port>/`, in a cluster started with
    /// [`start_tls`](Self::start_tls).
    pub fn tls_urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|node| format!("rediss://127.0.0.1:{}/", node.tls_port.expect("a cluster started with start_tls")))
            .collect()
    }

    /// The port of the primary that serves `key`'s slot now.
    pub fn primary_of(&self, key: &str) -> u16 {
        self.shard_of(key).0
    }

    /// The port of a replica of the primary that serves `key`'s slot now, once the cluster lists one (a node
    /// that rejoined as a replica is listed within seconds).
    pub fn replica_of(&self, key: &str) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let (_, Some(replica)) = self.shard_of(key) {
                return replica;
            }
            assert!(Instant::now() < deadline, "no replica of {key}'s primary is listed");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The ports of the primary, and of a replica if any, that serve `key`'s slot now.
    fn shard_of(&self, key: &str) -> (u16, Option<u16>) {
        let node = self.nodes.iter().find(|node| node.child.is_some()).expect("a running node");
        let mut connection = Self::node_connection(node.port).expect("a running node answers");
        let slot: u16 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query(&mut connection).expect("CLUSTER KEYSLOT");
        let shards: Vec<Vec<redis::Value>> =
            redis::cmd("CLUSTER").arg("SLOTS").query(&mut connection).expect("CLUSTER SLOTS");
        for shard in shards {
            let (Some(redis::Value::Int(from)), Some(redis::Value::Int(to)), Some(redis::Value::Array(primary))) =
                (shard.first(), shard.get(1), shard.get(2))
            else {
                continue;
            };
            if (*from..=*to).contains(&i64::from(slot))
                && let Some(redis::Value::Int(port)) = primary.get(1)
            {
                let replica = match shard.get(3) {
                    Some(redis::Value::Array(replica)) => match replica.get(1) {
                        Some(redis::Value::Int(port)) => u16::try_from(*port).ok(),
                        _ => None,
                    },
                    _ => None,
                };
                return (u16::try_from(*port).expect("a port"), replica);
            }
        }
        panic!("no primary serves slot {slot}")
    }

    /// The ports of the primaries that serve slots now.
    pub fn primaries(&self) -> Vec<u16> {
        let node = self.nodes.iter().find(|node| node.child.is_some()).expect("a running node");
        let mut connection = Self::node_connection(node.port).expect("a running node answers");
        let shards: Vec<Vec<redis::Value>> =
            redis::cmd("CLUSTER").arg("SLOTS").query(&mut connection).expect("CLUSTER SLOTS");
        let mut ports: Vec<u16> = shards
            .iter()
            .filter_map(|shard| match shard.get(2) {
                Some(redis::Value::Array(primary)) => match primary.get(1) {
                    Some(redis::Value::Int(port)) => u16::try_from(*port).ok(),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// A plain connection to the node on `port`.
    pub fn connection(&self, port: u16) -> redis::RedisResult<redis::Connection> {
        Self::node_connection(port)
    }

    /// Kills every node: the whole cluster is down.
    pub fn stop_all(&mut self) {
        let ports: Vec<u16> = self.nodes.iter().map(|node| node.port).collect();
        for port in ports {
            self.kill(port);
        }
    }

    /// Starts every node that is down, and waits until the cluster is whole again.
    pub fn start_all(&mut self) {
        let ports: Vec<u16> = self.nodes.iter().filter(|node| node.child.is_none()).map(|node| node.port).collect();
        for port in ports {
            self.restart(port);
        }
        self.wait_until_ok(Duration::from_secs(30));
    }

    /// Kills the node on `port` at once (SIGKILL), as a crash would.
    pub fn kill(&mut self, port: u16) {
        let node = self.nodes.iter_mut().find(|node| node.is_on(port)).expect("a node of this cluster");
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the node on `port` again, with its cluster configuration: it rejoins, as a replica if it was
    /// failed over.
    pub fn restart(&mut self, port: u16) {
        let index = self.nodes.iter().position(|node| node.is_on(port)).expect("a node of this cluster");
        let child = self.spawn(&self.nodes[index]).unwrap_or_else(|error| panic!("{error}"));
        self.nodes[index].child = Some(child);
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `command` (an example's binary) with its stdout and log on pipes, and waits up to 30 s for the line
/// `listening on <url>` on either. Returns the process, killed when dropped, and the URL. The rest of both
/// is drained, so the process never blocks on a full pipe.
pub async fn start_listening(command: tokio::process::Command) -> (tokio::process::Child, String) {
    let (child, url, _) = start_listening_with_log(command).await;
    (child, url)
}

/// [`start_listening`], which also returns every line the binary wrote before `listening on`, on either
/// stream.
pub async fn start_listening_with_log(
    mut command: tokio::process::Command,
) -> (tokio::process::Child, String, Vec<String>) {
    use tokio::io::{AsyncBufReadExt, AsyncRead};
    let mut child = command
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    // Every line goes through one channel, in the order each stream wrote it, until `listening on`.
    let (found, mut lines) = tokio::sync::mpsc::unbounded_channel();
    fn drain(stream: impl AsyncRead + Unpin + Send + 'static, found: tokio::sync::mpsc::UnboundedSender<String>) {
        let mut lines = tokio::io::BufReader::new(stream).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = found.send(line);
            }
        });
    }
    drain(child.stdout.take().expect("piped stdout"), found.clone());
    drain(child.stderr.take().expect("piped stderr"), found);
    let mut log = Vec::new();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let line = lines.recv().await.expect("the binary exited before listening");
            if let Some(at) = line.find("listening on ") {
                return line[at + "listening on ".len()..].trim().to_owned();
            }
            log.push(line);
        }
    })
    .await
    .expect("the binary was listening within 30 s");
    (child, url, log)
}

pub use rustix::process::Signal;

/// Sends `signal` to `child` at once and returns its exit code, waiting up to 10 s. Fails the test when the
/// signal killed the process instead of stopping it (no exit code).
pub async fn stop_with(child: &mut tokio::process::Child, signal: Signal) -> i32 {
    let pid = child.id().and_then(|pid| i32::try_from(pid).ok()).and_then(rustix::process::Pid::from_raw);
    rustix::process::kill_process(pid.expect("the process is running"), signal).expect("the signal was sent");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the process stopped within 10 s")
        .expect("its status");
    status.code().unwrap_or_else(|| panic!("{signal:?} killed the process instead of stopping it: {status:?}"))
}

/// Starts the binary that `command` makes, three times with each of SIGINT and SIGTERM, and sends the signal
/// the moment `listening on` appears: each run must end with status 0. A binary that installs its signal
/// handlers only after it says it listens is killed by the signal instead.
pub async fn assert_stops_cleanly_on_signals(command: impl Fn() -> tokio::process::Command) {
    for signal in [Signal::INT, Signal::TERM].repeat(3) {
        let (mut child, _) = start_listening(command()).await;
        assert_eq!(stop_with(&mut child, signal).await, 0, "after {signal:?}");
    }
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

/// The README and the guides in `docs/`, compiled and run as doctests of this crate, so that every Rust
/// example in them builds against the current API. A block marked `no_run` is compiled only.
#[cfg(doctest)]
mod docs {
    macro_rules! doc_file {
        ($name:ident, $path:literal) => {
            #[doc = include_str!($path)]
            struct $name;
        };
    }
    doc_file!(Readme, "../../README.md");
    doc_file!(Cache, "../../docs/cache.md");
    doc_file!(Deployment, "../../docs/deployment.md");
    doc_file!(Encryption, "../../docs/encryption.md");
    doc_file!(Errors, "../../docs/errors.md");
    doc_file!(Events, "../../docs/events.md");
    doc_file!(Guards, "../../docs/guards.md");
    doc_file!(Guide, "../../docs/guide.md");
    doc_file!(Introspection, "../../docs/introspection.md");
    doc_file!(Keys, "../../docs/keys.md");
    doc_file!(Mcp, "../../docs/mcp.md");
    doc_file!(Migration, "../../docs/migration.md");
    doc_file!(Observability, "../../docs/observability.md");
    doc_file!(Recipes, "../../docs/recipes.md");
    doc_file!(Resource, "../../docs/resource.md");
    doc_file!(Revocation, "../../docs/revocation.md");
    doc_file!(Security, "../../docs/security.md");
    doc_file!(Sessions, "../../docs/sessions.md");
}
