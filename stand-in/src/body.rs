//! Request and response bodies: form/JSON fields, streamed digests, generated responses.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use sha2::{Digest, Sha256};

/// The body type of every response.
pub(crate) type ResponseBody = BoxBody<Bytes, Infallible>;

/// Size of the chunks of a generated response body.
const CHUNK: usize = 64 * 1024;

/// A response with `status`, the JSON `value` and Express's JSON content type.
pub(crate) fn json(status: StatusCode, value: serde_json::Value) -> Response<ResponseBody> {
    let body = Bytes::from(value.to_string());
    respond(
        status,
        "application/json; charset=utf-8",
        Full::new(body).boxed(),
    )
}

/// The uploader's failure: 401 with the plain-text body `Unauthorized`.
pub(crate) fn unauthorized() -> Response<ResponseBody> {
    text(StatusCode::UNAUTHORIZED, "Unauthorized")
}

/// 400 `Bad Request`, for bodies that cannot be read or parsed.
pub(crate) fn bad_request() -> Response<ResponseBody> {
    text(StatusCode::BAD_REQUEST, "Bad Request")
}

/// A plain-text response.
fn text(status: StatusCode, text: &'static str) -> Response<ResponseBody> {
    let body = Full::new(Bytes::from_static(text.as_bytes())).boxed();
    respond(status, "text/plain; charset=utf-8", body)
}

/// A response with `status`, `content_type` and `body`.
pub(crate) fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: ResponseBody,
) -> Response<ResponseBody> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

/// The string fields of a request body, as Express's `json()` and `urlencoded()` parsers give
/// them: chosen by Content-Type; any other type gives no fields.
pub(crate) struct Fields(HashMap<String, String>);

/// A JSON body that does not parse (Express answers 400).
pub(crate) struct BadJson;

impl Fields {
    /// The fields of `body`, read according to the Content-Type in `headers`.
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Fields, BadJson> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        let mut fields = HashMap::new();
        if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            for (name, value) in form_urlencoded::parse(body) {
                fields
                    .entry(name.into_owned())
                    .or_insert(value.into_owned());
            }
        } else if essence.eq_ignore_ascii_case("application/json") && !body.is_empty() {
            let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| BadJson)?;
            if let serde_json::Value::Object(object) = value {
                for (name, value) in object {
                    if let serde_json::Value::String(value) = value {
                        fields.insert(name, value);
                    }
                }
            }
        }
        Ok(Fields(fields))
    }

    /// The field `name`, if present and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// The byte count and SHA-256 (lowercase hex) of `body`, read frame by frame; `None` if the
/// body fails midway.
pub(crate) async fn digest(mut body: Incoming) -> Option<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut bytes: u64 = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.ok()?.into_data() {
            bytes += data.len() as u64;
            hasher.update(&data);
        }
    }
    Some((bytes, hex::encode(hasher.finalize())))
}

/// A response body of a given length whose byte at offset `i` is `i % 256`, produced in
/// chunks of 64 KiB (all slices of one shared chunk, so nothing grows with the length).
pub(crate) struct PatternBody {
    /// Bytes still to send.
    remaining: u64,
    /// One chunk of the pattern; `CHUNK` is a multiple of 256 so every chunk is the same.
    chunk: Bytes,
}

impl PatternBody {
    /// A body of `len` bytes.
    pub fn new(len: u64) -> PatternBody {
        let chunk: Vec<u8> = (0..CHUNK).map(|i| (i % 256) as u8).collect();
        PatternBody {
            remaining: len,
            chunk: Bytes::from(chunk),
        }
    }
}

impl Body for PatternBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let len = usize::try_from(this.remaining).map_or(CHUNK, |left| left.min(CHUNK));
        this.remaining -= len as u64;
        Poll::Ready(Some(Ok(Frame::data(this.chunk.slice(..len)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
