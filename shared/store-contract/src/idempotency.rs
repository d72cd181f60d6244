//! The idempotency-key contract.

use crate::fixtures::{FullStore, now};
use crate::fresh_tenant;
use peak_domain::ports::{IdempotencyClaim, SavedResponse};
use time::{Duration, OffsetDateTime};

pub async fn idempotency_keys_claim_replay_and_release(store: &dyn FullStore) {
    let t = fresh_tenant();
    let at = now();
    assert_eq!(
        store
            .claim_idempotency_key(&t, "k1", "fp-a", at, 60, 86_400)
            .await
            .expect("claim"),
        IdempotencyClaim::Claimed
    );
    assert_eq!(
        store
            .claim_idempotency_key(&t, "k1", "fp-a", at, 60, 86_400)
            .await
            .expect("claim"),
        IdempotencyClaim::InProgress
    );
    assert_eq!(
        store
            .claim_idempotency_key(&t, "k1", "fp-b", at, 60, 86_400)
            .await
            .expect("claim"),
        IdempotencyClaim::Mismatch
    );
    let saved = SavedResponse {
        status: 201,
        headers: vec![("location".into(), "/users/1".into())],
        body: "{\"id\":\"1\"}".into(),
    };
    store
        .complete_idempotency_key(&t, "k1", &saved)
        .await
        .expect("complete");
    assert_eq!(
        store
            .claim_idempotency_key(&t, "k1", "fp-a", at, 60, 86_400)
            .await
            .expect("claim"),
        IdempotencyClaim::Completed(saved)
    );
    assert_eq!(
        store
            .claim_idempotency_key(&fresh_tenant(), "k1", "fp-a", at, 60, 86_400)
            .await
            .expect("claim"),
        IdempotencyClaim::Claimed,
        "keys are per tenant"
    );
    assert_eq!(
        store
            .claim_idempotency_key(&t, "k2", "fp", at, 60, 86_400)
            .await
            .expect("claim"),
        IdempotencyClaim::Claimed
    );
    store
        .release_idempotency_key(&t, "k2")
        .await
        .expect("release");
    assert_eq!(
        store
            .claim_idempotency_key(&t, "k2", "fp", at, 60, 86_400)
            .await
            .expect("claim"),
        IdempotencyClaim::Claimed
    );
    // An expired key is claimable again.
    let later = at + Duration::seconds(90_000);
    assert_eq!(
        store
            .claim_idempotency_key(&t, "k1", "fp-z", later, 60, 86_400)
            .await
            .expect("claim"),
        IdempotencyClaim::Claimed
    );
}

/// A request that dies holding its key (a crashed or timed-out function:
/// neither completed nor released) frees the key when its lease ends, not
/// when the key expires a day later; a completed key outlives the lease.
pub async fn idempotency_claims_left_by_a_crash_free_themselves(store: &dyn FullStore) {
    let t = fresh_tenant();
    let at = now();
    let claim = |key: &'static str, fp: &'static str, when: OffsetDateTime| {
        let t = t.clone();
        async move {
            store
                .claim_idempotency_key(&t, key, fp, when, 60, 86_400)
                .await
                .expect("claim")
        }
    };
    assert_eq!(claim("crashed", "fp", at).await, IdempotencyClaim::Claimed);
    assert_eq!(
        claim("crashed", "fp", at + Duration::seconds(59)).await,
        IdempotencyClaim::InProgress,
        "the lease still holds"
    );
    assert_eq!(
        claim("crashed", "fp", at + Duration::seconds(60)).await,
        IdempotencyClaim::Claimed,
        "a retry a minute later owns the key"
    );
    // The retry holds a lease of its own...
    assert_eq!(
        claim("crashed", "fp", at + Duration::seconds(61)).await,
        IdempotencyClaim::InProgress
    );
    // ...and completes it like any claim.
    let saved = SavedResponse {
        status: 201,
        headers: vec![],
        body: "{}".into(),
    };
    store
        .complete_idempotency_key(&t, "crashed", &saved)
        .await
        .expect("complete after a takeover");
    assert_eq!(
        claim("crashed", "fp", at + Duration::seconds(600)).await,
        IdempotencyClaim::Completed(saved.clone()),
        "a completed key outlives its lease"
    );
    // An abandoned claim is forgotten whatever the retry sends.
    assert_eq!(claim("other", "fp-a", at).await, IdempotencyClaim::Claimed);
    assert_eq!(
        claim("other", "fp-b", at + Duration::seconds(61)).await,
        IdempotencyClaim::Claimed
    );
}
