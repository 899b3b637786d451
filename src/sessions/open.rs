//! Opening the store a configuration names: sled in `data_dir`, or Redis at
//! `store.redis_url`.

use std::sync::Arc;
use std::time::Duration;

use super::store::dump::Dump;
use super::{RedisStore, RedisTarget, SessionStore, SledStore};
use crate::config::Settings;

/// Opens the configured store. `redis_password` is what
/// [`Config::load_redis_password`](crate::Config::load_redis_password) found. A sled store is read whole first (its access
/// index), which takes a while when it is large; a single Redis server is connected to
/// lazily (a Redis that is down at start-up is used once it answers).
pub async fn open_store(
    settings: &Settings,
    redis_password: Option<String>,
) -> Result<Arc<dyn SessionStore>, String> {
    Ok(open_dump(settings, redis_password).await?)
}

/// Opens the configured store, as [`open_store`], to be read out whole or written into
/// (`sessiongate migrate`).
pub async fn open_dump(
    settings: &Settings,
    redis_password: Option<String>,
) -> Result<Arc<dyn Dump>, String> {
    let config = &settings.config;
    match config.store.backend.as_str() {
        "redis" => {
            let target =
                RedisTarget {
                    urls: settings.redis_urls.clone(),
                    cluster: config.store.redis_cluster,
                    password: redis_password,
                    tls_ca: match &config.store.redis_tls_ca_file {
                        Some(path) => Some(std::fs::read(path).map_err(|e| {
                            format!("store.redis_tls_ca_file {}: {e}", path.display())
                        })?),
                        None => None,
                    },
                    timeout: Duration::from_millis(config.store.timeout_ms),
                };
            let store = RedisStore::connect(&target, &config.store.redis_key_prefix)
                .await
                .map_err(|e| format!("connecting to the Redis store: {e}"))?;
            Ok(Arc::new(store))
        }
        _ => {
            let dir = config.data_dir.clone();
            let cache = config.sessions.cache_mib << 20;
            let opened =
                tokio::task::spawn_blocking(move || SledStore::open_with_cache(&dir, cache))
                    .await
                    .map_err(|e| format!("opening the store: {e}"))?;
            let store = opened
                .map_err(|e| format!("opening the store in {}: {e}", config.data_dir.display()))?;
            Ok(Arc::new(store))
        }
    }
}
