//! The identity-provider port (Auth0 in AWS; the development identity
//! provider locally) and the one-time tokens our links carry.

use crate::model::user::User;
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdpError {
    /// Down, throttled or timing out: retry later.
    #[error("identity provider unavailable: {0}")]
    Unavailable(String),
    /// Not sent: our own shared rate budget for the provider stayed spent
    /// until past the call's deadline. Retry later; owed work does not count
    /// it as a failed attempt (the provider never saw it), so a busy hour
    /// does not make work look stuck.
    #[error("identity provider call not sent (rate budget spent): {0}")]
    Throttled(String),
    /// Refused the request; retrying will not help.
    #[error("identity provider refused: {0}")]
    Rejected(String),
}

/// What we want the provider to hold for one of our users: the provider is
/// told the whole state, never a delta, so repeating or reordering the work
/// cannot leave an older state behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpUserState {
    pub email: String,
    pub given_name: String,
    pub family_name: String,
    /// Suspended, or anything else that must not sign in.
    pub blocked: bool,
}

impl IdpUserState {
    /// The state `user` owes the provider: blocked while suspended.
    pub fn of(user: &User) -> Self {
        Self {
            email: user.email.as_str().to_owned(),
            given_name: user.first_name.as_str().to_owned(),
            family_name: user.last_name.as_str().to_owned(),
            blocked: user.status == crate::model::user::UserStatus::Suspended,
        }
    }
}

/// A login as the provider holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpAccount {
    /// `auth0|…`
    pub subject: String,
    pub email: String,
    pub email_verified: bool,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub blocked: bool,
    /// Our tenant, recorded on the login when we created it.
    pub tenant: Option<String>,
    /// Our user id, recorded on the login when we created or relinked it.
    pub user_id: Option<String>,
    /// The blocked state our own last push set (recorded on the login with
    /// every push): a login that is blocked while this says `false` was
    /// blocked by someone else (the dashboard), not by us.
    pub pushed_blocked: Option<bool>,
}

/// What a password-setup link is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupLink<'a> {
    /// The portal the person signs in to once the password is set (their
    /// tenant's): the link returns them to its sign-in page.
    pub portal_url: &'a str,
    /// How long the link may work at most (an invitation's remaining
    /// lifetime); `None`: the provider's configured lifetime.
    pub valid_for: Option<time::Duration>,
}

/// How a step went that the provider's plan (or the grant we were given)
/// may not offer at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    Done,
    /// Not offered here; retrying will not help until the plan or the grant
    /// changes. The reason names the status and code, nothing personal.
    Unsupported(String),
}

#[async_trait]
pub trait IdentityProvider: Send + Sync {
    /// Our login for `user`'s address, if there is one. `Rejected` when the
    /// address has a login we may not use (another tenant's, or one we did
    /// not make).
    async fn find_login(&self, user: &User) -> Result<Option<IdpAccount>, IdpError>;

    /// Creates the user's login (with an unguessable password nobody knows)
    /// recording our tenant and user id on it; returns its subject, or
    /// `None` when the address has a login already (look it up: an accept
    /// creates first and looks up only then).
    async fn create_login(&self, user: &User) -> Result<Option<String>, IdpError>;

    /// Records `user` (a later user record of the same person and tenant)
    /// on an existing login. `Ok(false)` when there is no such login.
    async fn relink_login(&self, subject: &str, user: &User) -> Result<bool, IdpError>;

    /// A link where the user sets a (new) password; the provider reports
    /// back when it is set.
    async fn password_setup_link(
        &self,
        user: &User,
        subject: &str,
        link: &SetupLink<'_>,
    ) -> Result<String, IdpError>;

    /// Makes the login hold `state` (name, email, blocked). `Ok(false)` when
    /// there is no such login (nothing to update).
    async fn update_user(&self, subject: &str, state: &IdpUserState) -> Result<bool, IdpError>;

    /// Deletes the login; deleting one that is already gone succeeds.
    async fn delete_user(&self, subject: &str) -> Result<(), IdpError>;

    /// The login, if it exists.
    async fn get_user(&self, subject: &str) -> Result<Option<IdpAccount>, IdpError>;

    /// Ends every session of the login (signed in elsewhere: signed out).
    async fn revoke_sessions(&self, subject: &str) -> Result<StepOutcome, IdpError>;

    /// Revokes every refresh token of the login (no new access tokens).
    async fn revoke_refresh_tokens(&self, subject: &str) -> Result<StepOutcome, IdpError>;

    /// Lifts the provider's own block after too many failed sign-ins
    /// (brute-force protection), which `blocked: false` does not touch.
    async fn clear_login_block(&self, subject: &str) -> Result<StepOutcome, IdpError>;
}

/// Every login of our connection, for reconciliation.
#[async_trait]
pub trait LoginDirectory: Send + Sync {
    /// All logins, read from a complete listing (Auth0: a users-export job),
    /// not from a search that stops at a limit.
    async fn all_logins(&self) -> Result<LoginListing, IdpError>;
}

/// What [`LoginDirectory::all_logins`] found.
pub struct LoginListing {
    /// The logins, read one at a time (an export of a large tenant is not
    /// held in memory whole). An `Err` item is a line that could not be
    /// read: counted, and the listing is then not complete.
    pub accounts: Box<dyn Iterator<Item = Result<IdpAccount, IdpError>> + Send>,
    /// Where they came from (`export`, `memory`): shown in the report.
    pub source: &'static str,
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
