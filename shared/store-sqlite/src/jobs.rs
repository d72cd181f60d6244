//! Bulk-invite jobs and their report entries (migration 6): the
//! [`JobStore`] port, whose methods call the functions below on the
//! blocking pool.
//!
//! A job is runnable while `due_ms` is set (queued: 0; running: its lease's
//! end), which the partial index `bulk_jobs_runnable` keeps in runner order:
//! due time, then id (a ULID: creation order), then tenant.
//!
//! Retention: a finished job gets `expires_ms` = `updated_at` +
//! [`JOB_RETENTION_DAYS`]; every entry gets `expires_ms` = when it was
//! written + the same. Reads ignore expired rows (so the local store
//! answers like DynamoDB, whose TTL deletes lazily), and creating a job
//! deletes every expired job and entry (both indexed by `expires_ms`), so
//! the file does not keep the emails of old reports. A store that never
//! creates another job keeps them on disk, unread.

use crate::SqliteStore;
use crate::sql::{db_error, format_time, parse_time, to_i64, to_u64, unix_millis};
use async_trait::async_trait;
use peak_domain::TenantId;
use peak_domain::bulk_job::{BulkJob, JOB_RETENTION_DAYS, JobCounts, JobEntry, JobKind, JobStatus};
use peak_domain::ids::ProfileId;
use peak_domain::model::user::UserId;
use peak_domain::ports::{JobStore, StoreError};
use rusqlite::{Connection, Row, TransactionBehavior, params};
use time::OffsetDateTime;

const RETENTION_MS: i64 = JOB_RETENTION_DAYS * 86_400_000;

const JOB_COLUMNS: &str = "tenant_id, id, created_by, status, file_key, file_name, total_rows, \
     next_row, invited_count, skipped_count, failed_count, error, lease_until, version, \
     created_at, updated_at, kind, error_code, dry_run";

const ENTRY_COLUMNS: &str = "row_num, email, outcome, column_name, code, reason";

/// Job ids are ULIDs in their canonical form (as the domain makes them):
/// anything else is refused on write and found nowhere on read.
fn valid_job_id(id: &str) -> bool {
    ProfileId::parse(id).is_some_and(|parsed| parsed.as_str() == id)
}

fn bad_job_id() -> StoreError {
    StoreError::Backend("a bulk job id must be a ULID".into())
}

fn now_ms() -> i64 {
    unix_millis(OffsetDateTime::now_utc())
}

/// A job's columns as bound to a statement, with the derived `due_ms` and
/// `expires_ms`.
struct JobRow {
    tenant_id: String,
    id: String,
    created_by: String,
    kind: &'static str,
    status: &'static str,
    file_key: String,
    file_name: String,
    total_rows: i64,
    next_row: i64,
    invited: i64,
    skipped: i64,
    failed: i64,
    error: Option<String>,
    error_code: Option<String>,
    dry_run: bool,
    lease_until: Option<String>,
    version: i64,
    created_at: String,
    updated_at: String,
    due_ms: Option<i64>,
    expires_ms: Option<i64>,
}

impl JobRow {
    fn from_job(job: &BulkJob) -> Result<Self, StoreError> {
        if !valid_job_id(&job.id) {
            return Err(bad_job_id());
        }
        let (due_ms, expires_ms) = match job.status {
            JobStatus::Queued => (Some(0), None),
            JobStatus::Running => (Some(job.lease_until.map_or(0, unix_millis)), None),
            JobStatus::Done | JobStatus::Failed => (
                None,
                Some(unix_millis(job.updated_at).saturating_add(RETENTION_MS)),
            ),
        };
        Ok(Self {
            tenant_id: job.tenant_id.as_str().to_owned(),
            id: job.id.clone(),
            created_by: job.created_by.as_str().to_owned(),
            kind: job.kind.as_str(),
            status: job.status.as_str(),
            file_key: job.file_key.clone(),
            file_name: job.file_name.clone(),
            total_rows: i64::from(job.total_rows),
            next_row: i64::from(job.next_row),
            invited: i64::from(job.counts.invited),
            skipped: i64::from(job.counts.skipped),
            failed: i64::from(job.counts.failed),
            error: job.error.clone(),
            error_code: job.error_code.clone(),
            dry_run: job.dry_run,
            lease_until: job
                .lease_until
                .map(|t| format_time(t, "lease_until"))
                .transpose()?,
            version: to_i64(job.version, "version")?,
            created_at: format_time(job.created_at, "created_at")?,
            updated_at: format_time(job.updated_at, "updated_at")?,
            due_ms,
            expires_ms,
        })
    }
}

type RawJob = (
    String,
    String,
    String,
    String,
    String,
    String,
    [i64; 5],
    Option<String>,
    Option<String>,
    i64,
    String,
    String,
    String,
    Option<String>,
    bool,
);

/// Reads the columns of [`JOB_COLUMNS`], in that order.
fn read_job(row: &Row<'_>) -> rusqlite::Result<RawJob> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        [
            row.get(6)?,
            row.get(7)?,
            row.get(8)?,
            row.get(9)?,
            row.get(10)?,
        ],
        row.get(11)?,
        row.get(12)?,
        row.get(13)?,
        row.get(14)?,
        row.get(15)?,
        row.get(16)?,
        row.get(17)?,
        row.get(18)?,
    ))
}

fn decode_job(raw: RawJob) -> Result<BulkJob, StoreError> {
    let (
        tenant,
        id,
        created_by,
        status,
        file_key,
        file_name,
        numbers,
        error,
        lease,
        version,
        c,
        u,
        kind,
        error_code,
        dry_run,
    ) = raw;
    let bad = |what: &str| StoreError::Backend(format!("stored bulk job has a bad {what}"));
    let count = |value: i64, what: &str| u32::try_from(value).map_err(|_| bad(what));
    let [total_rows, next_row, invited, skipped, failed] = numbers;
    Ok(BulkJob {
        tenant_id: TenantId::parse(&tenant).ok_or_else(|| bad("tenant"))?,
        id,
        kind: JobKind::stored(Some(&kind)).ok_or_else(|| bad("kind"))?,
        created_by: UserId::parse(&created_by).ok_or_else(|| bad("creator"))?,
        status: JobStatus::parse(&status).ok_or_else(|| bad("status"))?,
        file_key,
        file_name,
        total_rows: count(total_rows, "row total")?,
        next_row: count(next_row, "checkpoint")?,
        counts: JobCounts {
            invited: count(invited, "invited count")?,
            skipped: count(skipped, "skipped count")?,
            failed: count(failed, "failed count")?,
        },
        error,
        error_code,
        dry_run,
        lease_until: lease.map(|t| parse_time(&t, "lease_until")).transpose()?,
        version: to_u64(version, "version")?,
        created_at: parse_time(&c, "created_at")?,
        updated_at: parse_time(&u, "updated_at")?,
    })
}

fn select_jobs(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<BulkJob>, StoreError> {
    conn.prepare_cached(sql)
        .map_err(db_error)?
        .query_map(args, read_job)
        .map_err(db_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_error)?
        .into_iter()
        .map(decode_job)
        .collect()
}

/// The job unless missing or expired.
fn live_job(
    conn: &Connection,
    tenant: &str,
    id: &str,
    now_ms: i64,
) -> Result<Option<BulkJob>, StoreError> {
    Ok(select_jobs(
        conn,
        &format!(
            "SELECT {JOB_COLUMNS} FROM bulk_jobs
             WHERE tenant_id = ?1 AND id = ?2 AND (expires_ms IS NULL OR expires_ms > ?3)"
        ),
        params![tenant, id, now_ms],
    )?
    .pop())
}

/// Deletes every expired job and entry.
fn sweep(conn: &Connection, now_ms: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM bulk_jobs WHERE expires_ms IS NOT NULL AND expires_ms <= ?1")
        .map_err(db_error)?
        .execute(params![now_ms])
        .map_err(db_error)?;
    conn.prepare_cached("DELETE FROM bulk_job_entries WHERE expires_ms <= ?1")
        .map_err(db_error)?
        .execute(params![now_ms])
        .map_err(db_error)?;
    Ok(())
}

fn create(conn: &mut Connection, job: &JobRow, now_ms: i64) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_error)?;
    sweep(&tx, now_ms)?;
    let inserted = tx
        .prepare_cached(&format!(
            "INSERT INTO bulk_jobs ({JOB_COLUMNS}, due_ms, expires_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?19,
                     ?20, ?21, ?17, ?18)
             ON CONFLICT (tenant_id, id) DO NOTHING"
        ))
        .map_err(db_error)?
        .execute(params![
            job.tenant_id,
            job.id,
            job.created_by,
            job.status,
            job.file_key,
            job.file_name,
            job.total_rows,
            job.next_row,
            job.invited,
            job.skipped,
            job.failed,
            job.error,
            job.lease_until,
            job.version,
            job.created_at,
            job.updated_at,
            job.due_ms,
            job.expires_ms,
            job.kind,
            job.error_code,
            job.dry_run,
        ])
        .map_err(db_error)?;
    // The sweep is kept either way.
    tx.commit().map_err(db_error)?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists);
    }
    Ok(())
}

fn get(
    conn: &mut Connection,
    tenant: &str,
    id: &str,
    now_ms: i64,
) -> Result<Option<BulkJob>, StoreError> {
    live_job(conn, tenant, id, now_ms)
}

fn update(
    conn: &mut Connection,
    previous_version: i64,
    job: &JobRow,
    now_ms: i64,
) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_error)?;
    let changed = tx
        .prepare_cached(
            "UPDATE bulk_jobs SET
                 created_by = ?3, status = ?4, file_key = ?5, file_name = ?6, total_rows = ?7,
                 next_row = ?8, invited_count = ?9, skipped_count = ?10, failed_count = ?11,
                 error = ?12, lease_until = ?13, version = ?14, created_at = ?15,
                 updated_at = ?16, due_ms = ?17, expires_ms = ?18, error_code = ?21,
                 dry_run = ?22
             WHERE tenant_id = ?1 AND id = ?2 AND version = ?19
               AND (expires_ms IS NULL OR expires_ms > ?20)",
        )
        .map_err(db_error)?
        .execute(params![
            job.tenant_id,
            job.id,
            job.created_by,
            job.status,
            job.file_key,
            job.file_name,
            job.total_rows,
            job.next_row,
            job.invited,
            job.skipped,
            job.failed,
            job.error,
            job.lease_until,
            job.version,
            job.created_at,
            job.updated_at,
            job.due_ms,
            job.expires_ms,
            previous_version,
            now_ms,
            job.error_code,
            job.dry_run,
        ])
        .map_err(db_error)?;
    if changed == 0 {
        return Err(match live_job(&tx, &job.tenant_id, &job.id, now_ms)? {
            None => StoreError::NotFound,
            Some(_) => StoreError::VersionMismatch,
        });
    }
    tx.commit().map_err(db_error)
}

fn put_entries(
    conn: &mut Connection,
    tenant: &str,
    job_id: &str,
    entries: &[JobEntry],
    expires_ms: i64,
) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_error)?;
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT OR REPLACE INTO bulk_job_entries
                     (tenant_id, job_id, row_num, email, outcome, column_name, code, reason,
                      expires_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .map_err(db_error)?;
        // In order: a row given twice keeps its last entry.
        for e in entries {
            insert
                .execute(params![
                    tenant,
                    job_id,
                    i64::from(e.row),
                    e.email,
                    e.outcome,
                    e.column,
                    e.code,
                    e.reason,
                    expires_ms,
                ])
                .map_err(db_error)?;
        }
    }
    tx.commit().map_err(db_error)
}

fn list_entries(
    conn: &mut Connection,
    tenant: &str,
    job_id: &str,
    after_row: u32,
    limit: u32,
    now_ms: i64,
) -> Result<Vec<JobEntry>, StoreError> {
    let raw = conn
        .prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM bulk_job_entries
             WHERE tenant_id = ?1 AND job_id = ?2 AND row_num > ?3 AND expires_ms > ?4
             ORDER BY row_num LIMIT ?5"
        ))
        .map_err(db_error)?
        .query_map(
            params![
                tenant,
                job_id,
                i64::from(after_row),
                now_ms,
                i64::from(limit)
            ],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    JobEntry {
                        row: 0,
                        email: row.get(1)?,
                        outcome: row.get(2)?,
                        column: row.get(3)?,
                        code: row.get(4)?,
                        reason: row.get(5)?,
                    },
                ))
            },
        )
        .map_err(db_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_error)?;
    raw.into_iter()
        .map(|(row, mut entry)| {
            entry.row = u32::try_from(row).map_err(|_| {
                StoreError::Backend(format!("stored report row number {row} is out of range"))
            })?;
            Ok(entry)
        })
        .collect()
}

fn runnable(conn: &mut Connection, now_ms: i64, limit: u32) -> Result<Vec<BulkJob>, StoreError> {
    select_jobs(
        conn,
        &format!(
            "SELECT {JOB_COLUMNS} FROM bulk_jobs INDEXED BY bulk_jobs_runnable
             WHERE due_ms IS NOT NULL AND due_ms <= ?1
             ORDER BY due_ms, id, tenant_id LIMIT ?2"
        ),
        params![now_ms, i64::from(limit)],
    )
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn create_job(&self, job: &BulkJob) -> Result<(), StoreError> {
        let row = JobRow::from_job(job)?;
        let now = now_ms();
        self.run(move |conn| create(conn, &row, now)).await
    }

    /// `None` for an id that is not a ULID (no job can have it).
    async fn get_job(&self, tenant: &TenantId, id: &str) -> Result<Option<BulkJob>, StoreError> {
        if !valid_job_id(id) {
            return Ok(None);
        }
        let (tenant, id) = (tenant.as_str().to_owned(), id.to_owned());
        let now = now_ms();
        self.run(move |conn| get(conn, &tenant, &id, now)).await
    }

    async fn update_job(&self, previous_version: u64, job: &BulkJob) -> Result<(), StoreError> {
        let row = JobRow::from_job(job)?;
        let previous = to_i64(previous_version, "version")?;
        let now = now_ms();
        self.run(move |conn| update(conn, previous, &row, now))
            .await
    }

    /// Entries are not checked against the job: the runner writes only its
    /// own job's.
    async fn put_job_entries(
        &self,
        tenant: &TenantId,
        job_id: &str,
        entries: &[JobEntry],
    ) -> Result<(), StoreError> {
        if !valid_job_id(job_id) {
            return Err(bad_job_id());
        }
        if entries.is_empty() {
            return Ok(());
        }
        let (tenant, job_id) = (tenant.as_str().to_owned(), job_id.to_owned());
        let entries = entries.to_vec();
        let expires = now_ms().saturating_add(RETENTION_MS);
        self.run(move |conn| put_entries(conn, &tenant, &job_id, &entries, expires))
            .await
    }

    /// Empty for an id that is not a ULID.
    async fn list_job_entries(
        &self,
        tenant: &TenantId,
        job_id: &str,
        after_row: u32,
        limit: u32,
    ) -> Result<Vec<JobEntry>, StoreError> {
        if !valid_job_id(job_id) || limit == 0 {
            return Ok(Vec::new());
        }
        let (tenant, job_id) = (tenant.as_str().to_owned(), job_id.to_owned());
        let now = now_ms();
        self.run(move |conn| list_entries(conn, &tenant, &job_id, after_row, limit, now))
            .await
    }

    /// Queued jobs first (in creation order), then those whose lease ran
    /// out, longest ago first.
    async fn runnable_jobs(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<BulkJob>, StoreError> {
        let now = unix_millis(now);
        self.run(move |conn| runnable(conn, now, limit)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn job(status: JobStatus) -> BulkJob {
        let t = datetime!(2025-03-04 05:06:07.891 +01:00);
        BulkJob {
            tenant_id: TenantId::parse("acme").unwrap(),
            id: ProfileId::generate().as_str().to_owned(),
            kind: JobKind::Invite,
            created_by: UserId::generate(),
            status,
            file_key: "bulk/acme/x".into(),
            file_name: "people.csv".into(),
            total_rows: 10,
            next_row: 2,
            counts: JobCounts::default(),
            error: None,
            error_code: None,
            dry_run: false,
            lease_until: None,
            version: 1,
            created_at: t,
            updated_at: t,
        }
    }

    fn entry(row: u32) -> JobEntry {
        JobEntry {
            row,
            email: format!("p{row}@example.com"),
            outcome: "invited".into(),
            column: None,
            code: String::new(),
            reason: String::new(),
        }
    }

    fn count(conn: &Connection, table: &str) -> i64 {
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    /// A job written by the schema before migration 12 (no `kind` column)
    /// reads back as an invite once the file is migrated; kinds round-trip.
    #[test]
    fn a_job_stored_before_kinds_reads_as_an_invite() {
        let mut conn = Connection::open_in_memory().unwrap();
        // Up to migration 11: the schema just before kinds.
        let before = 11;
        let tx = conn.transaction().unwrap();
        for sql in &crate::schema::MIGRATIONS[..before] {
            tx.execute_batch(sql).unwrap();
        }
        tx.pragma_update(None, "user_version", before as i64)
            .unwrap();
        tx.commit().unwrap();
        let old = job(JobStatus::Queued);
        let r = JobRow::from_job(&old).unwrap();
        conn.execute(
            "INSERT INTO bulk_jobs (tenant_id, id, created_by, status, file_key, file_name,
                 total_rows, next_row, invited_count, skipped_count, failed_count, version,
                 created_at, updated_at, due_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, 0, 0, ?9, ?10, ?11, 0)",
            params![
                r.tenant_id,
                r.id,
                r.created_by,
                r.status,
                r.file_key,
                r.file_name,
                r.total_rows,
                r.next_row,
                r.version,
                r.created_at,
                r.updated_at
            ],
        )
        .unwrap();
        crate::migrate(&mut conn).unwrap();
        let now = unix_millis(datetime!(2025-03-05 00:00 UTC));
        let read = get(&mut conn, "acme", &old.id, now).unwrap().unwrap();
        assert_eq!(read.kind, JobKind::Invite);
        assert_eq!(read, old);
        for kind in [JobKind::Update, JobKind::AccountImport] {
            let mut j = job(JobStatus::Queued);
            j.kind = kind;
            create(&mut conn, &JobRow::from_job(&j).unwrap(), now).unwrap();
            assert_eq!(
                get(&mut conn, "acme", &j.id, now).unwrap().unwrap().kind,
                kind
            );
        }
    }

    #[test]
    fn creating_a_job_deletes_expired_jobs_and_entries() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::migrate(&mut conn).unwrap();
        let now = unix_millis(datetime!(2025-06-01 00:00 UTC));
        let mut old = job(JobStatus::Done);
        old.updated_at = datetime!(2025-04-01 00:00 UTC);
        create(&mut conn, &JobRow::from_job(&old).unwrap(), now).unwrap();
        put_entries(&mut conn, "acme", &old.id, &[entry(2)], now - 1).unwrap();
        let kept = job(JobStatus::Running);
        put_entries(&mut conn, "acme", &kept.id, &[entry(2)], now + 1).unwrap();
        // Expired but not yet swept: already invisible.
        assert_eq!(get(&mut conn, "acme", &old.id, now).unwrap(), None);
        assert!(
            list_entries(&mut conn, "acme", &old.id, 0, 10, now)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            (count(&conn, "bulk_jobs"), count(&conn, "bulk_job_entries")),
            (1, 2)
        );

        create(&mut conn, &JobRow::from_job(&kept).unwrap(), now).unwrap();
        assert_eq!(
            (count(&conn, "bulk_jobs"), count(&conn, "bulk_job_entries")),
            (1, 1)
        );
        assert_eq!(
            get(&mut conn, "acme", &kept.id, now).unwrap(),
            Some(kept.clone())
        );
    }

    #[test]
    fn only_unfinished_jobs_are_due_and_only_finished_ones_expire() {
        let mut running = job(JobStatus::Running);
        running.lease_until = Some(datetime!(2025-03-04 05:08:07.891 +01:00));
        let row = JobRow::from_job(&running).unwrap();
        assert_eq!(row.due_ms, running.lease_until.map(unix_millis));
        assert_eq!(row.expires_ms, None);
        let queued = JobRow::from_job(&job(JobStatus::Queued)).unwrap();
        assert_eq!((queued.due_ms, queued.expires_ms), (Some(0), None));
        let failed = job(JobStatus::Failed);
        let row = JobRow::from_job(&failed).unwrap();
        assert_eq!(row.due_ms, None);
        assert_eq!(
            row.expires_ms,
            Some(unix_millis(failed.updated_at) + 30 * 86_400_000)
        );
    }

    #[test]
    fn ids_must_be_canonical_ulids() {
        let mut bad = job(JobStatus::Queued);
        bad.id = bad.id.to_lowercase();
        assert!(matches!(
            JobRow::from_job(&bad),
            Err(StoreError::Backend(_))
        ));
        bad.id = String::new();
        assert!(matches!(
            JobRow::from_job(&bad),
            Err(StoreError::Backend(_))
        ));
    }
}
