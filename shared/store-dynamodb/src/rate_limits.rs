//! [`RateLimits`] on the single table: one counter item per bucket and
//! window, expiring by TTL.

use crate::error::{is_condition_failed, sdk};
use crate::item::{epoch, n, s};
use crate::user_item::{self as ui, attr};
use crate::{DynamoStore, names};
use async_trait::async_trait;
use peak_domain::ports::{RateLimits, StoreError};
use time::OffsetDateTime;

#[async_trait]
impl RateLimits for DynamoStore {
    async fn take_rate_limit(
        &self,
        bucket: &str,
        now: OffsetDateTime,
        window_secs: u64,
        max: u32,
    ) -> Result<bool, StoreError> {
        const OP: &str = "take rate limit";
        if max == 0 {
            return Ok(false);
        }
        let window = i64::try_from(window_secs)
            .ok()
            .filter(|w| *w > 0)
            .ok_or_else(|| StoreError::Backend(format!("{OP}: the window must be positive")))?;
        let start = epoch(now).div_euclid(window) * window;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(ui::key(
                ui::rate_pk(bucket, window_secs, start),
                ui::RATE_SK,
            )))
            .update_expression("ADD #hits :one SET #entity = :entity, #ttl = :ttl")
            .condition_expression("attribute_not_exists(#hits) OR #hits < :max")
            .set_expression_attribute_names(Some(names(&[attr::HITS, attr::ENTITY])))
            .expression_attribute_names("#ttl", attr::TTL)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(max))
            .expression_attribute_values(":entity", s(ui::RATE_ENTITY))
            .expression_attribute_values(":ttl", n(start.saturating_add(window)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(sdk(OP, &e)),
        }
    }
}
