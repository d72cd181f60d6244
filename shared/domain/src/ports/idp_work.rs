//! The port of owed identity-provider work (written with the user change
//! that owes it, see [`UserWrite`](super::UserWrite)).

use super::StoreError;
use crate::idp_work::{IdpWork, IdpWorkItem};
use crate::ids::TenantId;
use crate::model::user::UserId;
use async_trait::async_trait;
use time::OffsetDateTime;

/// Owed identity-provider work, for the worker, the sweeper and operators.
#[async_trait]
pub trait IdpWorkQueue: Send + Sync {
    /// Owed identity-provider work due at `now`, across tenants, the
    /// longest-waiting first.
    async fn pending_idp_work(
        &self,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<IdpWorkItem>, StoreError>;

    /// Takes one user's owed work for `lease_secs` (one conditional write):
    /// `None` when there is none, or it is leased or waiting to retry.
    async fn claim_idp_work(
        &self,
        tenant: &TenantId,
        user: &UserId,
        now: OffsetDateTime,
        lease_secs: u64,
    ) -> Result<Option<IdpWorkItem>, StoreError>;

    /// The work is done: if the record still names `work.seq` it is marked
    /// done, keeping `notes` (steps the provider does not offer) for the
    /// user's sync state, or removed for a delete (`true`); a newer record
    /// stays for its own run (`false`).
    async fn complete_idp_work(&self, work: &IdpWork, notes: &[String])
    -> Result<bool, StoreError>;

    /// A failed attempt: counted, `reason` kept, due again at `retry_at`.
    /// The record is never dropped. A newer record is left as it is.
    async fn fail_idp_work(
        &self,
        work: &IdpWork,
        reason: &str,
        retry_at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// All owed work (not done), due or not (for operators and tests),
    /// soonest due first.
    async fn list_idp_work(&self, limit: u32) -> Result<Vec<IdpWorkItem>, StoreError>;

    /// One user's record (a read, changing nothing): owed, or done with
    /// its notes (`IdpWorkItem::done`); `None` if there has been none (or it
    /// was a finished delete).
    async fn idp_work_of(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Option<IdpWorkItem>, StoreError>;
}
