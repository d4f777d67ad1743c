//! Implementations nobody here wrote: PyJWT and `jose` minting tokens, and the npm `oidc-provider` as a
//! real OpenID provider on loopback. `tests/interop/setup.sh` installs them (`scripts/test.sh` runs it); a
//! test that finds them missing fails and says so, it never skips.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

/// The directory of the interop fixtures: `tests/interop`.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop")
}

fn require_setup(path: &Path) {
    assert!(
        path.exists(),
        "{} is missing: run tests/interop/setup.sh (scripts/test.sh does) to install the interop fixtures",
        path.display()
    );
}

/// A library that mints tokens.
#[derive(Clone, Copy, Debug)]
pub enum Minter {
    /// PyJWT, in `tests/interop/.venv`.
    PyJwt,
    /// `jose`, from npm.
    Jose,
}

/// What a minting script answers: the public JWK Set of its `main` keys (HMAC keys as `oct`), and one token
/// per case.
#[derive(Debug)]
pub struct Minted {
    /// `{"keys": [...]}`, with `kid` `<alg>-main`, `alg` and `use: sig` on every key.
    pub jwks: Value,
    /// The tokens, in the order of the cases.
    pub tokens: Vec<String>,
}

impl Minter {
    /// Runs the script with `cases` (see `tests/interop/README.md` for their form).
    pub async fn mint(self, cases: &[Value]) -> Minted {
        let script = match self {
            Self::PyJwt => Script::Python("mint_pyjwt.py"),
            Self::Jose => Script::Node("mint_jose.mjs"),
        };
        let answer = script.run(&json!({ "cases": cases }), Duration::from_secs(60)).await;
        let tokens = answer["tokens"]
            .as_array()
            .expect("tokens")
            .iter()
            .map(|token| token.as_str().expect("a token is a string").to_owned())
            .collect::<Vec<_>>();
        assert_eq!(tokens.len(), cases.len(), "one token per case");
        Minted { jwks: answer["jwks"].clone(), tokens }
    }
}

/// A fixture script of `tests/interop`, run with the setup's Node packages or Python environment.
#[derive(Clone, Copy, Debug)]
enum Script {
    /// On the system's `node`, with `jose` from `node_modules`.
    Node(&'static str),
    /// On the Python of `.venv`.
    Python(&'static str),
}

impl Script {
    /// Runs the script with `input` on stdin, and returns the JSON it prints; fails the test if it cannot
    /// start, fails, or takes longer than `within`.
    async fn run(self, input: &Value, within: Duration) -> Value {
        let dir = dir();
        let mut command = match self {
            Self::Python(script) => {
                let python = dir.join(".venv/bin/python");
                require_setup(&python);
                let mut command = Command::new(python);
                command.arg(dir.join(script));
                command
            }
            Self::Node(script) => {
                require_setup(&dir.join("node_modules/jose"));
                let mut command = Command::new("node");
                command.arg(dir.join(script));
                command
            }
        };
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {self:?}: {err}"));
        let input = serde_json::to_vec(input).expect("the input serializes");
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(&input).await.expect("write the input");
        drop(stdin);
        let output = tokio::time::timeout(within, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("{self:?} did not finish within {within:?}"))
            .expect("the script ran");
        assert!(
            output.status.success(),
            "{self:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|err| panic!("{self:?} answered no JSON: {err}"))
    }
}

/// A JOSE library that makes keys and encrypts and decrypts tokens (JWE), through
/// `tests/interop/jwe_jose.mjs` or `tests/interop/jwe_jwcrypto.py` (the protocol is in
/// `tests/interop/README.md`).
#[derive(Clone, Copy, Debug)]
pub enum JwePeer {
    /// `jose`, from npm.
    Jose,
    /// jwcrypto, in `tests/interop/.venv`.
    Jwcrypto,
}

impl JwePeer {
    /// Runs the script with `cases`: one result per case.
    pub async fn run(self, cases: &[Value]) -> Vec<Value> {
        let script = match self {
            Self::Jose => Script::Node("jwe_jose.mjs"),
            Self::Jwcrypto => Script::Python("jwe_jwcrypto.py"),
        };
        let answer = script.run(&json!({ "cases": cases }), Duration::from_secs(120)).await;
        let results = answer["results"].as_array().expect("results").clone();
        assert_eq!(results.len(), cases.len(), "one result per case");
        results
    }
}

/// The npm `oidc-provider`, running `tests/interop/oidc_provider.mjs` on loopback.
///
/// Its issuer is `http://127.0.0.1:<port>`; its client `test-client` gets RS256 JWT access tokens by client
/// credentials with a resource indicator (the resource is the `aud`), and ID tokens (`aud` = `test-client`).
/// Signing keys persist in a state directory, so [`OidcProvider::restart`] brings back the same issuer and
/// keys. The process is killed when this value drops.
pub struct OidcProvider {
    state: PathBuf,
    port: u16,
    issuer: String,
    jwks_fetches: Arc<AtomicUsize>,
    process: Option<Running>,
}

impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProvider")
            .field("issuer", &self.issuer)
            .field("state", &self.state)
            .field("running", &self.process.is_some())
            .finish()
    }
}

struct Running {
    child: Child,
    stdin: ChildStdin,
    answers: mpsc::UnboundedReceiver<String>,
}

impl OidcProvider {
    /// Starts a provider on a free port, with keys kept in `state` (a directory the test owns).
    pub async fn start(state: &Path) -> Self {
        require_setup(&dir().join("node_modules/oidc-provider"));
        let jwks_fetches = Arc::new(AtomicUsize::new(0));
        let (running, issuer) = Self::spawn(state, 0, &jwks_fetches).await;
        let port = issuer.rsplit(':').next().and_then(|port| port.parse().ok()).expect("the issuer has a port");
        Self { state: state.to_owned(), port, issuer, jwks_fetches, process: Some(running) }
    }

    /// Starts the provider, and once more if it has not said where it listens within 20 s: a node process
    /// that stalls at start (seen once in a while, right after a fresh install, before its server listens)
    /// is replaced rather than failing the test. A second stall fails it, with both logs.
    async fn spawn(state: &Path, port: u16, jwks_fetches: &Arc<AtomicUsize>) -> (Running, String) {
        match Self::try_spawn(state, port, jwks_fetches, Duration::from_secs(20)).await {
            Ok(started) => started,
            Err(first_log) => {
                Self::try_spawn(state, port, jwks_fetches, Duration::from_secs(60)).await.unwrap_or_else(|log| {
                    panic!("the OpenID provider did not start, twice; its logs:\n{first_log}\n---\n{log}")
                })
            }
        }
    }

    /// Starts the provider and waits `limit` for its address; on a timeout, kills it and returns its log.
    async fn try_spawn(
        state: &Path,
        port: u16,
        jwks_fetches: &Arc<AtomicUsize>,
        limit: Duration,
    ) -> Result<(Running, String), String> {
        let mut child = Command::new("node")
            .arg(dir().join("oidc_provider.mjs"))
            .arg(state)
            .env("PORT", port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts the OpenID provider");
        // Its log, kept to explain a provider that does not start.
        let log = Arc::new(std::sync::Mutex::new(String::new()));
        let mut errors = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let kept = Arc::clone(&log);
        tokio::spawn(async move {
            while let Ok(Some(line)) = errors.next_line().await {
                if let Ok(mut log) = kept.lock() {
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        });
        let stdin = child.stdin.take().expect("piped stdin");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let (sender, mut answers) = mpsc::unbounded_channel();
        let fetches = Arc::clone(jwks_fetches);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if line == "jwks-fetch" {
                    fetches.fetch_add(1, Ordering::SeqCst);
                } else if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let log = move || log.lock().map(|log| log.clone()).unwrap_or_default();
        let Ok(first) = tokio::time::timeout(limit, answers.recv()).await else {
            let _ = child.kill().await;
            return Err(format!("(no address within {limit:?})\n{}", log()));
        };
        let first = first
            .unwrap_or_else(|| panic!("the OpenID provider exited before printing its address; its log:\n{}", log()));
        let issuer = first.strip_prefix("listening ").unwrap_or_else(|| panic!("unexpected first line {first:?}"));
        Ok((Running { child, stdin, answers }, issuer.to_owned()))
    }

    /// The issuer URL, which discovery starts from.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// How many times the JWKS endpoint was requested, since the first start. A round trip to the provider
    /// first makes sure every `jwks-fetch` line it printed has been counted.
    pub async fn jwks_fetches(&mut self) -> usize {
        if self.process.is_some() {
            self.expect("ping", "pong").await;
        }
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    async fn command(&mut self, command: &str) -> String {
        let running = self.process.as_mut().expect("the provider is running");
        running.stdin.write_all(format!("{command}\n").as_bytes()).await.expect("send a command");
        running.stdin.flush().await.expect("flush the command");
        let answer = tokio::time::timeout(Duration::from_secs(30), running.answers.recv())
            .await
            .expect("the provider answered within 30 s")
            .expect("the provider is still running");
        assert!(!answer.starts_with("error "), "the provider refused {command:?}: {answer}");
        answer
    }

    async fn expect(&mut self, command: &str, prefix: &str) -> String {
        let answer = self.command(command).await;
        answer.strip_prefix(prefix).unwrap_or_else(|| panic!("{command:?} answered {answer:?}")).to_owned()
    }

    /// A JWT access token for `resource` (its `aud`), from the client credentials grant, scope `read`.
    pub async fn access_token(&mut self, resource: &str) -> String {
        self.expect(&format!("access-token {resource}"), "access-token ").await
    }

    /// A DPoP-bound access token for `resource` (`cnf.jkt` names the provider script's DPoP key), from the
    /// client credentials grant with a proof made by the npm `dpop` package.
    pub async fn dpop_token(&mut self, resource: &str) -> String {
        self.expect(&format!("dpop-token {resource}"), "dpop-token ").await
    }

    /// A DPoP proof for `htm` `htu` with `access_token`, made by the npm `dpop` package with the key the
    /// provider's DPoP tokens are bound to; with `another_key`, with a fresh key instead.
    pub async fn dpop_proof(&mut self, htm: &str, htu: &str, access_token: &str, another_key: bool) -> String {
        let command = if another_key { "dpop-proof-other" } else { "dpop-proof" };
        self.expect(&format!("{command} {htm} {htu} {access_token}"), "dpop-proof ").await
    }

    /// An opaque access token for `resource`, which must have a path starting with `/opaque`, from the client
    /// credentials grant, scope `read`.
    pub async fn opaque_token(&mut self, resource: &str) -> String {
        self.expect(&format!("opaque-token {resource}"), "opaque-token ").await
    }

    /// Revokes `token` at the provider's revocation endpoint (RFC 7009).
    pub async fn revoke(&mut self, token: &str) {
        self.expect(&format!("revoke {token}"), "revoked").await;
    }

    /// The provider's introspection endpoint (RFC 7662), which only the client `api-introspector` (secret
    /// `api-introspector-secret`, HTTP Basic) may call.
    pub fn introspection_url(&self) -> String {
        format!("{}/token/introspection", self.issuer)
    }

    /// An ID token for the user `alice` (`aud` = `test-client`), from the authorization code flow.
    pub async fn id_token(&mut self) -> String {
        self.expect("id-token", "id-token ").await
    }

    /// Adds a new signing key in front (it signs from now on) and keeps publishing the old ones. Returns
    /// the new `kid`.
    pub async fn rotate(&mut self) -> String {
        self.expect("rotate", "rotated ").await
    }

    /// Stops publishing every key but the newest.
    pub async fn retire(&mut self) {
        self.expect("retire", "retired").await;
    }

    /// Kills the provider; its port is closed until [`OidcProvider::restart`].
    pub async fn stop(&mut self) {
        if let Some(mut running) = self.process.take() {
            running.child.kill().await.expect("kill the provider");
        }
    }

    /// Starts the provider again on the same port, with the same keys.
    pub async fn restart(&mut self) {
        self.stop().await;
        let (running, issuer) = Self::spawn(&self.state, self.port, &self.jwks_fetches).await;
        assert_eq!(issuer, self.issuer, "the provider came back as the same issuer");
        self.process = Some(running);
    }
}
