//! Work owed to the identity provider: [`IdpWorkQueue`] on the single table
//! (deliveries from the identity provider are in `deliveries.rs`).
//!
//! | item            | PK                          | SK        | GSI2 (sparse, while owed)             |
//! |-----------------|-----------------------------|-----------|---------------------------------------|
//! | owed work       | `IDPWORK#<t>#<user id>`     | `IDPWORK` | `IDPWORK#PENDING#<k>` / due ms + key  |
//!
//! Owed work is also in GSI3 (sparse, while owed) under
//! `TENANT#<t>#IDPWORK` / user id: one tenant's admins list theirs
//! (`GET /identity-work`) without reading another tenant's items.
//! | delivery        | `IDPEVENT#<delivery id>`    | `IDPEVENT`| `IDPEVENT#PENDING` / due ms + id (TTL `expires_at`) |
//!
//! One owed-work item per user, upserted (unconditionally) by the user
//! write's transaction — its one-off `steps` (a string set) are ADDed, so a
//! newer change keeps an older one's sign-out; workers find due items by a
//! query of every GSI2 shard (`k` from a hash of tenant and user, see
//! src/due.rs), take one with a conditional update (a lease), and finish it
//! with a write conditioned on the `seq` they handled, so newer work
//! written meanwhile stays. A finished sync stays (`done`, out of GSI2, with
//! its `notes`) as the user's sync state; a finished delete goes.

use crate::due::{outbox_due_bound, outbox_due_sk};
use crate::error::{is_condition_failed, malformed, sdk};
use crate::item::get_i64;
use crate::item::{Item, get_s, n, s};
use crate::user_item::{attr, index, key, unix_ms};
use crate::{DynamoStore, names};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, Update};
use peak_domain::TenantId;
use peak_domain::audit::AuditEvent;
use peak_domain::cursor;
use peak_domain::idp_work::{IdpOp, IdpSteps, IdpWork, IdpWorkItem};
use peak_domain::model::user::UserId;
use peak_domain::outbox::failure_reason;
use peak_domain::ports::{IdpWorkQueue, Page, PageRequest, StoreError};
use time::OffsetDateTime;

pub const IDP_WORK_SK: &str = "IDPWORK";
pub const IDP_WORK_ENTITY: &str = "idp_work";
/// The sparse GSI2 partitions of owed work are this followed by `#<k>`, a
/// shard of [`crate::due::PENDING_SHARDS`] (items from before the sharding
/// wait in this partition itself, read too until it is empty).
pub const IDP_WORK_PENDING: &str = "IDPWORK#PENDING";

/// The pending partition of one user's owed work (by tenant and user, so
/// the same user's work always lands in the same shard).
pub fn work_pending_pk(work: &IdpWork) -> String {
    crate::due::pending_pk(
        IDP_WORK_PENDING,
        &format!("{}#{}", work.tenant_id.as_str(), work.user_id.as_str()),
    )
}

pub(crate) const SUBJECT: &str = "subject";
pub(crate) const OP: &str = "op";
pub(crate) const SEQ: &str = "seq";
pub(crate) const ATTEMPTS: &str = "attempts";
pub(crate) const LAST_ERROR: &str = "last_error";
pub(crate) const DUE_MS: &str = "due_ms";
pub(crate) const STEPS: &str = "steps";
pub(crate) const DONE: &str = "done";
pub(crate) const NOTES: &str = "notes";
pub(crate) const STEP_END_SESSIONS: &str = "end_sessions";
pub(crate) const STEP_CLEAR_LOGIN_BLOCK: &str = "clear_login_block";

pub fn work_key(tenant: &TenantId, user: &UserId) -> Item {
    key(
        format!("IDPWORK#{}#{}", tenant.as_str(), user.as_str()),
        IDP_WORK_SK,
    )
}

/// The GSI3 partition of one tenant's owed work.
pub fn tenant_work_pk(tenant: &TenantId) -> String {
    format!("TENANT#{}#IDPWORK", tenant.as_str())
}

/// The list name identity-work cursors are issued for.
const WORK_LIST: &str = "identity_work";

/// The GSI2 sort key: due time, then tenant and user (unique).
fn due_sk(due_ms: i64, work: &IdpWork) -> String {
    outbox_due_sk(
        due_ms,
        &format!("{}#{}", work.tenant_id.as_str(), work.user_id.as_str()),
    )
}

/// The upsert the user write's transaction makes: owed again, due at once,
/// no attempts; its steps are added to those of a record still owed (a
/// done record has none left).
pub fn work_upsert(table: &str, work: &IdpWork) -> Result<Update, StoreError> {
    let (_, gpk, gsk) = index::GSI2;
    let mut steps = Vec::new();
    if work.steps.end_sessions {
        steps.push(STEP_END_SESSIONS.to_owned());
    }
    if work.steps.clear_login_block {
        steps.push(STEP_CLEAR_LOGIN_BLOCK.to_owned());
    }
    let (_, tpk, tsk) = index::GSI3;
    let mut expression = "SET #entity = :entity, #gpk = :gpk, #gsk = :gsk, #tpk = :tpk, \
         #tsk = :user, #tenant = :tenant, \
         #user = :user, #subject = :subject, #op = :op, #seq = :seq, #attempts = :zero, \
         #due = :zero, #done = :false REMOVE #last_error, #notes"
        .to_owned();
    let mut b = Update::builder()
        .table_name(table)
        .set_key(Some(work_key(&work.tenant_id, &work.user_id)));
    if !steps.is_empty() {
        expression.push_str(" ADD #steps :steps");
        b = b
            .expression_attribute_names("#steps", STEPS)
            .expression_attribute_values(":steps", AttributeValue::Ss(steps));
    }
    b.update_expression(expression)
        .expression_attribute_names("#entity", attr::ENTITY)
        .expression_attribute_names("#gpk", gpk)
        .expression_attribute_names("#gsk", gsk)
        .expression_attribute_names("#tpk", tpk)
        .expression_attribute_names("#tsk", tsk)
        .expression_attribute_values(":tpk", s(tenant_work_pk(&work.tenant_id)))
        .expression_attribute_names("#tenant", attr::TENANT_ID)
        .expression_attribute_names("#user", attr::USER_ID)
        .expression_attribute_names("#subject", SUBJECT)
        .expression_attribute_names("#op", OP)
        .expression_attribute_names("#seq", SEQ)
        .expression_attribute_names("#attempts", ATTEMPTS)
        .expression_attribute_names("#due", DUE_MS)
        .expression_attribute_names("#done", DONE)
        .expression_attribute_names("#last_error", LAST_ERROR)
        .expression_attribute_names("#notes", NOTES)
        .expression_attribute_values(":entity", s(IDP_WORK_ENTITY))
        .expression_attribute_values(":gpk", s(work_pending_pk(work)))
        .expression_attribute_values(":gsk", s(due_sk(0, work)))
        .expression_attribute_values(":tenant", s(work.tenant_id.as_str()))
        .expression_attribute_values(":user", s(work.user_id.as_str()))
        .expression_attribute_values(":subject", s(&work.subject))
        .expression_attribute_values(":op", s(work.op.as_str()))
        .expression_attribute_values(":seq", n(work.seq))
        .expression_attribute_values(":zero", n(0))
        .expression_attribute_values(":false", AttributeValue::Bool(false))
        .build()
        .map_err(crate::build_error)
}

pub(crate) fn bool_attr(item: &Item, name: &str) -> bool {
    matches!(item.get(name), Some(AttributeValue::Bool(true)))
}

pub fn work_from_item(item: &Item) -> Result<IdpWorkItem, StoreError> {
    if get_s(item, attr::ENTITY)? != IDP_WORK_ENTITY {
        return Err(malformed("not an owed-work item"));
    }
    let due_ms = get_i64(item, DUE_MS)?;
    let steps: &[String] = match item.get(STEPS) {
        Some(AttributeValue::Ss(set)) => set,
        _ => &[],
    };
    let notes = match item.get(NOTES) {
        Some(AttributeValue::L(list)) => {
            list.iter().filter_map(|v| v.as_s().ok().cloned()).collect()
        }
        _ => Vec::new(),
    };
    Ok(IdpWorkItem {
        work: IdpWork {
            tenant_id: TenantId::parse(get_s(item, attr::TENANT_ID)?)
                .ok_or_else(|| malformed("invalid `tenant_id`"))?,
            user_id: UserId::parse(get_s(item, attr::USER_ID)?)
                .ok_or_else(|| malformed("invalid `user_id`"))?,
            subject: get_s(item, SUBJECT)?.to_owned(),
            op: IdpOp::parse(get_s(item, OP)?).ok_or_else(|| malformed("invalid `op`"))?,
            seq: u64::try_from(get_i64(item, SEQ)?).map_err(|_| malformed("invalid `seq`"))?,
            steps: IdpSteps {
                end_sessions: steps.iter().any(|s| s == STEP_END_SESSIONS),
                clear_login_block: steps.iter().any(|s| s == STEP_CLEAR_LOGIN_BLOCK),
            },
        },
        attempts: u32::try_from(get_i64(item, ATTEMPTS)?.max(0)).unwrap_or(u32::MAX),
        last_error: match item.get(LAST_ERROR) {
            None => None,
            Some(_) => Some(get_s(item, LAST_ERROR)?.to_owned()),
        },
        due_at: OffsetDateTime::from_unix_timestamp_nanos(i128::from(due_ms) * 1_000_000)
            .map_err(|_| malformed("invalid `due_ms`"))?,
        done: bool_attr(item, DONE),
        notes,
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
        self.pending_items(
            "list owed identity-provider work",
            IDP_WORK_PENDING,
            bound,
            limit,
            work_from_item,
        )
        .await
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
            steps: IdpSteps::default(),
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(work_key(tenant, user)))
            .update_expression("SET #due_ms = :until, #gsk = :sk")
            .condition_expression(
                "attribute_exists(#due_ms) AND #due_ms <= :now AND NOT (#done = :true)",
            )
            .set_expression_attribute_names(Some(names(&[DUE_MS, DONE])))
            .expression_attribute_values(":true", AttributeValue::Bool(true))
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

    /// One user's record, if any (one consistent GetItem): owed, or done
    /// with its notes.
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

    /// A delete goes; a sync stays, done, out of the pending index, with
    /// its notes.
    pub(crate) async fn complete_work(
        &self,
        work: &IdpWork,
        notes: &[String],
    ) -> Result<bool, StoreError> {
        const WHAT: &str = "complete owed identity-provider work";
        let key = work_key(&work.tenant_id, &work.user_id);
        let result = match work.op {
            IdpOp::Delete => self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key))
                .condition_expression("#seq = :seq AND #op = :op AND NOT (#done = :true)")
                .set_expression_attribute_names(Some(names(&[SEQ, OP, DONE])))
                .expression_attribute_values(":seq", n(work.seq))
                .expression_attribute_values(":op", s(work.op.as_str()))
                .expression_attribute_values(":true", AttributeValue::Bool(true))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| (is_condition_failed(&e), sdk(WHAT, &e))),
            IdpOp::Sync => {
                let (_, gpk, gsk) = index::GSI2;
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key))
                    .update_expression(
                        "SET #done = :true, #notes = :notes, #attempts = :zero \
                         REMOVE #last_error, #steps, #gpk, #gsk, #tpk, #tsk",
                    )
                    .condition_expression("#seq = :seq AND #op = :op AND NOT (#done = :true)")
                    .set_expression_attribute_names(Some(names(&[
                        SEQ, OP, DONE, NOTES, ATTEMPTS, LAST_ERROR, STEPS,
                    ])))
                    .expression_attribute_names("#gpk", gpk)
                    .expression_attribute_names("#gsk", gsk)
                    .expression_attribute_names("#tpk", index::GSI3.1)
                    .expression_attribute_names("#tsk", index::GSI3.2)
                    .expression_attribute_values(":seq", n(work.seq))
                    .expression_attribute_values(":op", s(work.op.as_str()))
                    .expression_attribute_values(":true", AttributeValue::Bool(true))
                    .expression_attribute_values(":zero", n(0))
                    .expression_attribute_values(
                        ":notes",
                        AttributeValue::L(notes.iter().map(s).collect()),
                    )
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| (is_condition_failed(&e), sdk(WHAT, &e)))
            }
        };
        match result {
            Ok(()) => Ok(true),
            Err((true, _)) => Ok(false),
            Err((false, e)) => Err(e),
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
            .condition_expression("#seq = :seq AND #op = :op AND NOT (#done = :true)")
            .set_expression_attribute_names(Some(names(&[
                SEQ, OP, ATTEMPTS, LAST_ERROR, DUE_MS, DONE,
            ])))
            .expression_attribute_values(":true", AttributeValue::Bool(true))
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
}

#[async_trait]
impl IdpWorkQueue for DynamoStore {
    async fn pending_idp_work(
        &self,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<IdpWorkItem>, StoreError> {
        self.pending_work(limit, now).await
    }

    async fn claim_idp_work(
        &self,
        tenant: &TenantId,
        user: &UserId,
        now: OffsetDateTime,
        lease_secs: u64,
    ) -> Result<Option<IdpWorkItem>, StoreError> {
        self.claim_work(tenant, user, now, lease_secs).await
    }

    async fn complete_idp_work(
        &self,
        work: &IdpWork,
        notes: &[String],
    ) -> Result<bool, StoreError> {
        self.complete_work(work, notes).await
    }

    async fn fail_idp_work(
        &self,
        work: &IdpWork,
        reason: &str,
        retry_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.fail_work(work, &failure_reason(reason), retry_at)
            .await
    }

    async fn list_idp_work(&self, limit: u32) -> Result<Vec<IdpWorkItem>, StoreError> {
        self.list_work(limit).await
    }

    async fn idp_work_of(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Option<IdpWorkItem>, StoreError> {
        self.work_of(tenant, user).await
    }

    /// One Query of the tenant's GSI3 partition, by user id.
    async fn idp_work_of_tenant(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<IdpWorkItem>, StoreError> {
        const WHAT: &str = "list a tenant's owed identity-provider work";
        let limit = page.limit.clamp(1, PageRequest::MAX_LIMIT) as usize;
        let (name, pk_attr, sk_attr) = index::GSI3;
        let pk = tenant_work_pk(tenant);
        let mut start = match &page.cursor {
            Some(raw) => {
                let after = cursor::decode(tenant, WORK_LIST, raw)?;
                let user = UserId::parse(&after).ok_or(StoreError::InvalidCursor)?;
                let mut key = work_key(tenant, &user);
                key.insert(pk_attr.to_owned(), s(&pk));
                key.insert(sk_attr.to_owned(), s(&after));
                Some(key)
            }
            None => None,
        };
        let mut items = Vec::new();
        // One more than asked, to know whether a next page exists.
        while items.len() <= limit {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(name)
                .key_condition_expression("#kpk = :kpk")
                .expression_attribute_names("#kpk", pk_attr)
                .expression_attribute_values(":kpk", s(&pk))
                .limit(i32::try_from(limit + 1 - items.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk(WHAT, &e))?;
            for item in out.items() {
                items.push(work_from_item(item)?);
            }
            start = out.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                break;
            }
        }
        let more = items.len() > limit;
        items.truncate(limit);
        let next_cursor = match items.last() {
            Some(last) if more => Some(cursor::encode(
                tenant,
                WORK_LIST,
                last.work.user_id.as_str(),
            )),
            _ => None,
        };
        Ok(Page { items, next_cursor })
    }

    /// One transaction: the conditional update (owed, not done) and the
    /// audit event.
    async fn retry_idp_work_now(
        &self,
        tenant: &TenantId,
        user: &UserId,
        audit: &AuditEvent,
    ) -> Result<Option<IdpWorkItem>, StoreError> {
        use crate::TxError;
        use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
        const WHAT: &str = "retry owed identity-provider work";
        if &audit.tenant_id != tenant {
            return Err(StoreError::Backend(
                "an audit event of another tenant".into(),
            ));
        }
        // Due "at once" (0), as fresh work is: the stream's filter hands
        // exactly such records to the worker, so it runs within seconds
        // (the sweeper's next pass otherwise).
        let (_, gpk, gsk) = index::GSI2;
        let probe = IdpWork {
            tenant_id: tenant.clone(),
            user_id: user.clone(),
            subject: String::new(),
            op: IdpOp::Sync,
            seq: 0,
            steps: IdpSteps::default(),
        };
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(work_key(tenant, user)))
            .update_expression("SET #due_ms = :now, #gsk = :sk")
            .condition_expression("attribute_exists(#gpk) AND NOT (#done = :true)")
            .set_expression_attribute_names(Some(names(&[DUE_MS, DONE])))
            .expression_attribute_names("#gpk", gpk)
            .expression_attribute_names("#gsk", gsk)
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":now", n(0))
            .expression_attribute_values(":sk", s(due_sk(0, &probe)))
            .build()
            .map_err(crate::build_error)?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(crate::record_item::audit_item(audit)?))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .map_err(crate::build_error)?;
        let items = vec![
            TransactWriteItem::builder().update(update).build(),
            TransactWriteItem::builder().put(put).build(),
        ];
        match self.transact(WHAT, items).await {
            Ok(()) => self.work_of(tenant, user).await,
            Err(TxError::Cancelled(r)) if TxError::condition_failed(&r, 0) => Ok(None),
            Err(TxError::Cancelled(r)) => Err(TxError::into_store_error(&r, WHAT)),
            Err(TxError::Failed(e)) => Err(e),
        }
    }
}
