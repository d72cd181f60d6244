//! Work waiting in one partition of GSI2 (pending emails, owed identity
//! provider work and deliveries, runnable bulk jobs): the sort key starts
//! with the time the item is due, so "due now" is one key-bounded Query,
//! read in order across pages until the limit.

use crate::DynamoStore;
use crate::error::sdk;
use crate::item::{Item, s};
use crate::user_item::index;
use peak_domain::ports::StoreError;

/// The GSI2 sort key of a pending outbox email: its due time (Unix ms,
/// zero-padded to 13 digits, so text order is time order until the year
/// 2286), then its id. A fresh email is due at 0: fresh emails come first,
/// in creation (ULID) order. Emails stored before due times existed have
/// the bare id as sort key; a ULID starts with `0` and sorts below every
/// time since 2001, so they count as due.
pub fn outbox_due_sk(due_ms: i64, id: &str) -> String {
    format!("{:013}#{id}", due_ms.max(0))
}

/// The exclusive upper bound of the pending sort keys due at `now_ms`.
pub fn outbox_due_bound(now_ms: i64) -> String {
    format!("{:013}", now_ms.max(0).saturating_add(1))
}

impl DynamoStore {
    /// Up to `limit` items of GSI2 partition `partition`, in sort-key order;
    /// with `due_before`, only those whose sort key sorts before it.
    pub(crate) async fn gsi2_items<T>(
        &self,
        what: &'static str,
        partition: &str,
        due_before: Option<String>,
        limit: u32,
        read: impl Fn(&Item) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let (name, pk_attr, sk_attr) = index::GSI2;
        let limit = limit as usize;
        let mut found = Vec::new();
        let mut start = None;
        while found.len() < limit {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(name)
                .expression_attribute_names("#kpk", pk_attr)
                .expression_attribute_values(":kpk", s(partition))
                .scan_index_forward(true)
                .limit(i32::try_from(limit - found.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start);
            q = match &due_before {
                Some(b) => q
                    .key_condition_expression("#kpk = :kpk AND #ksk < :due")
                    .expression_attribute_names("#ksk", sk_attr)
                    .expression_attribute_values(":due", s(b.clone())),
                None => q.key_condition_expression("#kpk = :kpk"),
            };
            let out = q.send().await.map_err(|e| sdk(what, &e))?;
            for item in out.items() {
                found.push(read(item)?);
            }
            start = out.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                break;
            }
        }
        found.truncate(limit);
        Ok(found)
    }
}
