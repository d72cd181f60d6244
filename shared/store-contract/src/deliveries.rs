//! The delivery-log contract (webhook de-duplication).

use crate::fixtures::FullStore;
use peak_domain::model::delivery::{IdpDelivery, IdpEventKind, Recorded};
use time::{Duration, OffsetDateTime};

pub(crate) fn delivery(id: &str, kind: IdpEventKind) -> IdpDelivery {
    IdpDelivery {
        id: id.to_owned(),
        kind,
        subject: "auth0|ada".into(),
        tenant: Some("acme".into()),
        occurred_at: OffsetDateTime::from_unix_timestamp(1_799_999_000).expect("time"),
        pushed_blocked: Some(true),
    }
}

pub(crate) async fn pending_ids(store: &dyn FullStore, at: OffsetDateTime) -> Vec<String> {
    store
        .pending_deliveries(1000, at)
        .await
        .expect("pending deliveries")
        .into_iter()
        .map(|d| d.id)
        .collect()
}

pub async fn deliveries_are_recorded_once_and_applied_from_the_record(store: &dyn FullStore) {
    let id = format!("stream:evt_{}", ulid::Ulid::new());
    let d = delivery(&id, IdpEventKind::LoginBlocked);
    let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
    assert_eq!(
        store.record_delivery(&d, at, 3600).await.expect("record"),
        Recorded::New
    );
    assert!(
        pending_ids(store, at).await.contains(&id),
        "owed, due at once"
    );
    // The sender's retry while it is owed: recorded already, not again.
    assert_eq!(
        store.record_delivery(&d, at, 3600).await.expect("record"),
        Recorded::Owed
    );
    // One applier holds it; another finds nothing to take.
    let (claimed, attempts) = store
        .claim_delivery(&id, at, 30)
        .await
        .expect("claim")
        .expect("claimed");
    assert_eq!((claimed, attempts), (d.clone(), 0), "kept whole");
    assert!(
        store
            .claim_delivery(&id, at, 30)
            .await
            .expect("claim")
            .is_none()
    );
    assert!(!pending_ids(store, at).await.contains(&id), "leased");
    // The lease runs out (the applier died): due again.
    let later = at + Duration::seconds(31);
    assert!(pending_ids(store, later).await.contains(&id));
    let (_, attempts) = store
        .claim_delivery(&id, later, 30)
        .await
        .expect("claim")
        .expect("claimed again");
    assert_eq!(attempts, 0);
    // Applying failed: counted, due at the retry time, never dropped.
    let retry_at = later + Duration::seconds(120);
    store
        .fail_delivery(&id, "store unavailable", retry_at)
        .await
        .expect("fail");
    assert!(
        !pending_ids(store, retry_at - Duration::seconds(1))
            .await
            .contains(&id)
    );
    assert!(pending_ids(store, retry_at).await.contains(&id));
    let (_, attempts) = store
        .claim_delivery(&id, retry_at, 30)
        .await
        .expect("claim")
        .expect("due again");
    assert_eq!(attempts, 1);
    store
        .complete_delivery(&id, "applied")
        .await
        .expect("complete");
    assert!(
        !pending_ids(store, retry_at + Duration::hours(1))
            .await
            .contains(&id)
    );
    assert!(
        store
            .claim_delivery(&id, retry_at + Duration::hours(1), 30)
            .await
            .expect("claim")
            .is_none(),
        "done is never applied again"
    );
    // A replay: done before.
    assert_eq!(
        store.record_delivery(&d, at, 3600).await.expect("record"),
        Recorded::Done
    );
    // Other ids are their own; an expired id is new again.
    let other = delivery(&format!("{id}-other"), IdpEventKind::PasswordSet);
    assert_eq!(
        store
            .record_delivery(&other, at, 3600)
            .await
            .expect("record"),
        Recorded::New
    );
    assert_eq!(
        store
            .record_delivery(&d, at + Duration::seconds(3600), 3600)
            .await
            .expect("record"),
        Recorded::New
    );
}
