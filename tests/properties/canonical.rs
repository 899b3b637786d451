//! The canonical form `normalise_path` promises, as a checker the path properties use, and
//! the proof that the checker refuses what is not canonical.

use proptest::prelude::*;
use sessiongate::routes::normalise_path;

/// Checks the canonical-form promises of `normalise_path` on one of its outputs.
pub(crate) fn check_canonical(out: &str) -> Result<(), TestCaseError> {
    prop_assert!(out.starts_with('/'), "{out:?} starts with /");
    prop_assert!(!out.contains("//"), "{out:?} has no empty segment");
    for segment in out[1..].split('/') {
        prop_assert!(
            segment != "." && segment != "..",
            "{out:?} has a dot segment"
        );
    }
    prop_assert!(
        !out.bytes().any(|b| b == b'\\' || b.is_ascii_control()),
        "{out:?}"
    );
    let bytes = out.as_bytes();
    for (i, _) in out.match_indices('%') {
        let hex = bytes.get(i + 1..i + 3);
        let hex = hex.and_then(|h| std::str::from_utf8(h).ok());
        let value = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
        prop_assert!(value.is_some(), "{out:?}: a complete escape at {i}");
        let (hex, value) = (hex.unwrap_or_default(), value.unwrap_or_default());
        prop_assert_eq!(
            hex,
            hex.to_ascii_uppercase(),
            "{:?}: upper-case escapes",
            out
        );
        let unreserved = value.is_ascii_alphanumeric() || b"-._~".contains(&value);
        prop_assert!(!unreserved, "{out:?}: an encoded unreserved character");
        prop_assert!(value != b'/' && value != b'\\' && !value.is_ascii_control());
    }
    prop_assert_eq!(normalise_path(out), Ok(out.to_string()), "idempotent");
    Ok(())
}

#[test]
fn the_canonical_checker_refuses_non_canonical_spellings() {
    // So the property above cannot pass vacuously.
    for bad in [
        "a", "/a//b", "/a/./b", "/a/../b", "/.", "/%41", "/%7e", "/%3a", "/%2F", "/%5C", "/%0A",
        "/%4", "/a\\b",
    ] {
        assert!(check_canonical(bad).is_err(), "{bad:?}");
    }
    for good in ["/", "/a/b", "/a/b/", "/%3A", "/%25", "/a;b", "/%E9"] {
        assert!(check_canonical(good).is_ok(), "{good:?}");
    }
}
