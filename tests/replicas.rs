//! Several gateway replicas on one Redis or Redis Cluster, as child `sessiongate` processes,
//! and the Redis store under failures: what one replica does is seen by the others on their
//! next request, a Redis that goes away makes session routes fail closed and comes back
//! without a restart, and a killed or failed-over Redis loses nothing it acknowledged.
//!
//! Every Redis here is a redis-server this test binary starts itself on free loopback ports
//! (`sessiongate-testkit`), with `appendonly yes` and `appendfsync always`.
//!
//! `replicas/fleet.rs` starts the replicas and talks to them; the tests are in
//! `replicas/consistency.rs` (2,000 rounds of "end through A, then ask B"),
//! `replicas/store_down.rs` (Redis stopped, hanging and back), `replicas/crash.rs` (SIGKILL
//! of redis-server under traffic), `replicas/cluster.rs` (a 3-master cluster and a manual
//! failover under traffic) and `replicas/migrate.rs` (`sessiongate migrate` from sled into
//! Redis and back).

#[path = "binary/child.rs"]
#[allow(dead_code)] // the process helpers of tests/binary, not all used here
mod child;
#[path = "replicas/cluster.rs"]
mod cluster;
#[path = "replicas/consistency.rs"]
mod consistency;
#[path = "replicas/crash.rs"]
mod crash;
#[path = "replicas/fleet.rs"]
mod fleet;
#[path = "replicas/migrate.rs"]
mod migrate;
#[path = "replicas/store_down.rs"]
mod store_down;
