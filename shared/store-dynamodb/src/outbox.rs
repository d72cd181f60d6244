//! [`OutboxQueue`] on the single table: pending emails in GSI2's sparse
//! pending partition, claimed with a lease, settled as sent or failed.

use crate::error::{LOOKUP_ATTEMPTS, is_condition_failed, sdk};
use crate::item::{self, epoch, from_unix_ms, n, s};
use crate::record_item as ri;
use crate::user_item::{self as ui, OUTBOX_FAILED, OUTBOX_PENDING, attr, index, unix_ms};
use crate::{DynamoStore, names};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use peak_domain::cursor;
use peak_domain::ids::TenantId;
use peak_domain::outbox::{FailedEmail, OutboxClaim, OutboxEmail, failure_reason};
use peak_domain::ports::{OutboxQueue, Page, PageRequest, StoreError};
use time::OffsetDateTime;

/// How long a sent outbox record (stripped of its data) is kept.
const SENT_RETENTION_SECS: i64 = 30 * 86_400;
/// How long an outbox email failed for good stays listed (then TTL).
const FAILED_RETENTION_SECS: i64 = 30 * 86_400;

/// The list name failed-email cursors are issued for.
const FAILED_LIST: &str = "failed_emails";
/// When a failed email was retried (a fresh one queued in its place).
const RETRIED_AT: &str = "retried_at";

#[async_trait]
impl OutboxQueue for DynamoStore {
    async fn pending_outbox(
        &self,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<OutboxEmail>, StoreError> {
        self.pending_items(
            "pending outbox",
            OUTBOX_PENDING,
            Some(crate::due::outbox_due_bound(unix_ms(now))),
            limit,
            ri::outbox_from_item,
        )
        .await
    }

    /// One conditional UpdateItem (still pending, and due); when refused, a
    /// consistent read tells why.
    async fn claim_outbox(
        &self,
        tenant: &TenantId,
        id: &str,
        now: OffsetDateTime,
        lease_secs: u64,
    ) -> Result<OutboxClaim, StoreError> {
        const OP: &str = "claim outbox email";
        if id.is_empty() {
            return Ok(OutboxClaim::Gone);
        }
        let now_ms = unix_ms(now);
        let until = now_ms.saturating_add(
            i64::try_from(lease_secs)
                .unwrap_or(i64::MAX)
                .saturating_mul(1000),
        );
        let (_, gpk, gsk) = index::GSI2;
        for _ in 0..LOOKUP_ATTEMPTS {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(ui::outbox_key(tenant, id)))
                .update_expression("SET #due_at = :until, #leased_until = :until, #gsk = :sk")
                .condition_expression(
                    "attribute_exists(#gpk) AND (attribute_not_exists(#due_at) OR #due_at <= :now)",
                )
                .set_expression_attribute_names(Some(names(&[attr::DUE_AT, attr::LEASED_UNTIL])))
                .expression_attribute_names("#gpk", gpk)
                .expression_attribute_names("#gsk", gsk)
                .expression_attribute_values(":until", n(until))
                .expression_attribute_values(":now", n(now_ms))
                .expression_attribute_values(":sk", s(crate::due::outbox_due_sk(until, id)))
                .return_values(ReturnValue::AllNew)
                .send()
                .await;
            match result {
                Ok(out) => {
                    let item = out.attributes.unwrap_or_default();
                    return Ok(OutboxClaim::Claimed {
                        email: ri::outbox_from_item(&item)?,
                        attempts: ri::outbox_attempts(&item)?,
                    });
                }
                Err(e) if is_condition_failed(&e) => {}
                Err(e) => return Err(sdk(OP, &e)),
            }
            let Some(held) = self.get_item(OP, ui::outbox_key(tenant, id)).await? else {
                return Ok(OutboxClaim::Gone);
            };
            if held.contains_key(attr::SENT_AT) {
                return Ok(OutboxClaim::AlreadySent);
            }
            if !held.contains_key(gpk) {
                return Ok(OutboxClaim::Gone); // failed for good
            }
            match item::get_opt_i64(&held, attr::DUE_AT)? {
                Some(due) if due > now_ms => {
                    return Ok(OutboxClaim::Busy {
                        until: from_unix_ms(due)?,
                    });
                }
                // Released in between: claim again.
                _ => continue,
            }
        }
        Err(StoreError::Unavailable(format!(
            "{OP}: the email keeps changing, retry"
        )))
    }

    async fn complete_outbox(
        &self,
        tenant: &TenantId,
        id: &str,
        message_id: &str,
    ) -> Result<(), StoreError> {
        const OP: &str = "complete outbox email";
        if id.is_empty() {
            return Err(StoreError::NotFound);
        }
        let now = OffsetDateTime::now_utc();
        let (_, gpk, gsk) = index::GSI2;
        let (_, fpk, fsk) = index::GSI3;
        let (_, tpk, tsk) = index::GSI4;
        // Out of every index, and the data (links may hold one-time
        // tokens) is dropped; the record expires later. An email failed
        // for good that was sent after all counts as sent.
        let mut set = "SET #sent_at = :now, #ttl = :ttl".to_owned();
        if !message_id.is_empty() {
            set.push_str(", #message_id = :mid");
        }
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(ui::outbox_key(tenant, id)))
            .update_expression(format!(
                "{set} REMOVE #gpk, #gsk, #fpk, #fsk, #tpk, #tsk, #data, #due_at, #leased_until, \
                 #failed_at, #failure"
            ))
            .condition_expression("attribute_exists(PK) AND attribute_not_exists(#sent_at)")
            .set_expression_attribute_names(Some(names(&[
                attr::SENT_AT,
                attr::DATA,
                attr::DUE_AT,
                attr::LEASED_UNTIL,
                attr::FAILED_AT,
                attr::FAILURE,
            ])))
            .expression_attribute_names("#ttl", attr::TTL)
            .expression_attribute_names("#gpk", gpk)
            .expression_attribute_names("#gsk", gsk)
            .expression_attribute_names("#fpk", fpk)
            .expression_attribute_names("#fsk", fsk)
            .expression_attribute_names("#tpk", tpk)
            .expression_attribute_names("#tsk", tsk)
            .expression_attribute_values(":now", s(item::timestamp(now)?))
            .expression_attribute_values(":ttl", n(epoch(now) + SENT_RETENTION_SECS));
        if !message_id.is_empty() {
            request = request
                .expression_attribute_names("#message_id", attr::MESSAGE_ID)
                .expression_attribute_values(":mid", s(message_id));
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => {
                match self.get_item(OP, ui::outbox_key(tenant, id)).await? {
                    Some(_) => Ok(()), // sent before: the first id stays
                    None => Err(StoreError::NotFound),
                }
            }
            Err(e) => Err(sdk(OP, &e)),
        }
    }

    async fn fail_outbox(
        &self,
        tenant: &TenantId,
        id: &str,
        reason: &str,
        permanent: bool,
        retry_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        const OP: &str = "fail outbox email";
        if id.is_empty() {
            return Err(StoreError::NotFound);
        }
        let reason = failure_reason(reason);
        let (_, gpk, gsk) = index::GSI2;
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(ui::outbox_key(tenant, id)))
            // Only while pending: a sent or failed email stays as it is.
            .condition_expression("attribute_exists(#gpk)")
            .expression_attribute_names("#gpk", gpk)
            .expression_attribute_names("#attempts", attr::ATTEMPTS)
            .expression_attribute_names("#leased_until", attr::LEASED_UNTIL)
            .expression_attribute_names("#due_at", attr::DUE_AT)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":reason", s(reason));
        let request = if permanent {
            let now = OffsetDateTime::now_utc();
            let (_, fpk, fsk) = index::GSI3;
            let (_, tpk, tsk) = index::GSI4;
            // Out of the pending index into the failed ones (all tenants',
            // and this tenant's); the data
            // (links may hold one-time tokens) is dropped; the record
            // expires later.
            request
                .update_expression(
                    "SET #failed_at = :now, #failure = :reason, #fpk = :failed, #fsk = :id, \
                     #tpk = :tenant_failed, #tsk = :id, #ttl = :ttl ADD #attempts :one \
                     REMOVE #gpk, #gsk, #data, #due_at, #leased_until",
                )
                .expression_attribute_names("#failed_at", attr::FAILED_AT)
                .expression_attribute_names("#failure", attr::FAILURE)
                .expression_attribute_names("#fpk", fpk)
                .expression_attribute_names("#fsk", fsk)
                .expression_attribute_names("#tpk", tpk)
                .expression_attribute_names("#tsk", tsk)
                .expression_attribute_values(":tenant_failed", s(ui::outbox_failed_of(tenant)))
                .expression_attribute_names("#gsk", gsk)
                .expression_attribute_names("#data", attr::DATA)
                .expression_attribute_names("#ttl", attr::TTL)
                .expression_attribute_values(":now", s(item::timestamp(now)?))
                .expression_attribute_values(":failed", s(OUTBOX_FAILED))
                .expression_attribute_values(":id", s(id))
                .expression_attribute_values(":ttl", n(epoch(now) + FAILED_RETENTION_SECS))
        } else {
            let due = unix_ms(retry_at);
            request
                .update_expression(
                    "SET #due_at = :due, #gsk = :sk, #last_error = :reason \
                     ADD #attempts :one REMOVE #leased_until",
                )
                .expression_attribute_names("#gsk", gsk)
                .expression_attribute_names("#last_error", attr::LAST_ERROR)
                .expression_attribute_values(":due", n(due))
                .expression_attribute_values(":sk", s(crate::due::outbox_due_sk(due, id)))
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => {
                match self.get_item(OP, ui::outbox_key(tenant, id)).await? {
                    Some(_) => Ok(()),
                    None => Err(StoreError::NotFound),
                }
            }
            Err(e) => Err(sdk(OP, &e)),
        }
    }

    async fn defer_outbox(
        &self,
        tenant: &TenantId,
        id: &str,
        reason: &str,
        retry_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        const OP: &str = "defer outbox email";
        if id.is_empty() {
            return Err(StoreError::NotFound);
        }
        let (_, gpk, gsk) = index::GSI2;
        let due = unix_ms(retry_at);
        // As a transient failure, without counting an attempt.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(ui::outbox_key(tenant, id)))
            .condition_expression("attribute_exists(#gpk)")
            .update_expression(
                "SET #due_at = :due, #gsk = :sk, #last_error = :reason REMOVE #leased_until",
            )
            .expression_attribute_names("#gpk", gpk)
            .expression_attribute_names("#gsk", gsk)
            .expression_attribute_names("#leased_until", attr::LEASED_UNTIL)
            .expression_attribute_names("#due_at", attr::DUE_AT)
            .expression_attribute_names("#last_error", attr::LAST_ERROR)
            .expression_attribute_values(":reason", s(failure_reason(reason)))
            .expression_attribute_values(":due", n(due))
            .expression_attribute_values(":sk", s(crate::due::outbox_due_sk(due, id)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => {
                match self.get_item(OP, ui::outbox_key(tenant, id)).await? {
                    Some(_) => Ok(()),
                    None => Err(StoreError::NotFound),
                }
            }
            Err(e) => Err(sdk(OP, &e)),
        }
    }

    async fn failed_outbox(&self, limit: u32) -> Result<Vec<FailedEmail>, StoreError> {
        const OP: &str = "failed outbox";
        let limit = limit as usize;
        let mut failed = Vec::new();
        let mut start = None;
        let (name, pk_attr, _) = index::GSI3;
        while failed.len() < limit {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(name)
                .key_condition_expression("#kpk = :kpk")
                .expression_attribute_names("#kpk", pk_attr)
                .expression_attribute_values(":kpk", s(OUTBOX_FAILED))
                .scan_index_forward(false)
                .limit(i32::try_from(limit - failed.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk(OP, &e))?;
            for item in out.items() {
                failed.push(ri::failed_from_item(item)?);
            }
            start = out.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                break;
            }
        }
        failed.truncate(limit);
        Ok(failed)
    }

    /// One Query of the tenant's GSI4 partition, newest id first.
    async fn failed_outbox_of(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<FailedEmail>, StoreError> {
        const OP: &str = "failed outbox of a tenant";
        let limit = page.limit.clamp(1, PageRequest::MAX_LIMIT) as usize;
        let (name, pk_attr, sk_attr) = index::GSI4;
        let pk = ui::outbox_failed_of(tenant);
        let mut start = match &page.cursor {
            Some(raw) => {
                let after = cursor::decode(tenant, FAILED_LIST, raw)?;
                let key = ui::outbox_key(tenant, &after);
                let mut key = key;
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
                .scan_index_forward(false)
                .limit(i32::try_from(limit + 1 - items.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk(OP, &e))?;
            for item in out.items() {
                items.push(ri::failed_from_item(item)?);
            }
            start = out.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                break;
            }
        }
        let more = items.len() > limit;
        items.truncate(limit);
        let next_cursor = match items.last() {
            Some(last) if more => Some(cursor::encode(tenant, FAILED_LIST, &last.email.id)),
            _ => None,
        };
        Ok(Page { items, next_cursor })
    }

    async fn failed_email(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<FailedEmail>, StoreError> {
        if id.is_empty() {
            return Ok(None);
        }
        let Some(item) = self
            .get_item("failed outbox email", ui::outbox_key(tenant, id))
            .await?
        else {
            return Ok(None);
        };
        // Failed for good and not retried: still in the failed index.
        if !item.contains_key(index::GSI3.1) || item.contains_key(attr::SENT_AT) {
            return Ok(None);
        }
        ri::failed_from_item(&item).map(Some)
    }

    async fn retire_failed_outbox(&self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
        const OP: &str = "retire failed outbox email";
        if id.is_empty() {
            return Ok(false);
        }
        let (_, fpk, fsk) = index::GSI3;
        let (_, tpk, tsk) = index::GSI4;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(ui::outbox_key(tenant, id)))
            .update_expression("SET #retried_at = :now REMOVE #fpk, #fsk, #tpk, #tsk")
            .condition_expression("attribute_exists(#fpk) AND attribute_not_exists(#sent_at)")
            .expression_attribute_names("#retried_at", RETRIED_AT)
            .expression_attribute_names("#sent_at", attr::SENT_AT)
            .expression_attribute_names("#fpk", fpk)
            .expression_attribute_names("#fsk", fsk)
            .expression_attribute_names("#tpk", tpk)
            .expression_attribute_names("#tsk", tsk)
            .expression_attribute_values(":now", s(item::timestamp(OffsetDateTime::now_utc())?))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(sdk(OP, &e)),
        }
    }
}
