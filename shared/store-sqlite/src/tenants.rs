//! Tenants (migration 8): one row per tenant, the record as JSON, its
//! version for conditional updates. A settings change writes its audit
//! event in the same transaction.

use crate::SqliteStore;
use crate::sql::{db_error, is_unique_violation};
use async_trait::async_trait;
use peak_domain::audit::AuditEvent;
use peak_domain::ids::TenantId;
use peak_domain::model::tenant::Tenant;
use peak_domain::ports::{Page, PageRequest, StoreError};
use peak_domain::tenants::TenantStore;
use rusqlite::{OptionalExtension, TransactionBehavior, params};

fn encode(t: &Tenant) -> Result<(String, i64), StoreError> {
    let body = serde_json::to_string(t)
        .map_err(|e| StoreError::Backend(format!("cannot encode a tenant: {e}")))?;
    let version = i64::try_from(t.version)
        .map_err(|_| StoreError::Backend("tenant version out of range".into()))?;
    Ok((body, version))
}

pub(super) fn decode(body: &str) -> Result<Tenant, StoreError> {
    serde_json::from_str(body)
        .map_err(|e| StoreError::Backend(format!("a stored tenant cannot be read: {e}")))
}

#[async_trait]
impl TenantStore for SqliteStore {
    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        let (body, version) = encode(tenant)?;
        let id = tenant.id.as_str().to_owned();
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO tenants (id, body, version) VALUES (?1, ?2, ?3)",
                params![id, body, version],
            )
            .map_err(|e| {
                // The id is the primary key.
                if is_unique_violation(&e)
                    || matches!(&e, rusqlite::Error::SqliteFailure(f, _)
                        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
                {
                    StoreError::AlreadyExists
                } else {
                    db_error(e)
                }
            })?;
            Ok(())
        })
        .await
    }

    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        let id = id.as_str().to_owned();
        self.run(move |conn| {
            let body: Option<String> = conn
                .prepare_cached("SELECT body FROM tenants WHERE id = ?1")
                .map_err(db_error)?
                .query_row(params![id], |r| r.get(0))
                .optional()
                .map_err(db_error)?;
            body.as_deref().map(decode).transpose()
        })
        .await
    }

    async fn list_tenants(&self, page: &PageRequest) -> Result<Page<Tenant>, StoreError> {
        let after = page.cursor.clone().unwrap_or_default();
        let limit = page.limit;
        self.run(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT body FROM tenants WHERE id > ?1 ORDER BY id LIMIT ?2")
                .map_err(db_error)?;
            let bodies = stmt
                .query_map(params![after, i64::from(limit) + 1], |r| {
                    r.get::<_, String>(0)
                })
                .map_err(db_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_error)?;
            let mut items = bodies
                .iter()
                .map(|b| decode(b))
                .collect::<Result<Vec<_>, _>>()?;
            let more = items.len() > limit as usize;
            items.truncate(limit as usize);
            let next_cursor = more
                .then(|| items.last().map(|t| t.id.as_str().to_owned()))
                .flatten();
            Ok(Page { items, next_cursor })
        })
        .await
    }

    async fn update_tenant(
        &self,
        previous_version: u64,
        tenant: &Tenant,
        audit: &[AuditEvent],
    ) -> Result<(), StoreError> {
        let (body, version) = encode(tenant)?;
        let previous = i64::try_from(previous_version)
            .map_err(|_| StoreError::Backend("tenant version out of range".into()))?;
        let id = tenant.id.as_str().to_owned();
        let events = audit
            .iter()
            .map(|e| {
                if e.tenant_id != tenant.id {
                    return Err(StoreError::Backend(
                        "an audit event of another tenant".into(),
                    ));
                }
                let body = serde_json::to_string(e)
                    .map_err(|_| StoreError::Backend("cannot encode an audit event".into()))?;
                Ok((
                    e.id.clone(),
                    e.target_user.as_ref().map(|u| u.as_str().to_owned()),
                    body,
                ))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            let changed = tx
                .execute(
                    "UPDATE tenants SET body = ?2, version = ?3 WHERE id = ?1 AND version = ?4",
                    params![id, body, version, previous],
                )
                .map_err(db_error)?;
            if changed == 0 {
                let exists: Option<i64> = tx
                    .query_row("SELECT version FROM tenants WHERE id = ?1", params![id], |r| {
                        r.get(0)
                    })
                    .optional()
                    .map_err(db_error)?;
                return Err(match exists {
                    Some(_) => StoreError::VersionMismatch,
                    None => StoreError::NotFound,
                });
            }
            for (event_id, target, body) in &events {
                tx.execute(
                    "INSERT INTO audit_events (tenant_id, id, target_user, body) VALUES (?1, ?2, ?3, ?4)",
                    params![id, event_id, target, body],
                )
                .map_err(db_error)?;
            }
            tx.commit().map_err(db_error)
        })
        .await
    }
}
