//! How a [`Gateway`] is put together from its settings, and the handles its parts share with
//! the rest of the server (the admin listener, the background tasks).

use std::sync::Arc;
use std::time::Duration;

use super::Gateway;
use crate::admin::AdminToken;
use crate::adoption::Adoption;
use crate::api::SessionsApi;
use crate::auth::{Authenticator, TokenVerifier};
use crate::config::{LimitsConfig, Settings};
use crate::lifecycle::Lifecycle;
use crate::metrics::Metrics;
use crate::proxy::{Forwarder, Upstream};
use crate::sessions::tombstones::ending_sessions_through;
use crate::sessions::{Activity, Clock, MeteredStore, SessionStore, Sweeper};

/// What the gateway's parts share, and the server's other tasks use too.
#[derive(Clone)]
pub struct Shared {
    /// The session store: metered, and leaving tombstones when adoption is on.
    pub store: Arc<dyn SessionStore>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The gateway's metrics.
    pub metrics: Arc<Metrics>,
    /// The sessions' uses not yet written to the store.
    pub activity: Arc<Activity>,
}

impl Gateway {
    /// Builds a gateway from its settings, the signing secret, a store and a clock.
    pub fn new(
        settings: &Settings,
        secret: &[u8],
        store: Arc<dyn SessionStore>,
        clock: Arc<dyn Clock>,
    ) -> Gateway {
        let config = &settings.config;
        let metrics = Arc::new(Metrics::new());
        let shared = Shared {
            store: ending_sessions_through(
                Arc::new(MeteredStore::new(store, metrics.clone())),
                clock.clone(),
                settings.adopt_before_ms,
            ),
            clock,
            metrics,
            activity: Arc::new(Activity::default()),
        };
        let adoption = settings.adopt_before_ms.map(|before_ms| {
            Arc::new(Adoption::new(
                before_ms,
                shared.store.clone(),
                shared.metrics.clone(),
                settings.location_header.clone(),
            ))
        });
        let verifier = Arc::new(TokenVerifier::new(
            secret,
            settings.algorithm,
            config.auth.leeway_seconds,
            config.auth.issuer.as_deref(),
        ));
        let upstream = Upstream::new(
            settings.upstream_authority.clone(),
            settings.upstream_base_path.clone(),
            Duration::from_secs(config.proxy.upstream_timeout_seconds),
            shared.metrics.clone(),
        );
        let mut authenticator = Authenticator::new(
            verifier.clone(),
            shared.store.clone(),
            shared.clock.clone(),
            shared.metrics.clone(),
            shared.activity.clone(),
        );
        if let Some(adoption) = &adoption {
            authenticator = authenticator.adopting(adoption.clone());
        }
        let reuse_grace_ms = i64::try_from(config.sessions.refresh_reuse_grace_seconds)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000);
        Gateway {
            routes: settings.routes.clone(),
            prefix: config.api_prefix.clone(),
            strip_prefix: config.strip_prefix,
            limits: config.limits.clone(),
            authenticator,
            api: SessionsApi {
                store: shared.store.clone(),
                clock: shared.clock.clone(),
                metrics: shared.metrics.clone(),
                activity: shared.activity.clone(),
            },
            lifecycle: Lifecycle {
                store: shared.store.clone(),
                verifier,
                clock: shared.clock.clone(),
                metrics: shared.metrics.clone(),
                capture_limit: config.sessions.capture_limit_bytes,
                reuse_grace_ms,
                location_header: settings.location_header.clone(),
                adoption,
            },
            forwarder: Forwarder::new(Arc::new(upstream), settings.identity.clone()),
            shared,
            sweep_interval: Duration::from_secs(config.sessions.sweep_interval_seconds),
            admin_token: settings.admin_token.clone(),
        }
    }

    /// The handles the gateway's parts share.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// The upstream.
    pub fn upstream(&self) -> &Arc<Upstream> {
        self.forwarder.upstream()
    }

    /// The token of the admin listener's session routes (`None`: they are off).
    pub fn admin_token(&self) -> Option<&AdminToken> {
        self.admin_token.as_ref()
    }

    /// The connection limits.
    pub fn limits(&self) -> &LimitsConfig {
        &self.limits
    }

    /// The expiry sweep of this gateway's store.
    pub fn sweeper(&self) -> Sweeper {
        Sweeper {
            store: self.shared.store.clone(),
            clock: self.shared.clock.clone(),
            metrics: self.shared.metrics.clone(),
            interval: self.sweep_interval,
        }
    }
}
