//! Bulk-invite jobs: a file of people to invite, worked through in chunks by
//! a runner that can crash and resume without inviting anyone twice.
//!
//! The job record holds a checkpoint (`next_row`: every row before it is
//! done and its report entry stored) and the counts so far. A runner takes
//! a job with a lease (a conditional update on `version`), works a chunk,
//! stores the chunk's report entries, then moves the checkpoint, again
//! conditionally: a runner that lost its lease cannot move it. Each row's
//! user id is derived from the job and the row ([`row_user_id`]), so a row
//! redone after a crash finds the user it already invited instead of
//! inviting again.

use crate::ids::TenantId;
use crate::model::user::UserId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for a runner.
    Queued,
    /// A runner is on it (or was, and its lease will run out).
    Running,
    /// Every row has an outcome; the report is complete.
    Done,
    /// The runner refused the file (a file-level error: bad header, over
    /// the limits, unreadable — it reads the whole file before acting on
    /// any row, so nothing was written), or the starter may no longer run
    /// it.
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Queued, Self::Running, Self::Done, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }

    pub fn is_finished(self) -> bool {
        matches!(self, JobStatus::Done | JobStatus::Failed)
    }
}

/// What a job does with each row of its file. Every kind shares the runner
/// (lease, chunks, checkpoint), the report format and the progress model;
/// only what one row does differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Invite the person each row names (`POST /bulk-invites`).
    Invite,
    /// Change the user each row names, as `PATCH /users/{id}` (and
    /// suspend/enable) would (`POST /bulk-updates`).
    Update,
    /// Create or replace the customer account each row names, as
    /// `PUT /accounts/{number}` would (`POST /account-imports`).
    AccountImport,
}

impl JobKind {
    pub const ALL: [JobKind; 3] = [JobKind::Invite, JobKind::Update, JobKind::AccountImport];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Invite => "invite",
            JobKind::Update => "update",
            JobKind::AccountImport => "account_import",
        }
    }

    /// A stored kind. Jobs stored before kinds existed have none: they are
    /// invites (the only kind there was), see [`JobKind::stored`].
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    /// The kind of a stored job: absent (a job from before kinds) reads as
    /// an invite.
    pub fn stored(raw: Option<&str>) -> Option<Self> {
        match raw {
            None | Some("") => Some(JobKind::Invite),
            Some(k) => Self::parse(k),
        }
    }

    /// What the job is called in messages and errors.
    pub fn noun(self) -> &'static str {
        match self {
            JobKind::Invite => "bulk invite",
            JobKind::Update => "bulk update",
            JobKind::AccountImport => "account import",
        }
    }
}

/// Rows by outcome so far.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct JobCounts {
    /// Rows acted on: invited (an invite), applied (an update or an
    /// account import). Stored under its first name so jobs from before
    /// kinds keep their counts.
    pub invited: u32,
    /// Already a user, or repeated in the file.
    pub skipped: u32,
    /// Invalid, or refused when inviting.
    pub failed: u32,
}

impl JobCounts {
    pub fn processed(&self) -> u32 {
        self.invited + self.skipped + self.failed
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkJob {
    pub tenant_id: TenantId,
    /// A ULID.
    pub id: String,
    /// What each row does (stored jobs without one are invites).
    pub kind: JobKind,
    /// The user who started it (their permissions apply to every row).
    pub created_by: UserId,
    pub status: JobStatus,
    /// Where the uploaded file is kept (a key of the file store).
    pub file_key: String,
    /// The uploaded file's name, as given (for the report's name).
    pub file_name: String,
    /// Data rows in the file: 0 until the runner has read it (the request
    /// that accepts a file does not parse it, so the HTTP functions need
    /// no spreadsheet reader), then the count.
    pub total_rows: u32,
    /// Spreadsheet row number from which work resumes: every row before it
    /// has its report entry stored and is counted.
    pub next_row: u32,
    pub counts: JobCounts,
    /// Why the job failed (a file-level error), if it did.
    pub error: Option<String>,
    /// The stable code of `error` (`bad_header`, `too_many_rows`, ... for a
    /// file the runner refused), when it has one.
    pub error_code: Option<String>,
    /// A dry run: every row checked as the job would apply it, reported,
    /// and nothing else written. Ends `done` (or `failed` for a file
    /// error) like any job; its report's outcomes are `valid`, `skipped`
    /// and `failed`.
    pub dry_run: bool,
    /// A runner holds the job until then.
    pub lease_until: Option<OffsetDateTime>,
    /// Bumped by every write; writes are conditional on it.
    pub version: u64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// One row's line in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobEntry {
    /// Spreadsheet row number (the header is row 1).
    pub row: u32,
    /// The email cell as written (personal data: entries expire with the
    /// job's retention).
    pub email: String,
    /// `invited`, `skipped` or `failed` (`applied` for updates and
    /// imports; `valid` in a dry run).
    pub outcome: String,
    pub column: Option<String>,
    /// A stable code (`bad_email`, `user_exists`, ...), empty when invited.
    pub code: String,
    pub reason: String,
}

/// How long a finished job and its report are kept.
pub const JOB_RETENTION_DAYS: i64 = 30;

/// The user id of row `row` of job `job_id`: a ULID with the job's time and
/// 80 bits derived from (job, row), so redoing the row after a crash finds
/// the user it created rather than creating another.
pub fn row_user_id(job_id: &str, row: u32) -> UserId {
    let time_ms = ulid::Ulid::from_string(job_id)
        .map(|u| u.timestamp_ms())
        .unwrap_or(0);
    let digest = Sha256::digest(format!("{job_id}#{row}").as_bytes());
    let mut random = [0u8; 16];
    random[6..].copy_from_slice(&digest[..10]);
    let ulid = ulid::Ulid::from_parts(time_ms, u128::from_be_bytes(random));
    UserId::parse(&ulid.to_string()).expect("a ULID is a user id")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_ids_are_stable_distinct_and_valid() {
        let job = ulid::Ulid::new().to_string();
        let a = row_user_id(&job, 2);
        assert_eq!(a, row_user_id(&job, 2));
        assert_ne!(a, row_user_id(&job, 3));
        assert_ne!(a, row_user_id(&ulid::Ulid::new().to_string(), 2));
        assert_eq!(UserId::parse(a.as_str()), Some(a.clone()));
        let ids: std::collections::HashSet<_> = (2..10_002).map(|r| row_user_id(&job, r)).collect();
        assert_eq!(ids.len(), 10_000);
    }

    #[test]
    fn kinds_round_trip_and_a_job_without_one_is_an_invite() {
        for k in JobKind::ALL {
            assert_eq!(JobKind::parse(k.as_str()), Some(k));
            assert_eq!(JobKind::stored(Some(k.as_str())), Some(k));
        }
        assert_eq!(JobKind::stored(None), Some(JobKind::Invite));
        assert_eq!(JobKind::stored(Some("")), Some(JobKind::Invite));
        assert_eq!(JobKind::stored(Some("export")), None);
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Done,
            JobStatus::Failed,
        ] {
            assert_eq!(JobStatus::parse(s.as_str()), Some(s));
        }
        assert!(JobStatus::Done.is_finished() && !JobStatus::Running.is_finished());
    }
}
