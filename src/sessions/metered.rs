//! A [`SessionStore`] wrapper that times every operation into
//! `sessiongate_store_operation_duration_seconds{op}`.

use std::sync::Arc;

use async_trait::async_trait;

use super::store::{AccessGrant, RotatedToken, SessionStore, StoreError};
use super::{Session, SessionId};
use crate::auth::TokenHash;
use crate::metrics::Metrics;

/// Times the calls it passes on to the inner store.
pub struct MeteredStore {
    inner: Arc<dyn SessionStore>,
    metrics: Arc<Metrics>,
}

impl MeteredStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn SessionStore>, metrics: Arc<Metrics>) -> MeteredStore {
        MeteredStore { inner, metrics }
    }
}

#[async_trait]
impl SessionStore for MeteredStore {
    async fn create(&self, session: &Session) -> Result<Vec<SessionId>, StoreError> {
        let _timer = self.metrics.store_timer("create");
        self.inner.create(session).await
    }

    async fn find_access(&self, hash: &TokenHash) -> Result<Option<AccessGrant>, StoreError> {
        let _timer = self.metrics.store_timer("find_access");
        self.inner.find_access(hash).await
    }

    async fn find_refresh(&self, hash: &TokenHash) -> Result<Option<Session>, StoreError> {
        let _timer = self.metrics.store_timer("find_refresh");
        self.inner.find_refresh(hash).await
    }

    async fn rotate(
        &self,
        id: SessionId,
        access_hash: TokenHash,
        refresh_hash: TokenHash,
        expire_at_ms: i64,
        now_ms: i64,
    ) -> Result<Option<Session>, StoreError> {
        let _timer = self.metrics.store_timer("rotate");
        self.inner
            .rotate(id, access_hash, refresh_hash, expire_at_ms, now_ms)
            .await
    }

    async fn find_rotated(&self, hash: &TokenHash) -> Result<Option<RotatedToken>, StoreError> {
        let _timer = self.metrics.store_timer("find_rotated");
        self.inner.find_rotated(hash).await
    }

    async fn revoke(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        let _timer = self.metrics.store_timer("revoke");
        self.inner.revoke(id).await
    }

    async fn revoke_user(&self, user: &str) -> Result<usize, StoreError> {
        let _timer = self.metrics.store_timer("revoke_user");
        self.inner.revoke_user(user).await
    }

    async fn list_user(&self, user: &str) -> Result<Vec<Session>, StoreError> {
        let _timer = self.metrics.store_timer("list_user");
        self.inner.list_user(user).await
    }

    async fn get(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        let _timer = self.metrics.store_timer("get");
        self.inner.get(id).await
    }

    async fn sweep_expired(&self, now_ms: i64) -> Result<usize, StoreError> {
        let _timer = self.metrics.store_timer("sweep_expired");
        self.inner.sweep_expired(now_ms).await
    }

    async fn count(&self) -> Result<usize, StoreError> {
        let _timer = self.metrics.store_timer("count");
        self.inner.count().await
    }
}
