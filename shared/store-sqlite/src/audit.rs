//! [`AuditLog`] for [`SqliteStore`].

use crate::SqliteStore;
use crate::sql::{db_error, from_json};
use crate::users::page_size;
use async_trait::async_trait;
use peak_domain::audit::AuditEvent;
use peak_domain::cursor;
use peak_domain::ids::TenantId;
use peak_domain::model::user::UserId;
use peak_domain::ports::{AuditLog, Page, PageRequest, StoreError};
use rusqlite::params;

/// The tenant's audit trail; one user's is `audit:<user id>`.
const AUDIT_LIST: &str = "audit";

#[async_trait]
impl AuditLog for SqliteStore {
    /// Newest written first (write order, which ULID ids cannot give within
    /// one millisecond). A `limit` outside `1..=PageRequest::MAX_LIMIT` is
    /// clamped into it.
    async fn list_audit(
        &self,
        tenant: &TenantId,
        user: Option<&UserId>,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>, StoreError> {
        let list = match user {
            Some(u) => format!("{AUDIT_LIST}:{}", u.as_str()),
            None => AUDIT_LIST.to_owned(),
        };
        let before = match &page.cursor {
            Some(raw) => cursor::decode(tenant, &list, raw)?
                .parse::<i64>()
                .map_err(|_| StoreError::InvalidCursor)?,
            None => i64::MAX,
        };
        let (limit, fetch) = page_size(page);
        let tenant = tenant.clone();
        let user = user.map(|u| u.as_str().to_owned());
        self.run(move |conn| {
            let read =
                |row: &rusqlite::Row<'_>| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?));
            let mut rows = match &user {
                Some(user) => conn
                    .prepare_cached(
                        "SELECT seq, body FROM audit_events INDEXED BY audit_events_by_user
                         WHERE tenant_id = ?1 AND target_user = ?2 AND seq < ?3
                         ORDER BY seq DESC LIMIT ?4",
                    )
                    .map_err(db_error)?
                    .query_map(params![tenant.as_str(), user, before, fetch], read)
                    .map_err(db_error)?
                    .collect::<Result<Vec<_>, _>>(),
                None => conn
                    .prepare_cached(
                        "SELECT seq, body FROM audit_events INDEXED BY audit_events_by_tenant
                         WHERE tenant_id = ?1 AND seq < ?2
                         ORDER BY seq DESC LIMIT ?3",
                    )
                    .map_err(db_error)?
                    .query_map(params![tenant.as_str(), before, fetch], read)
                    .map_err(db_error)?
                    .collect::<Result<Vec<_>, _>>(),
            }
            .map_err(db_error)?;
            let more = rows.len() > limit;
            rows.truncate(limit);
            let next_cursor = match rows.last() {
                Some((seq, _)) if more => Some(cursor::encode(&tenant, &list, &seq.to_string())),
                _ => None,
            };
            let items = rows
                .iter()
                .map(|(_, body)| from_json(body, "audit event"))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Page { items, next_cursor })
        })
        .await
    }
}
