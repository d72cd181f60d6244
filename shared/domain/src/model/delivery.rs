//! What the identity provider tells us (Auth0 Actions and Event Streams),
//! as we keep it: a delivery, recorded durably (the delivery log port)
//! before it is applied. Data only; applying it is the identity-event use
//! cases' (`crate::users::identity_events`).

use time::OffsetDateTime;

/// How long a delivery's id is remembered (and a replay of it ignored).
pub const DELIVERY_RETENTION_SECS: u64 = 3 * 86_400;

/// How long whoever applies a delivery holds it: longer than applying can
/// take (one identity-provider call, bounded by its deadline, and a few
/// store writes), so a retry of the sender never applies it twice, and
/// short enough that a crashed attempt is taken over soon.
pub const DELIVERY_LEASE_SECS: u64 = 30;

/// What a delivery asks us to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdpEventKind {
    /// The person set a password (Post Change Password).
    PasswordSet,
    /// The login is blocked at the provider (Event Streams `user.updated`).
    LoginBlocked,
    /// The login was deleted at the provider (Event Streams `user.deleted`).
    LoginDeleted,
    /// A sign-in (Post Login).
    LoggedIn,
}

impl IdpEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdpEventKind::PasswordSet => "password_set",
            IdpEventKind::LoginBlocked => "login_blocked",
            IdpEventKind::LoginDeleted => "login_deleted",
            IdpEventKind::LoggedIn => "logged_in",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            IdpEventKind::PasswordSet,
            IdpEventKind::LoginBlocked,
            IdpEventKind::LoginDeleted,
            IdpEventKind::LoggedIn,
        ]
        .into_iter()
        .find(|k| k.as_str() == raw)
    }
}

/// A verified delivery as we keep it: only what applying needs (no email,
/// no name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpDelivery {
    /// `<channel>:<the delivery's own id>` (`action:…`, `stream:…`).
    pub id: String,
    pub kind: IdpEventKind,
    /// The login (`auth0|…`).
    pub subject: String,
    /// The tenant the delivery names, if it names one.
    pub tenant: Option<String>,
    /// When it happened at the provider: the ordering key.
    pub occurred_at: OffsetDateTime,
    /// For a block: the blocked state our own last push recorded on the
    /// login. `Some(true)`: the block is ours, read back (not a dashboard
    /// change).
    pub pushed_blocked: Option<bool>,
}

/// What recording a delivery found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// First time: recorded, to be applied.
    New,
    /// Recorded before and already applied.
    Done,
    /// Recorded before, not applied yet (being applied, or waiting for a
    /// retry): it will be, without the sender's help.
    Owed,
}
