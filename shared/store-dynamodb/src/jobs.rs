//! Bulk-invite jobs and their report entries: the [`JobStore`] port.
//!
//! | item         | PK              | SK                      | GSI2 (sparse)                                   |
//! |--------------|-----------------|-------------------------|-------------------------------------------------|
//! | job          | `JOB#<t>#<id>`  | `JOB`                   | `JOB#RUNNABLE` / due ms + id + tenant           |
//! | report entry | `JOB#<t>#<id>`  | `ROW#<row, 10 digits>`  | —  (TTL `expires_at`)                           |
//!
//! A job is in the runnable partition while queued (due 0) or running (due
//! at its lease's end), so runners find work with one Query; a finished job
//! is put without those keys (leaving the partition) and with the TTL
//! attribute set to `updated_at` + [`JOB_RETENTION_DAYS`]. Every write of
//! a job is a whole-item Put: create if absent, update if the stored
//! `version` is the one expected. Entries are put in batches (25 per
//! BatchWriteItem) with a TTL of their own (written + the retention), and
//! share the job's partition, so a report page is one Query.
//!
//! TTL deletion is lazy (days late), so reads treat an item past its TTL as
//! gone. Empty strings are never written (DynamoDB Local refuses them): an
//! empty string is an absent attribute, and an optional text that is
//! present but empty (`Some("")`) is a `NULL` attribute.

use crate::due::{outbox_due_bound, outbox_due_sk};
use crate::error::backoff;
use crate::error::is_condition_failed as condition_failed;
use crate::error::{malformed, sdk};
use crate::item::get_opt_i64;
use crate::item::{Item, get_s, get_time, get_u64, n, s, timestamp};
use crate::user_item::unix_ms;
use crate::user_item::{attr, index, key};
use crate::{DynamoStore, build_error, names};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use peak_domain::TenantId;
use peak_domain::bulk_job::{BulkJob, JOB_RETENTION_DAYS, JobCounts, JobEntry, JobKind, JobStatus};
use peak_domain::ids::ProfileId;
use peak_domain::model::user::UserId;
use peak_domain::ports::{JobStore, StoreError};
use std::collections::BTreeMap;
use std::future::Future;
use time::OffsetDateTime;

pub const JOB_SK: &str = "JOB";
pub const JOB_ENTITY: &str = "bulk_job";
pub const JOB_ENTRY_ENTITY: &str = "bulk_job_entry";
/// The sparse GSI2 partition of queued and running jobs.
pub const JOBS_RUNNABLE: &str = "JOB#RUNNABLE";
pub const ROW_PREFIX: &str = "ROW#";
/// DynamoDB's limit on the requests of one BatchWriteItem.
pub const BATCH_ITEMS: usize = 25;
/// Sends of one batch (the first and the retries of what DynamoDB left
/// unprocessed) before giving up with `Unavailable`.
const BATCH_ATTEMPTS: u32 = 8;
const RETENTION_SECS: i64 = JOB_RETENTION_DAYS * 86_400;

/// Absent on jobs stored before kinds existed: those read as invites.
const KIND: &str = "kind";
const CREATED_BY: &str = "created_by";
const FILE_KEY: &str = "file_key";
const FILE_NAME: &str = "file_name";
const TOTAL_ROWS: &str = "total_rows";
const NEXT_ROW: &str = "next_row";
const INVITED: &str = "invited";
const SKIPPED: &str = "skipped";
const FAILED: &str = "failed";
const ERROR: &str = "error";
/// Absent when the error has no code (and on jobs from before codes).
const ERROR_CODE: &str = "error_code";
/// Present (true) on dry runs only: jobs from before dry-run jobs are not.
const DRY_RUN: &str = "dry_run";
const LEASE_UNTIL: &str = "lease_until";
const ROW: &str = "row";
const OUTCOME: &str = "outcome";
const COLUMN: &str = "column";
const CODE: &str = "code";
const REASON: &str = "reason";

/// Job ids are ULIDs in their canonical form (as the domain makes them):
/// anything else is refused on write and found nowhere on read.
fn valid_job_id(id: &str) -> bool {
    ProfileId::parse(id).is_some_and(|parsed| parsed.as_str() == id)
}

fn bad_job_id() -> StoreError {
    StoreError::Backend("a bulk job id must be a ULID".into())
}

pub fn job_pk(tenant: &TenantId, id: &str) -> String {
    format!("JOB#{}#{id}", tenant.as_str())
}

pub fn job_key(tenant: &TenantId, id: &str) -> Item {
    key(job_pk(tenant, id), JOB_SK)
}

/// Zero-padded, so text order is row order.
pub fn row_sk(row: u32) -> String {
    format!("{ROW_PREFIX}{row:010}")
}

/// When a runner may take the job (Unix ms), `None` once finished.
fn due_ms(job: &BulkJob) -> Option<i64> {
    match job.status {
        JobStatus::Queued => Some(0),
        JobStatus::Running => Some(job.lease_until.map_or(0, unix_ms)),
        JobStatus::Done | JobStatus::Failed => None,
    }
}

/// The GSI2 sort key: due time, then id (a ULID: creation order), then
/// tenant (unique).
fn runnable_sk(due_ms: i64, job: &BulkJob) -> String {
    outbox_due_sk(due_ms, &format!("{}#{}", job.id, job.tenant_id.as_str()))
}

/// A text attribute, left out when empty.
fn put_text(item: &mut Item, name: &str, value: &str) {
    if !value.is_empty() {
        item.insert(name.to_owned(), s(value));
    }
}

/// An optional text: absent for `None`, `NULL` for `Some("")`.
fn put_opt_text(item: &mut Item, name: &str, value: Option<&str>) {
    match value {
        None => {}
        Some("") => {
            item.insert(name.to_owned(), AttributeValue::Null(true));
        }
        Some(v) => {
            item.insert(name.to_owned(), s(v));
        }
    }
}

/// A text attribute that is absent when empty.
fn get_text(item: &Item, name: &str) -> Result<String, StoreError> {
    match item.get(name) {
        None => Ok(String::new()),
        Some(_) => Ok(get_s(item, name)?.to_owned()),
    }
}

fn get_opt_text(item: &Item, name: &str) -> Result<Option<String>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::Null(true)) => Ok(Some(String::new())),
        Some(_) => Ok(Some(get_s(item, name)?.to_owned())),
    }
}

fn get_u32(item: &Item, name: &str) -> Result<u32, StoreError> {
    u32::try_from(get_u64(item, name)?).map_err(|_| malformed(&format!("`{name}` is too large")))
}

/// The whole job item. Refuses an id that is not a ULID, and times RFC
/// 3339 cannot express.
pub fn job_item(job: &BulkJob) -> Result<Item, StoreError> {
    if !valid_job_id(&job.id) {
        return Err(bad_job_id());
    }
    let mut item = job_key(&job.tenant_id, &job.id);
    for (name, value) in [
        (attr::ENTITY, s(JOB_ENTITY)),
        (attr::TENANT_ID, s(job.tenant_id.as_str())),
        (attr::ID, s(&job.id)),
        (KIND, s(job.kind.as_str())),
        (CREATED_BY, s(job.created_by.as_str())),
        (attr::STATUS, s(job.status.as_str())),
        (TOTAL_ROWS, n(job.total_rows)),
        (NEXT_ROW, n(job.next_row)),
        (INVITED, n(job.counts.invited)),
        (SKIPPED, n(job.counts.skipped)),
        (FAILED, n(job.counts.failed)),
        (attr::VERSION, n(job.version)),
        (attr::CREATED_AT, s(timestamp(job.created_at)?)),
        (attr::UPDATED_AT, s(timestamp(job.updated_at)?)),
    ] {
        item.insert(name.to_owned(), value);
    }
    put_text(&mut item, FILE_KEY, &job.file_key);
    put_text(&mut item, FILE_NAME, &job.file_name);
    put_opt_text(&mut item, ERROR, job.error.as_deref());
    put_opt_text(&mut item, ERROR_CODE, job.error_code.as_deref());
    if job.dry_run {
        item.insert(DRY_RUN.to_owned(), AttributeValue::Bool(true));
    }
    if let Some(until) = job.lease_until {
        item.insert(LEASE_UNTIL.to_owned(), s(timestamp(until)?));
    }
    match due_ms(job) {
        Some(due) => {
            let (_, gpk, gsk) = index::GSI2;
            item.insert(gpk.to_owned(), s(JOBS_RUNNABLE));
            item.insert(gsk.to_owned(), s(runnable_sk(due, job)));
        }
        None => {
            let expires = job
                .updated_at
                .unix_timestamp()
                .saturating_add(RETENTION_SECS);
            item.insert(attr::TTL.to_owned(), n(expires));
        }
    }
    Ok(item)
}

/// A malformed item is a `Backend` error naming the attribute, never its
/// value.
pub fn job_from_item(item: &Item) -> Result<BulkJob, StoreError> {
    if get_s(item, attr::ENTITY)? != JOB_ENTITY {
        return Err(malformed("not a bulk job"));
    }
    Ok(BulkJob {
        tenant_id: TenantId::parse(get_s(item, attr::TENANT_ID)?)
            .ok_or_else(|| malformed("invalid `tenant_id`"))?,
        id: get_s(item, attr::ID)?.to_owned(),
        kind: JobKind::stored(match item.get(KIND) {
            None => None,
            Some(_) => Some(get_s(item, KIND)?),
        })
        .ok_or_else(|| malformed("invalid `kind`"))?,
        created_by: UserId::parse(get_s(item, CREATED_BY)?)
            .ok_or_else(|| malformed("invalid `created_by`"))?,
        status: JobStatus::parse(get_s(item, attr::STATUS)?)
            .ok_or_else(|| malformed("invalid `status`"))?,
        file_key: get_text(item, FILE_KEY)?,
        file_name: get_text(item, FILE_NAME)?,
        total_rows: get_u32(item, TOTAL_ROWS)?,
        next_row: get_u32(item, NEXT_ROW)?,
        counts: JobCounts {
            invited: get_u32(item, INVITED)?,
            skipped: get_u32(item, SKIPPED)?,
            failed: get_u32(item, FAILED)?,
        },
        error: get_opt_text(item, ERROR)?,
        error_code: get_opt_text(item, ERROR_CODE)?,
        dry_run: match item.get(DRY_RUN) {
            None => false,
            Some(AttributeValue::Bool(b)) => *b,
            Some(_) => return Err(malformed("invalid `dry_run`")),
        },
        lease_until: match item.get(LEASE_UNTIL) {
            None => None,
            Some(_) => Some(get_time(item, LEASE_UNTIL)?),
        },
        version: get_u64(item, attr::VERSION)?,
        created_at: get_time(item, attr::CREATED_AT)?,
        updated_at: get_time(item, attr::UPDATED_AT)?,
    })
}

pub fn entry_item(tenant: &TenantId, job_id: &str, e: &JobEntry, expires_at: i64) -> Item {
    let mut item = key(job_pk(tenant, job_id), &row_sk(e.row));
    item.insert(attr::ENTITY.to_owned(), s(JOB_ENTRY_ENTITY));
    item.insert(ROW.to_owned(), n(e.row));
    put_text(&mut item, attr::EMAIL, &e.email);
    put_text(&mut item, OUTCOME, &e.outcome);
    put_opt_text(&mut item, COLUMN, e.column.as_deref());
    put_text(&mut item, CODE, &e.code);
    put_text(&mut item, REASON, &e.reason);
    item.insert(attr::TTL.to_owned(), n(expires_at));
    item
}

pub fn entry_from_item(item: &Item) -> Result<JobEntry, StoreError> {
    if get_s(item, attr::ENTITY)? != JOB_ENTRY_ENTITY {
        return Err(malformed("not a bulk job report entry"));
    }
    Ok(JobEntry {
        row: get_u32(item, ROW)?,
        email: get_text(item, attr::EMAIL)?,
        outcome: get_text(item, OUTCOME)?,
        column: get_opt_text(item, COLUMN)?,
        code: get_text(item, CODE)?,
        reason: get_text(item, REASON)?,
    })
}

/// Past its TTL (still there until DynamoDB gets round to deleting it).
fn expired(item: &Item, now_s: i64) -> Result<bool, StoreError> {
    Ok(get_opt_i64(item, attr::TTL)?.is_some_and(|ttl| ttl <= now_s))
}

/// Sends `batch` until nothing is left unprocessed: `send` returns what it
/// left, retried after a short jittered backoff, at most
/// [`BATCH_ATTEMPTS`] sends in all.
async fn until_processed<T, F, Fut>(mut batch: Vec<T>, mut send: F) -> Result<(), StoreError>
where
    F: FnMut(Vec<T>) -> Fut,
    Fut: Future<Output = Result<Vec<T>, StoreError>>,
{
    for attempt in 0..BATCH_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(backoff(attempt)).await;
        }
        batch = send(batch).await?;
        if batch.is_empty() {
            return Ok(());
        }
    }
    Err(StoreError::Unavailable(format!(
        "put bulk job report: {} entries left unprocessed after {BATCH_ATTEMPTS} attempts, retry",
        batch.len()
    )))
}

impl DynamoStore {
    /// One BatchWriteItem; what DynamoDB left unprocessed.
    async fn write_batch(&self, batch: Vec<WriteRequest>) -> Result<Vec<WriteRequest>, StoreError> {
        const WHAT: &str = "put bulk job report";
        let out = self
            .client
            .batch_write_item()
            .request_items(&self.table, batch)
            .send()
            .await
            .map_err(|e| sdk(WHAT, &e))?;
        Ok(out
            .unprocessed_items
            .and_then(|mut left| left.remove(&self.table))
            .unwrap_or_default())
    }

    /// The job unless missing or past its TTL.
    async fn live_job(
        &self,
        op: &str,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<BulkJob>, StoreError> {
        let Some(item) = self.get_item(op, job_key(tenant, id)).await? else {
            return Ok(None);
        };
        if expired(&item, OffsetDateTime::now_utc().unix_timestamp())? {
            return Ok(None);
        }
        job_from_item(&item).map(Some)
    }
}

#[async_trait]
impl JobStore for DynamoStore {
    /// One PutItem if absent.
    async fn create_job(&self, job: &BulkJob) -> Result<(), StoreError> {
        const WHAT: &str = "create bulk job";
        let item = job_item(job)?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Err(StoreError::AlreadyExists),
            Err(e) => Err(sdk(WHAT, &e)),
        }
    }

    /// `None` for an id that is not a ULID (no job can have it).
    async fn get_job(&self, tenant: &TenantId, id: &str) -> Result<Option<BulkJob>, StoreError> {
        if !valid_job_id(id) {
            return Ok(None);
        }
        self.live_job("get bulk job", tenant, id).await
    }

    /// One PutItem if the stored version is `previous_version` (and the job
    /// has not expired); when refused, a consistent read tells why.
    async fn update_job(&self, previous_version: u64, job: &BulkJob) -> Result<(), StoreError> {
        const WHAT: &str = "update bulk job";
        let item = job_item(job)?;
        let now_s = OffsetDateTime::now_utc().unix_timestamp();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "#version = :expected AND (attribute_not_exists(#ttl) OR #ttl > :now)",
            )
            .set_expression_attribute_names(Some(names(&[attr::VERSION])))
            .expression_attribute_names("#ttl", attr::TTL)
            .expression_attribute_values(":expected", n(previous_version))
            .expression_attribute_values(":now", n(now_s))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => {
                Err(match self.live_job(WHAT, &job.tenant_id, &job.id).await? {
                    None => StoreError::NotFound,
                    Some(stored) if stored.version != previous_version => {
                        StoreError::VersionMismatch
                    }
                    // Versions only grow: it changed under the write.
                    Some(_) => StoreError::Unavailable(format!("{WHAT}: concurrent change, retry")),
                })
            }
            Err(e) => Err(sdk(WHAT, &e)),
        }
    }

    /// BatchWriteItem, 25 entries at a time (a row given twice keeps its
    /// last entry: one batch cannot hold a key twice). Entries are not
    /// checked against the job: the runner writes only its own job's.
    async fn put_job_entries(
        &self,
        tenant: &TenantId,
        job_id: &str,
        entries: &[JobEntry],
    ) -> Result<(), StoreError> {
        if !valid_job_id(job_id) {
            return Err(bad_job_id());
        }
        let by_row: BTreeMap<u32, &JobEntry> = entries.iter().map(|e| (e.row, e)).collect();
        let expires = OffsetDateTime::now_utc()
            .unix_timestamp()
            .saturating_add(RETENTION_SECS);
        let requests = by_row
            .values()
            .map(|e| {
                let put = PutRequest::builder()
                    .set_item(Some(entry_item(tenant, job_id, e, expires)))
                    .build()
                    .map_err(build_error)?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        for batch in requests.chunks(BATCH_ITEMS) {
            until_processed(batch.to_vec(), |b| self.write_batch(b)).await?;
        }
        Ok(())
    }

    /// Query `PK = JOB#<t>#<id> AND SK BETWEEN ROW#<after_row + 1> AND
    /// ROW#<max>` (so never the job item), ascending, strongly consistent,
    /// without entries past their TTL. Empty for an id that is not a ULID.
    async fn list_job_entries(
        &self,
        tenant: &TenantId,
        job_id: &str,
        after_row: u32,
        limit: u32,
    ) -> Result<Vec<JobEntry>, StoreError> {
        const WHAT: &str = "list bulk job report";
        let Some(first) = after_row.checked_add(1) else {
            return Ok(Vec::new());
        };
        if !valid_job_id(job_id) || limit == 0 {
            return Ok(Vec::new());
        }
        let limit = limit as usize;
        let now_s = OffsetDateTime::now_utc().unix_timestamp();
        let mut found = Vec::new();
        let mut start = None;
        while found.len() < limit {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND SK BETWEEN :first AND :last")
                .filter_expression("#ttl > :now")
                .expression_attribute_names("#ttl", attr::TTL)
                .expression_attribute_values(":pk", s(job_pk(tenant, job_id)))
                .expression_attribute_values(":first", s(row_sk(first)))
                .expression_attribute_values(":last", s(row_sk(u32::MAX)))
                .expression_attribute_values(":now", n(now_s))
                .scan_index_forward(true)
                .consistent_read(true)
                .limit(i32::try_from(limit - found.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk(WHAT, &e))?;
            for item in out.items() {
                found.push(entry_from_item(item)?);
            }
            // A page also ends at 1 MB, or with entries filtered out.
            start = out.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                break;
            }
        }
        found.truncate(limit);
        Ok(found)
    }

    /// Query `GSI2`: `GSI2PK = JOB#RUNNABLE AND GSI2SK < <now + 1 ms>`,
    /// ascending: queued jobs first (due 0, by id: creation order), then
    /// lapsed leases, longest ago first. Eventually consistent on AWS (a
    /// job taken a moment ago may still be listed: taking it again is
    /// refused by its version).
    async fn runnable_jobs(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<BulkJob>, StoreError> {
        self.gsi2_items(
            "list runnable bulk jobs",
            JOBS_RUNNABLE,
            Some(outbox_due_bound(unix_ms(now))),
            limit,
            job_from_item,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use time::macros::datetime;

    fn job(status: JobStatus) -> BulkJob {
        let t = datetime!(2025-03-04 05:06:07.891234 +01:00);
        BulkJob {
            tenant_id: TenantId::parse("acme").unwrap(),
            id: ProfileId::generate().as_str().to_owned(),
            kind: JobKind::Update,
            created_by: UserId::generate(),
            status,
            file_key: "bulk/acme/x".into(),
            file_name: String::new(),
            total_rows: 10,
            next_row: 2,
            counts: JobCounts {
                invited: 1,
                skipped: 2,
                failed: 3,
            },
            error: None,
            error_code: None,
            dry_run: false,
            lease_until: None,
            version: 4,
            created_at: t,
            updated_at: t,
        }
    }

    #[test]
    fn unfinished_jobs_are_runnable_and_finished_ones_expire() {
        let (_, gpk, gsk) = index::GSI2;
        let mut running = job(JobStatus::Running);
        running.lease_until = Some(datetime!(2025-03-04 05:08:00 UTC));
        let item = job_item(&running).unwrap();
        assert_eq!(item["PK"], s(format!("JOB#acme#{}", running.id)));
        assert_eq!(item["SK"], s("JOB"));
        assert_eq!(item[gpk], s(JOBS_RUNNABLE));
        assert_eq!(item[gsk], s(format!("1741064880000#{}#acme", running.id)));
        assert!(!item.contains_key(attr::TTL));
        assert!(!item.contains_key(FILE_NAME), "empty strings are left out");
        assert_eq!(job_from_item(&item).unwrap(), running);

        let queued = job_item(&job(JobStatus::Queued)).unwrap();
        assert!(get_s(&queued, gsk).unwrap().starts_with("0000000000000#"));

        let mut failed = job(JobStatus::Failed);
        failed.error = Some(String::new());
        let item = job_item(&failed).unwrap();
        assert!(!item.contains_key(gpk) && !item.contains_key(gsk));
        assert_eq!(
            item[attr::TTL],
            n(failed.updated_at.unix_timestamp() + 30 * 86_400)
        );
        assert_eq!(item[ERROR], AttributeValue::Null(true));
        assert_eq!(job_from_item(&item).unwrap(), failed);
    }

    #[test]
    fn a_job_stored_before_kinds_reads_as_an_invite() {
        let update = job(JobStatus::Done);
        let mut item = job_item(&update).unwrap();
        assert_eq!(item[KIND], s("update"));
        assert_eq!(job_from_item(&item).unwrap().kind, JobKind::Update);
        item.remove(KIND);
        let old = job_from_item(&item).unwrap();
        assert_eq!(old.kind, JobKind::Invite);
        assert_eq!(old.counts, update.counts);
        item.insert(KIND.to_owned(), s("export"));
        assert!(
            job_from_item(&item).is_err(),
            "an unknown kind is not guessed"
        );
    }

    #[test]
    fn entries_round_trip_and_sort_by_row() {
        let t = TenantId::parse("acme").unwrap();
        for e in [
            JobEntry {
                row: 7,
                email: String::new(),
                outcome: "failed".into(),
                column: Some(String::new()),
                code: "missing".into(),
                reason: "is required".into(),
            },
            JobEntry {
                row: u32::MAX,
                email: "a@example.com".into(),
                outcome: "invited".into(),
                column: None,
                code: String::new(),
                reason: String::new(),
            },
        ] {
            let item = entry_item(&t, "01J00000000000000000000000", &e, 99);
            assert_eq!(item[attr::TTL], n(99));
            assert_eq!(entry_from_item(&item).unwrap(), e);
        }
        assert!(row_sk(9) < row_sk(10) && row_sk(10) < row_sk(u32::MAX));
        assert_eq!(row_sk(u32::MAX), "ROW#4294967295");
        assert!(JOB_SK < ROW_PREFIX, "the job item sorts before its entries");
    }

    #[test]
    fn malformed_items_and_bad_ids_are_backend_errors() {
        let mut bad = job(JobStatus::Queued);
        bad.id = "job-1".into();
        assert!(matches!(job_item(&bad), Err(StoreError::Backend(_))));
        let mut item = job_item(&job(JobStatus::Queued)).unwrap();
        item.insert(TOTAL_ROWS.to_owned(), n(u64::from(u32::MAX) + 1));
        assert!(matches!(job_from_item(&item), Err(StoreError::Backend(_))));
        item.insert(attr::ENTITY.to_owned(), s(JOB_ENTRY_ENTITY));
        assert!(matches!(job_from_item(&item), Err(StoreError::Backend(_))));
    }

    #[tokio::test]
    async fn unprocessed_items_are_retried_a_bounded_number_of_times() {
        // Two entries left over twice, then everything written.
        let sends = AtomicU32::new(0);
        until_processed(vec![1, 2, 3], |batch| {
            let attempt = sends.fetch_add(1, Ordering::SeqCst);
            async move {
                Ok(if attempt < 2 {
                    batch.into_iter().skip(1).collect::<Vec<_>>()
                } else {
                    Vec::new()
                })
            }
        })
        .await
        .unwrap();
        assert_eq!(sends.load(Ordering::SeqCst), 3);

        // Never processed: Unavailable after the last attempt.
        let sends = AtomicU32::new(0);
        let result = until_processed(vec![1], |batch| {
            sends.fetch_add(1, Ordering::SeqCst);
            async move { Ok(batch) }
        })
        .await;
        assert!(matches!(result, Err(StoreError::Unavailable(_))));
        assert_eq!(sends.load(Ordering::SeqCst), BATCH_ATTEMPTS);

        // A failed send stops at once.
        let result = until_processed(vec![1], |_| async {
            Err::<Vec<i32>, _>(StoreError::Backend("x".into()))
        })
        .await;
        assert_eq!(result, Err(StoreError::Backend("x".into())));
    }
}
