//! [`OutboxQueue`] for [`SqliteStore`]: the emails written with user
//! changes, claimed and settled by the mailer.

use crate::SqliteStore;
use crate::sql::{db_error, format_time, from_json, from_unix_millis, parse_time, unix_millis};
use async_trait::async_trait;
use peak_domain::cursor;
use peak_domain::ids::TenantId;
use peak_domain::outbox::{FailedEmail, OutboxClaim, OutboxEmail, failure_reason};
use peak_domain::ports::{OutboxQueue, Page, PageRequest, StoreError};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use time::OffsetDateTime;

/// Whether the tenant has an outbox email with this id (in any state).
fn outbox_exists(conn: &Connection, tenant: &str, id: &str) -> Result<bool, StoreError> {
    conn.query_row(
        "SELECT 1 FROM outbox WHERE tenant_id = ?1 AND id = ?2",
        params![tenant, id],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
    .map_err(db_error)
}

/// The list name failed-email cursors are issued for.
const FAILED_LIST: &str = "failed_emails";

type FailedRow = (Option<String>, Option<String>, i64, String);

fn failed_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<FailedRow> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn failed_email(
    (body, failure, attempts, failed_at): FailedRow,
) -> Result<FailedEmail, StoreError> {
    let body =
        body.ok_or_else(|| StoreError::Backend("a failed outbox email has no body".to_owned()))?;
    Ok(FailedEmail {
        email: from_json(&body, "outbox email")?,
        reason: failure.unwrap_or_default(),
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        failed_at: parse_time(&failed_at, "failed_at")?,
    })
}

#[async_trait]
impl OutboxQueue for SqliteStore {
    async fn pending_outbox(
        &self,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<OutboxEmail>, StoreError> {
        let now = unix_millis(now);
        self.run(move |conn| {
            let bodies = conn
                .prepare_cached(
                    "SELECT body FROM outbox INDEXED BY outbox_due
                     WHERE sent_at IS NULL AND failed_at IS NULL AND due_ms <= ?1
                     ORDER BY due_ms, seq LIMIT ?2",
                )
                .map_err(db_error)?
                .query_map(params![now, i64::from(limit)], |row| {
                    row.get::<_, Option<String>>(0)
                })
                .map_err(db_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_error)?;
            bodies
                .into_iter()
                .map(|body| {
                    let body = body.ok_or_else(|| {
                        StoreError::Backend("a pending outbox email has no body".to_owned())
                    })?;
                    from_json(&body, "outbox email")
                })
                .collect()
        })
        .await
    }

    /// One `BEGIN IMMEDIATE` transaction: the conditional update, or the
    /// read that tells why not.
    async fn claim_outbox(
        &self,
        tenant: &TenantId,
        id: &str,
        now: OffsetDateTime,
        lease_secs: u64,
    ) -> Result<OutboxClaim, StoreError> {
        let tenant = tenant.as_str().to_owned();
        let id = id.to_owned();
        let now_ms = unix_millis(now);
        let until = now_ms.saturating_add(
            i64::try_from(lease_secs)
                .unwrap_or(i64::MAX)
                .saturating_mul(1000),
        );
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            let claimed: Option<(Option<String>, i64)> = tx
                .query_row(
                    "UPDATE outbox SET due_ms = ?4
                     WHERE tenant_id = ?1 AND id = ?2
                       AND sent_at IS NULL AND failed_at IS NULL AND due_ms <= ?3
                     RETURNING body, attempts",
                    params![tenant, id, now_ms, until],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(db_error)?;
            let claim = match claimed {
                Some((body, attempts)) => {
                    let body = body.ok_or_else(|| {
                        StoreError::Backend("a pending outbox email has no body".to_owned())
                    })?;
                    OutboxClaim::Claimed {
                        email: from_json(&body, "outbox email")?,
                        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    }
                }
                None => {
                    let state: Option<(Option<String>, Option<String>, i64)> = tx
                        .query_row(
                            "SELECT sent_at, failed_at, due_ms FROM outbox
                             WHERE tenant_id = ?1 AND id = ?2",
                            params![tenant, id],
                            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                        )
                        .optional()
                        .map_err(db_error)?;
                    match state {
                        None | Some((None, Some(_), _)) => OutboxClaim::Gone,
                        Some((Some(_), _, _)) => OutboxClaim::AlreadySent,
                        Some((None, None, due_ms)) => OutboxClaim::Busy {
                            until: from_unix_millis(due_ms)?,
                        },
                    }
                }
            };
            tx.commit().map_err(db_error)?;
            Ok(claim)
        })
        .await
    }

    /// Also drops the stored email (its links may hold one-time tokens),
    /// keeping only the record that it was sent.
    async fn complete_outbox(
        &self,
        tenant: &TenantId,
        id: &str,
        message_id: &str,
    ) -> Result<(), StoreError> {
        let tenant = tenant.as_str().to_owned();
        let id = id.to_owned();
        let message_id = message_id.to_owned();
        let sent_at = format_time(OffsetDateTime::now_utc(), "sent_at")?;
        self.run(move |conn| {
            // One statement: the first completion wins and keeps its id.
            let changed = conn
                .execute(
                    "UPDATE outbox SET sent_at = ?3, body = NULL, message_id = ?4,
                            failed_at = NULL, failure = NULL
                     WHERE tenant_id = ?1 AND id = ?2 AND sent_at IS NULL",
                    params![tenant, id, sent_at, message_id],
                )
                .map_err(db_error)?;
            if changed == 0 && !outbox_exists(conn, &tenant, &id)? {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    async fn fail_outbox(
        &self,
        tenant: &TenantId,
        id: &str,
        reason: &str,
        permanent: bool,
        retry_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let tenant = tenant.as_str().to_owned();
        let id = id.to_owned();
        let reason = failure_reason(reason);
        let retry_ms = unix_millis(retry_at);
        let failed_at = format_time(OffsetDateTime::now_utc(), "failed_at")?;
        self.run(move |conn| {
            let changed = if permanent {
                conn.execute(
                    "UPDATE outbox SET failed_at = ?3, failure = ?4, attempts = attempts + 1,
                            body = json_set(body, '$.data', NULL)
                     WHERE tenant_id = ?1 AND id = ?2 AND sent_at IS NULL AND failed_at IS NULL",
                    params![tenant, id, failed_at, reason],
                )
            } else {
                conn.execute(
                    "UPDATE outbox SET due_ms = ?3, last_error = ?4, attempts = attempts + 1
                     WHERE tenant_id = ?1 AND id = ?2 AND sent_at IS NULL AND failed_at IS NULL",
                    params![tenant, id, retry_ms, reason],
                )
            }
            .map_err(db_error)?;
            if changed == 0 && !outbox_exists(conn, &tenant, &id)? {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    async fn defer_outbox(
        &self,
        tenant: &TenantId,
        id: &str,
        reason: &str,
        retry_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let tenant = tenant.as_str().to_owned();
        let id = id.to_owned();
        let reason = failure_reason(reason);
        let retry_ms = unix_millis(retry_at);
        self.run(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE outbox SET due_ms = ?3, last_error = ?4
                     WHERE tenant_id = ?1 AND id = ?2 AND sent_at IS NULL AND failed_at IS NULL",
                    params![tenant, id, retry_ms, reason],
                )
                .map_err(db_error)?;
            if changed == 0 && !outbox_exists(conn, &tenant, &id)? {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    async fn failed_outbox(&self, limit: u32) -> Result<Vec<FailedEmail>, StoreError> {
        self.run(move |conn| {
            let rows = conn
                .prepare_cached(
                    "SELECT body, failure, attempts, failed_at FROM outbox INDEXED BY outbox_failed
                     WHERE failed_at IS NOT NULL AND retried_at IS NULL ORDER BY seq DESC LIMIT ?1",
                )
                .map_err(db_error)?
                .query_map(params![i64::from(limit)], |row| {
                    Ok((
                        row.get::<_, Option<String>>(0)?,
                        row.get::<_, Option<String>>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, String>(3)?,
                    ))
                })
                .map_err(db_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_error)?;
            rows.into_iter()
                .map(|(body, failure, attempts, failed_at)| {
                    let body = body.ok_or_else(|| {
                        StoreError::Backend("a failed outbox email has no body".to_owned())
                    })?;
                    Ok(FailedEmail {
                        email: from_json(&body, "outbox email")?,
                        reason: failure.unwrap_or_default(),
                        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                        failed_at: parse_time(&failed_at, "failed_at")?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn failed_outbox_of(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<FailedEmail>, StoreError> {
        // Ids are ULIDs: "below the last id" is "created before it".
        let before = match &page.cursor {
            Some(raw) => cursor::decode(tenant, FAILED_LIST, raw)?,
            None => "\u{10FFFF}".to_owned(),
        };
        let (limit, fetch) = crate::sql::page_size(page);
        let tenant = tenant.clone();
        self.run(move |conn| {
            let mut rows = conn
                .prepare_cached(
                    "SELECT body, failure, attempts, failed_at, id FROM outbox
                     INDEXED BY outbox_failed_by_tenant
                     WHERE tenant_id = ?1 AND id < ?2
                       AND failed_at IS NOT NULL AND retried_at IS NULL
                     ORDER BY id DESC LIMIT ?3",
                )
                .map_err(db_error)?
                .query_map(params![tenant.as_str(), before, fetch], |row| {
                    Ok((failed_row(row)?, row.get::<_, String>(4)?))
                })
                .map_err(db_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_error)?;
            let more = rows.len() > limit;
            rows.truncate(limit);
            let next_cursor = match rows.last() {
                Some((_, id)) if more => Some(cursor::encode(&tenant, FAILED_LIST, id)),
                _ => None,
            };
            let items = rows
                .into_iter()
                .map(|(row, _)| failed_email(row))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Page { items, next_cursor })
        })
        .await
    }

    async fn failed_email(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<FailedEmail>, StoreError> {
        let (tenant, id) = (tenant.as_str().to_owned(), id.to_owned());
        self.run(move |conn| {
            conn.query_row(
                "SELECT body, failure, attempts, failed_at FROM outbox
                 WHERE tenant_id = ?1 AND id = ?2 AND sent_at IS NULL
                   AND failed_at IS NOT NULL AND retried_at IS NULL",
                params![tenant, id],
                failed_row,
            )
            .optional()
            .map_err(db_error)?
            .map(failed_email)
            .transpose()
        })
        .await
    }

    async fn retire_failed_outbox(&self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
        let (tenant, id) = (tenant.as_str().to_owned(), id.to_owned());
        let now = format_time(OffsetDateTime::now_utc(), "retried_at")?;
        self.run(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE outbox SET retried_at = ?3
                     WHERE tenant_id = ?1 AND id = ?2 AND sent_at IS NULL
                       AND failed_at IS NOT NULL AND retried_at IS NULL",
                    params![tenant, id, now],
                )
                .map_err(db_error)?;
            Ok(changed == 1)
        })
        .await
    }
}
