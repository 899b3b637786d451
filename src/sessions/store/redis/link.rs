//! The connection to Redis: one multiplexed connection to a single server (the redis crate's
//! `ConnectionManager`, which reconnects by itself), or a Redis Cluster connection, which
//! follows the cluster's slots and failovers. Concurrent requests share it and are pipelined
//! on it. Every call is bounded in time, and its failures are sorted into the store's errors.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, ServerErrorKind, Value};

use crate::sessions::store::StoreError;

/// Where the store connects, read from the configuration.
#[derive(Debug, Clone)]
pub struct RedisTarget {
    /// `redis://` or `rediss://` URLs: one server, or a cluster's seed nodes.
    pub urls: Vec<String>,
    /// Whether the URLs are nodes of a Redis Cluster.
    pub cluster: bool,
    /// The password, when not in the URL (from `SESSIONGATE_REDIS_PASSWORD` or a file).
    pub password: Option<String>,
    /// PEM of the authority to trust for `rediss://` (else the system's roots).
    pub tls_ca: Option<Vec<u8>>,
    /// How long one call may take, connecting included.
    pub timeout: Duration,
}

/// A connection to a server or a cluster; clones share it.
#[derive(Clone)]
pub(super) enum Link {
    Server(ConnectionManager),
    Cluster(ClusterConnection),
}

/// Reconnection backoff: quick, so that a restarted Redis is used again within a second or
/// two; capped, so that a Redis that stays down is not hammered.
const RECONNECT_MIN: Duration = Duration::from_millis(20);
const RECONNECT_MAX: Duration = Duration::from_millis(250);

impl Link {
    /// Connects, without waiting for the server: a Redis that is down at start-up (or
    /// still starting) is connected to once it answers, and until then calls fail with
    /// [`StoreError::Unavailable`].
    pub(super) async fn open(target: &RedisTarget) -> Result<Link, StoreError> {
        let mut infos = Vec::with_capacity(target.urls.len());
        for url in &target.urls {
            let mut info =
                redis::IntoConnectionInfo::into_connection_info(url.as_str()).map_err(|e| {
                    // The URL may hold a password: name what is wrong, not the URL.
                    StoreError::Refused(format!("store.redis_url is not a Redis URL: {e}"))
                })?;
            if let Some(password) = &target.password {
                let settings = info
                    .redis_settings()
                    .clone()
                    .set_password(password.as_str());
                info = info.set_redis_settings(settings);
            }
            infos.push(info);
        }
        let certificates = || redis::TlsCertificates {
            client_tls: None,
            root_cert: target.tls_ca.clone(),
        };
        if target.cluster {
            let mut builder = redis::cluster::ClusterClientBuilder::new(infos);
            if target.tls_ca.is_some() {
                builder = builder.certs(certificates());
            }
            let client = builder
                .connection_timeout(target.timeout)
                .response_timeout(target.timeout)
                .retries(2)
                .min_retry_wait(RECONNECT_MIN.as_millis() as u64)
                .max_retry_wait(RECONNECT_MAX.as_millis() as u64)
                .build()
                .map_err(classify)?;
            let connection = client.get_async_connection().await.map_err(classify)?;
            return Ok(Link::Cluster(connection));
        }
        let [info] = <[_; 1]>::try_from(infos).map_err(|_| {
            StoreError::Refused("store.redis_url: one URL unless store.redis_cluster".into())
        })?;
        let client = match target.tls_ca {
            Some(_) => redis::Client::build_with_tls(info, certificates()),
            None => redis::Client::open(info),
        }
        .map_err(classify)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(target.timeout))
            .set_response_timeout(Some(target.timeout))
            .set_min_delay(RECONNECT_MIN)
            .set_max_delay(RECONNECT_MAX)
            .set_number_of_retries(3);
        let manager = ConnectionManager::new_lazy_with_config(client, config).map_err(classify)?;
        Ok(Link::Server(manager))
    }
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Link::Server(c) => c.req_packed_command(cmd),
            Link::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Link::Server(c) => c.req_packed_commands(cmd, offset, count),
            Link::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Link::Server(c) => c.get_db(),
            Link::Cluster(c) => c.get_db(),
        }
    }
}

/// Sorts a Redis failure into the store's errors: the server cannot be reached or is not
/// serving (down, loading, failing over) is [`StoreError::Unavailable`]; a command it
/// refused is [`StoreError::Refused`].
pub(super) fn classify(error: RedisError) -> StoreError {
    if error.is_timeout() {
        return StoreError::Unavailable(format!("timed out: {error}"));
    }
    let unreachable = error.is_io_error()
        || error.is_connection_refusal()
        || error.is_connection_dropped()
        || error.is_cluster_error()
        || matches!(
            error.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::AuthenticationFailed
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ReadOnly
                )
        );
    if unreachable {
        StoreError::Unavailable(error.to_string())
    } else {
        StoreError::Refused(error.to_string())
    }
}
