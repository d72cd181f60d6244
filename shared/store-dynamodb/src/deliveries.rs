//! Deliveries from the identity provider: [`DeliveryLog`] on the single
//! table. A delivery is put if absent (or expired) when it arrives, then
//! claimed, applied and marked done (see `peak_domain::idp_events`).
//!
//! | item      | PK                       | SK        | GSI2 (sparse, while owed)                           |
//! |-----------|--------------------------|-----------|-----------------------------------------------------|
//! | delivery  | `IDPEVENT#<delivery id>` | `IDPEVENT`| `IDPEVENT#PENDING` / due ms + id (TTL `expires_at`) |

use crate::due::{outbox_due_bound, outbox_due_sk};
use crate::error::{is_condition_failed, malformed, sdk};
use crate::idp_work::{ATTEMPTS, DONE, DUE_MS, LAST_ERROR, SUBJECT, bool_attr};
use crate::item::get_i64;
use crate::item::{Item, get_s, n, s};
use crate::user_item::{attr, index, key, unix_ms};
use crate::{DynamoStore, names};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use peak_domain::model::delivery::{IdpDelivery, IdpEventKind, Recorded};
use peak_domain::outbox::failure_reason;
use peak_domain::ports::{DeliveryLog, StoreError};
use time::OffsetDateTime;

pub const IDP_EVENT_SK: &str = "IDPEVENT";
pub const IDP_EVENT_ENTITY: &str = "idp_event";
/// The sparse GSI2 partition of every owed delivery.
pub const IDP_EVENT_PENDING: &str = "IDPEVENT#PENDING";
const KIND: &str = "kind";
const TENANT: &str = "tenant";
const OCCURRED_MS: &str = "occurred_ms";
const PUSHED_BLOCKED: &str = "pushed_blocked";
const OUTCOME: &str = "outcome";

fn event_key(id: &str) -> Item {
    key(format!("IDPEVENT#{id}"), IDP_EVENT_SK)
}

impl DynamoStore {
    /// A conditional put: absent, or expired (TTL deletion is lazy, up to
    /// days late, so an expired item is treated as absent). When refused, a
    /// consistent read says whether the earlier one is done.
    pub(crate) async fn record_delivery_item(
        &self,
        d: &IdpDelivery,
        now: OffsetDateTime,
        ttl_secs: u64,
    ) -> Result<Recorded, StoreError> {
        const WHAT: &str = "record an identity-provider delivery";
        let now_s = now.unix_timestamp();
        let expires = now_s.saturating_add(i64::try_from(ttl_secs).unwrap_or(i64::MAX));
        let (_, gpk, gsk) = index::GSI2;
        let mut item = event_key(&d.id);
        for (name, value) in [
            (attr::ENTITY, s(IDP_EVENT_ENTITY)),
            (attr::TTL, n(expires)),
            (gpk, s(IDP_EVENT_PENDING)),
            (gsk, s(outbox_due_sk(0, &d.id))),
            (KIND, s(d.kind.as_str())),
            (SUBJECT, s(&d.subject)),
            (OCCURRED_MS, n(unix_ms(d.occurred_at))),
            (ATTEMPTS, n(0)),
            (DUE_MS, n(0)),
            (DONE, AttributeValue::Bool(false)),
        ] {
            item.insert(name.to_owned(), value);
        }
        if let Some(t) = &d.tenant {
            item.insert(TENANT.to_owned(), s(t));
        }
        if let Some(b) = d.pushed_blocked {
            item.insert(PUSHED_BLOCKED.to_owned(), AttributeValue::Bool(b));
        }
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
            Ok(_) => Ok(Recorded::New),
            Err(e) if is_condition_failed(&e) => {
                let earlier = self.get_item(WHAT, event_key(&d.id)).await?;
                Ok(match earlier {
                    Some(item) if bool_attr(&item, DONE) => Recorded::Done,
                    _ => Recorded::Owed,
                })
            }
            Err(e) => Err(sdk(WHAT, &e)),
        }
    }

    pub(crate) async fn claim_delivery_item(
        &self,
        id: &str,
        now: OffsetDateTime,
        lease_secs: u64,
    ) -> Result<Option<(IdpDelivery, u32)>, StoreError> {
        const WHAT: &str = "claim an identity-provider delivery";
        let now_ms = unix_ms(now);
        let until = now_ms.saturating_add(
            i64::try_from(lease_secs)
                .unwrap_or(i64::MAX)
                .saturating_mul(1000),
        );
        let (_, _, gsk) = index::GSI2;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(event_key(id)))
            .update_expression("SET #due_ms = :until, #gsk = :sk")
            .condition_expression("#due_ms <= :now AND #done = :false")
            .set_expression_attribute_names(Some(names(&[DUE_MS, DONE])))
            .expression_attribute_names("#gsk", gsk)
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":sk", s(outbox_due_sk(until, id)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                let attempts = u32::try_from(get_i64(&item, ATTEMPTS)?.max(0)).unwrap_or(u32::MAX);
                Ok(Some((delivery_from_item(&item)?, attempts)))
            }
            Err(e) if is_condition_failed(&e) => Ok(None),
            Err(e) => Err(sdk(WHAT, &e)),
        }
    }

    pub(crate) async fn complete_delivery_item(
        &self,
        id: &str,
        outcome: &str,
    ) -> Result<(), StoreError> {
        const WHAT: &str = "complete an identity-provider delivery";
        let (_, gpk, gsk) = index::GSI2;
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(event_key(id)))
            .update_expression(
                "SET #done = :true, #outcome = :outcome REMOVE #last_error, #gpk, #gsk",
            )
            .condition_expression("attribute_exists(#done)")
            .set_expression_attribute_names(Some(names(&[DONE, OUTCOME, LAST_ERROR])))
            .expression_attribute_names("#gpk", gpk)
            .expression_attribute_names("#gsk", gsk)
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":outcome", s(outcome))
            .send()
            .await
            .map_err(|e| sdk(WHAT, &e))?;
        Ok(())
    }

    pub(crate) async fn fail_delivery_item(
        &self,
        id: &str,
        reason: &str,
        retry_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        const WHAT: &str = "record a failed identity-provider delivery";
        let due = unix_ms(retry_at);
        let (_, _, gsk) = index::GSI2;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(event_key(id)))
            .update_expression(
                "SET #attempts = #attempts + :one, #last_error = :reason, #due_ms = :due, #gsk = :sk",
            )
            .condition_expression("#done = :false")
            .set_expression_attribute_names(Some(names(&[ATTEMPTS, LAST_ERROR, DUE_MS, DONE])))
            .expression_attribute_names("#gsk", gsk)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":due", n(due))
            .expression_attribute_values(":sk", s(outbox_due_sk(due, id)))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(sdk(WHAT, &e)),
        }
    }

    pub(crate) async fn pending_delivery_items(
        &self,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<IdpDelivery>, StoreError> {
        self.gsi2_items(
            "list owed identity-provider deliveries",
            IDP_EVENT_PENDING,
            Some(outbox_due_bound(unix_ms(now))),
            limit,
            delivery_from_item,
        )
        .await
    }
}

fn delivery_from_item(item: &Item) -> Result<IdpDelivery, StoreError> {
    let pk = get_s(item, crate::item::PK)?;
    Ok(IdpDelivery {
        id: pk
            .strip_prefix("IDPEVENT#")
            .ok_or_else(|| malformed("not a delivery item"))?
            .to_owned(),
        kind: IdpEventKind::parse(get_s(item, KIND)?).ok_or_else(|| malformed("invalid `kind`"))?,
        subject: get_s(item, SUBJECT)?.to_owned(),
        tenant: match item.get(TENANT) {
            Some(_) => Some(get_s(item, TENANT)?.to_owned()),
            None => None,
        },
        occurred_at: OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(get_i64(item, OCCURRED_MS)?) * 1_000_000,
        )
        .map_err(|_| malformed("invalid `occurred_ms`"))?,
        pushed_blocked: match item.get(PUSHED_BLOCKED) {
            Some(AttributeValue::Bool(b)) => Some(*b),
            _ => None,
        },
    })
}

#[async_trait]
impl DeliveryLog for DynamoStore {
    async fn record_delivery(
        &self,
        delivery: &IdpDelivery,
        now: OffsetDateTime,
        ttl_secs: u64,
    ) -> Result<Recorded, StoreError> {
        self.record_delivery_item(delivery, now, ttl_secs).await
    }

    async fn claim_delivery(
        &self,
        id: &str,
        now: OffsetDateTime,
        lease_secs: u64,
    ) -> Result<Option<(IdpDelivery, u32)>, StoreError> {
        self.claim_delivery_item(id, now, lease_secs).await
    }

    async fn complete_delivery(&self, id: &str, outcome: &str) -> Result<(), StoreError> {
        self.complete_delivery_item(id, outcome).await
    }

    async fn fail_delivery(
        &self,
        id: &str,
        reason: &str,
        retry_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.fail_delivery_item(id, &failure_reason(reason), retry_at)
            .await
    }

    async fn pending_deliveries(
        &self,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<IdpDelivery>, StoreError> {
        self.pending_delivery_items(limit, now).await
    }
}
