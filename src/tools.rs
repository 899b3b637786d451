//! The offline tools of the binary, run with the gateway stopped: `migrate` copies a store
//! into another backend.

pub mod migrate;
