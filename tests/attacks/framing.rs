//! HTTP/1.1 framing attacks over raw sockets: conflicting lengths, bad chunks, folded headers
//! and request smuggling. Each comment says what hyper 1.x (the gateway's HTTP server) does.
//!
//! The carrier requests go to a public route (`POST /api/user/carrier`, forwarded without a
//! token), so anything the gateway parsed differently from what it forwarded would show up
//! at the uploader. The hidden request goes to another public route, `/api/user/smuggled`:
//! the uploader must never receive it.

use share_stand_in::RecordedRequest;
use tokio::io::AsyncWriteExt;

use crate::raw::{self, RawReply};
use crate::support::*;
use crate::{assert_still_serving, upstream_paths_since};

/// A complete request that must never reach the uploader when hidden in another's body.
const SMUGGLED: &str = "GET /api/user/smuggled HTTP/1.1\r\nHost: gateway\r\n\r\n";

/// Asserts the uploader never received anything for the smuggled path.
fn assert_nothing_smuggled(h: &Harness, what: &str) {
    let smuggled: Vec<String> = upstream_paths_since(h, 0)
        .into_iter()
        .filter(|p| p.contains("smuggled"))
        .collect();
    assert!(
        smuggled.is_empty(),
        "{what}: reached the uploader: {smuggled:?}"
    );
}

/// Asserts the request was refused at the framing level: at most one answer, a 4xx (hyper's
/// own 400, or a gateway refusal), and the connection closed after it.
fn assert_refused(reply: &RawReply, what: &str) {
    assert!(
        reply.responses.len() <= 1,
        "{what}: one answer at most: {reply:?}"
    );
    assert!(
        reply.trailing.is_empty(),
        "{what}: nothing after it: {reply:?}"
    );
    if let Some(response) = reply.responses.first() {
        assert_eq!(response.status, 400, "{what}: {response:?}");
    }
    assert!(reply.closed, "{what}: the connection is closed: {reply:?}");
}

/// The requests the uploader received after the first `since`.
fn received_since(h: &Harness, since: usize) -> Vec<RecordedRequest> {
    h.uploader.requests().into_iter().skip(since).collect()
}

#[tokio::test]
async fn content_length_with_chunked_is_read_as_chunked_and_the_connection_closed() {
    // hyper: Transfer-Encoding wins (RFC 9112 section 6.1), the Content-Length header is
    // dropped from the request, and the connection is not kept alive, so whatever follows
    // the chunked body is never read as a request.
    let h = Harness::start().await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    let body = format!("5\r\nhello\r\n0\r\n\r\n{SMUGGLED}");
    for (what, lengths) in [
        (
            "CL then TE",
            format!(
                "Content-Length: {}\r\nTransfer-Encoding: chunked\r\n",
                body.len()
            ),
        ),
        (
            "TE then CL",
            format!(
                "Transfer-Encoding: chunked\r\nContent-Length: {}\r\n",
                body.len()
            ),
        ),
        (
            "CL 3 then TE",
            "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n".to_string(),
        ),
        (
            "CL 0 then TE",
            "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n".to_string(),
        ),
    ] {
        let before = h.uploader.requests().len();
        let request =
            format!("POST /api/user/carrier HTTP/1.1\r\nHost: gateway\r\n{lengths}\r\n{body}");
        let reply = raw::exchange(h.addr(), request.as_bytes()).await;
        assert_eq!(reply.statuses(), vec![200], "{what}: one answer: {reply:?}");
        assert!(reply.closed, "{what}: closed after the answer: {reply:?}");
        let received = received_since(&h, before);
        let [carrier] = received.as_slice() else {
            panic!("{what}: only the carrier is forwarded: {received:?}");
        };
        assert_eq!(carrier.path_and_query, "/user/carrier", "{what}");
        assert_eq!(&carrier.body[..], b"hello", "{what}: the chunked reading");
        // The uploader gets one framing, never both.
        let framings = ["content-length", "transfer-encoding"]
            .iter()
            .filter(|name| carrier.headers.contains_key(**name))
            .count();
        assert!(framings <= 1, "{what}: {:?}", carrier.headers);
        assert_nothing_smuggled(&h, what);
    }
    assert_still_serving(&h, &t.access_token).await;
}

#[tokio::test]
async fn two_different_content_lengths_are_400() {
    // hyper: differing Content-Length values (in two headers or one list) are a parse error,
    // answered 400 with the connection closed; a list is not accepted even when equal.
    let h = Harness::start().await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    let before = h.uploader.requests().len();
    for (what, lengths) in [
        ("two headers", "Content-Length: 5\r\nContent-Length: 52\r\n"),
        (
            "two headers, other case",
            "content-length: 52\r\nCONTENT-LENGTH: 5\r\n",
        ),
        ("a list", "Content-Length: 5, 52\r\n"),
        ("a list of equal values", "Content-Length: 5, 5\r\n"),
        ("a sign", "Content-Length: +5\r\n"),
        ("negative", "Content-Length: -1\r\n"),
        ("hex", "Content-Length: 0x5\r\n"),
        ("overflowing", "Content-Length: 99999999999999999999999\r\n"),
    ] {
        let request = format!(
            "POST /api/user/carrier HTTP/1.1\r\nHost: gateway\r\n{lengths}\r\nhello{SMUGGLED}"
        );
        let reply = raw::exchange(h.addr(), request.as_bytes()).await;
        assert_refused(&reply, what);
        assert!(
            !reply.responses.is_empty(),
            "{what}: hyper answers 400: {reply:?}"
        );
    }
    assert_eq!(upstream_paths_since(&h, before), Vec::<String>::new());
    assert_nothing_smuggled(&h, "content lengths");
    assert_still_serving(&h, &t.access_token).await;
}

#[tokio::test]
async fn transfer_encoding_tricks_are_400() {
    // hyper: a Transfer-Encoding whose last coding is not `chunked` is 400; so is one on an
    // HTTP/1.0 request. httparse refuses a space before the colon, a control character in
    // a value and a header line starting with whitespace: 400 too. The connection closes.
    let h = Harness::start().await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    let before = h.uploader.requests().len();
    for (what, version, te) in [
        ("not chunked", "1.1", "Transfer-Encoding: xchunked\r\n"),
        (
            "chunked not last",
            "1.1",
            "Transfer-Encoding: chunked, identity\r\n",
        ),
        ("quoted", "1.1", "Transfer-Encoding: \"chunked\"\r\n"),
        (
            "two headers, identity last",
            "1.1",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
        ),
        (
            "space before the colon",
            "1.1",
            "Transfer-Encoding : chunked\r\n",
        ),
        ("vertical tab", "1.1", "Transfer-Encoding:\x0bchunked\r\n"),
        (
            "carriage return inside",
            "1.1",
            "Transfer-Encoding: chu\rnked\r\n",
        ),
        (
            "leading whitespace",
            "1.1",
            " Transfer-Encoding: chunked\r\n",
        ),
        ("on HTTP/1.0", "1.0", "Transfer-Encoding: chunked\r\n"),
    ] {
        // Content-Length 0 says the request ends here; a chunked reading would take the
        // hidden request as the body. Either reading disagreeing with the other's is the
        // smuggle; refusing both is the answer.
        let request = format!(
            "POST /api/user/carrier HTTP/{version}\r\nHost: gateway\r\nContent-Length: 0\r\n{te}\r\n{SMUGGLED}"
        );
        let reply = raw::exchange(h.addr(), request.as_bytes()).await;
        assert_refused(&reply, what);
        assert!(
            !reply.responses.is_empty(),
            "{what}: hyper answers 400: {reply:?}"
        );
    }
    assert_eq!(upstream_paths_since(&h, before), Vec::<String>::new());
    assert_nothing_smuggled(&h, "transfer encodings");
    assert_still_serving(&h, &t.access_token).await;
}

#[tokio::test]
async fn obsolete_line_folding_is_400() {
    // httparse (hyper's parser) refuses obs-fold in requests: a line starting with a space
    // or a tab is not a header. 400, connection closed.
    let h = Harness::start().await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    let before = h.uploader.requests().len();
    let token = &t.access_token;
    for (what, headers, body) in [
        ("a folded header", "X-Folded: a\r\n b\r\n".to_string(), ""),
        (
            "a tab-folded header",
            "X-Folded: a\r\n\tb\r\n".to_string(),
            "",
        ),
        (
            "a folded Transfer-Encoding",
            "Content-Length: 0\r\nTransfer-Encoding:\r\n chunked\r\n".to_string(),
            SMUGGLED,
        ),
        (
            "a folded Authorization",
            format!("Authorization: Bearer\r\n {token}\r\n"),
            "",
        ),
        (
            "a folded identity header",
            format!(
                "Authorization: Bearer {token}\r\nX-Sessiongate-User:\r\n {}\r\n",
                BOB.0
            ),
            "",
        ),
    ] {
        for path in ["/api/user/carrier", "/api/account"] {
            let request = format!("POST {path} HTTP/1.1\r\nHost: gateway\r\n{headers}\r\n{body}");
            let reply = raw::exchange(h.addr(), request.as_bytes()).await;
            let what = format!("{what} on {path}");
            assert_refused(&reply, &what);
            assert!(
                !reply.responses.is_empty(),
                "{what}: hyper answers 400: {reply:?}"
            );
        }
    }
    assert_eq!(upstream_paths_since(&h, before), Vec::<String>::new());
    assert_still_serving(&h, &t.access_token).await;
}

#[tokio::test]
async fn a_bad_chunk_size_never_reaches_the_uploader_as_a_complete_request() {
    // hyper dispatches the request once its head is parsed; the bad chunk size (`zz`) is a
    // body error found while the body streams. On a session route without a token the body
    // is never read: 401. On a public route the gateway has started forwarding: the body
    // error must end the exchange with a refusal or a closed connection, never a 2xx, and
    // the uploader must not receive a body.
    let h = Harness::start().await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    let body = format!("zz\r\nhello\r\n0\r\n\r\n{SMUGGLED}");

    let before = h.uploader.requests().len();
    let request = format!(
        "POST /api/account HTTP/1.1\r\nHost: gateway\r\nTransfer-Encoding: chunked\r\n\r\n{body}"
    );
    let reply = raw::exchange(h.addr(), request.as_bytes()).await;
    let first = reply.responses.first().map(|r| (r.status, r.code()));
    assert_eq!(
        first,
        Some((401, Some("TOKEN_MISSING".into()))),
        "{reply:?}"
    );
    assert_eq!(upstream_paths_since(&h, before), Vec::<String>::new());

    // The bad size first, or after a good chunk (the uploader may then see the head and part
    // of a body that never ends properly).
    for (what, body) in [
        ("bad first chunk", body.clone()),
        (
            "bad second chunk",
            format!("5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n{SMUGGLED}"),
        ),
    ] {
        let before = h.uploader.requests().len();
        let request = format!(
            "POST /api/user/carrier HTTP/1.1\r\nHost: gateway\r\nTransfer-Encoding: chunked\r\n\r\n{body}"
        );
        let reply = raw::exchange(h.addr(), request.as_bytes()).await;
        for received in received_since(&h, before) {
            assert_eq!(
                &received.body[..],
                b"",
                "{what}: no complete body got through: {received:?}"
            );
        }
        assert_nothing_smuggled(&h, what);
        assert!(reply.responses.len() <= 1, "{what}: {reply:?}");
        assert!(reply.closed, "{what}: {reply:?}");
        if let Some(response) = reply.responses.first() {
            assert!(
                (400..500).contains(&response.status),
                "{what}: the client's malformed body is the client's error (4xx), not the \
                 upstream's: {} {:?}",
                response.status,
                response.code()
            );
        }
    }
    assert_still_serving(&h, &t.access_token).await;
}

#[tokio::test]
async fn a_request_hidden_after_a_content_length_body_is_checked_like_any_other() {
    // hyper: with a sound Content-Length the bytes after the body are the next request on
    // the connection (pipelining). The gateway parses it itself, so it gets the same checks
    // as any request: the hidden session-route request without a token is the gateway's
    // 401 and never reaches the uploader.
    let h = Harness::start().await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    let before = h.uploader.requests().len();
    let hidden = "GET /api/account HTTP/1.1\r\nHost: gateway\r\n\r\n\
                  DELETE /api/account/sessions HTTP/1.1\r\nHost: gateway\r\n\r\n";
    let mut stream = raw::connect(h.addr()).await;
    let request = format!(
        "POST /api/user/carrier HTTP/1.1\r\nHost: gateway\r\nContent-Length: 5\r\n\
         Transfer_Encoding: chunked\r\n\r\nhello{hidden}"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let reply = raw::read_reply(&mut stream).await;
    let answers: Vec<(u16, Option<String>)> = reply
        .responses
        .iter()
        .map(|r| (r.status, r.code()))
        .collect();
    assert_eq!(
        answers,
        vec![
            (200, None),
            (401, Some("TOKEN_MISSING".into())),
            (401, Some("TOKEN_MISSING".into()))
        ],
        "{reply:?}"
    );
    let received = received_since(&h, before);
    let [carrier] = received.as_slice() else {
        panic!("only the carrier is forwarded: {received:?}");
    };
    assert_eq!(carrier.path_and_query, "/user/carrier");
    assert_eq!(&carrier.body[..], b"hello");
    assert_eq!(
        h.sessions(&t.access_token).await.len(),
        1,
        "nothing revoked"
    );
    assert_still_serving(&h, &t.access_token).await;
}

#[tokio::test]
async fn a_content_length_named_hop_by_hop_still_reaches_the_uploader_framed() {
    // `Connection: content-length` makes the gateway drop Content-Length as hop-by-hop; the
    // upstream request must still be framed by its real length, so the uploader reads the
    // same body and nothing after it.
    let h = Harness::start().await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    let before = h.uploader.requests().len();
    let request = "POST /api/user/carrier HTTP/1.1\r\nHost: gateway\r\nConnection: content-length\r\n\
                   Content-Length: 5\r\n\r\nhello";
    let mut stream = raw::connect(h.addr()).await;
    stream.write_all(request.as_bytes()).await.expect("write");
    let reply = raw::read_reply(&mut stream).await;
    assert_eq!(reply.statuses(), vec![200], "{reply:?}");
    let received = received_since(&h, before);
    let [carrier] = received.as_slice() else {
        panic!("one request forwarded: {received:?}");
    };
    assert_eq!(&carrier.body[..], b"hello");
    assert_nothing_smuggled(&h, "content-length named in Connection");
    assert_still_serving(&h, &t.access_token).await;
}
