//! [`IdempotencyKeys`] for [`SqliteStore`].

use crate::SqliteStore;
use crate::sql::{db_error, from_json, to_json, unix_millis};
use async_trait::async_trait;
use peak_domain::ids::TenantId;
use peak_domain::ports::{IdempotencyClaim, IdempotencyKeys, SavedResponse, StoreError};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Idempotency key states.
const CLAIMED: &str = "claimed";
const COMPLETED: &str = "completed";

/// A [`SavedResponse`] as stored.
#[derive(Serialize, Deserialize)]
struct StoredResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

#[async_trait]
impl IdempotencyKeys for SqliteStore {
    /// A key expires `ttl_secs` after it was claimed (by the caller's
    /// `now`); claiming also forgets the tenant's expired keys. A claim
    /// whose lease has passed is taken over in place.
    async fn claim_idempotency_key(
        &self,
        tenant: &TenantId,
        key: &str,
        fingerprint: &str,
        now: OffsetDateTime,
        lease_secs: u64,
        ttl_secs: u64,
    ) -> Result<IdempotencyClaim, StoreError> {
        let tenant = tenant.as_str().to_owned();
        let key = key.to_owned();
        let fingerprint = fingerprint.to_owned();
        let now = unix_millis(now);
        let after = |secs: u64| {
            now.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000))
        };
        let (lease_expires_at, expires_at) = (after(lease_secs), after(ttl_secs));
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            tx.execute(
                "DELETE FROM idempotency_keys WHERE tenant_id = ?1 AND expires_at <= ?2",
                params![tenant, now],
            )
            .map_err(db_error)?;
            tx.execute(
                "DELETE FROM idempotency_keys
                 WHERE tenant_id = ?1 AND idempotency_key = ?2
                   AND state = ?3 AND lease_expires_at <= ?4",
                params![tenant, key, CLAIMED, now],
            )
            .map_err(db_error)?;
            let held: Option<(String, String, Option<String>)> = tx
                .query_row(
                    "SELECT fingerprint, state, response FROM idempotency_keys
                     WHERE tenant_id = ?1 AND idempotency_key = ?2",
                    params![tenant, key],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()
                .map_err(db_error)?;
            let claim = match held {
                None => {
                    tx.execute(
                        "INSERT INTO idempotency_keys
                             (tenant_id, idempotency_key, fingerprint, state,
                              lease_expires_at, expires_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![
                            tenant,
                            key,
                            fingerprint,
                            CLAIMED,
                            lease_expires_at,
                            expires_at
                        ],
                    )
                    .map_err(db_error)?;
                    IdempotencyClaim::Claimed
                }
                Some((held, _, _)) if held != fingerprint => IdempotencyClaim::Mismatch,
                Some((_, state, Some(response))) if state == COMPLETED => {
                    let r: StoredResponse = from_json(&response, "saved response")?;
                    IdempotencyClaim::Completed(SavedResponse {
                        status: r.status,
                        headers: r.headers,
                        body: r.body,
                    })
                }
                Some(_) => IdempotencyClaim::InProgress,
            };
            tx.commit().map_err(db_error)?;
            Ok(claim)
        })
        .await
    }

    /// `NotFound` if the key is not claimed (never claimed, released,
    /// expired or completed already).
    async fn complete_idempotency_key(
        &self,
        tenant: &TenantId,
        key: &str,
        response: &SavedResponse,
    ) -> Result<(), StoreError> {
        let tenant = tenant.as_str().to_owned();
        let key = key.to_owned();
        let response = to_json(
            &StoredResponse {
                status: response.status,
                headers: response.headers.clone(),
                body: response.body.clone(),
            },
            "saved response",
        )?;
        self.run(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE idempotency_keys SET state = ?3, response = ?4
                     WHERE tenant_id = ?1 AND idempotency_key = ?2 AND state = ?5",
                    params![tenant, key, COMPLETED, response, CLAIMED],
                )
                .map_err(db_error)?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    /// A completed key is kept (its response still replays).
    async fn release_idempotency_key(
        &self,
        tenant: &TenantId,
        key: &str,
    ) -> Result<(), StoreError> {
        let tenant = tenant.as_str().to_owned();
        let key = key.to_owned();
        self.run(move |conn| {
            conn.execute(
                "DELETE FROM idempotency_keys
                 WHERE tenant_id = ?1 AND idempotency_key = ?2 AND state = ?3",
                params![tenant, key, CLAIMED],
            )
            .map_err(db_error)?;
            Ok(())
        })
        .await
    }
}
