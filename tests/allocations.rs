//! Heap allocations in the per-request check, counted per thread by allocation-counter, this
//! test binary's global allocator (the library sets none; the gateway's binary sets mimalloc).
//!
//! A keep-alive connection sends one token request after request, and the gateway remembers
//! it verified ([`TokenMemo`]): on such a request the check (the token read, the times
//! checked again, the store's in-memory index asked, the decision counted, the use noted for
//! `lastActiveAt`) must not allocate at all. The first request of a connection verifies the
//! token and hashes it; its allocations are counted too, and bounded, so that one more
//! creeping in is seen.

use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use http::HeaderMap;
use http::header::{AUTHORIZATION, HeaderValue};
use jsonwebtoken::Algorithm;
use sessiongate::auth::{Authenticator, TokenMemo, TokenVerifier};
use sessiongate::metrics::Metrics;
use sessiongate::sessions::{Activity, MeteredStore, SessionStore, SledStore, SystemClock};

#[allow(dead_code, unused_imports)]
#[path = "../benches/support/seed.rs"]
mod seed;

/// Runs `future` to its end on this thread, polling it with a waker that does nothing, and
/// counts the allocations made on this thread meanwhile (allocation-counter is this test
/// binary's global allocator). Panics if it does not finish at its first poll: the check on
/// the in-memory index has nothing to wait for.
fn allocations_of<F: Future>(future: F) -> (F::Output, u64) {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    let mut polled = Poll::Pending;
    let counted = allocation_counter::measure(|| polled = future.as_mut().poll(&mut cx));
    match polled {
        Poll::Ready(output) => (output, counted.count_total),
        Poll::Pending => panic!("the check waited for something"),
    }
}

const SECRET: &[u8] = b"allocation-test-secret";

struct Fixture {
    _dir: tempfile::TempDir,
    authenticator: Authenticator,
    headers: HeaderMap,
}

/// The gateway's `Authenticator` over a metered sled store holding one live session, and a
/// request carrying that session's access token.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SledStore::open(dir.path()).expect("the store opens");
    let seeder = seed::Seeder::new(SECRET, seed::now_s(), 3600);
    let login = seeder.login(&seed::user_id(7), 0);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime
        .block_on(store.create(&login.session))
        .expect("the session is stored");
    let metrics = Arc::new(Metrics::new());
    let authenticator = Authenticator::new(
        Arc::new(TokenVerifier::new(SECRET, Algorithm::HS256, 5, None)),
        Arc::new(MeteredStore::new(Arc::new(store), metrics.clone())),
        Arc::new(SystemClock),
        metrics,
        Arc::new(Activity::default()),
    );
    let mut headers = HeaderMap::new();
    let bearer = format!("Bearer {}", login.access_token);
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&bearer).expect("ASCII"),
    );
    Fixture {
        _dir: dir,
        authenticator,
        headers,
    }
}

#[test]
fn the_check_of_a_remembered_token_allocates_nothing() {
    let f = fixture();
    let memo = TokenMemo::default();
    // The connection's first request: verified, hashed, remembered; the use noted.
    let (first, _) = allocations_of(f.authenticator.authenticate(&f.headers, Some(&memo)));
    let first = first.expect("the live session's token passes");
    for _ in 0..100 {
        let (caller, allocations) =
            allocations_of(f.authenticator.authenticate(&f.headers, Some(&memo)));
        let caller = caller.expect("the live session's token passes again");
        assert_eq!(caller.user, first.user);
        assert_eq!(caller.session_id, first.session_id);
        assert_eq!(
            allocations, 0,
            "allocations in the check of a remembered token"
        );
    }
}

#[test]
fn the_first_check_on_a_connection_allocates_a_bounded_few() {
    let f = fixture();
    // Warm: the session's use already noted, the metric series already touched.
    let (warm, _) = allocations_of(f.authenticator.authenticate(&f.headers, None));
    warm.expect("the live session's token passes");
    let memo = TokenMemo::default();
    let (caller, allocations) =
        allocations_of(f.authenticator.authenticate(&f.headers, Some(&memo)));
    caller.expect("the live session's token passes");
    // Measured at 4: the claims' `sub`, the payload's base64 decoded, the token's copy
    // and the memo's shared entry.
    assert!(
        allocations <= 4,
        "{allocations} allocations in the first check on a connection (measured: 4)"
    );
}
