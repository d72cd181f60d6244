//! The SQLite schema: an ordered list of migrations, tracked with
//! `PRAGMA user_version`.

use crate::sql::{db_error, open_error};
use peak_domain::ports::StoreError;
use rusqlite::{Connection, TransactionBehavior};

/// The schema, one migration per entry, applied in order. Entry `i` moves a
/// database from `user_version = i` to `i + 1`.
///
/// Append only: never edit or reorder an entry that has shipped, since files
/// written by earlier builds have already applied it.
pub(crate) const MIGRATIONS: &[&str] = &[
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
    crate::accounts::MIGRATION,
    // 11: failed emails per tenant (for the tenant's admins: no other
    // tenant's rows read) and retried ones taken off the failed lists
    // (retried_at set; the row stays as the record of the failure).
    "ALTER TABLE outbox ADD COLUMN retried_at TEXT;
    DROP INDEX outbox_failed;
    CREATE INDEX outbox_failed ON outbox (seq) WHERE failed_at IS NOT NULL AND retried_at IS NULL;
    CREATE INDEX outbox_failed_by_tenant ON outbox (tenant_id, id)
        WHERE failed_at IS NOT NULL AND retried_at IS NULL;",
    // 12: job kinds (bulk invite, bulk update, account import share one
    // runner); every job stored before is an invite, the only kind there
    // was.
    "ALTER TABLE bulk_jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'invite';",
    // 13: dry runs are jobs (the HTTP functions no longer parse files, the
    // runner does), and a job the runner failed for its file keeps the
    // error's code beside its text. Jobs stored before are not dry runs.
    "ALTER TABLE bulk_jobs ADD COLUMN dry_run INTEGER NOT NULL DEFAULT 0 CHECK (dry_run IN (0, 1));
     ALTER TABLE bulk_jobs ADD COLUMN error_code TEXT;",
];

/// The schema version this build writes and understands: the number of
/// migrations it knows. Stored in the file as `PRAGMA user_version`.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings the schema up to `SCHEMA_VERSION`, all pending migrations in one
/// transaction (so a failure leaves the file as it was).
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
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

pub(crate) fn schema_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(db_error)
}

/// The number of migrations already applied, or a clear error when the file
/// was written by a later release than this one.
pub(crate) fn check_not_newer(current: i64) -> Result<usize, StoreError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
