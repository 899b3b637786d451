//! What the stand-in remembers of each request.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Method};

/// A request as the stand-in received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The client end of the connection it came on: one value per connection.
    pub peer: SocketAddr,
    /// The request method.
    pub method: Method,
    /// The path and query exactly as received in the request line.
    pub path_and_query: String,
    /// The request headers.
    pub headers: HeaderMap,
    /// The whole body; empty for the upload routes, whose bodies are streamed, not kept.
    pub body: Bytes,
}

impl RecordedRequest {
    /// The first value of the header `name` (case-insensitive), if present and valid text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }
}
