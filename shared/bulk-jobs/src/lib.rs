//! Bulk jobs from a CSV or `.xlsx` upload (`peak-bulk` reads and checks
//! the rows), as the API runs them. Three kinds share everything here but
//! what one row does: invites (below), bulk updates and account imports
//! (`kinds.rs`, which also says how each kind avoids applying a row twice
//! after a crash). For invites:
//!
//! - [`start`]: the request refuses only what needs no parser (an empty
//!   file, one over the size limit, one that is neither CSV nor `.xlsx` by
//!   its first bytes, name and type: [`check_upload`]), stores the file and
//!   creates a queued job; the request answers 202 with it. A dry run is a
//!   job too ([`JobSpec::dry_run`]). The HTTP functions therefore link no
//!   spreadsheet reader (calamine, zip, quick-xml, csv): they stay under
//!   the 5 MB artefact target, and a dry run of 100,000 rows is no longer
//!   bound by a request's 10 s (one store read per row, in sequence, ran
//!   out at about 2,000 rows).
//! - [`run`]: a runner takes the job with a lease, reads the whole file
//!   once (a file error — bad header, over the limits, unreadable — fails
//!   the job with the error's code and text, nothing written; the row
//!   total becomes known), then works it in chunks of [`CHUNK_ROWS`]: each
//!   valid row is invited (its email queued through the outbox, so sending
//!   drains at the SES rate; Auth0 is not called until people accept), or,
//!   in a dry run, checked as a single invite would be — against the
//!   catalogue, the tenant's profiles, the caller's permission to invite
//!   that row, and the existing users — with nothing written but the
//!   report. Each chunk's report entries are stored in one batch, then the
//!   checkpoint moves. After a crash the next runner resumes at the
//!   checkpoint; rows redone find the users they invited (the user id comes
//!   from the job and the row) instead of inviting again.
//!
//! Files: the upload is stored whole (S3 in AWS, a folder locally); an
//! `.xlsx` is read whole by `peak-bulk` anyway, a CSV is streamed row by row.

mod files;
mod kinds;
mod report;

pub use files::{FolderFiles, MemoryFiles};

pub use kinds::row_request_id;
use peak_bulk::{AccountRows, Entry, FileError, Limits, Outcome, RowOutcome, Sheet, Validator};
use peak_domain::accounts::{self, AccountCaller, AccountStore};
use peak_domain::bulk_job::{BulkJob, JobCounts, JobEntry, JobKind, JobStatus, row_user_id};
use peak_domain::ports::{FileStore, JobStore, PageRequest, StoreError};
use peak_domain::users::policy::Actor;
use peak_domain::users::{self, Ctx, Invited};
use peak_domain::{Error, ProfileId, TenantId};
pub use report::{all_entries, report_csv, report_csv_for};
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

/// May this caller start a job of this kind at all? Invites: the invite
/// permission (each row is checked again with its own role, profile,
/// accounts and groups). Bulk updates: anyone signed in — each row is
/// authorised as the single `PATCH`/suspend/enable would authorise it, so
/// a file reaches exactly the users its uploader could change one by one.
/// Account imports: admins (as `PUT /accounts/{number}`).
pub fn may_start(actor: &Actor, kind: JobKind) -> Result<(), Error> {
    match kind {
        JobKind::Invite => may_invite(actor),
        JobKind::Update => Ok(()),
        JobKind::AccountImport => accounts::use_cases::may_write(&AccountCaller::User(actor)),
    }
}

/// What to start: the kind, and whether it is a dry run. A bare
/// [`JobKind`] is a real run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobSpec {
    pub kind: JobKind,
    /// Check every row and report; write nothing else.
    pub dry_run: bool,
}

impl From<JobKind> for JobSpec {
    fn from(kind: JobKind) -> Self {
        Self {
            kind,
            dry_run: false,
        }
    }
}

/// A file error as the request that refuses it, or the job it fails, says
/// it: field `file`, the message and its code.
fn file_error(e: &FileError) -> Error {
    Error::Validation(vec![peak_domain::FieldError::new(
        "file",
        format!("{} ({})", e, e.code()),
    )])
}

/// What the request can refuse without reading the file (the HTTP
/// functions link no spreadsheet reader, so the rows, the header and an
/// `.xlsx`'s insides are the runner's to judge): an empty file, one over
/// the size limit, and one that is neither CSV nor `.xlsx` by its first
/// bytes, name and type ([`peak_bulk::Format::detect`], which reads no
/// more than the first 8 bytes).
pub fn check_upload(upload: &Upload<'_>, limits: &Limits) -> Result<(), Error> {
    if upload.bytes.is_empty() {
        return Err(Error::Validation(vec![peak_domain::FieldError::new(
            "file",
            "the file is empty (no_header)",
        )]));
    }
    if upload.bytes.len() as u64 > limits.max_file_bytes {
        return Err(file_error(&FileError::TooLarge {
            max_bytes: limits.max_file_bytes,
        }));
    }
    let head = &upload.bytes[..upload.bytes.len().min(8)];
    peak_bulk::Format::detect(upload.file_name, upload.content_type, head)
        .map(|_| ())
        .map_err(|e| file_error(&e))
}

/// Stores the file and creates the queued job (a dry run too); refuses
/// only what needs no parsing ([`check_upload`]). The runner reads the
/// file: a bad header, a file over the row limit or one it cannot read
/// fails the job with the file error, before any row is acted on.
pub async fn start(
    ctx: &Ctx<'_>,
    actor: &Actor,
    jobs: &dyn JobStore,
    files: &dyn FileStore,
    upload: Upload<'_>,
    limits: &Limits,
) -> Result<BulkJob, Error> {
    start_kind(ctx, actor, jobs, files, JobKind::Invite, upload, limits).await
}

/// [`start`] for a job of any kind, or a dry run ([`JobSpec`]).
pub async fn start_kind(
    ctx: &Ctx<'_>,
    actor: &Actor,
    jobs: &dyn JobStore,
    files: &dyn FileStore,
    spec: impl Into<JobSpec>,
    upload: Upload<'_>,
    limits: &Limits,
) -> Result<BulkJob, Error> {
    let JobSpec { kind, dry_run } = spec.into();
    may_start(actor, kind)?;
    check_upload(&upload, limits)?;
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
        kind,
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
        total_rows: 0,
        next_row: 0,
        counts: JobCounts::default(),
        error: None,
        error_code: None,
        dry_run,
        lease_until: None,
        version: 1,
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    jobs.create_job(&job)
        .await
        .map_err(|e| Error::from_store(e, kind.noun()))?;
    tracing::info!(tenant = %tenant, job_id = %job.id, kind = kind.as_str(), dry_run, "bulk job queued");
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
    /// The chunk hook asked to stop (the invocation is near its deadline):
    /// the checkpoint is stored and the job given back, its lease ended,
    /// so the next run takes it at once rather than after the lease.
    Paused,
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
        Err(e) => Err(Error::from_store(e, "bulk job")),
    }
}

/// The stores a runner works with.
#[derive(Clone, Copy)]
pub struct Ports<'a> {
    pub jobs: &'a dyn JobStore,
    pub files: &'a dyn FileStore,
    /// The customer-account directory: account imports need it (a runner
    /// without it fails such a job rather than guessing).
    pub accounts: Option<&'a dyn AccountStore>,
}

/// The file layout of a job kind.
pub fn sheet(kind: JobKind) -> Sheet {
    match kind {
        JobKind::Invite => Sheet::Invite,
        JobKind::Update => Sheet::Update,
        JobKind::AccountImport => Sheet::AccountImport,
    }
}

/// Takes the job (if runnable at `ctx.now`) and works it to the end from its
/// checkpoint. `chunk_hook` runs after each stored checkpoint (tests use it
/// to stop a runner mid-way, as a crash would). Invites and bulk updates
/// only: [`run_job`] runs every kind.
pub async fn run(
    ctx: &Ctx<'_>,
    jobs: &dyn JobStore,
    files: &dyn FileStore,
    tenant: &TenantId,
    job_id: &str,
    limits: &Limits,
    chunk_hook: impl FnMut(&BulkJob) -> bool,
) -> Result<RunEnd, Error> {
    let ports = Ports {
        jobs,
        files,
        accounts: None,
    };
    run_job(ctx, ports, tenant, job_id, limits, chunk_hook).await
}

/// The per-kind state of a run.
enum Work<'v> {
    Invite(Validator<'v>),
    Update(Validator<'v>),
    Import {
        rows: AccountRows,
        ahead: kinds::ForwardParents,
        store: &'v dyn AccountStore,
    },
}

/// [`run`] for a job of any kind.
pub async fn run_job(
    ctx: &Ctx<'_>,
    ports: Ports<'_>,
    tenant: &TenantId,
    job_id: &str,
    limits: &Limits,
    mut chunk_hook: impl FnMut(&BulkJob) -> bool,
) -> Result<RunEnd, Error> {
    let jobs = ports.jobs;
    let Some(mut job) = jobs
        .get_job(tenant, job_id)
        .await
        .map_err(|e| Error::from_store(e, "bulk job"))?
    else {
        return Ok(RunEnd::NotTaken);
    };
    let leased = job.lease_until.is_some_and(|until| until > ctx.now);
    if job.status.is_finished() || (job.status == JobStatus::Running && leased) {
        return Ok(RunEnd::NotTaken);
    }
    // A job found running (its lease ran out) was being worked by a runner
    // that died: rows of its last chunk may be written but not reported.
    let resumed = job.status == JobStatus::Running;
    let noun = job.kind.noun();
    let lease = |now: OffsetDateTime| Some(now + time::Duration::seconds(LEASE_SECS));
    let mut taken = job.clone();
    taken.status = JobStatus::Running;
    taken.lease_until = lease(ctx.now);
    taken.version += 1;
    taken.updated_at = ctx.now;
    if !save(jobs, &mut job, taken).await? {
        return Ok(RunEnd::NotTaken);
    }
    tracing::info!(tenant = %tenant, job_id, kind = job.kind.as_str(), from_row = job.next_row, "bulk job running");

    let finish = |job: &BulkJob, status: JobStatus, error: Option<(String, Option<&str>)>| {
        let mut next = job.clone();
        next.status = status;
        next.error_code = error.as_ref().and_then(|(_, c)| c.map(str::to_owned));
        next.error = error.map(|(e, _)| e);
        next.lease_until = None;
        next.version += 1;
        next.updated_at = OffsetDateTime::now_utc();
        next
    };
    // The tenant and the person who started it, as they are now: a closed
    // tenant, or a starter suspended or gone, stops the job (their
    // permission is what every row is applied under; the tenant's settings,
    // e.g. the invitation lifetime, are what every row is applied with).
    let started_by = async {
        let ctx = ctx.admitted(tenant).await?;
        let actor = users::actor_for_user(&ctx, tenant, &job.created_by).await?;
        if job.kind == JobKind::AccountImport {
            accounts::use_cases::may_write(&AccountCaller::User(&actor))?;
        }
        Ok::<_, Error>((ctx, actor))
    };
    let (ctx, actor) = match started_by.await {
        Ok(found) => found,
        Err(e @ (Error::AccessDenied { .. } | Error::NotFound(_) | Error::Forbidden(_))) => {
            // Not a file error: no code (the view's `file_error` stays empty).
            let next = finish(&job, JobStatus::Failed, Some((e.to_string(), None)));
            return Ok(if save(jobs, &mut job, next).await? {
                RunEnd::Finished(Box::new(job))
            } else {
                RunEnd::LostLease
            });
        }
        Err(e) => return Err(e),
    };
    let ctx = &ctx;
    let bytes = ports
        .files
        .get_file(&job.file_key)
        .await
        .map_err(|e| Error::from_store(e, "file"))?
        .ok_or_else(|| Error::Internal(format!("the file of {noun} {job_id} is gone")))?;
    let file_name = job.file_name.clone();
    let name = Some(file_name.as_str());
    let kind = job.kind;
    let open = || peak_bulk::open_bytes_sheet(sheet(kind), &bytes, name, None, limits);
    let failed_file = |job: &BulkJob, e: &FileError| {
        finish(
            job,
            JobStatus::Failed,
            Some((e.to_string(), Some(e.code()))),
        )
    };
    let rows = match open() {
        Ok(r) => r,
        Err(e) => {
            let next = failed_file(&job, &e);
            save(jobs, &mut job, next).await?;
            return Ok(RunEnd::Finished(Box::new(job)));
        }
    };
    // The whole file is read once before any row is acted on (the request
    // that accepted it did not parse it, so the HTTP functions link no
    // spreadsheet reader): a file error anywhere — a bad header, too many
    // rows, a row that is not UTF-8 — fails the job with nothing written,
    // as the request used to refuse it; and the row total becomes known.
    // An account import's dry run also notes every number the file
    // defines (a parent may come later in the file).
    let mut total = 0u32;
    let mut in_file = std::collections::HashSet::new();
    let mut numbers = AccountRows::new(limits);
    for row in open().map_err(|e| file_error(&e))? {
        match row {
            Ok(row) => {
                total += 1;
                if job.dry_run
                    && job.kind == JobKind::AccountImport
                    && let Ok(c) = numbers.check(&row)
                {
                    in_file.insert(c.number.as_str().to_owned());
                }
            }
            Err(e) => {
                let next = failed_file(&job, &e);
                return Ok(if save(jobs, &mut job, next).await? {
                    RunEnd::Finished(Box::new(job))
                } else {
                    RunEnd::LostLease
                });
            }
        }
    }
    if total == 0 {
        let next = finish(
            &job,
            JobStatus::Failed,
            Some(("the file has a header but no rows".into(), Some("no_rows"))),
        );
        return Ok(if save(jobs, &mut job, next).await? {
            RunEnd::Finished(Box::new(job))
        } else {
            RunEnd::LostLease
        });
    }
    // Stored with the first checkpoint (no write of its own): progress
    // shows from the first chunk on.
    job.total_rows = total;
    let dry_run = job.dry_run;
    // Every row is checked from the first (cheap), so duplicates within
    // the file are told apart the same way after a resume; only rows from
    // the checkpoint on are acted on.
    let mut work = match job.kind {
        JobKind::Invite => Work::Invite(Validator::new(
            ctx.catalogue,
            profiles_by_name(ctx, tenant).await?,
            limits,
        )),
        JobKind::Update => Work::Update(Validator::new(
            ctx.catalogue,
            profiles_by_name(ctx, tenant).await?,
            limits,
        )),
        JobKind::AccountImport => {
            let Some(store) = ports.accounts else {
                return Err(Error::Internal(
                    "this runner has no account directory for an account import".into(),
                ));
            };
            let ahead = match open() {
                Ok(rows) => kinds::ForwardParents::scan(rows, limits),
                Err(_) => kinds::ForwardParents::default(),
            };
            Work::Import {
                rows: AccountRows::new(limits),
                ahead,
                store,
            }
        }
    };
    let mut chunk: Vec<Entry> = Vec::with_capacity(CHUNK_ROWS);
    let mut last_row = 0u32;
    let mut file_failure = None;
    let mut rows = rows;
    // Rows a crashed runner may have written unreported: the first chunk
    // after a resume.
    let mut unsure = if resumed { CHUNK_ROWS } else { 0 };
    loop {
        let row = match rows.next() {
            None => break,
            Some(Err(e)) => {
                file_failure = Some((e.to_string(), Some(e.code())));
                break;
            }
            Some(Ok(r)) => r,
        };
        let entry = match &mut work {
            Work::Invite(validator) => {
                let outcome = validator.check(&row);
                if row.row < job.next_row {
                    continue;
                }
                match outcome {
                    RowOutcome::Valid(c) if dry_run => check_candidate(ctx, &actor, &c).await?,
                    RowOutcome::Valid(c) => invite_row(ctx, &actor, &job, &c).await?,
                    invalid => Entry::from_check(&invalid),
                }
            }
            Work::Update(validator) => {
                let outcome = validator.check_update(&row);
                if row.row < job.next_row {
                    continue;
                }
                match outcome {
                    Ok(c) if dry_run => kinds::check_update(ctx, &actor, &c).await?,
                    Ok(c) => kinds::apply_update(ctx, &actor, &job, &c, unsure > 0).await?,
                    Err(r) => Entry::rejected(&r),
                }
            }
            Work::Import { rows, ahead, store } => {
                let outcome = rows.check(&row);
                if row.row < job.next_row {
                    continue;
                }
                match outcome {
                    Ok(c) if dry_run => kinds::check_account(*store, &actor, &in_file, &c).await?,
                    Ok(c) => {
                        kinds::apply_account(*store, &actor, &job.id, ahead, &c, ctx.now).await?
                    }
                    Err(r) => Entry::rejected(&r),
                }
            }
        };
        last_row = row.row;
        unsure = unsure.saturating_sub(1);
        chunk.push(entry);
        if chunk.len() == CHUNK_ROWS {
            if !checkpoint(ctx, jobs, &mut job, &mut chunk, last_row + 1).await? {
                return Ok(RunEnd::LostLease);
            }
            if !chunk_hook(&job) {
                return pause(ctx, jobs, &mut job).await;
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
        tenant = %tenant, job_id, kind = job.kind.as_str(), dry_run, status = job.status.as_str(),
        applied = job.counts.invited, skipped = job.counts.skipped, failed = job.counts.failed,
        "bulk job finished"
    );
    Ok(RunEnd::Finished(Box::new(job)))
}

/// Invites one valid row (its user id derived from the job and the row, so
/// a redo finds the user it invited).
async fn invite_row(
    ctx: &Ctx<'_>,
    actor: &Actor,
    job: &BulkJob,
    c: &peak_bulk::Candidate,
) -> Result<Entry, Error> {
    let id = row_user_id(&job.id, c.row);
    Ok(
        match users::invite_with_id(ctx, actor, c.invite_request(), Some(id.clone())).await {
            Ok((_, Invited::Now | Invited::Before)) => Entry::invited(c),
            Err(Error::Conflict {
                code: "email_taken",
                ..
            }) => Entry::exists(c),
            Err(e @ (Error::Unavailable(_) | Error::Internal(_))) => return Err(e),
            Err(e @ (Error::Forbidden(_) | Error::Exceeds { .. } | Error::Validation(_))) => {
                refused(c, e)?
            }
            Err(e) => Entry::failed(c, "invite_refused", e.to_string()),
        },
    )
}

/// Gives a running job back at its checkpoint: still `running` (its
/// progress shows), its lease ended now, so it is runnable at once. A
/// bulk-runner invocation stops a minute before its deadline; holding the
/// lease would keep the job idle for up to its 120 s, on every invocation
/// of a long job. The next run treats its first chunk as it does after a
/// crash (an update job reads each row's audit trail before applying it):
/// one chunk's extra reads.
async fn pause(ctx: &Ctx<'_>, jobs: &dyn JobStore, job: &mut BulkJob) -> Result<RunEnd, Error> {
    let mut next = job.clone();
    let now = OffsetDateTime::now_utc();
    // Ended by the run's own clock too (a runner's `now` is when its
    // invocation began), so a runner asking at that time finds it due.
    next.lease_until = Some(now.min(ctx.now));
    next.version += 1;
    next.updated_at = now;
    Ok(if save(jobs, job, next).await? {
        RunEnd::Paused
    } else {
        RunEnd::LostLease
    })
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
        .map_err(|e| Error::from_store(e, "bulk job report"))?;
    peak_metrics::count(
        peak_metrics::Metric::BulkRowsProcessed,
        entries.len() as u64,
    );
    let mut next = job.clone();
    for e in chunk.iter() {
        match e.outcome {
            // A dry run's valid row is one the job would act on.
            Outcome::Invited | Outcome::Applied | Outcome::Valid => next.counts.invited += 1,
            Outcome::Skipped => next.counts.skipped += 1,
            Outcome::Failed => next.counts.failed += 1,
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
pub async fn run_due(ctx: &Ctx<'_>, ports: Ports<'_>, limits: &Limits) -> Result<u32, Error> {
    let due = ports
        .jobs
        .runnable_jobs(ctx.now, 10)
        .await
        .map_err(|e| Error::from_store(e, "bulk job"))?;
    let mut finished = 0;
    for job in due {
        if let RunEnd::Finished(_) =
            run_job(ctx, ports, &job.tenant_id, &job.id, limits, |_| true).await?
        {
            finished += 1;
        }
    }
    Ok(finished)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(bytes: &[u8], name: Option<&str>, ty: Option<&str>, limits: &Limits) -> String {
        match check_upload(
            &Upload {
                bytes,
                file_name: name,
                content_type: ty,
            },
            limits,
        ) {
            Ok(()) => "ok".into(),
            Err(Error::Validation(errors)) => {
                assert!(errors.iter().all(|e| e.field == "file"), "{errors:?}");
                errors[0].reason.clone()
            }
            Err(e) => panic!("{e:?}"),
        }
    }

    /// What a request refuses without parsing: an empty file, one over the
    /// size limit, one that is no spreadsheet by its bytes, name or type.
    /// A bad header is not judged here (the runner's).
    #[test]
    fn an_upload_is_checked_without_parsing_it() {
        let l = Limits::default();
        let csv = Some("text/csv");
        assert_eq!(check(b"Name\nx\n", Some("a.csv"), csv, &l), "ok");
        assert_eq!(check(b"PK\x03\x04junk", Some("a.csv"), None, &l), "ok");
        assert_eq!(check(b"a,b", None, None, &l), "ok");
        assert!(check(b"", Some("a.csv"), csv, &l).contains("empty"));
        let small = Limits {
            max_file_bytes: 4,
            ..l
        };
        assert!(check(b"a,b,c,d", None, csv, &small).ends_with("(file_too_large)"));
        assert!(check(b"%PDF-1.4", Some("a.pdf"), None, &l).ends_with("(unsupported_file_type)"));
        assert!(check(b"x", None, Some("image/png"), &l).ends_with("(unsupported_file_type)"));
        assert!(check(b"First name", Some("a.xlsx"), None, &l).ends_with("(invalid_xlsx)"));
        assert!(
            check(&[0xD0, 0xCF, 0x11, 0xE0, 0, 0], Some("a.xls"), None, &l)
                .ends_with("(legacy_excel)")
        );
    }
}
