//! The email outbox: every email is recorded in the same transaction as the
//! change that causes it, and a mailer sends it later (at most once).

use crate::ids::TenantId;
use crate::user::{Email, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailKind {
    Invitation,
    InvitationResent,
    /// To the new address: confirm it.
    EmailChangeVerification,
    /// To the old address: your login email is changing.
    EmailChangeNotice,
    /// The mailer asks the identity provider for a password-change link at
    /// send time, so the request that queued it never calls out.
    PasswordReset,
    /// Your access was suspended (only for tenants that turn it on).
    SuspensionNotice,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEmail {
    pub tenant_id: TenantId,
    /// A ULID; also the idempotency key of the send.
    pub id: String,
    pub kind: EmailKind,
    pub to: Email,
    pub user_id: UserId,
    /// Template values (names, links, expiry). Links may hold one-time
    /// tokens: the record is deleted or stripped once sent.
    pub data: serde_json::Value,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}
