//! Hashing and checking secrets. Only digests are stored; comparisons are constant-time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use vantage_core::auth::SecretDigest;

/// Characters of API tokens and global keys (Cloudflare's, which Terraform enforces).
fn is_secret_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// `^[0-9A-Za-z_-]{40,80}$`
pub fn is_token_syntax(s: &str) -> bool {
    (40..=80).contains(&s.len()) && s.bytes().all(is_secret_char)
}

/// `^[0-9A-Za-z_-]{37,60}$`
pub fn is_global_key_syntax(s: &str) -> bool {
    (37..=60).contains(&s.len()) && s.bytes().all(is_secret_char)
}

/// Tokens are 40+ random characters, so an unsalted SHA-256 is a sound stored form (as for
/// GitHub's and Cloudflare's own tokens) and lets a token be found by its digest.
pub fn token_digest(token: &str) -> SecretDigest {
    SecretDigest(Sha256::digest(token.as_bytes()).into())
}

/// Global keys may be chosen by people, so they are salted.
pub fn key_digest(salt: &[u8; 16], key: &str) -> SecretDigest {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(key.as_bytes());
    SecretDigest(h.finalize().into())
}

pub fn digests_equal(a: &SecretDigest, b: &SecretDigest) -> bool {
    a.0.ct_eq(&b.0).into()
}

/// A new token: 48 characters from a CSPRNG, URL-safe.
pub fn generate_token() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let mut rng = rand::rng();
    (0..48)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// 16 fresh random bytes for an identifier or a salt.
pub fn random_bytes() -> [u8; 16] {
    rand::random()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax() {
        assert!(is_token_syntax(&"a".repeat(40)));
        assert!(!is_token_syntax(&"a".repeat(39)));
        assert!(!is_token_syntax(&format!("{}!", "a".repeat(40))));
        assert!(is_global_key_syntax(&"k".repeat(37)));
        assert!(is_token_syntax(&generate_token()));
    }

    #[test]
    fn digests() {
        assert!(digests_equal(&token_digest("x"), &token_digest("x")));
        assert!(!digests_equal(&token_digest("x"), &token_digest("y")));
        assert!(!digests_equal(
            &key_digest(&[0; 16], "k"),
            &key_digest(&[1; 16], "k")
        ));
    }
}
