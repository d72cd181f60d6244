//! The outbox port: emails written with the user change that owes them
//! (by [`UserRecords::write_user`](super::UserRecords::write_user)), then
//! claimed, sent and settled by a mailer.

use super::StoreError;
use crate::ids::TenantId;
use crate::outbox::{FailedEmail, OutboxClaim, OutboxEmail};
use async_trait::async_trait;
use time::OffsetDateTime;

/// The emails of the outbox, for the mailer and operators.
#[async_trait]
pub trait OutboxQueue: Send + Sync {
    /// Emails due for sending at `now`, across tenants (for a polling
    /// mailer): not sent, not failed for good, not leased, and past their
    /// retry time. Fresh emails first in creation order, then retries by
    /// due time.
    async fn pending_outbox(
        &self,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<OutboxEmail>, StoreError>;

    /// Takes the email for sending, as one conditional write: the caller
    /// holds a lease until `now + lease_secs` (then another mailer may take
    /// it again) and must `complete_outbox` or `fail_outbox` it.
    /// `AlreadySent`, `Busy` (leased, or waiting for its retry time) or
    /// `Gone` (no such email in this tenant, or failed for good) tell why
    /// not; only `Claimed` may send.
    async fn claim_outbox(
        &self,
        tenant: &TenantId,
        id: &str,
        now: OffsetDateTime,
        lease_secs: u64,
    ) -> Result<OutboxClaim, StoreError>;

    /// Records the email as sent, with the provider's message id: its data
    /// (links may hold one-time tokens) is dropped, it leaves the pending
    /// list, and a record of the sending stays. Completing it again changes
    /// nothing; `NotFound` if there is no such email.
    async fn complete_outbox(
        &self,
        tenant: &TenantId,
        id: &str,
        message_id: &str,
    ) -> Result<(), StoreError>;

    /// Records a failed attempt and releases the lease. Transient
    /// (`permanent == false`): one more attempt counted, due again at
    /// `retry_at`. Permanent: out of the pending list for good, its data
    /// dropped, listed by `failed_outbox` with `reason`. An email already
    /// sent or failed is left as it is; `NotFound` if there is no such email.
    async fn fail_outbox(
        &self,
        tenant: &TenantId,
        id: &str,
        reason: &str,
        permanent: bool,
        retry_at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Emails that failed for good, across tenants (for operators), the
    /// most recently created first.
    async fn failed_outbox(&self, limit: u32) -> Result<Vec<FailedEmail>, StoreError>;
}
