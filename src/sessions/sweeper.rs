//! The expiry sweep, every `sessions.sweep_interval_seconds`. Expired sessions are refused the
//! moment they expire whatever it does; the sweep only frees space.

use std::sync::Arc;
use std::time::Duration;

use super::{Clock, SessionStore};
use crate::metrics::{Metrics, RevokeReason};

/// Removes expired sessions from a store, at an interval.
pub struct Sweeper {
    /// The store swept.
    pub store: Arc<dyn SessionStore>,
    /// Whose time says what has expired.
    pub clock: Arc<dyn Clock>,
    /// Counts what is swept (`reason="expired"`).
    pub metrics: Arc<Metrics>,
    /// Between sweeps.
    pub interval: Duration,
}

impl Sweeper {
    /// Sweeps at once, then every interval, until dropped (aborted).
    pub async fn run(self) {
        let mut interval = tokio::time::interval(self.interval);
        loop {
            interval.tick().await;
            match self.store.sweep_expired(self.clock.now_ms()).await {
                Ok(0) => {}
                Ok(removed) => {
                    self.metrics
                        .sessions_revoked(RevokeReason::Expired, removed);
                    tracing::info!(removed, "expired sessions swept");
                }
                Err(error) => tracing::error!(%error, "sweeping expired sessions failed"),
            }
        }
    }
}
