//! sessiongate: a session-aware auth gateway in front of the Share uploader.
//!
//! A request flows through the modules in this order:
//!
//! - [`server`] accepts connections (HTTP/1.1 and HTTP/2, plain or TLS through [`tls`], whose
//!   certificate reloads without a restart) and hands each request to the [`gateway`], which
//!   holds everything a request needs and reads top to bottom:
//! - [`routes`] normalises the path to one canonical spelling and classifies it with the
//!   route policy from [`config`]: the sessions endpoints, a lifecycle route (login, refresh,
//!   logout, password change), a public or API-key route, or (by default) a session route;
//! - [`auth`] reads the Bearer token and verifies the JWT; the [`sessions`] store then says
//!   whether the token's SHA-512 belongs to a live session;
//! - [`api`] answers the sessions endpoints itself; [`lifecycle`] watches the uploader's
//!   login, refresh and logout exchanges to create, rotate and end sessions; [`proxy`]
//!   forwards everything else upstream, streaming bodies ([`body`]).
//! - [`error`] is the one place where a refusal becomes a status and a JSON body.
//! - [`metrics`] counts what happens (Prometheus); [`admin`] serves it with the health
//!   checks on a separate listener.
//!
//! Sessions live in an embedded sled database ([`sessions::SledStore`]) behind the
//! [`sessions::SessionStore`] interface; device names come from woothee
//! ([`sessions::device`]).

// `expect("why")` instead of a bare unwrap outside tests (see conventions).
#![warn(clippy::unwrap_used)]

/// The global allocator: mimalloc, unless built without the `mimalloc` feature. It is set
/// here rather than in the binary so that the examples and benches that measure the store
/// measure it with the allocator the gateway runs with. sled keeps its page cache as
/// millions of small heap blocks: with glibc's malloc, opening a 10-million-session store
/// spent 96 % of its 14 minutes in `free`, and a compaction more than half its time
/// (benches/README.md, "The allocator: mimalloc"). Built without transparent huge pages
/// (`no_thp` in Cargo.toml): with them the idle gateway held 49 MiB of RSS instead of 11.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod access_log;
pub mod admin;
pub mod api;
pub mod auth;
pub mod body;
pub mod config;
pub mod error;
pub mod gateway;
pub mod lifecycle;
pub mod limits;
pub mod metrics;
pub mod proxy;
pub mod routes;
pub mod server;
pub mod sessions;
pub mod tls;
pub mod tools;

pub use config::Config;
pub use gateway::Gateway;
pub use server::{Listeners, Server, run};
