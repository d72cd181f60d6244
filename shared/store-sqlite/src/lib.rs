//! The embedded durable store: one SQLite file (the local run's default),
//! implementing the domain's store ports: [`ProfileStore`] here,
//! [`UserStore`](peak_domain::ports::UserStore) in the `users` module and
//! [`JobStore`](peak_domain::ports::JobStore) in the `jobs` module.
//!
//! rusqlite is synchronous, so the single [`Connection`] lives behind a
//! `Mutex` in an `Arc` and every call runs on tokio's blocking pool
//! ([`tokio::task::spawn_blocking`]): the async runtime is never blocked.
//! Writes run in `BEGIN IMMEDIATE` transactions, so each check-and-write
//! (insert, conditional update, guarded delete) is atomic, also against other
//! processes sharing the file.
//!
//! The schema is an ordered list of migrations ([`SCHEMA_VERSION`] of them),
//! tracked with `PRAGMA user_version`; see [`SqliteStore::open`].

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod accounts;
mod deliveries;
mod idp_work;
mod jobs;
mod tenants;
mod users;

use async_trait::async_trait;
use peak_domain::catalogue::catalogue;
use peak_domain::cursor;
use peak_domain::ids::{ProfileId, TenantId};
use peak_domain::ports::{Page, PageRequest, ProfileStore, StoreError};
use peak_domain::profile::{Profile, ProfileName, ProfileSettings};
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The schema, one migration per entry, applied in order. Entry `i` moves a
/// database from `user_version = i` to `i + 1`.
///
/// Append only: never edit or reorder an entry that has shipped, since files
/// written by earlier builds have already applied it.
const MIGRATIONS: &[&str] = &[
    // 1: profiles.
    "CREATE TABLE profiles (
        tenant_id    TEXT    NOT NULL,
        id           TEXT    NOT NULL,
        name         TEXT    NOT NULL,
        -- the name lowercased (ProfileName::unique_key), for uniqueness
        name_key     TEXT    NOT NULL,
        description  TEXT    NOT NULL,
        -- JSON object: setting id -> option id
        settings     TEXT    NOT NULL,
        version      INTEGER NOT NULL,
        holder_count INTEGER NOT NULL DEFAULT 0 CHECK (holder_count >= 0),
        -- RFC 3339, with the original offset and sub-second precision
        created_at   TEXT    NOT NULL,
        updated_at   TEXT    NOT NULL,
        PRIMARY KEY (tenant_id, id),
        UNIQUE (tenant_id, name_key)
    ) STRICT, WITHOUT ROWID;",
    // 2: users with their memberships, audit trail, outbox, idempotency keys
    // and rate limits.
    "CREATE TABLE users (
        tenant_id                TEXT    NOT NULL,
        id                       TEXT    NOT NULL,
        email                    TEXT    NOT NULL,
        -- Email::normalized: unique per tenant, the email lookup and order
        email_norm               TEXT    NOT NULL,
        pending_email            TEXT,
        pending_email_hash       TEXT,
        pending_email_expires_at TEXT,
        first_name               TEXT    NOT NULL,
        last_name                TEXT    NOT NULL,
        -- User::name_key: the list order
        name_key                 TEXT    NOT NULL,
        account_number           TEXT,
        -- JSON array of account numbers (also rows of user_accounts)
        customer_accounts        TEXT    NOT NULL,
        role                     TEXT    NOT NULL,
        profile_id               TEXT    NOT NULL,
        -- JSON array of extension group ids
        extension_groups         TEXT    NOT NULL,
        status                   TEXT    NOT NULL,
        idp_subject              TEXT,
        invitation_hash          TEXT,
        invitation_state         TEXT,
        invitation_expires_at    TEXT,
        invitation_sent_at       TEXT,
        invitation_accepted_at   TEXT,
        version                  INTEGER NOT NULL,
        -- RFC 3339, with the original offset and sub-second precision
        created_at               TEXT    NOT NULL,
        updated_at               TEXT    NOT NULL,
        PRIMARY KEY (tenant_id, id),
        UNIQUE (tenant_id, email_norm),
        -- NULLs are distinct: any number of users without a subject
        UNIQUE (tenant_id, idp_subject),
        -- the public invitation lookup, across tenants
        UNIQUE (invitation_hash),
        FOREIGN KEY (tenant_id, profile_id) REFERENCES profiles (tenant_id, id),
        CHECK ((pending_email IS NULL) = (pending_email_hash IS NULL)
           AND (pending_email IS NULL) = (pending_email_expires_at IS NULL)),
        CHECK ((invitation_hash IS NULL) = (invitation_state IS NULL)
           AND (invitation_hash IS NULL) = (invitation_expires_at IS NULL)
           AND (invitation_hash IS NULL) = (invitation_sent_at IS NULL)
           AND (invitation_hash IS NOT NULL OR invitation_accepted_at IS NULL))
    ) STRICT;
    -- One index per list order and filter (see users::plan_user_list).
    CREATE INDEX users_by_name    ON users (tenant_id, name_key, id);
    CREATE INDEX users_by_email   ON users (tenant_id, email_norm, id);
    CREATE INDEX users_by_status  ON users (tenant_id, status, name_key, id);
    CREATE INDEX users_by_role    ON users (tenant_id, role, name_key, id);
    CREATE INDEX users_by_profile ON users (tenant_id, profile_id, name_key, id);

    -- One row per (user, customer account): the account filter.
    CREATE TABLE user_accounts (
        tenant_id TEXT NOT NULL,
        account   TEXT NOT NULL,
        -- a copy of users.name_key, kept in step on every write
        name_key  TEXT NOT NULL,
        user_id   TEXT NOT NULL,
        PRIMARY KEY (tenant_id, account, user_id)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX user_accounts_by_name ON user_accounts (tenant_id, account, name_key, user_id);

    -- seq is the write order: lists are newest (highest seq) first. ULID
    -- ids alone cannot order events written within one millisecond.
    CREATE TABLE audit_events (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id   TEXT    NOT NULL,
        id          TEXT    NOT NULL,
        target_user TEXT,
        -- the AuditEvent as JSON
        body        TEXT    NOT NULL,
        UNIQUE (tenant_id, id)
    ) STRICT;
    CREATE INDEX audit_events_by_tenant ON audit_events (tenant_id, seq);
    CREATE INDEX audit_events_by_user   ON audit_events (tenant_id, target_user, seq);

    -- seq is the write order: pending emails go oldest (lowest seq) first.
    CREATE TABLE outbox (
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id TEXT    NOT NULL,
        id        TEXT    NOT NULL,
        -- the OutboxEmail as JSON; dropped (NULL) once sent, since its
        -- links may hold one-time tokens
        body      TEXT,
        sent_at   TEXT,
        UNIQUE (tenant_id, id),
        CHECK ((body IS NULL) = (sent_at IS NOT NULL))
    ) STRICT;
    CREATE INDEX outbox_pending ON outbox (seq) WHERE sent_at IS NULL;

    CREATE TABLE idempotency_keys (
        tenant_id       TEXT    NOT NULL,
        idempotency_key TEXT    NOT NULL,
        fingerprint     TEXT    NOT NULL,
        state           TEXT    NOT NULL CHECK (state IN ('claimed', 'completed')),
        -- the SavedResponse as JSON, once completed
        response        TEXT,
        -- Unix time in milliseconds
        expires_at      INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, idempotency_key),
        CHECK ((state = 'completed') = (response IS NOT NULL))
    ) STRICT;
    CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (tenant_id, expires_at);

    CREATE TABLE rate_limits (
        bucket       TEXT    NOT NULL,
        -- Unix time in seconds, a multiple of the window length
        window_start INTEGER NOT NULL,
        hits         INTEGER NOT NULL CHECK (hits >= 0),
        PRIMARY KEY (bucket, window_start)
    ) STRICT, WITHOUT ROWID;",
    // 3: outbox delivery: leases, retries with backoff, permanent failures.
    // A row is pending while sent_at and failed_at are both NULL, and due
    // when due_ms (Unix ms: a lease's end or a retry time; 0 = at once) has
    // passed. A failed row keeps its body with `data` nulled (the CHECK of
    // migration 2 still holds: body IS NULL exactly when sent).
    "ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0);
    ALTER TABLE outbox ADD COLUMN due_ms INTEGER NOT NULL DEFAULT 0;
    -- the last transient error
    ALTER TABLE outbox ADD COLUMN last_error TEXT;
    -- the provider's message id, once sent
    ALTER TABLE outbox ADD COLUMN message_id TEXT;
    ALTER TABLE outbox ADD COLUMN failed_at TEXT;
    ALTER TABLE outbox ADD COLUMN failure TEXT;
    DROP INDEX outbox_pending;
    CREATE INDEX outbox_due ON outbox (due_ms, seq) WHERE sent_at IS NULL AND failed_at IS NULL;
    CREATE INDEX outbox_failed ON outbox (seq) WHERE failed_at IS NOT NULL;",
    // 4: work owed to the identity provider (one row per user, replaced by
    // a newer change: see peak_domain::idp_work) and the ids of deliveries
    // from it already applied (dedupe, forgotten after expires_ms).
    "CREATE TABLE idp_work (
        tenant_id  TEXT    NOT NULL,
        user_id    TEXT    NOT NULL,
        subject    TEXT    NOT NULL,
        op         TEXT    NOT NULL CHECK (op IN ('sync', 'delete')),
        seq        INTEGER NOT NULL CHECK (seq >= 0),
        attempts   INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        last_error TEXT,
        -- Unix ms: not before (a lease's end or a retry time; 0 = at once)
        due_ms     INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (tenant_id, user_id)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX idp_work_due ON idp_work (due_ms, tenant_id, user_id);
    CREATE TABLE idp_events (
        id         TEXT    PRIMARY KEY,
        expires_ms INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;",
    // 5: the last sign-in the identity provider reported (Unix ms).
    "ALTER TABLE users ADD COLUMN last_login_ms INTEGER;",
    // 6: bulk-invite jobs and their report entries (see src/jobs.rs).
    // due_ms is set exactly while a job is queued or running (Unix ms: a
    // lease's end, 0 = at once), expires_ms exactly once it is finished
    // (updated_at + the retention). Entries expire on their own
    // (expires_ms: when written + the retention).
    "CREATE TABLE bulk_jobs (
        tenant_id     TEXT    NOT NULL,
        id            TEXT    NOT NULL,
        created_by    TEXT    NOT NULL,
        status        TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
        file_key      TEXT    NOT NULL,
        file_name     TEXT    NOT NULL,
        total_rows    INTEGER NOT NULL CHECK (total_rows >= 0),
        next_row      INTEGER NOT NULL CHECK (next_row >= 0),
        invited_count INTEGER NOT NULL CHECK (invited_count >= 0),
        skipped_count INTEGER NOT NULL CHECK (skipped_count >= 0),
        failed_count  INTEGER NOT NULL CHECK (failed_count >= 0),
        error         TEXT,
        -- RFC 3339, with the original offset and sub-second precision
        lease_until   TEXT,
        version       INTEGER NOT NULL,
        created_at    TEXT    NOT NULL,
        updated_at    TEXT    NOT NULL,
        due_ms        INTEGER,
        expires_ms    INTEGER,
        PRIMARY KEY (tenant_id, id),
        CHECK ((due_ms IS NULL) = (status IN ('done', 'failed'))),
        CHECK ((expires_ms IS NULL) = (due_ms IS NOT NULL))
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX bulk_jobs_runnable ON bulk_jobs (due_ms, id, tenant_id) WHERE due_ms IS NOT NULL;
    CREATE INDEX bulk_jobs_expiry ON bulk_jobs (expires_ms) WHERE expires_ms IS NOT NULL;
    CREATE TABLE bulk_job_entries (
        tenant_id   TEXT    NOT NULL,
        job_id      TEXT    NOT NULL,
        row_num     INTEGER NOT NULL CHECK (row_num >= 0),
        email       TEXT    NOT NULL,
        outcome     TEXT    NOT NULL,
        column_name TEXT,
        code        TEXT    NOT NULL,
        reason      TEXT    NOT NULL,
        expires_ms  INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, job_id, row_num)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX bulk_job_entries_expiry ON bulk_job_entries (expires_ms);",
    // 7: a claimed idempotency key's lease (Unix ms): a claim its request
    // never completed or released (it crashed) is taken over once this
    // passes. NULL for keys claimed before this column (they wait for
    // expires_at).
    "ALTER TABLE idempotency_keys ADD COLUMN lease_expires_at INTEGER;",
    // 8: tenants as data (peak_domain::tenant): the record as JSON.
    "CREATE TABLE tenants (
        id      TEXT    NOT NULL PRIMARY KEY,
        body    TEXT    NOT NULL,
        version INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;",
    // 9: owed identity-provider work keeps its one-off steps (sign-out,
    // brute-force unblock) and, once done, stays as the user's sync state
    // (done = 1, with notes of steps the provider does not offer);
    // deliveries from the provider are recorded before they are applied
    // (replacing the bare dedupe ids of migration 4); the last sign-in
    // moves out of the user row, so no user write can carry an old copy
    // over a newer one.
    "ALTER TABLE idp_work ADD COLUMN end_sessions INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE idp_work ADD COLUMN clear_login_block INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE idp_work ADD COLUMN done INTEGER NOT NULL DEFAULT 0;
    -- JSON array of strings, once done
    ALTER TABLE idp_work ADD COLUMN notes TEXT;
    DROP INDEX idp_work_due;
    CREATE INDEX idp_work_owed ON idp_work (due_ms, tenant_id, user_id) WHERE done = 0;
    DROP TABLE idp_events;
    CREATE TABLE idp_deliveries (
        id             TEXT    PRIMARY KEY,
        kind           TEXT    NOT NULL,
        subject        TEXT    NOT NULL,
        tenant         TEXT,
        occurred_ms    INTEGER NOT NULL,
        pushed_blocked INTEGER,
        done           INTEGER NOT NULL DEFAULT 0,
        outcome        TEXT,
        attempts       INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        last_error     TEXT,
        -- Unix ms: not before (a lease's end or a retry time; 0 = at once)
        due_ms         INTEGER NOT NULL DEFAULT 0,
        expires_ms     INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX idp_deliveries_owed ON idp_deliveries (due_ms, id) WHERE done = 0;
    CREATE TABLE user_logins (
        tenant_id     TEXT    NOT NULL,
        user_id       TEXT    NOT NULL,
        last_login_ms INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, user_id)
    ) STRICT, WITHOUT ROWID;
    INSERT INTO user_logins (tenant_id, user_id, last_login_ms)
        SELECT tenant_id, id, last_login_ms FROM users WHERE last_login_ms IS NOT NULL;
    ALTER TABLE users DROP COLUMN last_login_ms;",
    // 10: the customer-account directory (see src/accounts.rs).
    accounts::MIGRATION,
];

/// The schema version this build writes and understands: the number of
/// migrations it knows. Stored in the file as `PRAGMA user_version`.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// How long a call waits for another connection's write lock before it
/// gives up with [`StoreError::Unavailable`].
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The cursor list name for profile pages.
const PROFILES_LIST: &str = "profiles";

const PROFILE_COLUMNS: &str =
    "tenant_id, id, name, description, settings, version, holder_count, created_at, updated_at";

/// A [`ProfileStore`], [`UserStore`](peak_domain::ports::UserStore) and
/// [`JobStore`](peak_domain::ports::JobStore) backed by one SQLite database.
///
/// Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// Where the data lives, `None` in memory. For `Debug` only.
    path: Option<Arc<PathBuf>>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let location = match &self.path {
            Some(p) => p.display().to_string(),
            None => ":memory:".to_owned(),
        };
        f.debug_struct("SqliteStore")
            .field("location", &location)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating it and its parent directory if missing) the database
    /// file at `path`, switches it to WAL journaling with foreign keys on and
    /// a busy timeout, and brings its schema up to date.
    ///
    /// A file whose schema is newer than this build knows (written by a later
    /// release) is refused with [`StoreError::Backend`], leaving it
    /// untouched.
    ///
    /// Blocking: call it at start-up, or from `spawn_blocking`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Backend(format!(
                    "cannot create the directory {} for the database: {e}",
                    parent.display()
                ))
            })?;
        }
        let conn = Connection::open(path)
            .map_err(|e| open_error(&format!("cannot open the database {}", path.display()), e))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db_error)?;
        // Refuse a newer file before changing anything in it (`migrate`
        // checks again, inside its transaction).
        check_not_newer(schema_version(&conn)?)?;
        // WAL is a property of the file and survives reopening. Changing the
        // journal mode needs the file to be otherwise unused; if another
        // process has it open in WAL already this is a no-op.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(db_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "cannot switch {} to WAL journaling (journal mode is {mode})",
                path.display()
            )));
        }
        // With WAL, FULL also syncs on every commit: a committed write
        // survives a power loss, not only a crash of this process.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db_error)?;
        Self::prepare(conn, Some(path.to_path_buf()))
    }

    /// A private database that lives as long as this store (and its clones):
    /// for tests and throwaway runs.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory()
            .map_err(|e| open_error("cannot open an in-memory database", e))?;
        Self::prepare(conn, None)
    }

    fn prepare(mut conn: Connection, path: Option<PathBuf>) -> Result<Self, StoreError> {
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(db_error)?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path: path.map(Arc::new),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let job = move || {
            // A panic while the lock was held cannot leave a half-done write
            // behind (an open transaction rolls back when dropped), so the
            // connection is still good: carry on rather than fail forever.
            let mut guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut guard)
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime
                .spawn_blocking(job)
                .await
                .map_err(|e| StoreError::Backend(format!("store task did not complete: {e}")))?,
            // Polled outside tokio (no blocking pool to use): run in place
            // rather than panic.
            Err(_) => job(),
        }
    }
}

/// Brings the schema up to `SCHEMA_VERSION`, all pending migrations in one
/// transaction (so a failure leaves the file as it was).
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    // IMMEDIATE: two processes opening the same file at once take turns, and
    // the second one sees the first one's work when it reads the version.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_error)?;
    let current = check_not_newer(schema_version(&tx)?)?;
    if current == MIGRATIONS.len() {
        return Ok(());
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        tx.execute_batch(sql)
            .map_err(|e| open_error(&format!("schema migration {} failed", index + 1), e))?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(db_error)?;
    tx.commit().map_err(db_error)
}

fn schema_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(db_error)
}

/// The number of migrations already applied, or a clear error when the file
/// was written by a later release than this one.
fn check_not_newer(current: i64) -> Result<usize, StoreError> {
    let known = i64::from(SCHEMA_VERSION);
    if current > known {
        return Err(StoreError::Backend(format!(
            "the database schema is version {current}, newer than version {known}, \
             the latest this build knows: the file was written by a later release; \
             upgrade this program (or point it at another database file)"
        )));
    }
    usize::try_from(current).map_err(|_| {
        StoreError::Backend(format!("the database schema version {current} is invalid"))
    })
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Busy or locked → `Unavailable` (worth retrying); anything else → `Backend`.
fn db_error(e: rusqlite::Error) -> StoreError {
    if is_busy(&e) {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Backend(e.to_string())
    }
}

fn open_error(context: &str, e: rusqlite::Error) -> StoreError {
    match db_error(e) {
        StoreError::Unavailable(m) => StoreError::Unavailable(format!("{context}: {m}")),
        other => StoreError::Backend(format!("{context}: {other}")),
    }
}

/// A UNIQUE constraint (not the primary key, not a CHECK) failed.
fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

fn to_i64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::Backend(format!("{what} {value} is too large to store")))
}

fn to_u64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value)
        .map_err(|_| StoreError::Backend(format!("stored {what} {value} is negative")))
}

fn format_time(t: OffsetDateTime, what: &str) -> Result<String, StoreError> {
    t.format(&Rfc3339)
        .map_err(|e| StoreError::Backend(format!("cannot store {what} {t}: {e}")))
}

fn parse_time(text: &str, what: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| StoreError::Backend(format!("stored {what} {text:?} is not RFC 3339: {e}")))
}

/// A profile's columns as bound to a statement.
struct ProfileRow {
    tenant_id: String,
    id: String,
    name: String,
    name_key: String,
    description: String,
    settings: String,
    version: i64,
    holder_count: i64,
    created_at: String,
    updated_at: String,
}

impl ProfileRow {
    fn from_profile(p: &Profile) -> Result<Self, StoreError> {
        let settings = serde_json::to_string(p.settings.as_map())
            .map_err(|e| StoreError::Backend(format!("cannot encode settings: {e}")))?;
        Ok(Self {
            tenant_id: p.tenant_id.as_str().to_owned(),
            id: p.id.as_str().to_owned(),
            name: p.name.as_str().to_owned(),
            name_key: p.name.unique_key(),
            description: p.description.clone(),
            settings,
            version: to_i64(p.version, "version")?,
            holder_count: to_i64(p.holder_count, "holder count")?,
            created_at: format_time(p.created_at, "created_at")?,
            updated_at: format_time(p.updated_at, "updated_at")?,
        })
    }

    /// Reads the columns of [`PROFILE_COLUMNS`], in that order.
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            tenant_id: row.get(0)?,
            id: row.get(1)?,
            name: row.get(2)?,
            // Derived from the name; not needed to rebuild the profile.
            name_key: String::new(),
            description: row.get(3)?,
            settings: row.get(4)?,
            version: row.get(5)?,
            holder_count: row.get(6)?,
            created_at: row.get(7)?,
            updated_at: row.get(8)?,
        })
    }

    fn into_profile(self) -> Result<Profile, StoreError> {
        let bad = |what: &str, value: &str| {
            StoreError::Backend(format!("stored {what} {value:?} is invalid"))
        };
        let tenant_id =
            TenantId::parse(&self.tenant_id).ok_or_else(|| bad("tenant id", &self.tenant_id))?;
        let id = ProfileId::parse(&self.id).ok_or_else(|| bad("profile id", &self.id))?;
        let name = ProfileName::parse(&self.name).map_err(|_| bad("profile name", &self.name))?;
        let stored: BTreeMap<String, String> = serde_json::from_str(&self.settings)
            .map_err(|e| StoreError::Backend(format!("stored settings are not valid: {e}")))?;
        Ok(Profile {
            tenant_id,
            id,
            name,
            description: self.description,
            settings: ProfileSettings::from_stored(catalogue(), stored),
            version: to_u64(self.version, "version")?,
            holder_count: to_u64(self.holder_count, "holder count")?,
            created_at: parse_time(&self.created_at, "created_at")?,
            updated_at: parse_time(&self.updated_at, "updated_at")?,
        })
    }
}

/// The profile's `(version, holder_count)`, if it exists.
fn profile_state(
    conn: &Connection,
    tenant: &str,
    id: &str,
) -> Result<Option<(i64, i64)>, StoreError> {
    conn.query_row(
        "SELECT version, holder_count FROM profiles WHERE tenant_id = ?1 AND id = ?2",
        params![tenant, id],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
    .optional()
    .map_err(db_error)
}

#[async_trait]
impl ProfileStore for SqliteStore {
    async fn insert_profile(&self, profile: &Profile) -> Result<(), StoreError> {
        let row = ProfileRow::from_profile(profile)?;
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            // The id first, so a clash on both reports `AlreadyExists`.
            if profile_state(&tx, &row.tenant_id, &row.id)?.is_some() {
                return Err(StoreError::AlreadyExists);
            }
            tx.execute(
                "INSERT INTO profiles (tenant_id, id, name, name_key, description, settings,
                                       version, holder_count, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    row.tenant_id,
                    row.id,
                    row.name,
                    row.name_key,
                    row.description,
                    row.settings,
                    row.version,
                    row.holder_count,
                    row.created_at,
                    row.updated_at,
                ],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::NameTaken
                } else {
                    db_error(e)
                }
            })?;
            tx.commit().map_err(db_error)
        })
        .await
    }

    async fn get_profile(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
    ) -> Result<Option<Profile>, StoreError> {
        let tenant = tenant.as_str().to_owned();
        let id = id.as_str().to_owned();
        self.run(move |conn| {
            let row = conn
                .query_row(
                    &format!(
                        "SELECT {PROFILE_COLUMNS} FROM profiles WHERE tenant_id = ?1 AND id = ?2"
                    ),
                    params![tenant, id],
                    ProfileRow::read,
                )
                .optional()
                .map_err(db_error)?;
            row.map(ProfileRow::into_profile).transpose()
        })
        .await
    }

    /// A `limit` outside `1..=PageRequest::MAX_LIMIT` is clamped into it.
    async fn list_profiles(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<Profile>, StoreError> {
        let after = match &page.cursor {
            Some(raw) => cursor::decode(tenant, PROFILES_LIST, raw)?,
            // Every id sorts after the empty string.
            None => String::new(),
        };
        let limit = page.limit.clamp(1, PageRequest::MAX_LIMIT) as usize;
        let tenant = tenant.clone();
        self.run(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {PROFILE_COLUMNS} FROM profiles
                     WHERE tenant_id = ?1 AND id > ?2
                     ORDER BY id
                     LIMIT ?3"
                ))
                .map_err(db_error)?;
            // One more than asked for: tells whether there is a next page.
            let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
            let mut rows = stmt
                .query_map(params![tenant.as_str(), after, fetch], ProfileRow::read)
                .map_err(db_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_error)?;
            let more = rows.len() > limit;
            rows.truncate(limit);
            let items = rows
                .into_iter()
                .map(ProfileRow::into_profile)
                .collect::<Result<Vec<_>, _>>()?;
            let next_cursor = match items.last() {
                Some(last) if more => {
                    Some(cursor::encode(&tenant, PROFILES_LIST, last.id.as_str()))
                }
                _ => None,
            };
            Ok(Page { items, next_cursor })
        })
        .await
    }

    /// Writes every field of `updated` but the holder count (kept as stored),
    /// if the stored version is `previous.version`. `updated` must have the
    /// same tenant and id as `previous`.
    async fn update_profile(
        &self,
        previous: &Profile,
        updated: &Profile,
    ) -> Result<(), StoreError> {
        if updated.tenant_id != previous.tenant_id || updated.id != previous.id {
            return Err(StoreError::Backend(
                "an update cannot change a profile's tenant or id".to_owned(),
            ));
        }
        let row = ProfileRow::from_profile(updated)?;
        let expected = to_i64(previous.version, "version")?;
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            let changed = tx
                .execute(
                    "UPDATE profiles
                     SET name = ?3, name_key = ?4, description = ?5, settings = ?6,
                         version = ?7, created_at = ?8, updated_at = ?9
                     WHERE tenant_id = ?1 AND id = ?2 AND version = ?10",
                    params![
                        row.tenant_id,
                        row.id,
                        row.name,
                        row.name_key,
                        row.description,
                        row.settings,
                        row.version,
                        row.created_at,
                        row.updated_at,
                        expected,
                    ],
                )
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::NameTaken
                    } else {
                        db_error(e)
                    }
                })?;
            if changed == 0 {
                return Err(match profile_state(&tx, &row.tenant_id, &row.id)? {
                    None => StoreError::NotFound,
                    Some(_) => StoreError::VersionMismatch,
                });
            }
            tx.commit().map_err(db_error)
        })
        .await
    }

    /// Checks, in this order: the profile exists (`NotFound`), the version
    /// is `expected_version` if given (`VersionMismatch`), nobody holds it
    /// (`InUse`).
    async fn delete_profile(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError> {
        let tenant = tenant.as_str().to_owned();
        let id = id.as_str().to_owned();
        let expected = expected_version.map(|v| to_i64(v, "version")).transpose()?;
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            let Some((version, holders)) = profile_state(&tx, &tenant, &id)? else {
                return Err(StoreError::NotFound);
            };
            if expected.is_some_and(|v| v != version) {
                return Err(StoreError::VersionMismatch);
            }
            if holders > 0 {
                return Err(StoreError::InUse {
                    holders: to_u64(holders, "holder count")?,
                });
            }
            tx.execute(
                "DELETE FROM profiles WHERE tenant_id = ?1 AND id = ?2",
                params![tenant, id],
            )
            .map_err(db_error)?;
            tx.commit().map_err(db_error)
        })
        .await
    }

    /// The count is clamped at zero: a decrement below it leaves 0 (and
    /// succeeds) rather than failing the user change that asked for it.
    async fn change_profile_holders(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
        delta: i64,
    ) -> Result<(), StoreError> {
        let tenant = tenant.as_str().to_owned();
        let id = id.as_str().to_owned();
        self.run(move |conn| {
            // One statement: atomic on its own. Adding in SQL (not read,
            // add, write) keeps concurrent changes from losing each other.
            let changed = conn
                .execute(
                    "UPDATE profiles SET holder_count = MAX(0, holder_count + ?3)
                     WHERE tenant_id = ?1 AND id = ?2",
                    params![tenant, id, delta],
                )
                .map_err(db_error)?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_exactly_with_their_offset() {
        let t = time::macros::datetime!(2024-02-29 23:59:58.123456789 +05:30);
        let text = format_time(t, "t").unwrap();
        let back = parse_time(&text, "t").unwrap();
        assert_eq!(back, t);
        assert_eq!(back.offset(), t.offset());
        assert_eq!(back.nanosecond(), 123_456_789);
    }

    #[test]
    fn migrations_are_recorded_and_not_rerun() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, i64::from(SCHEMA_VERSION));
        // A second run is a no-op (re-running CREATE TABLE would fail).
        migrate(&mut conn).unwrap();
    }

    #[test]
    fn busy_and_locked_are_unavailable() {
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(matches!(db_error(busy), StoreError::Unavailable(_)));
        let locked = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_LOCKED),
            None,
        );
        assert!(matches!(db_error(locked), StoreError::Unavailable(_)));
        assert!(matches!(
            db_error(rusqlite::Error::QueryReturnedNoRows),
            StoreError::Backend(_)
        ));
    }
}
