//! Sealing users' Twitch tokens before they reach the store (PRODUCT.md: tokens are
//! encrypted at rest). XChaCha20-Poly1305 with a random 24-byte nonce per value: random
//! nonces of that size never realistically repeat, and the tag makes tampering an error.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Sealed values start with the format version, so a later key rotation can tell them apart.
const PREFIX: &str = "v1.";

#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

#[derive(Debug, thiserror::Error)]
#[error("a sealed token could not be opened (wrong token_key, or the value was altered)")]
pub struct OpenError;

impl Sealer {
    /// The cipher key is the SHA-256 of the configured `token_key`, so any long random
    /// string works as a key.
    pub fn new(key: &SecretString) -> Self {
        let digest = Sha256::digest(key.expose_secret().as_bytes());
        Self {
            cipher: XChaCha20Poly1305::new(&digest),
        }
    }

    pub fn seal(&self, plain: &SecretString) -> String {
        let nonce_bytes: [u8; 24] = rand::rng().random();
        let nonce = XNonce::from(nonce_bytes);
        // Encryption with a valid key and nonce cannot fail for inputs this small.
        let sealed = self
            .cipher
            .encrypt(&nonce, plain.expose_secret().as_bytes())
            .unwrap_or_default();
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out))
    }

    pub fn open(&self, sealed: &str) -> Result<SecretString, OpenError> {
        let bytes = sealed
            .strip_prefix(PREFIX)
            .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
            .ok_or(OpenError)?;
        if bytes.len() < 24 {
            return Err(OpenError);
        }
        let (nonce, ciphertext) = bytes.split_at(24);
        let nonce = XNonce::from_slice(nonce);
        let plain = self
            .cipher
            .decrypt(nonce, ciphertext)
            .map_err(|_| OpenError)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| OpenError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> SecretString {
        SecretString::from(k.to_owned())
    }

    #[test]
    fn sealed_tokens_open_with_the_same_key_only() {
        let sealer = Sealer::new(&key("a key of at least thirty-two characters"));
        let token = key("abcdefghijklmnopqrstuvwxyz0123");
        let sealed = sealer.seal(&token);
        assert!(!sealed.contains("abcdefghijklmnopqrstuvwxyz0123"));
        assert_ne!(sealed, sealer.seal(&token), "a fresh nonce every time");
        let opened = sealer.open(&sealed).map(|s| s.expose_secret().to_owned());
        assert_eq!(
            opened.ok().as_deref(),
            Some("abcdefghijklmnopqrstuvwxyz0123")
        );

        let other = Sealer::new(&key("another key of at least thirty-two chars"));
        assert!(other.open(&sealed).is_err());
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(sealer.open(&tampered).is_err());
        assert!(sealer.open("plain text").is_err());
    }
}
