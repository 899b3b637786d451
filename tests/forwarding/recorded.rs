//! What the uploader received through the gateway, as the stand-in recorded it.

use share_stand_in::RecordedRequest;

use crate::support::*;

/// The requests the uploader received after the first `since` ones.
pub(crate) fn received_since(h: &Harness, since: usize) -> Vec<RecordedRequest> {
    h.uploader.requests().into_iter().skip(since).collect()
}

/// The one request the uploader received after the first `since` ones.
pub(crate) fn only_request_since(h: &Harness, since: usize) -> RecordedRequest {
    let mut received = received_since(h, since);
    assert_eq!(
        received.len(),
        1,
        "exactly one forwarded request: {received:?}"
    );
    received.remove(0)
}

/// How many values of header `name` a recorded request carries.
pub(crate) fn count(request: &RecordedRequest, name: &str) -> usize {
    request.headers.get_all(name).iter().count()
}
