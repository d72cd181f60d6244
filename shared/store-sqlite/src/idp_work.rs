//! Work owed to the identity provider (migrations 4 and 7): [`IdpWorkQueue`]
//! for [`SqliteStore`], and the upsert the user write (`user_write.rs`)
//! runs in its transaction.

use crate::SqliteStore;
use crate::sql::{db_error, from_unix_millis, to_i64, to_json, to_u64, unix_millis};
use async_trait::async_trait;
use peak_domain::idp_work::{IdpOp, IdpSteps};
use peak_domain::idp_work::{IdpWork, IdpWorkItem};
use peak_domain::ids::TenantId;
use peak_domain::model::user::UserId;
use peak_domain::outbox::failure_reason;
use peak_domain::ports::{IdpWorkQueue, StoreError};
use rusqlite::Row;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use time::OffsetDateTime;

const COLUMNS: &str = "tenant_id, user_id, subject, op, seq, attempts, last_error, due_ms, \
                       end_sessions, clear_login_block, done, notes";

/// Records (or replaces) a user's owed work, inside the user write's
/// transaction: a newer change starts afresh (no attempts, due at once),
/// keeping the steps of a record still owed.
pub(crate) fn upsert(tx: &Connection, work: &IdpWork) -> Result<(), StoreError> {
    let seq = i64::try_from(work.seq)
        .map_err(|_| StoreError::Backend("owed work seq out of range".into()))?;
    tx.prepare_cached(
        "INSERT INTO idp_work (tenant_id, user_id, subject, op, seq, end_sessions, clear_login_block)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (tenant_id, user_id) DO UPDATE SET
             subject = excluded.subject, op = excluded.op, seq = excluded.seq,
             end_sessions = excluded.end_sessions OR (done = 0 AND end_sessions),
             clear_login_block = excluded.clear_login_block OR (done = 0 AND clear_login_block),
             attempts = 0, last_error = NULL, due_ms = 0, done = 0, notes = NULL",
    )
    .map_err(db_error)?
    .execute(params![
        work.tenant_id.as_str(),
        work.user_id.as_str(),
        work.subject,
        work.op.as_str(),
        seq,
        work.steps.end_sessions,
        work.steps.clear_login_block,
    ])
    .map_err(db_error)?;
    Ok(())
}

type Raw = (
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    i64,
    bool,
    bool,
    bool,
    Option<String>,
);

fn item(row: &Row<'_>) -> rusqlite::Result<Raw> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
        row.get(10)?,
        row.get(11)?,
    ))
}

fn decode(raw: Raw) -> Result<IdpWorkItem, StoreError> {
    let (tenant, user, subject, op, seq, attempts, last_error, due_ms, end, clear, done, notes) =
        raw;
    let bad = |what: &str| StoreError::Backend(format!("stored owed work has a bad {what}"));
    Ok(IdpWorkItem {
        work: IdpWork {
            tenant_id: TenantId::parse(&tenant).ok_or_else(|| bad("tenant"))?,
            user_id: UserId::parse(&user).ok_or_else(|| bad("user id"))?,
            subject,
            op: IdpOp::parse(&op).ok_or_else(|| bad("op"))?,
            seq: to_u64(seq, "seq")?,
            steps: IdpSteps {
                end_sessions: end,
                clear_login_block: clear,
            },
        },
        attempts: u32::try_from(attempts).map_err(|_| bad("attempt count"))?,
        last_error,
        due_at: from_unix_millis(due_ms)?,
        done,
        notes: match notes {
            Some(json) => serde_json::from_str(&json).map_err(|_| bad("notes"))?,
            None => Vec::new(),
        },
    })
}

fn select(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<IdpWorkItem>, StoreError> {
    conn.prepare_cached(sql)
        .map_err(db_error)?
        .query_map(args, item)
        .map_err(db_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_error)?
        .into_iter()
        .map(decode)
        .collect()
}

pub(crate) fn pending(
    conn: &mut Connection,
    limit: u32,
    now_ms: i64,
) -> Result<Vec<IdpWorkItem>, StoreError> {
    select(
        conn,
        &format!(
            "SELECT {COLUMNS} FROM idp_work INDEXED BY idp_work_owed
             WHERE done = 0 AND due_ms <= ?1 ORDER BY due_ms, tenant_id, user_id LIMIT ?2"
        ),
        params![now_ms, i64::from(limit)],
    )
}

pub(crate) fn list(conn: &mut Connection, limit: u32) -> Result<Vec<IdpWorkItem>, StoreError> {
    select(
        conn,
        &format!(
            "SELECT {COLUMNS} FROM idp_work INDEXED BY idp_work_owed
             WHERE done = 0 ORDER BY due_ms, tenant_id, user_id LIMIT ?1"
        ),
        params![i64::from(limit)],
    )
}

/// One user's record, if any.
pub(crate) fn of(
    conn: &mut Connection,
    tenant: &TenantId,
    user: &UserId,
) -> Result<Option<IdpWorkItem>, StoreError> {
    Ok(select(
        conn,
        &format!("SELECT {COLUMNS} FROM idp_work WHERE tenant_id = ?1 AND user_id = ?2"),
        params![tenant.as_str(), user.as_str()],
    )?
    .into_iter()
    .next())
}

pub(crate) fn claim(
    conn: &mut Connection,
    tenant: &str,
    user: &str,
    now_ms: i64,
    until_ms: i64,
) -> Result<Option<IdpWorkItem>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_error)?;
    let found = tx
        .query_row(
            &format!("SELECT {COLUMNS} FROM idp_work WHERE tenant_id = ?1 AND user_id = ?2"),
            params![tenant, user],
            item,
        )
        .optional()
        .map_err(db_error)?;
    let Some(raw) = found else {
        return Ok(None);
    };
    if raw.7 > now_ms || raw.10 {
        return Ok(None);
    }
    tx.execute(
        "UPDATE idp_work SET due_ms = ?3 WHERE tenant_id = ?1 AND user_id = ?2",
        params![tenant, user, until_ms],
    )
    .map_err(db_error)?;
    tx.commit().map_err(db_error)?;
    let mut claimed = decode(raw)?;
    claimed.due_at = from_unix_millis(until_ms)?;
    Ok(Some(claimed))
}

fn seq(work: &IdpWork) -> Result<i64, StoreError> {
    i64::try_from(work.seq).map_err(|_| StoreError::Backend("owed work seq out of range".into()))
}

/// A finished delete leaves nothing (the login is gone); a finished sync
/// stays, done, with its notes, as the user's sync state.
pub(crate) fn complete(
    conn: &mut Connection,
    work: &IdpWork,
    notes: &str,
) -> Result<bool, StoreError> {
    let (tenant, user, seq, op) = (
        work.tenant_id.as_str(),
        work.user_id.as_str(),
        seq(work)?,
        work.op.as_str(),
    );
    let changed = match work.op {
        IdpOp::Delete => conn.execute(
            "DELETE FROM idp_work
             WHERE tenant_id = ?1 AND user_id = ?2 AND seq = ?3 AND op = ?4 AND done = 0",
            params![tenant, user, seq, op],
        ),
        IdpOp::Sync => conn.execute(
            "UPDATE idp_work SET done = 1, notes = ?5, attempts = 0, last_error = NULL,
                 end_sessions = 0, clear_login_block = 0
             WHERE tenant_id = ?1 AND user_id = ?2 AND seq = ?3 AND op = ?4 AND done = 0",
            params![tenant, user, seq, op, notes],
        ),
    }
    .map_err(db_error)?;
    Ok(changed > 0)
}

pub(crate) fn fail(
    conn: &mut Connection,
    work: &IdpWork,
    reason: &str,
    retry_at_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE idp_work SET attempts = attempts + 1, last_error = ?5, due_ms = ?6
         WHERE tenant_id = ?1 AND user_id = ?2 AND seq = ?3 AND op = ?4 AND done = 0",
        params![
            work.tenant_id.as_str(),
            work.user_id.as_str(),
            seq(work)?,
            work.op.as_str(),
            reason,
            retry_at_ms
        ],
    )
    .map_err(db_error)?;
    Ok(())
}

#[async_trait]
impl IdpWorkQueue for SqliteStore {
    /// Windows start at multiples of `window_secs` since the Unix epoch (a
    /// zero window counts as one second). Counting also forgets the
    /// bucket's earlier windows.
    async fn pending_idp_work(
        &self,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<IdpWorkItem>, StoreError> {
        let now = unix_millis(now);
        self.run(move |conn| crate::idp_work::pending(conn, limit, now))
            .await
    }

    async fn claim_idp_work(
        &self,
        tenant: &TenantId,
        user: &UserId,
        now: OffsetDateTime,
        lease_secs: u64,
    ) -> Result<Option<IdpWorkItem>, StoreError> {
        let (tenant, user) = (tenant.as_str().to_owned(), user.as_str().to_owned());
        let now = unix_millis(now);
        let until = now.saturating_add(to_i64(lease_secs, "lease")?.saturating_mul(1000));
        self.run(move |conn| crate::idp_work::claim(conn, &tenant, &user, now, until))
            .await
    }

    async fn complete_idp_work(
        &self,
        work: &IdpWork,
        notes: &[String],
    ) -> Result<bool, StoreError> {
        let work = work.clone();
        let notes = to_json(notes, "notes")?;
        self.run(move |conn| crate::idp_work::complete(conn, &work, &notes))
            .await
    }

    async fn fail_idp_work(
        &self,
        work: &IdpWork,
        reason: &str,
        retry_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let work = work.clone();
        let reason = failure_reason(reason);
        let retry_at = unix_millis(retry_at);
        self.run(move |conn| crate::idp_work::fail(conn, &work, &reason, retry_at))
            .await
    }

    async fn list_idp_work(&self, limit: u32) -> Result<Vec<IdpWorkItem>, StoreError> {
        self.run(move |conn| crate::idp_work::list(conn, limit))
            .await
    }

    async fn idp_work_of(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Option<IdpWorkItem>, StoreError> {
        let (tenant, user) = (tenant.clone(), user.clone());
        self.run(move |conn| crate::idp_work::of(conn, &tenant, &user))
            .await
    }
}
