//! The command line's side of the admin listener (`sessiongate sessions`): one HTTP/1.1
//! request on a new connection, answered within a bounded time, with its status and JSON body.

use std::net::{Ipv6Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::routes::REQUEST_ID;
use super::sessions::RequestId;
use super::token::AdminToken;

/// The largest answer read (a listing of many thousands of sessions fits).
const MAX_ANSWER_BYTES: usize = 64 << 20;

/// Where to reach a listener bound to `addr`: a wildcard address on loopback.
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => {
            SocketAddr::from(([127, 0, 0, 1], addr.port()))
        }
        ip if ip.is_unspecified() => SocketAddr::from((Ipv6Addr::LOCALHOST, addr.port())),
        _ => addr,
    }
}

/// Sends `method path` to the admin listener at `admin` with the admin token and the request
/// id; the answer's status and JSON body (`null` if it has none), or what went wrong, within
/// `limit` all told.
pub async fn admin_request(
    admin: SocketAddr,
    method: Method,
    path: &str,
    token: &AdminToken,
    request_id: &RequestId,
    limit: Duration,
) -> Result<(StatusCode, Value), String> {
    let target = reachable(admin);
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(target)
            .await
            .map_err(|e| format!("connect {target}: {e}"))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("{target}: {e}"))?;
        let connection = tokio::spawn(connection);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, target.to_string())
            .header(AUTHORIZATION, format!("Bearer {}", token.reveal()))
            .header(REQUEST_ID, request_id.as_str())
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("the request to {target}: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("{target}: {e}"))?;
        let status = response.status();
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| format!("reading the answer of {target}: {e}"))?
            .to_bytes();
        connection.abort();
        let body = match is_json {
            true => serde_json::from_slice(&body)
                .map_err(|e| format!("{target} answered {status} with bad JSON: {e}"))?,
            false => Value::Null,
        };
        Ok((status, body))
    };
    tokio::time::timeout(limit, exchange)
        .await
        .map_err(|_| format!("{target} did not answer within {} s", limit.as_secs()))?
}
