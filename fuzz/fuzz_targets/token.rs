//! Token parsing never panics and never accepts anything but a correctly signed token.
//! Run with: `RUSTC_BOOTSTRAP=1 cargo fuzz run token` (in fuzz/).
#![no_main]

use std::sync::LazyLock;

use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
use libfuzzer_sys::fuzz_target;
use sessiongate::auth::{TokenVerifier, bearer_token};

static VERIFIER: LazyLock<TokenVerifier> = LazyLock::new(|| {
    TokenVerifier::new(b"fuzz-secret", jsonwebtoken::Algorithm::HS256, 5, None)
});

fuzz_target!(|data: &[u8]| {
    // As a token: random bytes never verify with the secret (a forgery would be a finding).
    if let Ok(text) = std::str::from_utf8(data) {
        assert!(VERIFIER.verify(text, 1_700_000_000_000).is_err(), "accepted {text:?}");
    }
    // As an Authorization header value: parsing never panics.
    if let Ok(value) = HeaderValue::from_bytes(data) {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value);
        let _ = bearer_token(&headers);
    }
});
