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
    // The first character is alphanumeric: a token starting with '-' reads as a flag when
    // given on a command line (`vantage edge --token -C…`).
    let first = char::from(ALPHABET[rng.random_range(0..62)]);
    std::iter::once(first)
        .chain((1..48).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])))
        .collect()
}

/// Opens `path` for writing as a file only its owner can read (mode 0600 on Unix): new
/// (failing if it exists) with `create_new`, else created or truncated.
pub fn open_private(path: &std::path::Path, create_new: bool) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if create_new {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// 16 fresh random bytes for an identifier or a salt.
pub fn random_bytes() -> [u8; 16] {
    rand::random()
}

#[cfg(test)]
mod tests {
    #[test]
    fn generated_tokens_never_read_as_a_flag() {
        for _ in 0..2_000 {
            let t = super::generate_token();
            assert_eq!(t.len(), 48);
            assert!(t.as_bytes()[0].is_ascii_alphanumeric(), "{t}");
            assert!(super::is_token_syntax(&t), "{t}");
        }
    }

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
