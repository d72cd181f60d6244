//! The bulk-job port.

use super::StoreError;
use crate::bulk_job::{BulkJob, JobEntry};
use crate::ids::TenantId;
use async_trait::async_trait;
use time::OffsetDateTime;

/// Bulk-invite jobs and their reports (see [`crate::bulk_job`]). Every
/// method but [`JobStore::runnable_jobs`] is scoped to one tenant.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Stores a new job; `AlreadyExists` if the id is taken.
    async fn create_job(&self, job: &BulkJob) -> Result<(), StoreError>;

    async fn get_job(&self, tenant: &TenantId, id: &str) -> Result<Option<BulkJob>, StoreError>;

    /// Replaces the job if the stored one is still at `previous_version`
    /// (`VersionMismatch` otherwise, `NotFound` if there is none). `job`
    /// carries the new version. A finished job (done or failed) leaves the
    /// runnable list and expires, with its entries, after
    /// [`JOB_RETENTION_DAYS`](crate::bulk_job::JOB_RETENTION_DAYS).
    async fn update_job(&self, previous_version: u64, job: &BulkJob) -> Result<(), StoreError>;

    /// Stores report entries of the job (batched within the store's limits,
    /// retrying what the store leaves unprocessed). Storing a row's entry
    /// again replaces it, so a chunk redone after a crash writes no
    /// duplicates. Entries expire with the job.
    async fn put_job_entries(
        &self,
        tenant: &TenantId,
        job_id: &str,
        entries: &[JobEntry],
    ) -> Result<(), StoreError>;

    /// Report entries in row order, with a row number above `after_row`.
    async fn list_job_entries(
        &self,
        tenant: &TenantId,
        job_id: &str,
        after_row: u32,
        limit: u32,
    ) -> Result<Vec<JobEntry>, StoreError>;

    /// Jobs a runner should take at `now`, across tenants, oldest first:
    /// queued, or running with a lease that ran out (a crashed runner).
    async fn runnable_jobs(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<BulkJob>, StoreError>;
}
