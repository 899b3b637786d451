//! The request limits checked before anything else: the size of an HTTP/1.1 head
//! (`limits.max_header_bytes`) and of a body (`limits.max_request_body_bytes`).

use http::{Request, header};

use crate::body::Body;
use crate::config::LimitsConfig;
use crate::error::GatewayError;

/// Refuses an HTTP/1.1 head over `limits.max_header_bytes` (431). HTTP/2's header limit is
/// h2's (`max_header_list_size`).
pub fn check_head<B>(request: &Request<B>, limits: &LimitsConfig) -> Result<(), GatewayError> {
    if request.version() != http::Version::HTTP_2 && head_len(request) > limits.max_header_bytes {
        return Err(GatewayError::HeadTooLarge);
    }
    Ok(())
}

/// Applies `limits.max_request_body_bytes`: a declared length over it is answered 413 at
/// once; a streamed body that grows past it is cut, failing the upstream request.
pub fn limit_body(request: &mut Request<Body>, limits: &LimitsConfig) -> Result<(), GatewayError> {
    // In place: a request passed in and out by value would be moved twice, limit or not.
    let limit = limits.max_request_body_bytes;
    if limit == 0 {
        return Ok(());
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(GatewayError::BodyTooLarge);
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let body = std::mem::replace(request.body_mut(), crate::body::empty());
    *request.body_mut() = crate::body::boxed(http_body_util::Limited::new(body, limit));
    Ok(())
}

/// The size of an HTTP/1.1 request head as sent, to within the spaces a client may add around
/// header values: the request line and each header line with their CRLFs, and the blank line
/// that ends the head.
fn head_len<B>(request: &Request<B>) -> usize {
    let uri = request.uri();
    let target = uri
        .scheme_str()
        .map_or(0, |scheme| scheme.len() + "://".len())
        + uri
            .authority()
            .map_or(0, |authority| authority.as_str().len())
        + uri.path_and_query().map_or(0, |path| path.as_str().len());
    let line = request.method().as_str().len() + " ".len() + target + " HTTP/1.1\r\n".len();
    let fields: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + ": ".len() + value.len() + "\r\n".len())
        .sum();
    line + fields + "\r\n".len()
}

#[cfg(test)]
mod tests {
    use super::head_len;
    use http::Request;

    #[test]
    fn head_len_is_the_length_of_the_head_as_sent() {
        let raw = "GET /api/upload/abc?x=1 HTTP/1.1\r\nhost: gateway\r\nx-pad: aaaa\r\n\r\n";
        let request = Request::get("/api/upload/abc?x=1")
            .header("host", "gateway")
            .header("x-pad", "aaaa")
            .body(())
            .expect("a valid request");
        assert_eq!(head_len(&request), raw.len());

        // Absolute-form (a proxy request) and a header sent twice.
        let raw = "POST http://gateway:8080/x HTTP/1.1\r\na: 1\r\na: 22\r\n\r\n";
        let request = Request::post("http://gateway:8080/x")
            .header("a", "1")
            .header("a", "22")
            .body(())
            .expect("a valid request");
        assert_eq!(head_len(&request), raw.len());
    }
}
