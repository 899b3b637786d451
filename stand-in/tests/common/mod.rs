//! A small HTTP client for the stand-in's tests.
#![allow(dead_code, missing_docs)]

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use share_stand_in::StandIn;

pub type Body = BoxBody<Bytes, Infallible>;

pub const ALICE: &str = "5f4bff121037e424a17a3ebc";
pub const CAROL: &str = "5f4bff121037e424a17a3ebe";

/// A whole response.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("a UTF-8 body")
    }
}

/// Sends requests to one stand-in.
pub struct Client {
    inner: HyperClient<HttpConnector, Body>,
    base: String,
}

impl Client {
    pub fn new(stand_in: &StandIn) -> Client {
        Client {
            inner: HyperClient::builder(TokioExecutor::new()).build_http(),
            base: stand_in.url(),
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .inner
            .request(request.body(body).expect("a valid request"))
            .await
            .expect("the stand-in answers");
        let (parts, body) = response.into_parts();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: body
                .collect()
                .await
                .expect("a whole response body")
                .to_bytes(),
        }
    }

    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Reply {
        let auth = bearer.map(|token| format!("Bearer {token}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|v| ("authorization", v.as_str())).collect();
        self.send(Method::GET, path, &headers, empty()).await
    }

    pub async fn post_json(&self, path: &str, value: Value) -> Reply {
        let headers = [("content-type", "application/json")];
        self.send(Method::POST, path, &headers, full(value.to_string()))
            .await
    }

    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let headers = [("content-type", "application/x-www-form-urlencoded")];
        self.send(Method::POST, path, &headers, full(body)).await
    }

    /// Logs in with JSON and returns the reply's JSON (asserting a 200).
    pub async fn login(&self, email: &str, password: &str) -> Value {
        let reply = self
            .post_json(
                "/auth/login",
                serde_json::json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        reply.json()
    }
}

pub fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).boxed()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

/// The verified payload of `token`.
pub fn payload(token: &str, secret: &str) -> Value {
    let key = jsonwebtoken::DecodingKey::from_secret(secret.as_bytes());
    let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("a token signed with the secret")
        .claims
}

/// The names of the payload's keys, sorted.
pub fn keys(payload: &Value) -> Vec<String> {
    let mut keys: Vec<String> = payload
        .as_object()
        .expect("a JSON object")
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

/// The raw JSON text of a token's payload (the middle part, base64url-decoded).
pub fn raw_payload(token: &str) -> String {
    let part = token.split('.').nth(1).expect("a JWT has a payload");
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut out = Vec::new();
    for byte in part.bytes() {
        let value = alphabet.iter().position(|&c| c == byte).expect("base64url") as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    String::from_utf8(out).expect("UTF-8 JSON")
}
