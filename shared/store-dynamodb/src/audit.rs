//! [`AuditLog`] on the single table: one user's events in their partition,
//! the tenant's through GSI1.

use crate::DynamoStore;
use crate::error::sdk;
use crate::item::{Item, PK, SK, s};
use crate::record_item as ri;
use crate::user_item::{self as ui, KEY_SEP, NO_USER, index};
use async_trait::async_trait;
use peak_domain::audit::AuditEvent;
use peak_domain::cursor;
use peak_domain::ids::TenantId;
use peak_domain::model::user::UserId;
use peak_domain::ports::{AuditLog, Page, PageRequest, StoreError};

/// The list name audit cursors are issued for.
const AUDIT_LIST: &str = "audit";

#[async_trait]
impl AuditLog for DynamoStore {
    async fn list_audit(
        &self,
        tenant: &TenantId,
        user: Option<&UserId>,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>, StoreError> {
        const OP: &str = "list audit";
        let (index, pk_attr, sk_attr, pk) = match user {
            Some(u) => (None, PK, SK, ui::audit_pk(tenant, Some(u))),
            None => (
                Some(index::GSI1.0),
                index::GSI1.1,
                index::GSI1.2,
                ui::tenant_audit_pk(tenant),
            ),
        };
        let mut start = match &page.cursor {
            None => None,
            Some(raw) => {
                let after = cursor::decode(tenant, AUDIT_LIST, raw)?;
                let (event, target) = after
                    .rsplit_once(KEY_SEP)
                    .ok_or(StoreError::InvalidCursor)?;
                let target = match target {
                    NO_USER => None,
                    t => Some(
                        UserId::parse(t)
                            .filter(|id| id.as_str() == t)
                            .ok_or(StoreError::InvalidCursor)?,
                    ),
                };
                if event.is_empty() {
                    return Err(StoreError::InvalidCursor);
                }
                let mut key =
                    Item::from([(pk_attr.to_owned(), s(&pk)), (sk_attr.to_owned(), s(event))]);
                if index.is_some() {
                    key.extend(ui::key(ui::audit_pk(tenant, target.as_ref()), event));
                }
                Some(key)
            }
        };
        let limit = page.limit as usize;
        let want = limit + 1;
        let mut events = Vec::with_capacity(want);
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_owned))
                .key_condition_expression("#kpk = :kpk")
                .expression_attribute_names("#kpk", pk_attr)
                .expression_attribute_values(":kpk", s(&pk))
                .scan_index_forward(false)
                .consistent_read(index.is_none())
                .limit(i32::try_from(want - events.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk(OP, &e))?;
            for item in out.items() {
                events.push(ri::audit_from_item(item)?);
            }
            start = out.last_evaluated_key.filter(|k| !k.is_empty());
            if events.len() >= want || start.is_none() {
                break;
            }
        }
        let more = events.len() > limit;
        events.truncate(limit);
        let next_cursor = match (more, events.last()) {
            (true, Some(e)) => {
                let target = e.target_user.as_ref().map_or(NO_USER, UserId::as_str);
                Some(cursor::encode(
                    tenant,
                    AUDIT_LIST,
                    &format!("{}{KEY_SEP}{target}", e.id),
                ))
            }
            _ => None,
        };
        Ok(Page {
            items: events,
            next_cursor,
        })
    }
}
