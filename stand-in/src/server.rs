//! The running server and the handle tests hold.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::config::StandInConfig;
use crate::handlers;
use crate::record::RecordedRequest;
use crate::state::State;
use crate::tokens::TokenPair;

/// A running stand-in uploader. Dropping it stops the server and its open connections.
pub struct StandIn {
    /// Where it listens.
    addr: SocketAddr,
    /// What it shares with the server task.
    state: Arc<State>,
    /// The accept loop, which owns the connection tasks.
    task: JoinHandle<()>,
}

impl StandIn {
    /// Starts a stand-in on `127.0.0.1` with a port chosen by the system.
    pub async fn start(config: StandInConfig) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding 127.0.0.1:0 for the stand-in uploader");
        StandIn::start_on(config, listener).await
    }

    /// Starts a stand-in that accepts connections on `listener`.
    pub async fn start_on(config: StandInConfig, listener: TcpListener) -> StandIn {
        let addr = listener
            .local_addr()
            .expect("a bound listener has a local address");
        let state = Arc::new(State::new(config));
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&state)));
        StandIn { addr, state, task }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests()
    }

    /// Forgets the requests received so far.
    pub fn clear_requests(&self) {
        self.state.clear_requests();
    }

    /// Moves the clock used for `iat`/`exp` of new tokens, and for expiry checks, by
    /// `seconds` (negative moves it back).
    pub fn advance_clock(&self, seconds: i64) {
        self.state.advance_clock(seconds);
    }

    /// The stand-in's time: real unix seconds plus the offset from [`StandIn::advance_clock`].
    pub fn now(&self) -> i64 {
        self.state.now()
    }

    /// The tokens a login of `user_id` would give now (byte-identical within one second).
    pub fn issue_tokens(&self, user_id: &str) -> TokenPair {
        self.state.tokens.pair(user_id, self.now())
    }

    /// An API key for `user_id`: `iss` = `"<site_title> 3rd-party API"`, valid 24 hours.
    pub fn api_key(&self, user_id: &str, site_title: &str) -> String {
        self.state.tokens.api_key(user_id, site_title, self.now())
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts connections until aborted; aborting it drops, and so aborts, the connections.
async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve_connection(stream, peer, Arc::clone(&state)));
                }
                // Out of file descriptors or similar: wait a little rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Serves HTTP/1.1 on one connection, as Node's HTTP server does.
async fn serve_connection(stream: TcpStream, peer: SocketAddr, state: Arc<State>) {
    // Nagle's algorithm only adds latency to small responses; failing to turn it off is harmless.
    stream.set_nodelay(true).ok();
    let service = service_fn(move |request| handlers::handle(Arc::clone(&state), peer, request));
    // A connection error (the client went away mid-request) is the client's business.
    http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await
        .ok();
}
