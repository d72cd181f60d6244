//! [`RateLimits`] for [`SqliteStore`].

use crate::SqliteStore;
use crate::sql::db_error;
use async_trait::async_trait;
use peak_domain::ports::{RateLimits, StoreError};
use rusqlite::{TransactionBehavior, params};
use time::OffsetDateTime;

#[async_trait]
impl RateLimits for SqliteStore {
    async fn take_rate_limit(
        &self,
        bucket: &str,
        now: OffsetDateTime,
        window_secs: u64,
        max: u32,
    ) -> Result<bool, StoreError> {
        if max == 0 {
            return Ok(false);
        }
        let window = i64::try_from(window_secs.max(1)).unwrap_or(i64::MAX);
        let window_start = now
            .unix_timestamp()
            .div_euclid(window)
            .saturating_mul(window);
        let bucket = bucket.to_owned();
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            tx.execute(
                "DELETE FROM rate_limits WHERE bucket = ?1 AND window_start < ?2",
                params![bucket, window_start],
            )
            .map_err(db_error)?;
            let counted = tx
                .execute(
                    "INSERT INTO rate_limits (bucket, window_start, hits) VALUES (?1, ?2, 1)
                     ON CONFLICT (bucket, window_start) DO UPDATE SET hits = hits + 1
                     WHERE hits < ?3",
                    params![bucket, window_start, i64::from(max)],
                )
                .map_err(db_error)?;
            tx.commit().map_err(db_error)?;
            Ok(counted > 0)
        })
        .await
    }
}
