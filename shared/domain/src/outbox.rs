//! The email outbox: every email is recorded in the same transaction as the
//! change that causes it, and a mailer sends it later (at most once).

use crate::ids::TenantId;
use crate::model::user::{Email, UserId};
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

/// What claiming an outbox email for sending found
/// ([`OutboxQueue::claim_outbox`](crate::ports::OutboxQueue::claim_outbox)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxClaim {
    /// The caller holds the lease: send it, then complete or fail it.
    /// `attempts` counts the earlier attempts that failed transiently.
    Claimed { email: OutboxEmail, attempts: u32 },
    /// Sent before: sending again would be a duplicate.
    AlreadySent,
    /// Not claimable before `until`: another mailer holds an unexpired
    /// lease, or the email waits for its retry time.
    Busy { until: OffsetDateTime },
    /// No such email (in this tenant), or it failed for good: nothing to send.
    Gone,
}

/// An email the mailer gave up on, as operators see it
/// ([`OutboxQueue::failed_outbox`](crate::ports::OutboxQueue::failed_outbox)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedEmail {
    /// The email, its `data` dropped (links may hold one-time tokens):
    /// `serde_json::Value::Null`.
    pub email: OutboxEmail,
    pub reason: String,
    /// Every attempt, the last one included.
    pub attempts: u32,
    pub failed_at: OffsetDateTime,
}

impl EmailKind {
    /// The snake_case name (as serialized), e.g. `"password_reset"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invitation => "invitation",
            Self::InvitationResent => "invitation_resent",
            Self::EmailChangeVerification => "email_change_verification",
            Self::EmailChangeNotice => "email_change_notice",
            Self::PasswordReset => "password_reset",
            Self::SuspensionNotice => "suspension_notice",
        }
    }
}

/// The longest failure reason a store keeps (longer ones are cut).
pub const MAX_FAILURE_REASON: usize = 500;

/// `reason` cut to [`MAX_FAILURE_REASON`] bytes on a character boundary,
/// never empty.
pub fn failure_reason(reason: &str) -> String {
    let reason = reason.trim();
    if reason.is_empty() {
        return "unknown".to_owned();
    }
    let mut end = reason.len().min(MAX_FAILURE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_match_their_serialized_form() {
        for kind in [
            EmailKind::Invitation,
            EmailKind::InvitationResent,
            EmailKind::EmailChangeVerification,
            EmailKind::EmailChangeNotice,
            EmailKind::PasswordReset,
            EmailKind::SuspensionNotice,
        ] {
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::String(kind.as_str().to_owned())
            );
        }
    }

    #[test]
    fn failure_reasons_are_bounded_and_never_empty() {
        assert_eq!(failure_reason("  "), "unknown");
        let long = "é".repeat(400);
        let cut = failure_reason(&long);
        assert!(cut.len() <= MAX_FAILURE_REASON && cut.len() >= MAX_FAILURE_REASON - 1);
        assert!(long.starts_with(&cut));
    }
}
