//! A bare pingora reverse proxy on one thread, for `benches/compare.sh` (target P): what a
//! proxy built on Cloudflare's pingora reaches on a machine, beside target H (the same kind
//! of floor built from hyper, `examples/hyper_floor.rs`).
//!
//! Run with:
//!
//! ```sh
//! cargo run --release --manifest-path benches/pingora_floor/Cargo.toml -- 127.0.0.1:8082 127.0.0.1:8080
//! ```
//!
//! It listens on the first address and forwards every request to the second, as
//! `hyper_floor` does: pingora-proxy's HTTP/1.1 proxy on one thread (`threads = 1` with
//! `work_stealing = false`: one current-thread tokio runtime, like sessiongate with
//! `workers = 1`), its upstream connections kept in pingora's connection pool between
//! requests. It does none of the gateway's work and nothing of its own beyond what pingora
//! does by itself: no header rewriting, no routing, no logging (no logger is installed, so
//! pingora's own log lines go nowhere), no metrics. Pingora's defaults are left as they are
//! (downstream keep-alive of 60 s, an upstream pool of 128 idle connections, TCP_NODELAY on
//! both sides), except that SIGTERM stops it at once instead of after pingora's 5-minute
//! grace period.
//!
//! It lives outside the workspace, as a crate of its own, so that the gateway's build and
//! lockfile do not carry pingora's dependencies. Building it needs cmake (pingora compresses
//! with zlib-ng, built from source): `apt-get install -y cmake`.
//!
//! A benchmark tool, not a proxy to deploy: a failed upstream is pingora's bare 502, and the
//! process runs until it is stopped.

use std::net::SocketAddr;
use std::process::ExitCode;

use async_trait::async_trait;
use pingora_core::server::Server;
use pingora_core::server::configuration::ServerConf;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_proxy::{ProxyHttp, Session};

/// Forwards every request to one upstream, over plain HTTP/1.1.
struct Floor {
    upstream: HttpPeer,
}

#[async_trait]
impl ProxyHttp for Floor {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut (),
    ) -> pingora_core::Result<Box<HttpPeer>> {
        Ok(Box::new(self.upstream.clone()))
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(listen), Some(upstream), 2) = (args.first(), args.get(1), args.len()) else {
        eprintln!("usage: pingora_floor LISTEN_ADDR UPSTREAM_ADDR");
        return ExitCode::FAILURE;
    };
    let (Ok(listen), Ok(upstream)) = (listen.parse::<SocketAddr>(), upstream.parse::<SocketAddr>())
    else {
        eprintln!("both addresses must be IP:PORT, e.g. 127.0.0.1:8082");
        return ExitCode::FAILURE;
    };

    // Pingora reports a failed bind only to its logger (none here) and then runs on, listening
    // on nothing: try the address first, so that a taken one fails loudly, as hyper_floor's does.
    if let Err(error) = std::net::TcpListener::bind(listen) {
        eprintln!("pingora_floor: cannot listen on {listen}: {error}");
        return ExitCode::FAILURE;
    }

    let conf = ServerConf {
        threads: 1,
        // One current-thread runtime on one thread, not a one-worker work-stealing runtime.
        work_stealing: false,
        // SIGTERM (compare.sh's clean-up) ends the process at once.
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(0),
        ..ServerConf::default()
    };
    // No `Opt`: pingora parses no command line and reads no configuration file.
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut proxy = pingora_proxy::http_proxy_service(
        &server.configuration,
        Floor {
            upstream: HttpPeer::new(upstream, false, String::new()),
        },
    );
    proxy.add_tcp(&listen.to_string());
    server.add_service(proxy);
    server.run_forever()
}
