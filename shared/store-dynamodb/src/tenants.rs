//! Tenants in the single table:
//!
//! | item   | PK               | SK       | GSI1PK    | GSI1SK |
//! |--------|------------------|----------|-----------|--------|
//! | tenant | `TENANT#<id>`    | `TENANT` | `TENANTS` | `<id>` |
//!
//! The record is stored as JSON (`body`) with its `version` for
//! conditional updates; operators list tenants through GSI1's `TENANTS`
//! partition (a query, never a scan). Each request reads its own tenant by
//! key, so no partition is shared by all requests.

use crate::item::{Item, PK, SK, n, s, tenant_pk};
use crate::record_item::audit_item;
use crate::user_item::index;
use crate::{DynamoStore, TxError, build_error, names};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use peak_domain::audit::AuditEvent;
use peak_domain::ids::TenantId;
use peak_domain::model::tenant::Tenant;
use peak_domain::ports::{Page, PageRequest, StoreError};
use peak_domain::tenants::TenantStore;
use std::collections::HashMap;

pub(crate) const TENANT_SK: &str = "TENANT";
const TENANTS_PK: &str = "TENANTS";
const ENTITY: &str = "tenant";

pub(crate) fn key(id: &TenantId) -> Item {
    HashMap::from([
        (PK.to_owned(), s(tenant_pk(id))),
        (SK.to_owned(), s(TENANT_SK)),
    ])
}

fn item(t: &Tenant) -> Result<Item, StoreError> {
    let body = serde_json::to_string(t)
        .map_err(|e| StoreError::Backend(format!("cannot encode a tenant: {e}")))?;
    let mut item = key(&t.id);
    item.insert("entity".into(), s(ENTITY));
    item.insert(index::GSI1.1.into(), s(TENANTS_PK));
    item.insert(index::GSI1.2.into(), s(t.id.as_str()));
    item.insert("body".into(), s(body));
    item.insert("version".into(), n(t.version));
    Ok(item)
}

pub(crate) fn decode(item: &Item) -> Result<Tenant, StoreError> {
    match item.get("body") {
        Some(AttributeValue::S(body)) => serde_json::from_str(body)
            .map_err(|e| StoreError::Backend(format!("a stored tenant cannot be read: {e}"))),
        _ => Err(crate::error::malformed("tenant without a body")),
    }
}

impl DynamoStore {
    fn put_tenant(
        &self,
        t: &Tenant,
        condition: &str,
        previous: Option<u64>,
    ) -> Result<Put, StoreError> {
        let mut put = Put::builder()
            .table_name(self.table())
            .set_item(Some(item(t)?))
            .condition_expression(condition);
        if let Some(v) = previous {
            put = put
                .set_expression_attribute_names(Some(names(&["version"])))
                .expression_attribute_values(":previous", n(v));
        }
        put.build().map_err(build_error)
    }
}

#[async_trait]
impl TenantStore for DynamoStore {
    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        let put = self.put_tenant(tenant, "attribute_not_exists(PK)", None)?;
        match self
            .transact(
                "create tenant",
                vec![TransactWriteItem::builder().put(put).build()],
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(TxError::Cancelled(r)) if TxError::condition_failed(&r, 0) => {
                Err(StoreError::AlreadyExists)
            }
            Err(TxError::Cancelled(r)) => Err(TxError::into_store_error(&r, "create tenant")),
            Err(TxError::Failed(e)) => Err(e),
        }
    }

    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        self.get_item("get tenant", key(id))
            .await?
            .as_ref()
            .map(decode)
            .transpose()
    }

    async fn list_tenants(&self, page: &PageRequest) -> Result<Page<Tenant>, StoreError> {
        let (name, pk, sk) = index::GSI1;
        let mut query = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(name)
            .key_condition_expression(format!("#{pk} = :pk"))
            .set_expression_attribute_names(Some(names(&[pk])))
            .expression_attribute_values(":pk", s(TENANTS_PK))
            .limit(i32::try_from(page.limit).unwrap_or(100));
        if let Some(after) = &page.cursor {
            let id = TenantId::parse(after).ok_or(StoreError::InvalidCursor)?;
            let mut start = key(&id);
            start.insert(pk.into(), s(TENANTS_PK));
            start.insert(sk.into(), s(id.as_str()));
            query = query.set_exclusive_start_key(Some(start));
        }
        let out = query
            .send()
            .await
            .map_err(|e| crate::error::sdk("list tenants", &e))?;
        let items = out
            .items()
            .iter()
            .map(decode)
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = out
            .last_evaluated_key()
            .and_then(|_| items.last().map(|t| t.id.as_str().to_owned()));
        Ok(Page { items, next_cursor })
    }

    async fn update_tenant(
        &self,
        previous_version: u64,
        tenant: &Tenant,
        audit: &[AuditEvent],
    ) -> Result<(), StoreError> {
        let put = self.put_tenant(
            tenant,
            "attribute_exists(PK) AND #version = :previous",
            Some(previous_version),
        )?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        for e in audit {
            if e.tenant_id != tenant.id {
                return Err(StoreError::Backend(
                    "an audit event of another tenant".into(),
                ));
            }
            let put = Put::builder()
                .table_name(self.table())
                .set_item(Some(audit_item(e)?))
                .condition_expression("attribute_not_exists(PK)")
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        match self.transact("update tenant", items).await {
            Ok(()) => Ok(()),
            Err(TxError::Cancelled(r)) if TxError::condition_failed(&r, 0) => {
                Err(match self.get_tenant(&tenant.id).await? {
                    Some(_) => StoreError::VersionMismatch,
                    None => StoreError::NotFound,
                })
            }
            Err(TxError::Cancelled(r)) => Err(TxError::into_store_error(&r, "update tenant")),
            Err(TxError::Failed(e)) => Err(e),
        }
    }
}
