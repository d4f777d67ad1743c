//! The connection every store of this crate shares: one server, or a Redis Cluster, each made on first use;
//! and how durable a write must be before it is confirmed.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
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
        match endpoint {
            Endpoint::Single(url) => Ok(Self::Single(lazy_connection(url, DEFAULT_TIMEOUT + longer)?)),
            Endpoint::Cluster(nodes) => Self::cluster(nodes, DEFAULT_TIMEOUT + longer),
        }
    }

    /// A connection to the server at `url`, made lazily: fails only for a malformed URL.
    pub(crate) fn single(url: &str) -> Result<Self, RedisError> {
        Self::connect(&Endpoint::Single(url.to_owned()))
    }

    /// A connection to the cluster whose seed nodes are `nodes`, made lazily: fails only for a malformed URL.
    fn cluster(nodes: &[String], response_timeout: Duration) -> Result<Self, RedisError> {
        let client = ClusterClient::builder(nodes.to_vec())
            .connection_timeout(DEFAULT_TIMEOUT)
            .response_timeout(response_timeout)
            .build()?;
        Ok(Self::Cluster(LazyCluster { client: Arc::new(client), connection: Arc::new(OnceCell::new()) }))
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

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
}

/// Where a store's Redis is, kept to open more connections to it.
#[derive(Clone)]
pub(crate) enum Endpoint {
    Single(String),
    Cluster(Vec<String>),
}

impl Endpoint {
    /// A cluster's seed nodes.
    pub(crate) fn cluster<I, S>(nodes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::Cluster(nodes.into_iter().map(|node| node.as_ref().to_owned()).collect())
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
        Ok(Self { writer: conn.clone(), conn, durability: Durability::Primary, endpoint })
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
