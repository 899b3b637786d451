//! A small pooled HTTP client for one gateway process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use sha2::{Digest, Sha512};

/// Longest wait for one answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A pooled client for one gateway process.
#[derive(Clone)]
pub(crate) struct Api {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

/// An answer, read whole.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
}

impl Answer {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub(crate) fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_string()
    }

    pub(crate) fn describe(&self) -> String {
        format!("{} {}", self.status, String::from_utf8_lossy(&self.body))
    }
}

impl Api {
    pub(crate) fn new(addr: SocketAddr) -> Api {
        Api {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: format!("http://{addr}"),
        }
    }

    /// Sends a request; `None` if no whole answer arrived (the process died, or took longer
    /// than [`REQUEST_TIMEOUT`]).
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Option<Answer> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(value) => {
                request = request.header("content-type", "application/json");
                Full::new(Bytes::from(value.to_string()))
            }
            None => Full::default(),
        };
        let request = request.body(body).expect("a valid request");
        let exchange = async {
            let response = self.client.request(request).await.ok()?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.ok()?.to_bytes();
            Some(Answer {
                status: parts.status,
                body,
            })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .ok()
            .flatten()
    }

    /// The caller's session list: `accessTokenHash` to (`_id`, `current`).
    pub(crate) async fn list(
        &self,
        token: &str,
    ) -> Result<Option<HashMap<String, (String, bool)>>, String> {
        let Some(answer) = self
            .send(Method::GET, "/api/account/sessions", Some(token), None)
            .await
        else {
            return Ok(None);
        };
        if answer.status != StatusCode::OK {
            return Err(format!(
                "the token of a live session (created or refreshed by an answered request, \
                 never revoked) is refused: {}",
                answer.describe()
            ));
        }
        let json = answer.json();
        let sessions = json["sessions"]
            .as_array()
            .ok_or_else(|| format!("a list without sessions: {}", answer.describe()))?;
        let entries = sessions.iter().map(|s| {
            let hash = s["accessTokenHash"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let id = s["_id"].as_str().unwrap_or_default().to_string();
            (hash, (id, s["current"].as_bool().unwrap_or(false)))
        });
        Ok(Some(entries.collect()))
    }
}

pub(crate) fn sha512_hex(token: &str) -> String {
    hex::encode(Sha512::digest(token.as_bytes()))
}
