//! The admin listener: `/metrics` in the Prometheus text format (every family present,
//! counters moving by exact amounts, labels bounded, accepted by `promtool`), `/healthz`,
//! `/readyz`, the answers to unknown paths and wrong methods, the example alerting rules, and
//! the operators' session routes (`/admin/...`).
//!
//! - `text_format`: the text format with every family, and `promtool`'s verdict on it;
//! - `counters`: counters moving by exact amounts for logins, refusals, ended sessions and
//!   upstream errors;
//! - `labels`: label values from a small fixed vocabulary, whatever the paths and ids;
//! - `probes`: `/healthz` and `/readyz`;
//! - `unknown_routes`: unknown paths and wrong methods on the admin listener;
//! - `scrape`: a parsed scrape of `/metrics` and the names of the families the tests read;
//! - `alerts`: the deployment example's alerting rules, checked and unit-tested by promtool;
//! - `sessions`: the admin session routes: listing, revoking, counting;
//! - `session_refusals`: the same refusing a wrong or missing admin token, bad input;
//! - `redis`: the same routes on the Redis store, two gateways on one redis-server.

mod support;

#[path = "admin/alerts.rs"]
mod alerts;
#[path = "admin/counters.rs"]
mod counters;
#[path = "admin/labels.rs"]
mod labels;
#[path = "admin/probes.rs"]
mod probes;
#[path = "admin/redis.rs"]
mod redis;
#[path = "admin/scrape.rs"]
mod scrape;
#[path = "admin/session_refusals.rs"]
mod session_refusals;
#[path = "admin/sessions.rs"]
mod sessions;
#[path = "admin/text_format.rs"]
mod text_format;
#[path = "admin/unknown_routes.rs"]
mod unknown_routes;
