//! The floor of the gateway's HTTP stack: a reverse proxy built from the same parts as
//! sessiongate's forwarding path and nothing else, for `benches/compare.sh` (target H).
//!
//! ```sh
//! cargo run --release --example hyper_floor -- 127.0.0.1:8081 127.0.0.1:8080
//! ```
//!
//! It listens on the first address and forwards every request, untouched, to the second:
//! hyper 1's HTTP/1.1 server on a current-thread tokio runtime (sessiongate with
//! `workers = 1`), and per client connection one upstream connection of its own, driven by
//! hyper's client as a task of its own, as sessiongate's `UpstreamLink` does. It does none of
//! the gateway's work: no token check, no routing, no header rewriting, no metrics, no
//! timeouts, no HTTP/2 detection, no graceful shutdown. What it reaches on a machine is
//! the most any gateway forwarding through hyper this way can reach there.
//!
//! `--like-gateway` adds the gateway's connection plumbing and nothing else: hyper-util's
//! HTTP/1-or-HTTP/2 server with upgrades, its graceful-shutdown watcher, hyper's header-read
//! timer and the upstream response timeout. The difference between the two runs is what that
//! plumbing costs; the rest of the gap to sessiongate is the gateway's own work.
//!
//! A benchmark tool, not a proxy to deploy: a failed upstream is a bare 502, and the process
//! runs until it is killed.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Empty, combinators::UnsyncBoxBody};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1 as client;
use hyper::server::conn::http1 as server;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};

// The gateway's allocator, as the gateway it is the floor of.
sessiongate::global_allocator!();

type Body = UnsyncBoxBody<Bytes, hyper::Error>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The gateway's defaults for what `--like-gateway` adds.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let like_gateway = args.iter().any(|a| a == "--like-gateway");
    let addresses: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let (Some(listen), Some(upstream), 2) = (addresses.first(), addresses.get(1), addresses.len())
    else {
        eprintln!("usage: hyper_floor [--like-gateway] LISTEN_ADDR UPSTREAM_ADDR");
        return ExitCode::FAILURE;
    };
    let (Ok(listen), Ok(upstream)) = (listen.parse(), upstream.parse()) else {
        eprintln!("both addresses must be IP:PORT, e.g. 127.0.0.1:8081");
        return ExitCode::FAILURE;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime starts");
    match runtime.block_on(serve(listen, upstream, like_gateway)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hyper_floor: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(
    listen: SocketAddr,
    upstream: SocketAddr,
    like_gateway: bool,
) -> Result<(), BoxError> {
    let listener = TcpListener::bind(listen).await?;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let builder = Arc::new(builder);
    // Kept for the process's life: connections watched by it are the gateway's plumbing.
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let link = Arc::new(Link::default());
        let service = service_fn(move |request: Request<Incoming>| {
            let link = link.clone();
            async move {
                let exchange = forward(request, upstream, &link);
                let response = if like_gateway {
                    match tokio::time::timeout(UPSTREAM_TIMEOUT, exchange).await {
                        Ok(response) => response,
                        Err(_) => Err("upstream timeout".into()),
                    }
                } else {
                    exchange.await
                };
                Ok::<_, std::convert::Infallible>(response.unwrap_or_else(|_| bad_gateway()))
            }
        });
        if like_gateway {
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            let watched = graceful.watch(connection);
            tokio::spawn(async move {
                let _ = watched.await;
            });
        } else {
            tokio::spawn(async move {
                let _ = server::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }
}

/// The upstream connection of one client connection, between its requests.
#[derive(Default)]
struct Link(Mutex<Option<client::SendRequest<Incoming>>>);

async fn forward(
    request: Request<Incoming>,
    upstream: SocketAddr,
    link: &Link,
) -> Result<Response<Body>, BoxError> {
    let kept = link.0.lock().unwrap_or_else(|e| e.into_inner()).take();
    let mut sender = match kept {
        Some(mut sender) => match sender.ready().await {
            Ok(()) => sender,
            Err(_) => connect(upstream).await?,
        },
        None => connect(upstream).await?,
    };
    let response = sender.send_request(request).await?;
    *link.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(sender);
    Ok(response.map(BodyExt::boxed_unsync))
}

async fn connect(upstream: SocketAddr) -> Result<client::SendRequest<Incoming>, BoxError> {
    let stream = TcpStream::connect(upstream).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = client::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

fn bad_gateway() -> Response<Body> {
    let mut response = Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync());
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}
