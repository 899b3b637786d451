//! sessiongate: a session-aware auth gateway in front of the Share uploader.
//!
//! A request flows through the modules in this order, each calling only the ones below it:
//!
//! - [`server`] accepts connections (HTTP/1.1 and HTTP/2, plain or TLS through [`tls`], whose
//!   certificate reloads without a restart) and hands each request to the [`gateway`], which
//!   reads top to bottom: route, check, dispatch;
//! - [`limits`] refuses heads and bodies over their limits; [`routes`] normalises the path to
//!   one canonical spelling and classifies it: the sessions endpoints, a lifecycle route
//!   (login, refresh, logout, password change), a public or API-key route, or (by default) a
//!   session route;
//! - [`auth`] reads the Bearer token and verifies the JWT, and its [`auth::Authenticator`]
//!   asks the [`sessions`] store whether the token's SHA-512 belongs to a live session;
//! - [`api`] answers the sessions endpoints itself; [`lifecycle`] is called before and after a
//!   login, refresh, logout or password change is forwarded, to create, rotate and end
//!   sessions; [`proxy`] forwards upstream, streaming bodies ([`body`]);
//! - [`error`] is the one place where a refusal becomes a status and a JSON body;
//!   [`access_log`] writes each request's line; [`deadline`] is the timer of the idle timeout,
//!   the upstream deadline and the header-read timeout, cheap to check on every poll and kept
//!   from one request to the next; [`metrics`] counts what happens
//!   (Prometheus), and [`admin`] serves it with the health checks on a separate listener,
//!   with the operators' session routes behind a token of their own.
//!
//! [`config`] reads and checks the file once into [`config::Settings`]. Sessions live behind
//! the [`sessions::SessionStore`] interface: an embedded sled database
//! ([`sessions::SledStore`], the default) or Redis ([`sessions::RedisStore`], shared by
//! replicas); device names come from woothee ([`sessions::device`]). [`tools`] holds the
//! offline commands (`compact`, `migrate`, `sessions`).

// `expect("why")` instead of a bare unwrap outside tests (see conventions).
#![warn(clippy::unwrap_used)]

/// Sets the gateway's global allocator, mimalloc (the `mimalloc` feature), in the binary it is
/// written in: sled's page cache is millions of small heap blocks, which glibc's malloc frees
/// slowly (benches/README.md, "The allocator: mimalloc"). The `sessiongate` binary, the
/// benches and the measuring examples use it, so that they measure what runs; the library
/// sets no allocator, so that a test binary can set its own (tests/allocations.rs counts the
/// check's allocations).
#[macro_export]
macro_rules! global_allocator {
    () => {
        #[cfg(feature = "mimalloc")]
        #[global_allocator]
        static ALLOCATOR: $crate::Allocator = $crate::Allocator;
    };
}

/// The allocator [`global_allocator!`] sets.
#[cfg(feature = "mimalloc")]
#[doc(hidden)]
pub use mimalloc::MiMalloc as Allocator;

pub mod access_log;
pub mod admin;
pub mod adoption;
pub mod api;
pub mod auth;
pub mod body;
pub mod config;
pub mod deadline;
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
