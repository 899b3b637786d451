//! The offline tools of the binary, run with the gateway stopped, outside the request path:
//! `compact` rewrites a sled store without its stale page copies, `migrate` copies a store
//! into another backend. And `sessions`, the operators' session commands, which ask a running
//! gateway or (`--direct`) open a stopped gateway's store.

pub mod compact;
pub mod migrate;
pub mod sessions;
