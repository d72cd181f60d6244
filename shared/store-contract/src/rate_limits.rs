//! The rate-limit contract.

use crate::fixtures::FullStore;
use time::{Duration, OffsetDateTime};

pub async fn rate_limits_count_per_bucket_and_window(store: &dyn FullStore) {
    let bucket = format!("reset:{}", ulid::Ulid::new());
    let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
    for _ in 0..3 {
        assert!(
            store
                .take_rate_limit(&bucket, at, 3600, 3)
                .await
                .expect("take")
        );
    }
    assert!(
        !store
            .take_rate_limit(&bucket, at, 3600, 3)
            .await
            .expect("take")
    );
    assert!(
        store
            .take_rate_limit(&format!("{bucket}-other"), at, 3600, 3)
            .await
            .expect("take")
    );
    assert!(
        store
            .take_rate_limit(&bucket, at + Duration::hours(1), 3600, 3)
            .await
            .expect("take"),
        "next window"
    );
}
