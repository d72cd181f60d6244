//! The outbox port: emails written with the user change that owes them
//! (by [`UserRecords::write_user`](super::UserRecords::write_user)), then
//! claimed, sent and settled by a mailer.

use super::{Page, PageRequest, StoreError};
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

    /// Puts the email back without counting an attempt (it was not sent
    /// because sending is throttled: SES's rate, or the shared send budget
    /// spent): the lease released, due again at `retry_at`, `reason` kept
    /// as its last error. An email already sent or failed is left as it
    /// is; `NotFound` if there is no such email.
    async fn defer_outbox(
        &self,
        tenant: &TenantId,
        id: &str,
        reason: &str,
        retry_at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Emails that failed for good, across tenants (for operators), the
    /// most recently created first.
    async fn failed_outbox(&self, limit: u32) -> Result<Vec<FailedEmail>, StoreError>;

    /// One tenant's emails that failed for good, newest first (by id, a
    /// ULID: creation order), cursor paged — for the tenant's admins. Read
    /// through a per-tenant key (never another tenant's items, no scan).
    async fn failed_outbox_of(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<FailedEmail>, StoreError>;

    /// One failed email of the tenant; `None` if there is no such email or
    /// it is not failed (pending, sent, or retried already).
    async fn failed_email(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<FailedEmail>, StoreError>;

    /// Takes a failed email off both failed lists once it was retried (a
    /// fresh email was queued in its place); the record stays until it
    /// expires. `Ok(false)` if it was not failed (retried meanwhile).
    async fn retire_failed_outbox(&self, tenant: &TenantId, id: &str) -> Result<bool, StoreError>;
}
