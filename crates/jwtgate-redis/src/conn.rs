//! The connection every store of this crate shares: one server, or a Redis Cluster, each made on first use;
//! and how durable a write must be before it is confirmed.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{MultipleNodeRoutingInfo, Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, FromRedisValue, Pipeline, RedisError, RedisResult, ScriptInvocation};
use tokio::sync::OnceCell;

use crate::{DEFAULT_TIMEOUT, lazy_connection};

/// How sure a write (a revocation, a refresh rotation) must be to survive the loss of the Redis primary that
/// took it, before it is confirmed.
///
/// Redis replicates asynchronously: a primary answers a write at once, and a replica gets it a moment later.
/// A primary that dies in between takes the write with it, and the replica promoted in its place never had it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Confirmed once the primary has it: the fastest, and what Redis does by default. A revocation confirmed
    /// just before a failover may be lost.
    #[default]
    Primary,
    /// Confirmed once at least `count` replicas have it too (`WAIT`), within `timeout`. A write that does not
    /// reach them in time is an error, not a success, so that the caller can retry or refuse; it is not undone,
    /// and holds while the primary does. A confirmed write survives the failover of its primary to one of those
    /// replicas.
    Replicas {
        /// How many replicas must have the write.
        count: u32,
        /// How long to wait for them.
        timeout: Duration,
    },
}

impl Durability {
    /// [`Durability::Replicas`] with `count` replicas within `timeout`.
    pub const fn replicas(count: u32, timeout: Duration) -> Self {
        Self::Replicas { count, timeout }
    }

    /// How long confirming a write may take beyond the write itself.
    pub(crate) fn extra_time(self) -> Duration {
        match self {
            Self::Primary => Duration::ZERO,
            Self::Replicas { timeout, .. } => timeout,
        }
    }
}

/// One Redis server (a [`ConnectionManager`], which reconnects), or a Redis Cluster, connected on first use.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(LazyCluster),
}

/// A cluster connection made on first use, and again after a failed attempt; once made, the redis crate follows
/// the cluster's slots, redirections (`MOVED`, `ASK`) and failovers.
#[derive(Clone)]
pub(crate) struct LazyCluster {
    client: Arc<ClusterClient>,
    connection: Arc<OnceCell<ClusterConnection>>,
}

impl Conn {
    /// A connection to `endpoint`, made lazily: fails only for a malformed URL. Each call makes another
    /// connection, for commands that must not wait behind another connection's: `WAIT` blocks its connection
    /// until the replicas answer, and `XREAD BLOCK` until an event comes.
    pub(crate) fn connect(endpoint: &Endpoint) -> Result<Self, RedisError> {
        Self::connect_waiting(endpoint, Duration::ZERO)
    }

    /// [`connect`](Self::connect), for a connection whose commands may wait `longer` than the default
    /// timeout for their answer: `WAIT` for replicas.
    pub(crate) fn connect_waiting(endpoint: &Endpoint, longer: Duration) -> Result<Self, RedisError> {
        let response_timeout = DEFAULT_TIMEOUT + longer;
        #[cfg(feature = "tls")]
        install_crypto_provider();
        match &endpoint.nodes {
            Nodes::Single(url) => Ok(Self::Single(lazy_connection(endpoint.client(url)?, response_timeout)?)),
            Nodes::Cluster(nodes) => {
                #[cfg(feature = "tls")]
                if endpoint.tls.is_some() && !nodes.iter().all(|node| node.starts_with("rediss://")) {
                    return Err(RedisError::from((
                        redis::ErrorKind::InvalidClientConfig,
                        "Constructing a TLS client requires a URL with the `rediss://` scheme",
                    )));
                }
                let builder = ClusterClient::builder(nodes.clone())
                    .connection_timeout(DEFAULT_TIMEOUT)
                    .response_timeout(response_timeout);
                #[cfg(feature = "tls")]
                let builder = match &endpoint.tls {
                    Some(tls) => builder.certs(tls.certificates.clone()),
                    None => builder,
                };
                let client = builder.build()?;
                Ok(Self::Cluster(LazyCluster { client: Arc::new(client), connection: Arc::new(OnceCell::new()) }))
            }
        }
    }

    /// Checks, in the background, that Redis will not evict jwtgate's keys (`maxmemory-policy`), and warns
    /// if it may: once per store, on its main connection.
    pub(crate) fn watch_eviction_policy(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        match self {
            Self::Single(manager) => drop(runtime.spawn(crate::check_eviction_policy(manager.clone()))),
            Self::Cluster(cluster) => drop(runtime.spawn(check_eviction_policies(cluster.clone()))),
        }
    }

    /// Whether this is a cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Single(_) => "single",
            Self::Cluster(_) => "cluster",
        }
    }

    async fn cluster_connection(cluster: &LazyCluster) -> RedisResult<ClusterConnection> {
        let connection = cluster
            .connection
            .get_or_try_init(|| async {
                match tokio::time::timeout(DEFAULT_TIMEOUT, cluster.client.get_async_connection()).await {
                    Ok(connection) => connection,
                    Err(_) => Err(RedisError::from(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no cluster node answered",
                    ))),
                }
            })
            .await?;
        Ok(connection.clone())
    }

    /// Runs one command.
    pub(crate) async fn query<T: FromRedisValue>(&self, command: &Cmd) -> RedisResult<T> {
        match self {
            Self::Single(manager) => command.query_async(&mut manager.clone()).await,
            Self::Cluster(cluster) => command.query_async(&mut Self::cluster_connection(cluster).await?).await,
        }
    }

    /// Runs a pipeline. On a cluster, every key of the pipeline must be in one slot.
    pub(crate) async fn pipeline<T: FromRedisValue>(&self, pipeline: &Pipeline) -> RedisResult<T> {
        match self {
            Self::Single(manager) => pipeline.query_async(&mut manager.clone()).await,
            Self::Cluster(cluster) => pipeline.query_async(&mut Self::cluster_connection(cluster).await?).await,
        }
    }

    /// Runs a script, loading it first when Redis does not know it yet (after a restart, or on a node that
    /// has just been promoted). On a cluster, every key of the script must be in one slot.
    pub(crate) async fn invoke<T: FromRedisValue>(&self, invocation: &ScriptInvocation<'_>) -> RedisResult<T> {
        match self {
            Self::Single(manager) => invocation.invoke_async(&mut manager.clone()).await,
            Self::Cluster(cluster) => invocation.invoke_async(&mut Self::cluster_connection(cluster).await?).await,
        }
    }

    /// Runs `command` on the primary that serves `key`'s slot (on one server, the server): for commands
    /// without keys that concern a key's node, such as `WAIT` after a write to it, or `SCAN` of one slot's keys.
    pub(crate) async fn query_at<T: FromRedisValue>(&self, key: &str, command: Cmd) -> RedisResult<T> {
        match self {
            Self::Single(manager) => command.query_async(&mut manager.clone()).await,
            Self::Cluster(cluster) => {
                let route = Route::with_key(key, SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                let value = Self::cluster_connection(cluster).await?.route_command(command, routing).await?;
                T::from_redis_value(value).map_err(RedisError::from)
            }
        }
    }

    /// Waits until `durability` holds for the writes made before on this connection to `key`'s primary: at
    /// once for [`Durability::Primary`]; otherwise `WAIT`, and an error when too few replicas answer in time.
    pub(crate) async fn confirm(&self, key: &str, durability: Durability) -> RedisResult<()> {
        let Durability::Replicas { count, timeout } = durability else { return Ok(()) };
        let mut command = redis::cmd("WAIT");
        command.arg(count).arg(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX).max(1));
        let acknowledged: u32 = self.query_at(key, command).await?;
        if acknowledged >= count {
            Ok(())
        } else {
            Err(RedisError::from(std::io::Error::other(format!(
                "the write reached {acknowledged} of the {count} replicas required within {timeout:?}"
            ))))
        }
    }
}

/// Reads every primary's `maxmemory-policy` once the cluster answers (trying for about a minute), as
/// `check_eviction_policy` does for one server.
async fn check_eviction_policies(cluster: LazyCluster) {
    for _ in 0..12 {
        if let Ok(mut connection) = Conn::cluster_connection(&cluster).await {
            let mut command = redis::cmd("INFO");
            command.arg("memory");
            let routing = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
            match tokio::time::timeout(DEFAULT_TIMEOUT, connection.route_command(command, routing)).await {
                Ok(Ok(answer)) => return crate::report_eviction_policies(&texts(answer)),
                Ok(Err(error)) if !crate::retry_policy_check(&error) => {
                    return tracing::debug!(%error, "jwtgate: cannot read the cluster's maxmemory-policy");
                }
                _ => tracing::debug!("jwtgate: cannot read the cluster's maxmemory-policy yet"),
            }
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Every text in a (possibly per-node) answer.
fn texts(value: redis::Value) -> Vec<String> {
    match value {
        redis::Value::BulkString(bytes) => vec![String::from_utf8_lossy(&bytes).into_owned()],
        redis::Value::VerbatimString { text, .. } | redis::Value::SimpleString(text) => vec![text],
        redis::Value::Array(values) | redis::Value::Set(values) => values.into_iter().flat_map(texts).collect(),
        redis::Value::Map(pairs) => pairs.into_iter().flat_map(|(_, value)| texts(value)).collect(),
        _ => Vec::new(),
    }
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
}

/// Where a store's Redis is, and how to speak to it, kept to open more connections to it.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) nodes: Nodes,
    #[cfg(feature = "tls")]
    tls: Option<RedisTls>,
}

/// One server, or a cluster's seed nodes.
#[derive(Clone)]
pub(crate) enum Nodes {
    Single(String),
    Cluster(Vec<String>),
}

impl Endpoint {
    /// The server at `url`.
    pub(crate) fn single(url: &str) -> Self {
        Self::on(Nodes::Single(url.to_owned()))
    }

    /// A cluster's seed nodes.
    pub(crate) fn cluster<I, S>(nodes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::on(Nodes::Cluster(nodes.into_iter().map(|node| node.as_ref().to_owned()).collect()))
    }

    fn on(nodes: Nodes) -> Self {
        Self {
            nodes,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// The same nodes, over TLS with `tls`'s certificates.
    #[cfg(feature = "tls")]
    pub(crate) fn with_tls(mut self, tls: RedisTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// `"single"` or `"cluster"`, for `Debug`.
    pub(crate) fn kind(&self) -> &'static str {
        match self.nodes {
            Nodes::Single(_) => "single",
            Nodes::Cluster(_) => "cluster",
        }
    }

    /// A client for the server at `url`, with this endpoint's certificates.
    fn client(&self, url: &str) -> Result<redis::Client, RedisError> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return redis::Client::build_with_tls(url, tls.certificates.clone());
        }
        redis::Client::open(url)
    }
}

/// Makes aws-lc-rs rustls's process-wide provider, unless the program chose one: the redis crate builds its
/// TLS configuration with rustls's default provider, which rustls cannot pick (it panics) when another crate
/// of the program enables its `ring` feature too.
#[cfg(feature = "tls")]
fn install_crypto_provider() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Another thread may have installed one since: either way, there is one.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        }
    });
}

/// TLS to Redis with certificates of your own: the authorities to trust instead of the platform's, and a
/// certificate for Redis's `tls-auth-clients`. (With the `tls` feature, a `rediss://` URL alone speaks TLS,
/// trusting the platform's authorities.)
///
/// Give it to a store with `with_tls` (or [`ReplicatedDenylistBuilder::tls`](crate::ReplicatedDenylistBuilder::tls));
/// the URLs must then be `rediss://`. The host in each URL must be a name (or an IP address) in the server's
/// certificate: it is always checked.
///
/// ```no_run
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use jwtgate_redis::{RedisDenylist, RedisTls};
/// let tls = RedisTls::new().root_certificates(std::fs::read("/etc/jwtgate/redis-ca.pem")?);
/// let denylist = RedisDenylist::new("rediss://jwtgate:password@redis.internal:6380/")?.with_tls(tls)?;
/// # Ok(()) }
/// ```
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
#[derive(Clone)]
pub struct RedisTls {
    certificates: redis::TlsCertificates,
}

#[cfg(feature = "tls")]
impl RedisTls {
    /// The platform's authorities (as a `rediss://` URL alone), no client certificate.
    pub fn new() -> Self {
        Self { certificates: redis::TlsCertificates { client_tls: None, root_cert: None } }
    }

    /// Trusts only the authorities in `pem` (one or more PEM certificates), instead of the platform's. A PEM
    /// that does not parse fails `with_tls`.
    #[must_use]
    pub fn root_certificates(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.certificates.root_cert = Some(pem.into());
        self
    }

    /// Presents this certificate (a PEM chain) and its private key (PEM) to servers that ask for one.
    #[must_use]
    pub fn client_certificate(mut self, chain: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        self.certificates.client_tls =
            Some(redis::ClientTlsConfig { client_cert: chain.into(), client_key: key.into() });
        self
    }
}

#[cfg(feature = "tls")]
impl Default for RedisTls {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "tls")]
impl fmt::Debug for RedisTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTls")
            .field("root_certificates", &self.certificates.root_cert.is_some())
            .field("client_certificate", &self.certificates.client_tls.is_some())
            .finish()
    }
}

/// A store's connections: `conn` for what it reads and writes, and `writer` for writes that must be confirmed
/// by replicas, on a connection of its own, since `WAIT` blocks the connection it runs on and lookups must not
/// wait behind it.
#[derive(Clone)]
pub(crate) struct Connections {
    pub(crate) conn: Conn,
    pub(crate) writer: Conn,
    pub(crate) durability: Durability,
    endpoint: Endpoint,
}

impl Connections {
    /// Connections to `endpoint`, made on first use, with [`Durability::Primary`].
    pub(crate) fn new(endpoint: Endpoint) -> Result<Self, RedisError> {
        let conn = Conn::connect(&endpoint)?;
        conn.watch_eviction_policy();
        Ok(Self { writer: conn.clone(), conn, durability: Durability::Primary, endpoint })
    }

    /// The same connections, over TLS with `tls`'s certificates.
    #[cfg(feature = "tls")]
    pub(crate) fn with_tls(self, tls: RedisTls) -> Result<Self, RedisError> {
        let durability = self.durability;
        Self::new(self.endpoint.with_tls(tls))?.with_durability(durability)
    }

    /// The same, with writes confirmed as `durability` says.
    pub(crate) fn with_durability(mut self, durability: Durability) -> Result<Self, RedisError> {
        self.writer = match durability {
            Durability::Primary => self.conn.clone(),
            Durability::Replicas { .. } => Conn::connect_waiting(&self.endpoint, durability.extra_time())?,
        };
        self.durability = durability;
        Ok(self)
    }
}
