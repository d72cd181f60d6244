//! [`IdempotencyKeys`] on the single table.

use crate::error::{LOOKUP_ATTEMPTS, is_condition_failed, sdk};
use crate::item::{self, epoch, get_s, n, s};
use crate::record_item as ri;
use crate::record_item::{COMPLETED, IN_PROGRESS};
use crate::user_item::{self as ui, attr};
use crate::{DynamoStore, names};
use async_trait::async_trait;
use peak_domain::ids::TenantId;
use peak_domain::ports::{IdempotencyClaim, IdempotencyKeys, SavedResponse, StoreError};
use time::OffsetDateTime;

#[async_trait]
impl IdempotencyKeys for DynamoStore {
    async fn claim_idempotency_key(
        &self,
        tenant: &TenantId,
        key: &str,
        fingerprint: &str,
        now: OffsetDateTime,
        lease_secs: u64,
        ttl_secs: u64,
    ) -> Result<IdempotencyClaim, StoreError> {
        const OP: &str = "claim idempotency key";
        let now_s = epoch(now);
        let after = |secs: u64| now_s.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX));
        let expires = after(ttl_secs);
        let mut item = ui::idempotency_key(tenant, key);
        item.insert(attr::ENTITY.into(), s(ui::IDEMPOTENCY_ENTITY));
        if !fingerprint.is_empty() {
            item.insert(attr::FINGERPRINT.into(), s(fingerprint));
        }
        item.insert(attr::STATE.into(), s(IN_PROGRESS));
        item.insert(attr::LEASE_EXPIRES_AT.into(), n(after(lease_secs)));
        item.insert(attr::TTL.into(), n(expires));
        for _ in 0..LOOKUP_ATTEMPTS {
            // TTL deletion is lazy (up to days): an expired key still
            // present counts as absent; so does a claim whose request died
            // (its lease has passed without a completion or a release).
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .condition_expression(
                    "attribute_not_exists(PK) OR #expires_at <= :now \
                     OR (#state = :in_progress AND #lease_expires_at <= :now)",
                )
                .set_expression_attribute_names(Some(names(&[
                    attr::TTL,
                    attr::STATE,
                    attr::LEASE_EXPIRES_AT,
                ])))
                .expression_attribute_values(":now", n(now_s))
                .expression_attribute_values(":in_progress", s(IN_PROGRESS))
                .send()
                .await;
            match put {
                Ok(_) => return Ok(IdempotencyClaim::Claimed),
                Err(e) if is_condition_failed(&e) => {}
                Err(e) => return Err(sdk(OP, &e)),
            }
            let Some(held) = self.get_item(OP, ui::idempotency_key(tenant, key)).await? else {
                continue; // released in between: claim again
            };
            let abandoned = get_s(&held, attr::STATE)? == IN_PROGRESS
                && held
                    .contains_key(attr::LEASE_EXPIRES_AT)
                    .then(|| item::get_i64(&held, attr::LEASE_EXPIRES_AT))
                    .transpose()?
                    .is_some_and(|lease| lease <= now_s);
            if item::get_i64(&held, attr::TTL)? <= now_s || abandoned {
                continue;
            }
            if ri::get_fingerprint(&held)? != fingerprint {
                return Ok(IdempotencyClaim::Mismatch);
            }
            return Ok(if get_s(&held, attr::STATE)? == COMPLETED {
                IdempotencyClaim::Completed(ri::decode_response(get_s(&held, attr::RESPONSE)?)?)
            } else {
                IdempotencyClaim::InProgress
            });
        }
        Err(StoreError::Unavailable(format!(
            "{OP}: the key keeps changing, retry"
        )))
    }

    async fn complete_idempotency_key(
        &self,
        tenant: &TenantId,
        key: &str,
        response: &SavedResponse,
    ) -> Result<(), StoreError> {
        const OP: &str = "complete idempotency key";
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(ui::idempotency_key(tenant, key)))
            .update_expression("SET #state = :completed, #response = :response")
            .condition_expression("attribute_exists(PK)")
            .set_expression_attribute_names(Some(names(&[attr::STATE, attr::RESPONSE])))
            .expression_attribute_values(":completed", s(COMPLETED))
            .expression_attribute_values(":response", s(ri::encode_response(response)?))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Err(StoreError::NotFound),
            Err(e) => Err(sdk(OP, &e)),
        }
    }

    async fn release_idempotency_key(
        &self,
        tenant: &TenantId,
        key: &str,
    ) -> Result<(), StoreError> {
        const OP: &str = "release idempotency key";
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(ui::idempotency_key(tenant, key)))
            // A completed key keeps its saved response.
            .condition_expression("#state = :in_progress")
            .set_expression_attribute_names(Some(names(&[attr::STATE])))
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .send()
            .await;
        match result {
            // Refused: nothing claimed to release.
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(sdk(OP, &e)),
        }
    }
}
