//! Deliveries from the identity provider, recorded before they are applied
//! (migration 7; see `peak_domain::idp_events`).

use crate::SqliteStore;
use crate::sql::{db_error, from_unix_millis, to_i64, unix_millis};
use async_trait::async_trait;
use peak_domain::model::delivery::IdpEventKind;
use peak_domain::model::delivery::{IdpDelivery, Recorded};
use peak_domain::outbox::failure_reason;
use peak_domain::ports::{DeliveryLog, StoreError};
use rusqlite::Row;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use time::OffsetDateTime;

const COLUMNS: &str = "id, kind, subject, tenant, occurred_ms, pushed_blocked, attempts";

fn read(row: &Row<'_>) -> rusqlite::Result<(IdpRaw, i64)> {
    Ok((
        (
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
            row.get(5)?,
        ),
        row.get(6)?,
    ))
}

type IdpRaw = (String, String, String, Option<String>, i64, Option<bool>);

fn decode(
    (id, kind, subject, tenant, occurred_ms, pushed_blocked): IdpRaw,
) -> Result<IdpDelivery, StoreError> {
    Ok(IdpDelivery {
        id,
        kind: IdpEventKind::parse(&kind)
            .ok_or_else(|| StoreError::Backend("stored delivery has a bad kind".into()))?,
        subject,
        tenant,
        occurred_at: from_unix_millis(occurred_ms)?,
        pushed_blocked,
    })
}

/// One conditional insert: a delivery recorded before (and not expired)
/// stays as it is.
pub(crate) fn record(
    conn: &mut Connection,
    d: &IdpDelivery,
    now_ms: i64,
    expires_ms: i64,
) -> Result<Recorded, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_error)?;
    tx.execute(
        "DELETE FROM idp_deliveries WHERE id = ?1 AND expires_ms <= ?2",
        params![d.id, now_ms],
    )
    .map_err(db_error)?;
    let inserted = tx
        .execute(
            "INSERT INTO idp_deliveries (id, kind, subject, tenant, occurred_ms, pushed_blocked, expires_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
            params![
                d.id,
                d.kind.as_str(),
                d.subject,
                d.tenant,
                crate::sql::unix_millis(d.occurred_at),
                d.pushed_blocked,
                expires_ms
            ],
        )
        .map_err(db_error)?;
    let answer = if inserted > 0 {
        Recorded::New
    } else {
        let done: bool = tx
            .query_row(
                "SELECT done FROM idp_deliveries WHERE id = ?1",
                params![d.id],
                |r| r.get(0),
            )
            .map_err(db_error)?;
        if done { Recorded::Done } else { Recorded::Owed }
    };
    tx.commit().map_err(db_error)?;
    Ok(answer)
}

pub(crate) fn claim(
    conn: &mut Connection,
    id: &str,
    now_ms: i64,
    until_ms: i64,
) -> Result<Option<(IdpDelivery, u32)>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_error)?;
    let found = tx
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM idp_deliveries WHERE id = ?1 AND done = 0 AND due_ms <= ?2"
            ),
            params![id, now_ms],
            read,
        )
        .optional()
        .map_err(db_error)?;
    let Some((raw, attempts)) = found else {
        return Ok(None);
    };
    tx.execute(
        "UPDATE idp_deliveries SET due_ms = ?2 WHERE id = ?1",
        params![id, until_ms],
    )
    .map_err(db_error)?;
    tx.commit().map_err(db_error)?;
    Ok(Some((
        decode(raw)?,
        u32::try_from(attempts).unwrap_or(u32::MAX),
    )))
}

pub(crate) fn complete(conn: &mut Connection, id: &str, outcome: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE idp_deliveries SET done = 1, outcome = ?2, last_error = NULL WHERE id = ?1",
        params![id, outcome],
    )
    .map_err(db_error)?;
    Ok(())
}

pub(crate) fn fail(
    conn: &mut Connection,
    id: &str,
    reason: &str,
    retry_at_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE idp_deliveries SET attempts = attempts + 1, last_error = ?2, due_ms = ?3
         WHERE id = ?1 AND done = 0",
        params![id, reason, retry_at_ms],
    )
    .map_err(db_error)?;
    Ok(())
}

pub(crate) fn pending(
    conn: &mut Connection,
    limit: u32,
    now_ms: i64,
) -> Result<Vec<IdpDelivery>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM idp_deliveries INDEXED BY idp_deliveries_owed
         WHERE done = 0 AND due_ms <= ?1 ORDER BY due_ms, id LIMIT ?2"
    ))
    .map_err(db_error)?
    .query_map(params![now_ms, i64::from(limit)], read)
    .map_err(db_error)?
    .collect::<Result<Vec<_>, _>>()
    .map_err(db_error)?
    .into_iter()
    .map(|(raw, _)| decode(raw))
    .collect()
}

#[async_trait]
impl DeliveryLog for SqliteStore {
    async fn record_delivery(
        &self,
        delivery: &IdpDelivery,
        now: OffsetDateTime,
        ttl_secs: u64,
    ) -> Result<Recorded, StoreError> {
        let delivery = delivery.clone();
        let now = unix_millis(now);
        let expires = now.saturating_add(to_i64(ttl_secs, "ttl")?.saturating_mul(1000));
        self.run(move |conn| crate::deliveries::record(conn, &delivery, now, expires))
            .await
    }

    async fn claim_delivery(
        &self,
        id: &str,
        now: OffsetDateTime,
        lease_secs: u64,
    ) -> Result<Option<(IdpDelivery, u32)>, StoreError> {
        let id = id.to_owned();
        let now = unix_millis(now);
        let until = now.saturating_add(to_i64(lease_secs, "lease")?.saturating_mul(1000));
        self.run(move |conn| crate::deliveries::claim(conn, &id, now, until))
            .await
    }

    async fn complete_delivery(&self, id: &str, outcome: &str) -> Result<(), StoreError> {
        let (id, outcome) = (id.to_owned(), outcome.to_owned());
        self.run(move |conn| crate::deliveries::complete(conn, &id, &outcome))
            .await
    }

    async fn fail_delivery(
        &self,
        id: &str,
        reason: &str,
        retry_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let (id, reason) = (id.to_owned(), failure_reason(reason));
        let retry_at = unix_millis(retry_at);
        self.run(move |conn| crate::deliveries::fail(conn, &id, &reason, retry_at))
            .await
    }

    async fn pending_deliveries(
        &self,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<IdpDelivery>, StoreError> {
        let now = unix_millis(now);
        self.run(move |conn| crate::deliveries::pending(conn, limit, now))
            .await
    }
}
