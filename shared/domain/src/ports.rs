//! Ports: what the domain needs from storage. Adapters (SQLite, DynamoDB)
//! implement them and pass one shared contract suite
//! (`peak-store-contract`).

use crate::audit::AuditEvent;
use crate::bulk_job::{BulkJob, JobEntry};
use crate::error::Error;
use crate::idp_events::{IdpDelivery, Recorded};
use crate::idp_work::{IdpWork, IdpWorkItem};
use crate::ids::{ProfileId, TenantId};
use crate::outbox::{FailedEmail, OutboxClaim, OutboxEmail};
use crate::profile::Profile;
use crate::tenant::Tenant;
use crate::user::{Email, User, UserId, UserQuery};
use async_trait::async_trait;
use time::OffsetDateTime;

/// Why a store call failed, in terms a use case can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("an item with this id already exists")]
    AlreadyExists,
    #[error("the name is already taken in this tenant")]
    NameTaken,
    #[error("not found")]
    NotFound,
    /// A conditional write found another version than the one expected.
    #[error("version mismatch")]
    VersionMismatch,
    /// Delete refused: users still hold the item.
    #[error("still held by {holders} users")]
    InUse { holders: u64 },
    #[error("invalid cursor")]
    InvalidCursor,
    /// Another user of the tenant has this login email.
    #[error("the email address is taken in this tenant")]
    EmailTaken,
    /// The profile a user write refers to does not exist (any more).
    #[error("the referenced profile does not exist")]
    ProfileMissing,
    /// Throttling, timeouts, a backend that is down: worth retrying.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or an unexpected answer.
    #[error("store error: {0}")]
    Backend(String),
}

/// A page request: at most `limit` items after `cursor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub cursor: Option<String>,
}

impl PageRequest {
    pub const DEFAULT_LIMIT: u32 = 25;
    pub const MAX_LIMIT: u32 = 100;

    pub fn new(limit: Option<u32>, cursor: Option<String>) -> Result<Self, Error> {
        let limit = limit.unwrap_or(Self::DEFAULT_LIMIT);
        if !(1..=Self::MAX_LIMIT).contains(&limit) {
            return Err(Error::invalid(
                "limit",
                format!("must be between 1 and {}", Self::MAX_LIMIT),
            ));
        }
        Ok(Self {
            limit,
            cursor: cursor.filter(|c| !c.is_empty()),
        })
    }

    pub fn first(limit: u32) -> Self {
        Self {
            limit,
            cursor: None,
        }
    }
}

/// One page of a list in a stable order; `next_cursor` is `None` on the last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Profiles, ordered by id (creation order). Every method is scoped to one
/// tenant: no call can see or change another tenant's items.
#[async_trait]
pub trait ProfileStore: Send + Sync {
    /// Stores a new profile. `NameTaken` if another profile of the tenant has
    /// the same name ignoring case; `AlreadyExists` if the id is taken.
    async fn insert_profile(&self, profile: &Profile) -> Result<(), StoreError>;

    async fn get_profile(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
    ) -> Result<Option<Profile>, StoreError>;

    async fn list_profiles(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<Profile>, StoreError>;

    /// Replaces `previous` with `updated` only if the stored version is still
    /// `previous.version` (`VersionMismatch` otherwise, `NotFound` if gone).
    /// A rename keeps names unique (`NameTaken`). The holder count is kept.
    async fn update_profile(&self, previous: &Profile, updated: &Profile)
    -> Result<(), StoreError>;

    /// Deletes the profile, if `expected_version` (when given) is current and
    /// no user holds it (`InUse`), as one atomic check-and-delete.
    async fn delete_profile(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError>;

    /// Adds `delta` (may be negative) to the number of users holding the
    /// profile. User assignment calls this; the count guards deletion.
    async fn change_profile_holders(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
        delta: i64,
    ) -> Result<(), StoreError>;
}

/// One atomic change to a user and everything that must change with it.
///
/// The store derives the rest from `previous` → `next`: the email guard
/// (normalized email, unique per tenant), the identity-provider subject
/// lookup, the invitation-token lookup, per-account membership entries and
/// list indexes, and the holder counts of the profiles involved (+1 on the
/// new profile, -1 on the old), and the work the change owes the identity
/// provider ([`owed_work`](crate::idp_work::owed_work): one record per user,
/// replacing an older one). Everything — including `audit` and `outbox` —
/// is written in one transaction, or nothing is.
#[derive(Debug, Clone, Copy)]
pub struct UserWrite<'a> {
    /// The stored user this write replaces, checked by `version`
    /// (`VersionMismatch` if it moved, `NotFound` if gone); `None` creates.
    pub previous: Option<&'a User>,
    /// The user after the write; `None` deletes the user, its lookups and
    /// memberships, and removes personal data from its past audit events.
    pub next: Option<&'a User>,
    pub audit: &'a [AuditEvent],
    pub outbox: &'a [OutboxEmail],
}

/// What an idempotency key already holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// First use: the caller owns the key and must `complete` it.
    Claimed,
    /// A request with this key is still running.
    InProgress,
    /// Done before; replay this response.
    Completed(SavedResponse),
    /// The key was used for a different request body.
    Mismatch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Users, with their invitations, audit trail and outbox. Every method but
/// the public invitation lookup is scoped to one tenant.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Applies `write` atomically. Errors: `AlreadyExists` (create with a
    /// taken id), `EmailTaken`, `VersionMismatch`, `NotFound`,
    /// `ProfileMissing`.
    async fn write_user(&self, write: UserWrite<'_>) -> Result<(), StoreError>;

    async fn get_user(&self, tenant: &TenantId, id: &UserId) -> Result<Option<User>, StoreError>;

    /// By login email, compared case-insensitively.
    async fn find_user_by_email(
        &self,
        tenant: &TenantId,
        email: &Email,
    ) -> Result<Option<User>, StoreError>;

    /// By identity-provider subject (`auth0|…`).
    async fn find_user_by_subject(
        &self,
        tenant: &TenantId,
        subject: &str,
    ) -> Result<Option<User>, StoreError>;

    /// By the hash of an invitation token: public, so across tenants. Only
    /// the user's current invitation resolves.
    async fn find_user_by_invitation(&self, token_hash: &str) -> Result<Option<User>, StoreError>;

    /// A page of users matching `query`, ordered by (name key, id), or by
    /// (normalized email, id) when `email_prefix` is set.
    async fn list_users(
        &self,
        tenant: &TenantId,
        query: &UserQuery,
        page: &PageRequest,
    ) -> Result<Page<User>, StoreError>;

    /// Audit events, newest first: one user's history, or the tenant's.
    async fn list_audit(
        &self,
        tenant: &TenantId,
        user: Option<&UserId>,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>, StoreError>;

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

    /// Claims `key` for a request with body `fingerprint` (a hash), or says
    /// what the key holds. Keys expire after `ttl_secs`. A claim not
    /// completed (nor released) within `lease_secs` is abandoned: the next
    /// claim of the key takes it over, as if it were new.
    async fn claim_idempotency_key(
        &self,
        tenant: &TenantId,
        key: &str,
        fingerprint: &str,
        now: OffsetDateTime,
        lease_secs: u64,
        ttl_secs: u64,
    ) -> Result<IdempotencyClaim, StoreError>;

    /// Stores the response of a claimed key, for replay.
    async fn complete_idempotency_key(
        &self,
        tenant: &TenantId,
        key: &str,
        response: &SavedResponse,
    ) -> Result<(), StoreError>;

    /// Forgets a claimed key whose request failed before changing anything,
    /// so the client may retry with it.
    async fn release_idempotency_key(&self, tenant: &TenantId, key: &str)
    -> Result<(), StoreError>;

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

    /// Records a sign-in at `at` on the user, if it is newer than the one
    /// recorded (an older, late delivery never wins). Kept apart from the
    /// user record: the version is left as it is, and no user write (which
    /// may carry an older copy) can undo it. `false`: no such user, or a
    /// newer sign-in is recorded. Every read of the user carries it as
    /// `last_login_at`.
    async fn record_login(
        &self,
        tenant: &TenantId,
        user: &UserId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Records a verified delivery from the identity provider, as one
    /// conditional write, so that it is applied (exactly once) from the
    /// record: [`Recorded::New`] the first time; a delivery with the same id
    /// recorded less than `ttl_secs` ago is [`Recorded::Done`] or
    /// [`Recorded::Owed`] and is not recorded again.
    async fn record_delivery(
        &self,
        delivery: &IdpDelivery,
        now: OffsetDateTime,
        ttl_secs: u64,
    ) -> Result<Recorded, StoreError>;

    /// Takes a recorded delivery that is owed and due for `lease_secs`
    /// (one conditional write), with the number of failed attempts so far;
    /// `None` when it is done, unknown, leased, or waiting for its retry.
    async fn claim_delivery(
        &self,
        id: &str,
        now: OffsetDateTime,
        lease_secs: u64,
    ) -> Result<Option<(IdpDelivery, u32)>, StoreError>;

    /// The delivery is applied (`outcome` kept); a replay of it is
    /// [`Recorded::Done`] until it expires.
    async fn complete_delivery(&self, id: &str, outcome: &str) -> Result<(), StoreError>;

    /// Applying failed: one more attempt counted, `reason` kept, due again
    /// at `retry_at`. Never dropped.
    async fn fail_delivery(
        &self,
        id: &str,
        reason: &str,
        retry_at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Owed deliveries due at `now`, across tenants, oldest due first.
    async fn pending_deliveries(
        &self,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<IdpDelivery>, StoreError>;

    /// Counts one hit on `bucket` in the fixed window containing `now`;
    /// `false` when the window already had `max` hits.
    async fn take_rate_limit(
        &self,
        bucket: &str,
        now: OffsetDateTime,
        window_secs: u64,
        max: u32,
    ) -> Result<bool, StoreError>;
}

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

/// Uploaded files (bulk invites): S3 in AWS, a folder locally.
#[async_trait]
pub trait FileStore: Send + Sync {
    /// Stores `bytes` under `key` (replacing what was there).
    async fn put_file(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError>;
    /// The file under `key`; `None` if there is none.
    async fn get_file(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// A URL a client may PUT the file for `key` to, valid for
    /// `expires_in_secs` (S3's presigned PUT); `None` where uploads come
    /// in the request body instead (the local run).
    async fn upload_url(
        &self,
        _key: &str,
        _expires_in_secs: u64,
    ) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
}

/// Tenants. A tenant without a record (one from before tenants were data)
/// is open, with the deployment's defaults.
#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Stores a new tenant; `AlreadyExists` if the id is taken.
    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), StoreError>;

    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError>;

    /// Every tenant, ordered by id.
    async fn list_tenants(&self, page: &PageRequest) -> Result<Page<Tenant>, StoreError>;

    /// Replaces the tenant if the stored one is still at `previous_version`
    /// (`VersionMismatch` otherwise, `NotFound` if there is none), with
    /// `audit` in the same write.
    async fn update_tenant(
        &self,
        previous_version: u64,
        tenant: &Tenant,
        audit: &[AuditEvent],
    ) -> Result<(), StoreError>;
}
