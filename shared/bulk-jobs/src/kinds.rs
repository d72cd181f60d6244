//! What one row does, for the two job kinds beside invites: a bulk update
//! (each row through the single routes' use cases — `PATCH /users/{id}`,
//! then suspend or enable — as the job's creator) and an account import
//! (each row through `PUT /accounts/{number}`'s use case).
//!
//! # Not applying a row twice
//!
//! The runner stores report entries and moves its checkpoint once per
//! chunk; a runner that dies between a row's write and the chunk's
//! checkpoint leaves rows written but not reported, and the next runner
//! redoes the chunk. Per kind:
//!
//! * **Account import**: an upsert is idempotent — sending what is stored
//!   changes nothing (no new version, no audit event) — so redoing the row
//!   is harmless and reports the same.
//! * **Suspend / enable**: the use case answers a user who already has the
//!   status without writing, so redoing is harmless too.
//! * **Field changes** are not: an edit always writes a new version and an
//!   audit event. Each row's edit runs under a request id derived from the
//!   job and the row (`bulk:<job>:<row>`), and the audit event that records
//!   it is written in the same transaction as the change (both stores'
//!   `write_user`). A resumed runner, for the rows of its first chunk (the
//!   only ones a crash can have left written but unreported), reads the
//!   user's audit trail back to the job's start and skips the edit if an
//!   event with that request id is there. Found means written, and written
//!   means found: there is no window between the two.
//!
//! # Parents after their children (account import)
//!
//! A file exported from a billing system is in no particular order. A row
//! whose parent is *later in the file* (and not yet in the directory) is
//! not refused: its parent's row is applied first (and its parent's, up to
//! the directory's depth limit), then the row; when the runner reaches the
//! parent's own row, the upsert changes nothing and it is reported as
//! applied. Parents defined later are found by a cheap pass over the file
//! before the run, which keeps only the rows named as a parent by an
//! earlier row (memory bounded by those, not by the file). A parent that is
//! neither in the directory nor in the file fails the row with the use
//! case's own error (`parent`: no such account); a cycle fails each of its
//! rows.

use peak_bulk::{
    AccountCandidate, AccountRows, Entry, Issue, Limits, Outcome, StatusAction, UpdateCandidate,
    UserKey,
};
use peak_domain::accounts::{self, AccountCaller, AccountStore};
use peak_domain::model::user::{AccountNumber, UserId};
use peak_domain::ports::PageRequest;
use peak_domain::users::{self, Ctx};
use peak_domain::{Actor, Error};
use std::collections::{HashMap, HashSet};
use time::OffsetDateTime;

/// The request id a row's writes are made under (and found by, in the
/// audit trail, after a crash).
pub fn row_request_id(job_id: &str, row: u32) -> String {
    format!("bulk:{job_id}:{row}")
}

/// A refused row, reported with the code and text the single route's
/// problem document would carry; errors a retry may cure stop the run.
pub(crate) fn refusal(row: u32, key: &str, e: Error) -> Result<Entry, Error> {
    let (code, column, reason): (&'static str, Option<String>, String) = match &e {
        Error::Unavailable(_) | Error::Internal(_) => return Err(e),
        Error::Forbidden(_) => ("forbidden", None, e.to_string()),
        Error::NotFound(_) => ("not_found", None, e.to_string()),
        Error::AccessDenied { code, detail }
        | Error::Gone { code, detail }
        | Error::Conflict { code, detail }
        | Error::BadRequest { code, detail } => (code, None, detail.clone()),
        Error::Exceeds { code, errors, .. } => (
            code,
            errors.first().map(|f| f.field.clone()),
            fields(errors),
        ),
        Error::Validation(errors) => (
            "validation_failed",
            errors.first().map(|f| f.field.clone()),
            fields(errors),
        ),
        Error::TooManyRequests { .. } => ("too_many_requests", None, e.to_string()),
        Error::PreconditionFailed(_) => ("stale_version", None, e.to_string()),
        Error::PreconditionRequired(_) => ("if_match_required", None, e.to_string()),
    };
    let mut issue = Issue::new(row, None, code, reason);
    issue.column = column;
    Ok(Entry::keyed(row, key, Outcome::Failed, vec![issue]))
}

fn fields(errors: &[peak_domain::FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The user a row names, as the single route would find them: by id, or
/// by the tenant's email lookup (not found: 404 as `PATCH` answers an
/// unknown id).
async fn target(ctx: &Ctx<'_>, actor: &Actor, c: &UpdateCandidate) -> Result<UserId, Error> {
    match &c.user {
        UserKey::Id(id) => Ok(id.clone()),
        UserKey::Email(e) => ctx
            .users
            .find_user_by_email(&actor.user.tenant_id, e)
            .await
            .map_err(|e| Error::from_store(e, "user"))?
            .map(|u| u.id)
            .ok_or(Error::NotFound("user")),
    }
}

/// A dry run's check of one update row: every check the edit and the
/// status action make, nothing written.
pub(crate) async fn check_update(
    ctx: &Ctx<'_>,
    actor: &Actor,
    c: &UpdateCandidate,
) -> Result<Entry, Error> {
    let checked = async {
        let id = target(ctx, actor, c).await?;
        if let Some(patch) = &c.patch {
            let current = ctx
                .users
                .get_user(&actor.user.tenant_id, &id)
                .await
                .map_err(|e| Error::from_store(e, "user"))?;
            let version = current.map(|u| u.version);
            users::check_edit(ctx, actor, &id, version, patch.clone()).await?;
        }
        if let Some(action) = c.action {
            users::check_status(ctx, actor, &id, action == StatusAction::Suspend).await?;
        }
        Ok::<_, Error>(())
    };
    match checked.await {
        Ok(()) => Ok(Entry::keyed(c.row, &c.key, Outcome::Valid, Vec::new())),
        Err(e) => refusal(c.row, &c.key, e),
    }
}

/// Was this row's edit written already (by a runner that died before its
/// checkpoint)? Reads the user's audit trail, newest first, back to the
/// job's start.
async fn edited_before(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &UserId,
    request_id: &str,
    since: OffsetDateTime,
) -> Result<bool, Error> {
    let mut cursor = None;
    loop {
        let page = ctx
            .users
            .list_audit(
                &actor.user.tenant_id,
                Some(id),
                &PageRequest {
                    limit: PageRequest::MAX_LIMIT,
                    cursor,
                },
            )
            .await
            .map_err(|e| Error::from_store(e, "audit"))?;
        for e in &page.items {
            if e.request_id == request_id && e.action == "user.updated" {
                return Ok(true);
            }
            if e.at < since {
                return Ok(false);
            }
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(false),
        }
    }
}

/// Applies one update row as its creator: the edit (`PATCH`'s use case,
/// at the version just read), then the status action.
pub(crate) async fn apply_update(
    ctx: &Ctx<'_>,
    actor: &Actor,
    job: &peak_domain::bulk_job::BulkJob,
    c: &UpdateCandidate,
    maybe_done: bool,
) -> Result<Entry, Error> {
    let request_id = row_request_id(&job.id, c.row);
    let row_ctx = Ctx {
        request_id: &request_id,
        ..ctx.clone()
    };
    let ctx = &row_ctx;
    let applied = async {
        let id = target(ctx, actor, c).await?;
        if let Some(patch) = &c.patch
            && !(maybe_done && edited_before(ctx, actor, &id, &request_id, job.created_at).await?)
        {
            // The version just read: the row is the caller's intent as of
            // now, as a person editing one by one would send it. A write
            // in between is retried once from a fresh read.
            let mut attempt = 0;
            loop {
                attempt += 1;
                let version = ctx
                    .users
                    .get_user(&actor.user.tenant_id, &id)
                    .await
                    .map_err(|e| Error::from_store(e, "user"))?
                    .map(|u| u.version);
                match users::edit_user(ctx, actor, &id, version, patch.clone()).await {
                    // The user changed since the read. On a row a dead
                    // runner may have been working (its lease ran out
                    // while it was still writing), that change may be this
                    // very row's edit: look again before redoing it.
                    Err(Error::PreconditionFailed(_))
                        if attempt < 2
                            && !(maybe_done
                                && edited_before(ctx, actor, &id, &request_id, job.created_at)
                                    .await?) => {}
                    Err(Error::PreconditionFailed(_)) if attempt < 2 => break,
                    other => break other.map(|_| ())?,
                }
            }
        }
        match c.action {
            Some(StatusAction::Suspend) => {
                users::suspend_user(ctx, actor, &id, None).await?;
            }
            Some(StatusAction::Enable) => {
                users::enable_user(ctx, actor, &id, None).await?;
            }
            None => {}
        }
        Ok::<_, Error>(())
    };
    match applied.await {
        Ok(()) => Ok(Entry::keyed(c.row, &c.key, Outcome::Applied, Vec::new())),
        Err(e) => refusal(c.row, &c.key, e),
    }
}

/// Account-import rows whose number an earlier row named as its parent:
/// the only rows applied out of order (see the module's notes).
#[derive(Debug, Default)]
pub(crate) struct ForwardParents {
    rows: HashMap<String, AccountCandidate>,
}

impl ForwardParents {
    /// One pass over the file's rows.
    pub(crate) fn scan<I, E>(rows: I, limits: &Limits) -> Self
    where
        I: Iterator<Item = Result<peak_bulk::Row, E>>,
    {
        let mut check = AccountRows::new(limits);
        let mut named: HashSet<String> = HashSet::new();
        let mut out = HashMap::new();
        for row in rows {
            let Ok(row) = row else { break };
            let Ok(c) = check.check(&row) else { continue };
            if named.contains(c.number.as_str()) {
                out.insert(c.number.as_str().to_owned(), c.clone());
            }
            if let Some(p) = &c.upsert.parent {
                named.insert(p.clone());
            }
        }
        Self { rows: out }
    }
}

/// Applies one account-import row through the upsert use case; a parent
/// defined later in the file is applied first.
pub(crate) async fn apply_account(
    store: &dyn AccountStore,
    actor: &Actor,
    job_id: &str,
    ahead: &ForwardParents,
    c: &AccountCandidate,
    now: OffsetDateTime,
) -> Result<Entry, Error> {
    let key = c.number.as_str();
    let upsert = |c: &AccountCandidate| {
        let request_id = row_request_id(job_id, c.row);
        let c = c.clone();
        async move {
            accounts::upsert_account(
                store,
                AccountCaller::User(actor),
                c.number.as_str(),
                None,
                &c.upsert,
                &request_id,
                now,
            )
            .await
        }
    };
    match upsert(c).await {
        Ok(_) => Ok(Entry::keyed(c.row, key, Outcome::Applied, Vec::new())),
        Err(Error::Validation(errors))
            if errors.iter().any(|e| e.field == "parent")
                && c.upsert
                    .parent
                    .as_ref()
                    .is_some_and(|p| ahead.rows.get(p).is_some_and(|pc| pc.row > c.row)) =>
        {
            // The chain of parents defined later in the file, nearest
            // first (a cycle or the depth limit ends it).
            let mut chain: Vec<&AccountCandidate> = Vec::new();
            let mut seen = HashSet::from([key.to_owned()]);
            let mut next = c.upsert.parent.as_deref();
            while let Some(p) = next
                && let Some(pc) = ahead.rows.get(p)
                && chain.len() < peak_domain::accounts::model::MAX_DEPTH
                && seen.insert(p.to_owned())
            {
                chain.push(pc);
                next = pc.upsert.parent.as_deref();
            }
            for pc in chain.iter().rev() {
                if let Err(e) = upsert(pc).await {
                    if matches!(e, Error::Unavailable(_) | Error::Internal(_)) {
                        return Err(e);
                    }
                    let mut issue = Issue::new(
                        c.row,
                        Some(peak_bulk::Column::Parent),
                        "parent_failed",
                        format!(
                            "its parent {} (row {}) could not be imported first: {}",
                            pc.number.as_str(),
                            pc.row,
                            match &e {
                                Error::Validation(errors) => fields(errors),
                                e => e.to_string(),
                            }
                        ),
                    );
                    issue.column = Some("parent".into());
                    return Ok(Entry::keyed(c.row, key, Outcome::Failed, vec![issue]));
                }
            }
            match upsert(c).await {
                Ok(_) => Ok(Entry::keyed(c.row, key, Outcome::Applied, Vec::new())),
                Err(e) => refusal(c.row, key, e),
            }
        }
        Err(e) => refusal(c.row, key, e),
    }
}

/// A dry run's check of one import row: the caller may write accounts (the
/// route checked), the row is well formed (checked), and its parent is in
/// the directory or anywhere in the file.
pub(crate) async fn check_account(
    store: &dyn AccountStore,
    actor: &Actor,
    in_file: &HashSet<String>,
    c: &AccountCandidate,
) -> Result<Entry, Error> {
    let key = c.number.as_str();
    if let Some(p) = &c.upsert.parent
        && !in_file.contains(p)
    {
        let number = AccountNumber::parse("parent", p).map_err(|e| Error::Validation(vec![e]))?;
        let found = store
            .get_account(&actor.user.tenant_id, &number)
            .await
            .map_err(|e| Error::from_store(e, "account"))?;
        if found.is_none() {
            return refusal(
                c.row,
                key,
                Error::Validation(vec![peak_domain::FieldError::new(
                    "parent",
                    format!("no customer account {p} in this tenant or in the file"),
                )]),
            );
        }
    }
    Ok(Entry::keyed(c.row, key, Outcome::Valid, Vec::new()))
}
