//! The offline tools of the binary, run with the gateway stopped, outside the request path:
//! `compact` rewrites a sled store without its stale page copies, `migrate` copies a store
//! into another backend.

pub mod compact;
pub mod migrate;
