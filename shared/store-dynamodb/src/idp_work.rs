//! Work owed to the identity provider and applied delivery ids.
//!
//! | item            | PK                          | SK        | GSI2 (sparse)                         |
//! |-----------------|-----------------------------|-----------|---------------------------------------|
//! | owed work       | `IDPWORK#<t>#<user id>`     | `IDPWORK` | `IDPWORK#PENDING` / due ms + key      |
//! | applied event   | `IDPEVENT#<delivery id>`    | `IDPEVENT`| —  (TTL `expires_at`)                 |
//!
//! One owed-work item per user, put (unconditionally) by the user write's
//! transaction; workers find due items by a GSI2 query, take one with a
//! conditional update (a lease), and remove it with a delete conditioned on
//! the `seq` they handled, so newer work written meanwhile stays.

use crate::error::{malformed, sdk};
use crate::item::{Item, get_s, n, s};
use crate::user_item::{attr, get_i64, index, key, outbox_due_bound, outbox_due_sk, unix_ms};
use crate::users::is_condition_failed;
use crate::{DynamoStore, names};
use aws_sdk_dynamodb::types::ReturnValue;
use peak_domain::TenantId;
use peak_domain::idp_work::{IdpOp, IdpWork, IdpWorkItem};
use peak_domain::ports::StoreError;
use peak_domain::user::UserId;
use time::OffsetDateTime;

pub const IDP_WORK_SK: &str = "IDPWORK";
pub const IDP_WORK_ENTITY: &str = "idp_work";
/// The sparse GSI2 partition of every owed-work item.
pub const IDP_WORK_PENDING: &str = "IDPWORK#PENDING";
pub const IDP_EVENT_SK: &str = "IDPEVENT";
pub const IDP_EVENT_ENTITY: &str = "idp_event";

const SUBJECT: &str = "subject";
const OP: &str = "op";
const SEQ: &str = "seq";
const ATTEMPTS: &str = "attempts";
const LAST_ERROR: &str = "last_error";
const DUE_MS: &str = "due_ms";

pub fn work_key(tenant: &TenantId, user: &UserId) -> Item {
    key(
        format!("IDPWORK#{}#{}", tenant.as_str(), user.as_str()),
        IDP_WORK_SK,
    )
}

fn event_key(id: &str) -> Item {
    key(format!("IDPEVENT#{id}"), IDP_EVENT_SK)
}

/// The GSI2 sort key: due time, then tenant and user (unique).
fn due_sk(due_ms: i64, work: &IdpWork) -> String {
    outbox_due_sk(
        due_ms,
        &format!("{}#{}", work.tenant_id.as_str(), work.user_id.as_str()),
    )
}

/// The item the user write's transaction puts: due at once, no attempts.
pub fn work_item(work: &IdpWork) -> Item {
    let mut item = work_key(&work.tenant_id, &work.user_id);
    let (_, gpk, gsk) = index::GSI2;
    for (name, value) in [
        (attr::ENTITY, s(IDP_WORK_ENTITY)),
        (gpk, s(IDP_WORK_PENDING)),
        (gsk, s(due_sk(0, work))),
        (attr::TENANT_ID, s(work.tenant_id.as_str())),
        (attr::USER_ID, s(work.user_id.as_str())),
        (SUBJECT, s(&work.subject)),
        (OP, s(work.op.as_str())),
        (SEQ, n(work.seq)),
        (ATTEMPTS, n(0)),
        (DUE_MS, n(0)),
    ] {
        item.insert(name.to_owned(), value);
    }
    item
}

pub fn work_from_item(item: &Item) -> Result<IdpWorkItem, StoreError> {
    if get_s(item, attr::ENTITY)? != IDP_WORK_ENTITY {
        return Err(malformed("not an owed-work item"));
    }
    let due_ms = get_i64(item, DUE_MS)?;
    Ok(IdpWorkItem {
        work: IdpWork {
            tenant_id: TenantId::parse(get_s(item, attr::TENANT_ID)?)
                .ok_or_else(|| malformed("invalid `tenant_id`"))?,
            user_id: UserId::parse(get_s(item, attr::USER_ID)?)
                .ok_or_else(|| malformed("invalid `user_id`"))?,
            subject: get_s(item, SUBJECT)?.to_owned(),
            op: IdpOp::parse(get_s(item, OP)?).ok_or_else(|| malformed("invalid `op`"))?,
            seq: u64::try_from(get_i64(item, SEQ)?).map_err(|_| malformed("invalid `seq`"))?,
        },
        attempts: u32::try_from(get_i64(item, ATTEMPTS)?.max(0)).unwrap_or(u32::MAX),
        last_error: match item.get(LAST_ERROR) {
            None => None,
            Some(_) => Some(get_s(item, LAST_ERROR)?.to_owned()),
        },
        due_at: OffsetDateTime::from_unix_timestamp_nanos(i128::from(due_ms) * 1_000_000)
            .map_err(|_| malformed("invalid `due_ms`"))?,
    })
}

impl DynamoStore {
    /// Every owed-work item with a due time below `bound` (exclusive), by
    /// due time.
    async fn query_work(
        &self,
        limit: u32,
        bound: Option<String>,
    ) -> Result<Vec<IdpWorkItem>, StoreError> {
        const WHAT: &str = "list owed identity-provider work";
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
                .expression_attribute_values(":kpk", s(IDP_WORK_PENDING))
                .scan_index_forward(true)
                .limit(i32::try_from(limit - found.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start);
            q = match &bound {
                Some(b) => q
                    .key_condition_expression("#kpk = :kpk AND #ksk < :due")
                    .expression_attribute_names("#ksk", sk_attr)
                    .expression_attribute_values(":due", s(b.clone())),
                None => q.key_condition_expression("#kpk = :kpk"),
            };
            let out = q.send().await.map_err(|e| sdk(WHAT, &e))?;
            for item in out.items() {
                found.push(work_from_item(item)?);
            }
            start = out.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                break;
            }
        }
        found.truncate(limit);
        Ok(found)
    }

    pub(crate) async fn pending_work(
        &self,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<IdpWorkItem>, StoreError> {
        self.query_work(limit, Some(outbox_due_bound(unix_ms(now))))
            .await
    }

    pub(crate) async fn list_work(&self, limit: u32) -> Result<Vec<IdpWorkItem>, StoreError> {
        self.query_work(limit, None).await
    }

    /// One conditional UpdateItem: exists and due.
    pub(crate) async fn claim_work(
        &self,
        tenant: &TenantId,
        user: &UserId,
        now: OffsetDateTime,
        lease_secs: u64,
    ) -> Result<Option<IdpWorkItem>, StoreError> {
        const WHAT: &str = "claim owed identity-provider work";
        let now_ms = unix_ms(now);
        let until = now_ms.saturating_add(
            i64::try_from(lease_secs)
                .unwrap_or(i64::MAX)
                .saturating_mul(1000),
        );
        let (_, _, gsk) = index::GSI2;
        let probe = IdpWork {
            tenant_id: tenant.clone(),
            user_id: user.clone(),
            subject: String::new(),
            op: IdpOp::Sync,
            seq: 0,
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(work_key(tenant, user)))
            .update_expression("SET #due_ms = :until, #gsk = :sk")
            .condition_expression("attribute_exists(#due_ms) AND #due_ms <= :now")
            .set_expression_attribute_names(Some(names(&[DUE_MS])))
            .expression_attribute_names("#gsk", gsk)
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":sk", s(due_sk(until, &probe)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(work_from_item(&out.attributes.unwrap_or_default())?)),
            Err(e) if is_condition_failed(&e) => Ok(None),
            Err(e) => Err(sdk(WHAT, &e)),
        }
    }

    /// One user's record, if any (one consistent GetItem).
    pub(crate) async fn work_of(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Option<IdpWorkItem>, StoreError> {
        const WHAT: &str = "read owed identity-provider work";
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(work_key(tenant, user)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk(WHAT, &e))?;
        out.item.as_ref().map(work_from_item).transpose()
    }

    pub(crate) async fn complete_work(&self, work: &IdpWork) -> Result<bool, StoreError> {
        const WHAT: &str = "complete owed identity-provider work";
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(work_key(&work.tenant_id, &work.user_id)))
            .condition_expression("#seq = :seq AND #op = :op")
            .set_expression_attribute_names(Some(names(&[SEQ, OP])))
            .expression_attribute_values(":seq", n(work.seq))
            .expression_attribute_values(":op", s(work.op.as_str()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(sdk(WHAT, &e)),
        }
    }

    pub(crate) async fn fail_work(
        &self,
        work: &IdpWork,
        reason: &str,
        retry_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        const WHAT: &str = "record failed identity-provider work";
        let due = unix_ms(retry_at);
        let (_, _, gsk) = index::GSI2;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(work_key(&work.tenant_id, &work.user_id)))
            .update_expression(
                "SET #attempts = #attempts + :one, #last_error = :reason, #due_ms = :due, #gsk = :sk",
            )
            .condition_expression("#seq = :seq AND #op = :op")
            .set_expression_attribute_names(Some(names(&[SEQ, OP, ATTEMPTS, LAST_ERROR, DUE_MS])))
            .expression_attribute_names("#gsk", gsk)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":due", n(due))
            .expression_attribute_values(":sk", s(due_sk(due, work)))
            .expression_attribute_values(":seq", n(work.seq))
            .expression_attribute_values(":op", s(work.op.as_str()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(sdk(WHAT, &e)),
        }
    }

    /// A conditional put: absent, or expired (TTL deletion is lazy, up to
    /// days late, so an expired item is treated as absent).
    pub(crate) async fn claim_event_id(
        &self,
        id: &str,
        now: OffsetDateTime,
        ttl_secs: u64,
    ) -> Result<bool, StoreError> {
        const WHAT: &str = "record an identity-provider delivery";
        let now_s = now.unix_timestamp();
        let expires = now_s.saturating_add(i64::try_from(ttl_secs).unwrap_or(i64::MAX));
        let mut item = event_key(id);
        item.insert(attr::ENTITY.to_owned(), s(IDP_EVENT_ENTITY));
        item.insert(attr::TTL.to_owned(), n(expires));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#ttl) OR #ttl <= :now")
            .set_expression_attribute_names(Some(
                [("#ttl".to_owned(), attr::TTL.to_owned())].into(),
            ))
            .expression_attribute_values(":now", n(now_s))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(sdk(WHAT, &e)),
        }
    }

    pub(crate) async fn release_event_id(&self, id: &str) -> Result<(), StoreError> {
        const WHAT: &str = "forget an identity-provider delivery";
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(event_key(id)))
            .send()
            .await
            .map_err(|e| sdk(WHAT, &e))?;
        Ok(())
    }
}
