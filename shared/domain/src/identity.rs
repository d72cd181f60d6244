//! The identity-provider port (Auth0 in AWS; the development identity
//! provider locally) and the one-time tokens our links carry.

use crate::user::User;
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdpError {
    /// Down, throttled or timing out: retry later.
    #[error("identity provider unavailable: {0}")]
    Unavailable(String),
    /// Refused the request; retrying will not help.
    #[error("identity provider refused: {0}")]
    Rejected(String),
}

#[async_trait]
pub trait IdentityProvider: Send + Sync {
    /// Creates the user's login (with an unguessable password nobody knows)
    /// or finds the existing one by email; returns its subject (`auth0|…`).
    async fn ensure_user(&self, user: &User) -> Result<String, IdpError>;

    /// A link where the user sets a (new) password; the provider reports
    /// back when it is set.
    async fn password_setup_link(&self, user: &User, subject: &str) -> Result<String, IdpError>;
}

/// A fresh one-time token for a link (256 random bits, URL-safe) and the
/// hash we store instead of it.
pub fn new_link_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    // The OS random source failing is not recoverable for a link we must not
    // let anyone guess; ULID randomness is the fallback only in that case.
    if getrandom::fill(&mut bytes).is_err() {
        bytes[..16].copy_from_slice(&ulid::Ulid::new().to_bytes());
        bytes[16..].copy_from_slice(&ulid::Ulid::new().to_bytes());
    }
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_link_token(&token);
    (token, hash)
}

/// Hex SHA-256 of a link token.
pub fn hash_link_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Hex SHA-256 of any text (e.g. a normalized email used as a rate-limit
/// bucket, so the bucket name holds no address).
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_unique_and_stored_only_as_hashes() {
        let (a, ha) = new_link_token();
        let (b, _) = new_link_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(ha, hash_link_token(&a));
        assert_eq!(ha.len(), 64);
        assert!(!ha.contains(&a));
    }
}
