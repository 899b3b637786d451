//! A [`SessionStore`] wrapper that times every operation into
//! `sessiongate_store_operation_duration_seconds{op}` and counts its failures into
//! `sessiongate_store_errors_total{backend,kind}`.

use std::sync::Arc;

use async_trait::async_trait;

use super::store::{
    AccessGrant, RotatedEntry, RotatedToken, Rotation, SessionStore, StoreError, Touch,
};
use super::{Session, SessionId};
use crate::auth::TokenHash;
use crate::metrics::{Metrics, StoreOp};

/// Times the calls it passes on to the inner store, and counts their failures.
pub struct MeteredStore {
    inner: Arc<dyn SessionStore>,
    metrics: Arc<Metrics>,
}

impl MeteredStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn SessionStore>, metrics: Arc<Metrics>) -> MeteredStore {
        metrics.store_errors_start(inner.backend());
        MeteredStore { inner, metrics }
    }

    /// Runs one operation of the inner store under its timer.
    async fn observe<T>(
        &self,
        op: StoreOp,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let _timer = self.metrics.store_timer(op);
        let result = call.await;
        if let Err(error) = &result {
            self.metrics.store_error(self.inner.backend(), error.kind());
        }
        result
    }
}

#[async_trait]
impl SessionStore for MeteredStore {
    async fn create(&self, session: &Session) -> Result<Vec<SessionId>, StoreError> {
        self.observe(StoreOp::Create, self.inner.create(session))
            .await
    }

    async fn find_access(
        &self,
        user: &str,
        hash: &TokenHash,
    ) -> Result<Option<AccessGrant>, StoreError> {
        self.observe(StoreOp::FindAccess, self.inner.find_access(user, hash))
            .await
    }

    /// Not timed: an answer given now comes from memory (sled's access index) in well under
    /// a microsecond, less than timing it would cost on every checked request; only the
    /// lookups that go to the store, through `find_access`, are store operations.
    fn find_access_now(
        &self,
        user: &str,
        hash: &TokenHash,
    ) -> Option<Result<Option<AccessGrant>, StoreError>> {
        let found = self.inner.find_access_now(user, hash);
        if let Some(Err(error)) = &found {
            self.metrics.store_error(self.inner.backend(), error.kind());
        }
        found
    }

    async fn find_refresh(
        &self,
        user: &str,
        hash: &TokenHash,
    ) -> Result<Option<Session>, StoreError> {
        self.observe(StoreOp::FindRefresh, self.inner.find_refresh(user, hash))
            .await
    }

    async fn rotate(
        &self,
        user: &str,
        id: SessionId,
        rotation: Rotation,
    ) -> Result<Option<Session>, StoreError> {
        self.observe(StoreOp::Rotate, self.inner.rotate(user, id, rotation))
            .await
    }

    async fn find_rotated(
        &self,
        user: &str,
        hash: &TokenHash,
    ) -> Result<Option<RotatedToken>, StoreError> {
        self.observe(StoreOp::FindRotated, self.inner.find_rotated(user, hash))
            .await
    }

    async fn revoke(&self, user: &str, id: SessionId) -> Result<Option<Session>, StoreError> {
        self.observe(StoreOp::Revoke, self.inner.revoke(user, id))
            .await
    }

    async fn revoke_user(&self, user: &str) -> Result<usize, StoreError> {
        self.observe(StoreOp::RevokeUser, self.inner.revoke_user(user))
            .await
    }

    async fn list_user(&self, user: &str) -> Result<Vec<Session>, StoreError> {
        self.observe(StoreOp::ListUser, self.inner.list_user(user))
            .await
    }

    async fn get(&self, user: &str, id: SessionId) -> Result<Option<Session>, StoreError> {
        self.observe(StoreOp::Get, self.inner.get(user, id)).await
    }

    async fn sweep_expired(&self, now_ms: i64) -> Result<usize, StoreError> {
        self.observe(StoreOp::SweepExpired, self.inner.sweep_expired(now_ms))
            .await
    }

    async fn count(&self) -> Result<usize, StoreError> {
        self.observe(StoreOp::Count, self.inner.count()).await
    }

    async fn touch(&self, touches: &[Touch]) -> Result<(), StoreError> {
        self.observe(StoreOp::Touch, self.inner.touch(touches))
            .await
    }

    async fn last_active(
        &self,
        user: &str,
        ids: &[SessionId],
    ) -> Result<Vec<Option<i64>>, StoreError> {
        self.observe(StoreOp::LastActive, self.inner.last_active(user, ids))
            .await
    }

    async fn find_by_id(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        self.observe(StoreOp::FindById, self.inner.find_by_id(id))
            .await
    }

    async fn retire(&self, tokens: &[RotatedEntry]) -> Result<(), StoreError> {
        self.observe(StoreOp::Retire, self.inner.retire(tokens))
            .await
    }

    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.observe(StoreOp::Ping, self.inner.ping()).await
    }
}
