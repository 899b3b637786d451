//! The operators' bearer token for the admin session routes: checked once when the
//! configuration is read, compared in constant time, and never shown (its `Debug` is
//! redacted, and no error quotes it).

use std::sync::Arc;

use sha2::{Digest as _, Sha256};

/// The admin token. Cloning shares it.
#[derive(Clone)]
pub struct AdminToken {
    token: Arc<str>,
    /// SHA-256 of the token: what a presented token is compared with.
    digest: [u8; 32],
}

impl AdminToken {
    /// The fewest characters a token may have: 32 random characters are beyond guessing.
    pub const MIN_LEN: usize = 32;
    /// The most characters a token may have (it travels in one header).
    pub const MAX_LEN: usize = 1024;

    /// Checks a token: `MIN_LEN` to `MAX_LEN` visible ASCII characters (no space, no control
    /// character, nothing a header could not carry). The error says what is wrong without
    /// quoting any of it.
    pub fn new(token: &str) -> Result<AdminToken, String> {
        if token.is_empty() {
            return Err("the admin token is empty".into());
        }
        if let Some(at) = token.chars().position(|c| !c.is_ascii_graphic()) {
            return Err(format!(
                "the admin token holds a space, a control or a non-ASCII character (character \
                 {}); expected visible ASCII only",
                at + 1
            ));
        }
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&token.len()) {
            return Err(format!(
                "the admin token has {} characters; expected {} to {}",
                token.len(),
                Self::MIN_LEN,
                Self::MAX_LEN
            ));
        }
        Ok(AdminToken {
            token: token.into(),
            digest: Sha256::digest(token.as_bytes()).into(),
        })
    }

    /// Whether `presented` is the token. The digests of the two are compared, every byte of
    /// them whatever differs, so the time taken says nothing of how much of a guess was right.
    pub fn matches(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let difference = presented
            .iter()
            .zip(self.digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(difference) == 0
    }

    /// The token itself, for the `Authorization` header of `sessiongate sessions`.
    pub fn reveal(&self) -> &str {
        &self.token
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "0123456789abcdef0123456789ABCDEF";

    #[test]
    fn a_token_of_32_visible_characters_is_accepted_and_matches_only_itself() {
        let token = AdminToken::new(GOOD).expect("32 visible characters");
        assert!(token.matches(GOOD));
        assert!(!token.matches("0123456789abcdef0123456789ABCDEf"));
        assert!(!token.matches(""));
        assert!(!token.matches(&format!("{GOOD} ")));
        assert_eq!(token.reveal(), GOOD);
    }

    #[test]
    fn short_spaced_or_control_tokens_are_refused_without_quoting_them() {
        let cases = [
            "",
            "short-token",
            &GOOD[..31],
            "0123456789abcdef 0123456789ABCDEF",
            "0123456789abcdef\t0123456789ABCDEF",
            "0123456789abcdef\n0123456789ABCDEF",
            "0123456789abcdef\u{7f}0123456789ABCDEF",
            "0123456789abcdefé0123456789ABCDEF",
        ];
        for case in cases {
            let error = AdminToken::new(case).expect_err(case);
            assert!(error.contains("admin token"), "{error}");
            if case.len() > 4 {
                assert!(!error.contains(&case[..5]), "{error} quotes {case:?}");
            }
        }
        let long = "x".repeat(AdminToken::MAX_LEN + 1);
        assert!(AdminToken::new(&long).is_err());
    }

    #[test]
    fn debug_shows_nothing_of_the_token() {
        let token = AdminToken::new(GOOD).expect("valid");
        let shown = format!("{token:?} {:?}", Some(token.clone()));
        assert!(!shown.contains("0123"), "{shown}");
    }
}
