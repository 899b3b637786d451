//! Prometheus metrics. Every label is bounded: route classes, methods from a fixed list,
//! status codes, decisions and reasons, never raw paths, user ids or session ids.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use std::sync::OnceLock;

use crate::auth::TokenRejection;

/// Latency buckets in seconds: 100 µs to 30 s.
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// Store operation buckets in seconds: 10 µs to 1 s (a flush is milliseconds).
const STORE_BUCKETS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 1.0,
];

/// Why a session ended, for `sessiongate_sessions_revoked_total{reason}`.
#[derive(Debug, Clone, Copy)]
pub enum RevokeReason {
    /// The user revoked one session.
    User,
    /// The user revoked all their sessions.
    All,
    /// Logout.
    Logout,
    /// A password change ended every session.
    PasswordChange,
    /// Swept after expiry.
    Expired,
    /// A rotated-away refresh token came back: the session was presumed stolen.
    Reuse,
    /// An operator revoked it through the admin API.
    Admin,
}

impl RevokeReason {
    fn label(self) -> &'static str {
        match self {
            RevokeReason::User => "user",
            RevokeReason::All => "all",
            RevokeReason::Logout => "logout",
            RevokeReason::PasswordChange => "password_change",
            RevokeReason::Expired => "expired",
            RevokeReason::Reuse => "reuse",
            RevokeReason::Admin => "admin",
        }
    }
}

/// Where a session came from, for `sessiongate_sessions_created_total{origin}`.
#[derive(Debug, Clone, Copy)]
pub enum Origin {
    /// A login or two-factor answer.
    Login = 0,
    /// A token issued before the gateway (`sessions.adopt_issued_before`).
    Adopted = 1,
}

impl Origin {
    fn label(self) -> &'static str {
        match self {
            Origin::Login => "login",
            Origin::Adopted => "adopted",
        }
    }
}

/// The route classes, as [`crate::routes::Route::class`] and the access log name them.
const ROUTE_CLASSES: [&str; 9] = [
    "invalid",
    "sessions_api",
    "login",
    "refresh",
    "logout",
    "end_all_sessions",
    "api_key",
    "public",
    "session",
];

/// The method labels: the standard methods, and one for every other.
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER",
];

/// The status codes of `sessiongate_http_requests_total` held in [`Metrics`]' table: 100 to
/// 599, one slot each (any other is looked up in the vector, as it is rare).
const STATUS_SLOTS: std::ops::Range<u16> = 100..600;

/// A session store operation, for `sessiongate_store_operation_duration_seconds{op}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    Create,
    FindAccess,
    FindRefresh,
    Rotate,
    FindRotated,
    Revoke,
    RevokeUser,
    ListUser,
    Get,
    SweepExpired,
    Count,
    Touch,
    LastActive,
    FindById,
    Retire,
    Ping,
}

impl StoreOp {
    /// Every operation, in the order of their series in [`Metrics`].
    const ALL: [StoreOp; 16] = [
        StoreOp::Create,
        StoreOp::FindAccess,
        StoreOp::FindRefresh,
        StoreOp::Rotate,
        StoreOp::FindRotated,
        StoreOp::Revoke,
        StoreOp::RevokeUser,
        StoreOp::ListUser,
        StoreOp::Get,
        StoreOp::SweepExpired,
        StoreOp::Count,
        StoreOp::Touch,
        StoreOp::LastActive,
        StoreOp::FindById,
        StoreOp::Retire,
        StoreOp::Ping,
    ];

    /// The `op` label.
    pub fn label(self) -> &'static str {
        match self {
            StoreOp::Create => "create",
            StoreOp::FindAccess => "find_access",
            StoreOp::FindRefresh => "find_refresh",
            StoreOp::Rotate => "rotate",
            StoreOp::FindRotated => "find_rotated",
            StoreOp::Revoke => "revoke",
            StoreOp::RevokeUser => "revoke_user",
            StoreOp::ListUser => "list_user",
            StoreOp::Get => "get",
            StoreOp::SweepExpired => "sweep_expired",
            StoreOp::Count => "count",
            StoreOp::Touch => "touch",
            StoreOp::LastActive => "last_active",
            StoreOp::FindById => "find_by_id",
            StoreOp::Retire => "retire",
            StoreOp::Ping => "ping",
        }
    }
}

/// The auth decisions, in the order of [`Metrics::auth_decision`]'s index.
const DECISIONS: [&str; 5] = ["allowed", "missing", "invalid", "expired", "revoked"];

/// One route class and method's series of `http_requests`, by status ([`STATUS_SLOTS`]),
/// each resolved on first use.
type RequestRow = Box<[OnceLock<IntCounter>]>;

/// All of the gateway's metrics, in their own registry.
///
/// The series a request touches are looked up once per label set and kept, and read again
/// without a lock or a hash (`with_label_values` hashes every label and takes the vector's
/// lock on each call): those with bounded labels resolved here at start-up, those of
/// `http_requests` (by status, unbounded in principle) on first use.
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    /// `http_requests`' series: a row per route class and method ([`RequestRow`]), each
    /// allocated on first use.
    request_rows: Box<[OnceLock<RequestRow>]>,
    /// `http_duration`'s series, by route class.
    durations: Vec<Histogram>,
    /// `auth_decisions`' series, by [`DECISIONS`].
    decisions: Vec<IntCounter>,
    /// Time from sending a request upstream to its response headers.
    pub upstream_duration: Histogram,
    upstream_errors: IntCounterVec,
    /// Sessions in the store: set from the store's own count at each scrape, so that with a
    /// store shared by replicas it counts every replica's sessions.
    pub sessions_active: IntGauge,
    /// Sessions created since start, by origin ([`Origin`]).
    sessions_created: [IntCounter; 2],
    sessions_revoked: IntCounterVec,
    /// `sessiongate_store_operation_duration_seconds`' series, by [`StoreOp::ALL`].
    store_durations: Vec<Histogram>,
    store_errors: IntCounterVec,
    /// Client connections open now.
    pub connections_open: IntGauge,
}

impl Metrics {
    /// Registers every metric (and the process collector) in a new registry.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("registered once");
            c
        };
        let histogram = |name: &str, help: &str, labels: &[&str], buckets: &[f64]| {
            let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
            let h = HistogramVec::new(opts, labels).expect("valid metric");
            registry
                .register(Box::new(h.clone()))
                .expect("registered once");
            h
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("registered once");
            g
        };
        let build_info = IntGaugeVec::new(
            Opts::new(
                "sessiongate_build_info",
                "Always 1; the version as a label.",
            ),
            &["version"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(build_info.clone()))
            .expect("registered once");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("registered once");
        let sessions_created = IntCounterVec::new(
            Opts::new(
                "sessiongate_sessions_created_total",
                "Sessions created, by origin: login (a login or two-factor answer), adopted (a token issued before the gateway, see sessions.adopt_issued_before).",
            ),
            &["origin"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(sessions_created.clone()))
            .expect("registered once");
        let sessions_created = [Origin::Login, Origin::Adopted]
            .map(|origin| sessions_created.with_label_values(&[origin.label()]));
        let http_duration = histogram(
            "sessiongate_http_request_duration_seconds",
            "Time from a request's arrival to its response headers, by route class.",
            &["route_class"],
            BUCKETS,
        );
        let auth_decisions = counter(
            "sessiongate_auth_decisions_total",
            "Token checks, by decision: allowed, missing, invalid, expired, revoked.",
            &["decision"],
        );
        let metrics = Metrics {
            // Every route class and decision exists from the start at 0, so that rate() and
            // increase() see the first event too.
            durations: ROUTE_CLASSES
                .iter()
                .map(|class| http_duration.with_label_values(&[class]))
                .collect(),
            decisions: DECISIONS
                .iter()
                .map(|decision| auth_decisions.with_label_values(&[decision]))
                .collect(),
            request_rows: (0..ROUTE_CLASSES.len() * METHODS.len())
                .map(|_| OnceLock::new())
                .collect(),
            http_requests: counter(
                "sessiongate_http_requests_total",
                "Requests answered, by route class, method and status.",
                &["route_class", "method", "status"],
            ),
            upstream_duration: histogram(
                "sessiongate_upstream_request_duration_seconds",
                "Time from sending a request upstream to its response headers.",
                &[],
                BUCKETS,
            )
            .with_label_values(&[] as &[&str]),
            upstream_errors: counter(
                "sessiongate_upstream_errors_total",
                "Upstream failures: connect (unreachable, refused, reset) or timeout.",
                &["kind"],
            ),
            sessions_active: gauge("sessiongate_sessions_active", "Sessions in the store."),
            sessions_created,
            sessions_revoked: counter(
                "sessiongate_sessions_revoked_total",
                "Sessions ended, by reason: user, all, logout, password_change, expired, reuse, \
                 admin.",
                &["reason"],
            ),
            store_durations: {
                let vec = histogram(
                    "sessiongate_store_operation_duration_seconds",
                    "Session store operations, by operation.",
                    &["op"],
                    STORE_BUCKETS,
                );
                StoreOp::ALL
                    .iter()
                    .map(|op| vec.with_label_values(&[op.label()]))
                    .collect()
            },
            store_errors: counter(
                "sessiongate_store_errors_total",
                "Session store failures, by backend and kind: unavailable, timeout, refused, \
                 corrupt, io.",
                &["backend", "kind"],
            ),
            connections_open: gauge(
                "sessiongate_connections_open",
                "Client connections open now.",
            ),
            registry,
        };
        // Every bounded label value exists from the start at 0, so that rate() and increase()
        // see the first event too.
        for kind in ["connect", "timeout"] {
            metrics.upstream_errors.with_label_values(&[kind]);
        }
        for reason in [
            RevokeReason::User,
            RevokeReason::All,
            RevokeReason::Logout,
            RevokeReason::PasswordChange,
            RevokeReason::Expired,
            RevokeReason::Reuse,
            RevokeReason::Admin,
        ] {
            metrics
                .sessions_revoked
                .with_label_values(&[reason.label()]);
        }
        metrics
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding to memory cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }

    /// Counts one answered request.
    pub fn observe_request(
        &self,
        route_class: &str,
        method: &http::Method,
        status: http::StatusCode,
        seconds: f64,
    ) {
        let class = ROUTE_CLASSES.iter().position(|c| *c == route_class);
        debug_assert!(class.is_some(), "an unknown route class {route_class:?}");
        let class = class.unwrap_or(0);
        let method = method_index(method);
        let row = self.request_rows[class * METHODS.len() + method].get_or_init(|| {
            std::iter::repeat_with(OnceLock::new)
                .take(STATUS_SLOTS.len())
                .collect()
        });
        let labels = || [ROUTE_CLASSES[class], METHODS[method], status.as_str()];
        let code = status.as_u16();
        if STATUS_SLOTS.contains(&code) {
            row[usize::from(code - STATUS_SLOTS.start)]
                .get_or_init(|| self.http_requests.with_label_values(&labels()))
                .inc();
        } else {
            self.http_requests.with_label_values(&labels()).inc();
        }
        self.durations[class].observe(seconds);
    }

    /// Counts one token check's outcome.
    pub fn auth_decision(&self, outcome: Result<(), TokenRejection>) {
        let decision = match outcome {
            Ok(()) => 0,
            Err(TokenRejection::Missing) => 1,
            Err(TokenRejection::Invalid) => 2,
            Err(TokenRejection::Expired) => 3,
            Err(TokenRejection::UnknownSession) => 4,
        };
        self.decisions[decision].inc();
    }

    /// Counts an upstream failure: `connect` or `timeout`.
    pub fn upstream_error(&self, kind: &'static str) {
        self.upstream_errors.with_label_values(&[kind]).inc();
    }

    /// Counts a session created.
    pub fn session_created(&self, origin: Origin) {
        self.sessions_created[origin as usize].inc();
    }

    /// Counts sessions ended for `reason`.
    pub fn sessions_revoked(&self, reason: RevokeReason, count: usize) {
        if count == 0 {
            return;
        }
        self.sessions_revoked
            .with_label_values(&[reason.label()])
            .inc_by(count as u64);
    }

    /// Makes the store error series of `backend` exist at 0 (the gateway runs one backend).
    pub fn store_errors_start(&self, backend: &'static str) {
        for kind in ["unavailable", "timeout", "refused", "corrupt", "io"] {
            self.store_errors.with_label_values(&[backend, kind]);
        }
    }

    /// Counts a failed store operation.
    pub fn store_error(&self, backend: &'static str, kind: &'static str) {
        self.store_errors.with_label_values(&[backend, kind]).inc();
    }

    /// Times a store operation.
    pub fn store_timer(&self, op: StoreOp) -> prometheus::HistogramTimer {
        self.store_durations[op as usize].start_timer()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// `method`'s place in [`METHODS`]: methods outside the standard set share one label, so
/// a client cannot grow the series.
fn method_index(method: &http::Method) -> usize {
    match *method {
        http::Method::GET => 0,
        http::Method::HEAD => 1,
        http::Method::POST => 2,
        http::Method::PUT => 3,
        http::Method::PATCH => 4,
        http::Method::DELETE => 5,
        http::Method::OPTIONS => 6,
        _ => 7,
    }
}

#[cfg(test)]
mod tests;
