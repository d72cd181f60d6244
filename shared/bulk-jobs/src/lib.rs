//! Bulk invites from a CSV or `.xlsx` upload (`peak-bulk` reads and checks
//! the rows), as the API runs them:
//!
//! - [`dry_run`]: every row checked — against the catalogue, the tenant's
//!   profiles, the caller's permission to invite that row, and the existing
//!   users — and reported; nothing is written.
//! - [`start`]: the file is read once to refuse what cannot work (not a
//!   spreadsheet, bad header, over the limits), stored, and a queued job
//!   created; the request answers 202 with it.
//! - [`run`]: a runner takes the job with a lease and works it in chunks of
//!   [`CHUNK_ROWS`]: each valid row is invited (its email queued through the
//!   outbox, so sending drains at the SES rate; Auth0 is not called until
//!   people accept), each chunk's report entries are stored in one batch,
//!   then the checkpoint moves. After a crash the next runner resumes at the
//!   checkpoint; rows redone find the users they invited (the user id comes
//!   from the job and the row) instead of inviting again.
//!
//! Files: the upload is stored whole (S3 in AWS, a folder locally); an
//! `.xlsx` is read whole by `peak-bulk` anyway, a CSV is streamed row by row.

use peak_bulk::{Entry, FileError, Limits, Outcome, RowOutcome, Validator};
use peak_domain::bulk_job::{BulkJob, JobCounts, JobEntry, JobStatus, row_user_id};
use peak_domain::ports::{FileStore, JobStore, PageRequest, StoreError};
use peak_domain::users::policy::Actor;
use peak_domain::users::{self, Ctx, Invited};
use peak_domain::{Error, ProfileId, TenantId};
use time::OffsetDateTime;

/// Rows per chunk: one batch of report entries (DynamoDB's BatchWriteItem
/// takes 25) and one checkpoint write.
pub const CHUNK_ROWS: usize = 25;
/// How long a runner holds a job between checkpoints; a runner that dies
/// is replaced after this.
pub const LEASE_SECS: i64 = 120;

/// An uploaded file.
#[derive(Debug, Clone, Copy)]
pub struct Upload<'a> {
    pub bytes: &'a [u8],
    pub file_name: Option<&'a str>,
    pub content_type: Option<&'a str>,
}

/// A dry run's answer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DryRun {
    pub counts: peak_bulk::Counts,
    pub entries: Vec<Entry>,
    /// Why the file stopped being read, if it did (nothing can be invited
    /// from a file that cannot be read to the end).
    pub file_error: Option<peak_bulk::FileFailure>,
}

fn file_error(e: &FileError) -> Error {
    Error::Validation(vec![peak_domain::FieldError::new(
        "file",
        format!("{} ({})", e, e.code()),
    )])
}

/// Every profile of the tenant, by name (the file names profiles).
async fn profiles_by_name(
    ctx: &Ctx<'_>,
    tenant: &TenantId,
) -> Result<Vec<(String, ProfileId)>, Error> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = ctx
            .profiles
            .list_profiles(
                tenant,
                &PageRequest {
                    limit: PageRequest::MAX_LIMIT,
                    cursor,
                },
            )
            .await
            .map_err(|e| Error::from_store(e, "profile"))?;
        out.extend(
            page.items
                .into_iter()
                .map(|p| (p.name.as_str().to_owned(), p.id)),
        );
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}

/// The caller's permission and the store, for one valid row: the outcome a
/// dry run reports (valid, or why not) — the checks a single invite makes.
async fn check_candidate(
    ctx: &Ctx<'_>,
    actor: &Actor,
    c: &peak_bulk::Candidate,
) -> Result<Entry, Error> {
    let checked = users::check_invite(
        ctx,
        actor,
        c.role,
        c.profile_id.as_str(),
        &c.customer_accounts,
        &c.extension_groups,
    )
    .await;
    if let Err(e) = checked {
        return refused(c, e);
    }
    let existing = ctx
        .users
        .find_user_by_email(&actor.user.tenant_id, &c.email)
        .await
        .map_err(|e| Error::from_store(e, "user"))?;
    Ok(match existing {
        Some(u) if users::address_taken_for(ctx, actor, &u).await => Entry::exists(c),
        _ => Entry::from_check(&RowOutcome::Valid(c.clone())),
    })
}

/// A row the caller may not invite, reported with the code a single
/// invite would answer (`forbidden`, or the delegation rule's code naming
/// what exceeds), or `account_not_open` (an unknown or closed account,
/// each named); any other error stops the run.
fn refused(c: &peak_bulk::Candidate, e: Error) -> Result<Entry, Error> {
    match e {
        Error::Forbidden(_) => Ok(Entry::failed(c, "forbidden", e.to_string())),
        Error::Exceeds { code, errors, .. } => {
            let reason = errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.reason))
                .collect::<Vec<_>>()
                .join("; ");
            Ok(Entry::failed(c, code, reason))
        }
        // An account not in the directory, or closed: named per number.
        Error::Validation(errors) => {
            let reason = errors
                .iter()
                .map(|e| e.reason.clone())
                .collect::<Vec<_>>()
                .join("; ");
            let accounts = errors
                .iter()
                .all(|e| e.field.starts_with("customer_accounts"));
            let code = if accounts {
                "account_not_open"
            } else {
                "invite_refused"
            };
            Ok(Entry::failed(c, code, reason))
        }
        e => Err(e),
    }
}

/// May this caller invite at all? (Each row is checked again with its own
/// role, profile, accounts and groups.)
fn may_invite(actor: &Actor) -> Result<(), Error> {
    peak_domain::users::policy::authorize_invite(actor)
}

/// Checks every row and reports; writes nothing.
pub async fn dry_run(
    ctx: &Ctx<'_>,
    actor: &Actor,
    upload: Upload<'_>,
    limits: &Limits,
) -> Result<DryRun, Error> {
    may_invite(actor)?;
    let tenant = &actor.user.tenant_id;
    let rows = peak_bulk::open_bytes(upload.bytes, upload.file_name, upload.content_type, limits)
        .map_err(|e| file_error(&e))?;
    let profiles = profiles_by_name(ctx, tenant).await?;
    let mut validator = Validator::new(ctx.catalogue, profiles, limits);
    let mut report = peak_bulk::Report::default();
    for row in rows {
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                report.fail_file(&e);
                break;
            }
        };
        let entry = match validator.check(&row) {
            RowOutcome::Valid(c) => check_candidate(ctx, actor, &c).await?,
            invalid => Entry::from_check(&invalid),
        };
        report.push(entry);
    }
    Ok(DryRun {
        counts: report.counts,
        entries: report.entries,
        file_error: report.file_error,
    })
}

/// Reads the file through once (file-level problems are refused now, not
/// found later by the job), stores it, and creates the queued job.
pub async fn start(
    ctx: &Ctx<'_>,
    actor: &Actor,
    jobs: &dyn JobStore,
    files: &dyn FileStore,
    upload: Upload<'_>,
    limits: &Limits,
) -> Result<BulkJob, Error> {
    may_invite(actor)?;
    let rows = peak_bulk::open_bytes(upload.bytes, upload.file_name, upload.content_type, limits)
        .map_err(|e| file_error(&e))?;
    let mut total = 0u32;
    for row in rows {
        row.map_err(|e| file_error(&e))?;
        total += 1;
    }
    if total == 0 {
        return Err(Error::Validation(vec![peak_domain::FieldError::new(
            "file",
            "the file has a header but no rows",
        )]));
    }
    let tenant = &actor.user.tenant_id;
    let id = peak_domain::ids::monotonic_ulid().to_string();
    let file_key = format!("bulk/{}/{id}", tenant.as_str());
    files
        .put_file(&file_key, upload.bytes.to_vec())
        .await
        .map_err(|e| Error::from_store(e, "file"))?;
    let job = BulkJob {
        tenant_id: tenant.clone(),
        id,
        created_by: actor.user.id.clone(),
        status: JobStatus::Queued,
        file_key,
        file_name: upload
            .file_name
            .unwrap_or("upload")
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect(),
        total_rows: total,
        next_row: 0,
        counts: JobCounts::default(),
        error: None,
        lease_until: None,
        version: 1,
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    jobs.create_job(&job)
        .await
        .map_err(|e| Error::from_store(e, "bulk invite"))?;
    tracing::info!(tenant = %tenant, job_id = %job.id, rows = total, "bulk invite queued");
    Ok(job)
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// The job is finished (done or failed); its final state.
    Finished(Box<BulkJob>),
    /// Another runner holds it, or it is finished already: nothing done.
    NotTaken,
    /// This runner lost the job mid-way (its lease ran out and another took
    /// it): it stopped without moving the checkpoint.
    LostLease,
}

fn to_job_entry(e: &Entry) -> JobEntry {
    let first = e.issues.first();
    JobEntry {
        row: e.row,
        email: e.email.clone(),
        outcome: e.outcome.as_str().to_owned(),
        column: first.and_then(|i| i.column.clone()),
        code: first.map(|i| i.code.to_owned()).unwrap_or_default(),
        reason: e
            .issues
            .iter()
            .map(|i| i.reason.as_str())
            .collect::<Vec<_>>()
            .join("; "),
    }
}

async fn save(jobs: &dyn JobStore, job: &mut BulkJob, next: BulkJob) -> Result<bool, Error> {
    match jobs.update_job(job.version, &next).await {
        Ok(()) => {
            *job = next;
            Ok(true)
        }
        Err(StoreError::VersionMismatch | StoreError::NotFound) => Ok(false),
        Err(e) => Err(Error::from_store(e, "bulk invite")),
    }
}

/// Takes the job (if runnable at `ctx.now`) and works it to the end from its
/// checkpoint. `chunk_hook` runs after each stored checkpoint (tests use it
/// to stop a runner mid-way, as a crash would).
pub async fn run(
    ctx: &Ctx<'_>,
    jobs: &dyn JobStore,
    files: &dyn FileStore,
    tenant: &TenantId,
    job_id: &str,
    limits: &Limits,
    mut chunk_hook: impl FnMut(&BulkJob) -> bool,
) -> Result<RunEnd, Error> {
    let Some(mut job) = jobs
        .get_job(tenant, job_id)
        .await
        .map_err(|e| Error::from_store(e, "bulk invite"))?
    else {
        return Ok(RunEnd::NotTaken);
    };
    let leased = job.lease_until.is_some_and(|until| until > ctx.now);
    if job.status.is_finished() || (job.status == JobStatus::Running && leased) {
        return Ok(RunEnd::NotTaken);
    }
    let lease = |now: OffsetDateTime| Some(now + time::Duration::seconds(LEASE_SECS));
    let mut taken = job.clone();
    taken.status = JobStatus::Running;
    taken.lease_until = lease(ctx.now);
    taken.version += 1;
    taken.updated_at = ctx.now;
    if !save(jobs, &mut job, taken).await? {
        return Ok(RunEnd::NotTaken);
    }
    tracing::info!(tenant = %tenant, job_id, from_row = job.next_row, "bulk invite running");

    let finish = |job: &BulkJob, status: JobStatus, error: Option<String>| {
        let mut next = job.clone();
        next.status = status;
        next.error = error;
        next.lease_until = None;
        next.version += 1;
        next.updated_at = OffsetDateTime::now_utc();
        next
    };
    // The tenant and the person who started it, as they are now: a closed
    // tenant, or a starter suspended or gone, stops the job (their
    // permission is what every row is invited under; the tenant's settings,
    // e.g. the invitation lifetime, are what every row is invited with).
    let started_by = async {
        let ctx = ctx.admitted(tenant).await?;
        let actor = users::actor_for_user(&ctx, tenant, &job.created_by).await?;
        Ok::<_, Error>((ctx, actor))
    };
    let (ctx, actor) = match started_by.await {
        Ok(found) => found,
        Err(e @ (Error::AccessDenied { .. } | Error::NotFound(_))) => {
            let next = finish(&job, JobStatus::Failed, Some(e.to_string()));
            return Ok(if save(jobs, &mut job, next).await? {
                RunEnd::Finished(Box::new(job))
            } else {
                RunEnd::LostLease
            });
        }
        Err(e) => return Err(e),
    };
    let ctx = &ctx;
    let bytes = files
        .get_file(&job.file_key)
        .await
        .map_err(|e| Error::from_store(e, "file"))?
        .ok_or_else(|| Error::Internal(format!("the file of bulk invite {job_id} is gone")))?;
    let name = Some(job.file_name.as_str());
    let rows = match peak_bulk::open_bytes(&bytes, name, None, limits) {
        Ok(r) => r,
        Err(e) => {
            let next = finish(&job, JobStatus::Failed, Some(e.to_string()));
            save(jobs, &mut job, next).await?;
            return Ok(RunEnd::Finished(Box::new(job)));
        }
    };
    let profiles = profiles_by_name(ctx, tenant).await?;
    // Every row is checked from the first (cheap), so duplicates within
    // the file are told apart the same way after a resume; only rows from
    // the checkpoint on are acted on.
    let mut validator = Validator::new(ctx.catalogue, profiles, limits);
    let mut chunk: Vec<Entry> = Vec::with_capacity(CHUNK_ROWS);
    let mut last_row = 0u32;
    let mut file_failure = None;
    let mut rows = rows;
    loop {
        let row = match rows.next() {
            None => break,
            Some(Err(e)) => {
                file_failure = Some(e.to_string());
                break;
            }
            Some(Ok(r)) => r,
        };
        let outcome = validator.check(&row);
        if row.row < job.next_row {
            continue;
        }
        last_row = row.row;
        let entry = match outcome {
            RowOutcome::Valid(c) => {
                let id = row_user_id(&job.id, c.row);
                match users::invite_with_id(ctx, &actor, c.invite_request(), Some(id.clone())).await
                {
                    Ok((_, Invited::Now | Invited::Before)) => Entry::invited(&c),
                    Err(Error::Conflict {
                        code: "email_taken",
                        ..
                    }) => Entry::exists(&c),
                    Err(e @ (Error::Unavailable(_) | Error::Internal(_))) => return Err(e),
                    Err(
                        e @ (Error::Forbidden(_) | Error::Exceeds { .. } | Error::Validation(_)),
                    ) => refused(&c, e)?,
                    Err(e) => Entry::failed(&c, "invite_refused", e.to_string()),
                }
            }
            invalid => Entry::from_check(&invalid),
        };
        chunk.push(entry);
        if chunk.len() == CHUNK_ROWS {
            if !checkpoint(ctx, jobs, &mut job, &mut chunk, last_row + 1).await? {
                return Ok(RunEnd::LostLease);
            }
            if !chunk_hook(&job) {
                return Ok(RunEnd::LostLease);
            }
        }
    }
    if !chunk.is_empty() && !checkpoint(ctx, jobs, &mut job, &mut chunk, last_row + 1).await? {
        return Ok(RunEnd::LostLease);
    }
    let (status, error) = match file_failure {
        Some(e) => (JobStatus::Failed, Some(e)),
        None => (JobStatus::Done, None),
    };
    let next = finish(&job, status, error);
    if !save(jobs, &mut job, next).await? {
        return Ok(RunEnd::LostLease);
    }
    tracing::info!(
        tenant = %tenant, job_id, status = job.status.as_str(),
        invited = job.counts.invited, skipped = job.counts.skipped, failed = job.counts.failed,
        "bulk invite finished"
    );
    Ok(RunEnd::Finished(Box::new(job)))
}

/// Stores the chunk's entries, then moves the checkpoint past them and
/// renews the lease (conditional on the version: `false` if lost).
async fn checkpoint(
    ctx: &Ctx<'_>,
    jobs: &dyn JobStore,
    job: &mut BulkJob,
    chunk: &mut Vec<Entry>,
    next_row: u32,
) -> Result<bool, Error> {
    let entries: Vec<JobEntry> = chunk.iter().map(to_job_entry).collect();
    jobs.put_job_entries(&job.tenant_id, &job.id, &entries)
        .await
        .map_err(|e| Error::from_store(e, "bulk invite report"))?;
    peak_metrics::count(
        peak_metrics::Metric::BulkRowsProcessed,
        entries.len() as u64,
    );
    let mut next = job.clone();
    for e in chunk.iter() {
        match e.outcome {
            Outcome::Invited => next.counts.invited += 1,
            Outcome::Skipped => next.counts.skipped += 1,
            Outcome::Failed | Outcome::Valid => next.counts.failed += 1,
        }
    }
    chunk.clear();
    let now = OffsetDateTime::now_utc().max(ctx.now);
    next.next_row = next_row;
    next.lease_until = Some(now + time::Duration::seconds(LEASE_SECS));
    next.version += 1;
    next.updated_at = now;
    save(jobs, job, next).await
}

/// Runs every runnable job (a polling runner: locally, and the scheduled
/// sweep in AWS); returns how many it finished.
pub async fn run_due(
    ctx: &Ctx<'_>,
    jobs: &dyn JobStore,
    files: &dyn FileStore,
    limits: &Limits,
) -> Result<u32, Error> {
    let due = jobs
        .runnable_jobs(ctx.now, 10)
        .await
        .map_err(|e| Error::from_store(e, "bulk invite"))?;
    let mut finished = 0;
    for job in due {
        if let RunEnd::Finished(_) =
            run(ctx, jobs, files, &job.tenant_id, &job.id, limits, |_| true).await?
        {
            finished += 1;
        }
    }
    Ok(finished)
}

/// The report of a job as CSV (`row,email,outcome,column,code,reason`),
/// values a spreadsheet would run (`=`, `+`, `-`, `@`, tab, CR first) made
/// inert with a leading `'`.
pub fn report_csv(entries: &[JobEntry]) -> String {
    fn field(out: &mut String, value: &str) {
        let value = peak_bulk::neutralize(value);
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    }
    let mut out = String::from("row,email,outcome,column,code,reason\r\n");
    for e in entries {
        out.push_str(&e.row.to_string());
        out.push(',');
        field(&mut out, &e.email);
        out.push(',');
        field(&mut out, &e.outcome);
        out.push(',');
        field(&mut out, e.column.as_deref().unwrap_or(""));
        out.push(',');
        field(&mut out, &e.code);
        out.push(',');
        field(&mut out, &e.reason);
        out.push_str("\r\n");
    }
    out
}

/// Every report entry of a job, in row order.
pub async fn all_entries(jobs: &dyn JobStore, job: &BulkJob) -> Result<Vec<JobEntry>, Error> {
    let mut out: Vec<JobEntry> = Vec::new();
    loop {
        let after = out.last().map_or(0, |e| e.row);
        let page = jobs
            .list_job_entries(&job.tenant_id, &job.id, after, 1000)
            .await
            .map_err(|e| Error::from_store(e, "bulk invite report"))?;
        let done = page.len() < 1000;
        out.extend(page);
        if done {
            return Ok(out);
        }
    }
}

/// Files in memory (tests).
#[derive(Default)]
pub struct MemoryFiles(std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>);

#[async_trait::async_trait]
impl FileStore for MemoryFiles {
    async fn put_file(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key.to_owned(), bytes);
        Ok(())
    }

    async fn get_file(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
            .cloned())
    }
}

/// Files in a folder (the local run): `<dir>/<key>`, keys being the
/// `bulk/<tenant>/<ulid>` paths [`start`] makes.
pub struct FolderFiles {
    dir: std::path::PathBuf,
}

impl FolderFiles {
    pub fn new(dir: impl Into<std::path::PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, key: &str) -> Result<std::path::PathBuf, StoreError> {
        let safe = !key.is_empty()
            && key.split('/').all(|part| {
                !part.is_empty()
                    && part != ".."
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !safe {
            return Err(StoreError::Backend("invalid file key".into()));
        }
        Ok(self.dir.join(key))
    }
}

#[async_trait::async_trait]
impl FileStore for FolderFiles {
    async fn put_file(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        let path = self.path(key)?;
        tokio::task::spawn_blocking(move || {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, bytes)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("file write: {e}")))?
        .map_err(|e| StoreError::Unavailable(format!("file write: {e}")))
    }

    async fn get_file(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path(key)?;
        tokio::task::spawn_blocking(move || match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Unavailable(format!("file read: {e}"))),
        })
        .await
        .map_err(|e| StoreError::Backend(format!("file read: {e}")))?
    }
}
