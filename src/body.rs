//! The one body type the gateway's responses and forwarded requests use, and ways to read a
//! bounded amount of a streamed body without losing the rest.

use bytes::{Bytes, BytesMut};
use futures_util::stream;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Body as HttpBody, Frame};

/// Any error a body may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A streamed or buffered body.
pub type Body = BoxBody<Bytes, BoxError>;

/// The client's request body failed (bad chunk framing, connection cut): the client's
/// fault, answered 400, never counted against the upstream.
#[derive(Debug, thiserror::Error)]
#[error("client request body: {0}")]
pub struct ClientBodyError(#[source] pub hyper::Error);

/// A client's request body, its errors marked as [`ClientBodyError`].
pub fn from_client(body: hyper::body::Incoming) -> Body {
    if body.is_end_stream() {
        // Most requests have no body: an empty one takes no allocation to box.
        return empty();
    }
    body.map_err(|e| BoxError::from(ClientBodyError(e))).boxed()
}

/// A body holding these bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An empty body. Of no size, so boxing it allocates nothing.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// Boxes any body with a convertible error.
pub fn boxed<B>(body: B) -> Body
where
    B: HttpBody<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed()
}

/// A body read up to a limit.
pub enum Captured {
    /// The whole body, within the limit.
    Whole(Bytes),
    /// Longer than the limit: what was read and the rest, joined again, still streaming.
    TooLarge(Body),
}

/// Reads `body` until its end or until more than `limit` bytes have arrived. Nothing is lost:
/// a body over the limit comes back whole as a stream.
pub async fn capture(mut body: Body, limit: usize) -> Result<Captured, BoxError> {
    let mut buffer = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        if let Some(data) = frame.data_ref() {
            buffer.extend_from_slice(data);
            if buffer.len() > limit {
                let head = stream::iter([Ok(Frame::data(buffer.freeze()))]);
                let rest = http_body_util::BodyStream::new(body);
                let joined = StreamBody::new(futures_util::StreamExt::chain(head, rest));
                return Ok(Captured::TooLarge(joined.boxed()));
            }
        }
        // Trailers on a captured body are dropped; the routes that capture never use them.
    }
    Ok(Captured::Whole(buffer.freeze()))
}
