//! The real `sessiongate` binary as a child process: `--check-config` exit codes, the
//! `healthcheck` subcommand, the graceful drain on SIGTERM, and logs that never carry a token.
//!
//! Every child runs on loopback ports found free by the OS, with its own temporary data
//! directory, and is killed when its guard drops (also when a test fails).
//!
//! Here only the modules. `binary/child.rs` starts the binary and reads its pipes,
//! `binary/gateway.rs` runs it as a gateway in front of a stand-in uploader and talks to it;
//! the tests are in `binary/command_line.rs` (`--check-config` and argument errors),
//! `binary/healthcheck.rs`, `binary/sigterm.rs` (the drain), `binary/logs.rs` (no token in
//! them) `binary/compact.rs` (the `compact` subcommand on a stopped gateway's store),
//! `binary/last_active.rs` (`lastActiveAt` kept over a graceful restart) and
//! `binary/sessions_cli.rs` (the operators' `sessions` subcommand, through a running gateway
//! and `--direct`).

#[path = "binary/child.rs"]
mod child;
#[path = "binary/command_line.rs"]
mod command_line;
#[path = "binary/compact.rs"]
mod compact;
#[path = "binary/gateway.rs"]
mod gateway;
#[path = "binary/healthcheck.rs"]
mod healthcheck;
#[path = "binary/last_active.rs"]
mod last_active;
#[path = "binary/logs.rs"]
mod logs;
#[path = "binary/sessions_cli.rs"]
mod sessions_cli;
#[path = "binary/sigterm.rs"]
mod sigterm;
