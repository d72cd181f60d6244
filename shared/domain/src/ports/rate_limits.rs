//! The rate-limit port.

use super::StoreError;
use async_trait::async_trait;
use time::OffsetDateTime;

/// Fixed-window counters.
#[async_trait]
pub trait RateLimits: Send + Sync {
    /// Counts one hit on `bucket` in the fixed window containing `now`;
    /// `false` when the window already had `max` hits.
    async fn take_rate_limit(
        &self,
        bucket: &str,
        now: OffsetDateTime,
        window_secs: u64,
        max: u32,
    ) -> Result<bool, StoreError>;
}
