//! The outbox contract: emails written with the change, claimed once,
//! settled as sent or failed.

use crate::fixtures::{FullStore, email_to, now, profile, sample_user, user_with_email};
use crate::fresh_tenant;
use peak_domain::TenantId;
use peak_domain::outbox::{EmailKind, OutboxClaim};
use peak_domain::ports::{PageRequest, StoreError, UserWrite};
use time::{Duration, OffsetDateTime};

pub(crate) async fn is_pending(store: &dyn FullStore, id: &str, at: OffsetDateTime) -> bool {
    store
        .pending_outbox(10_000, at)
        .await
        .expect("pending outbox")
        .iter()
        .any(|m| m.id == id)
}

pub(crate) async fn claim(
    store: &dyn FullStore,
    t: &TenantId,
    id: &str,
    at: OffsetDateTime,
) -> OutboxClaim {
    store.claim_outbox(t, id, at, 60).await.expect("claim")
}

pub async fn outbox_is_written_with_the_change_and_claimed_once(store: &dyn FullStore) {
    let (t, u, mail) = user_with_email(store).await;
    let at = now();
    let pending = store.pending_outbox(10_000, at).await.expect("outbox");
    let mine: Vec<_> = pending.iter().filter(|m| m.user_id == u.id).collect();
    assert_eq!(mine, [&mail]);
    assert_eq!(
        claim(store, &fresh_tenant(), &mail.id, at).await,
        OutboxClaim::Gone,
        "another tenant cannot claim it"
    );
    assert_eq!(
        claim(store, &t, &mail.id, at).await,
        OutboxClaim::Claimed {
            email: mail.clone(),
            attempts: 0
        }
    );
    match claim(store, &t, &mail.id, at + Duration::seconds(1)).await {
        OutboxClaim::Busy { until } => assert_eq!(until, at + Duration::seconds(60)),
        other => panic!("a second claim while leased must be Busy, got {other:?}"),
    }
    assert!(
        !is_pending(store, &mail.id, at + Duration::seconds(30)).await,
        "a leased email is not pending"
    );
    assert_eq!(
        claim(store, &t, "01NOSUCHEMAIL0000000000000", at).await,
        OutboxClaim::Gone
    );
}

pub async fn completed_outbox_email_is_never_sent_again(store: &dyn FullStore) {
    let (t, _, mail) = user_with_email(store).await;
    let at = now();
    assert!(matches!(
        claim(store, &t, &mail.id, at).await,
        OutboxClaim::Claimed { .. }
    ));
    assert_eq!(
        store
            .complete_outbox(&fresh_tenant(), &mail.id, "m-1")
            .await,
        Err(StoreError::NotFound),
        "another tenant cannot complete it"
    );
    store
        .complete_outbox(&t, &mail.id, "m-1")
        .await
        .expect("complete");
    store
        .complete_outbox(&t, &mail.id, "m-2")
        .await
        .expect("completing twice changes nothing");
    // Even long after the lease would have expired.
    let later = at + Duration::hours(1);
    assert_eq!(
        claim(store, &t, &mail.id, later).await,
        OutboxClaim::AlreadySent
    );
    assert!(!is_pending(store, &mail.id, later).await);
    store
        .fail_outbox(&t, &mail.id, "late failure", true, later)
        .await
        .expect("failing a sent email changes nothing");
    assert_eq!(
        claim(store, &t, &mail.id, later).await,
        OutboxClaim::AlreadySent
    );
    assert!(
        store
            .failed_outbox(10_000)
            .await
            .expect("failed")
            .iter()
            .all(|f| f.email.id != mail.id)
    );
    assert_eq!(
        store
            .complete_outbox(&t, "01NOSUCHEMAIL0000000000000", "m")
            .await,
        Err(StoreError::NotFound)
    );
}

pub async fn transient_outbox_failure_is_retried_after_its_time(store: &dyn FullStore) {
    let (t, _, mail) = user_with_email(store).await;
    let at = now();
    assert!(matches!(
        claim(store, &t, &mail.id, at).await,
        OutboxClaim::Claimed { attempts: 0, .. }
    ));
    let retry_at = at + Duration::seconds(10);
    assert_eq!(
        store
            .fail_outbox(&fresh_tenant(), &mail.id, "throttled", false, retry_at)
            .await,
        Err(StoreError::NotFound),
        "another tenant cannot fail it"
    );
    store
        .fail_outbox(&t, &mail.id, "throttled", false, retry_at)
        .await
        .expect("fail");
    assert!(
        !is_pending(store, &mail.id, at + Duration::seconds(5)).await,
        "not due before its retry time"
    );
    assert_eq!(
        claim(store, &t, &mail.id, at + Duration::seconds(5)).await,
        OutboxClaim::Busy { until: retry_at }
    );
    assert!(
        is_pending(store, &mail.id, retry_at).await,
        "due at its retry time"
    );
    assert_eq!(
        claim(store, &t, &mail.id, retry_at).await,
        OutboxClaim::Claimed {
            email: mail.clone(),
            attempts: 1
        }
    );
    let second = retry_at + Duration::seconds(20);
    store
        .fail_outbox(&t, &mail.id, "timeout", false, second)
        .await
        .expect("fail again");
    assert!(matches!(
        claim(store, &t, &mail.id, second).await,
        OutboxClaim::Claimed { attempts: 2, .. }
    ));
    store
        .complete_outbox(&t, &mail.id, "m-1")
        .await
        .expect("complete");
    assert_eq!(
        claim(store, &t, &mail.id, second).await,
        OutboxClaim::AlreadySent
    );
}

/// A throttled email is put back without using up an attempt.
pub async fn deferred_outbox_email_counts_no_attempt(store: &dyn FullStore) {
    let (t, _, mail) = user_with_email(store).await;
    let at = now();
    assert!(matches!(
        claim(store, &t, &mail.id, at).await,
        OutboxClaim::Claimed { attempts: 0, .. }
    ));
    let retry_at = at + Duration::seconds(2);
    assert_eq!(
        store
            .defer_outbox(&fresh_tenant(), &mail.id, "throttled", retry_at)
            .await,
        Err(StoreError::NotFound),
        "another tenant cannot defer it"
    );
    store
        .defer_outbox(&t, &mail.id, "throttled", retry_at)
        .await
        .expect("defer");
    assert!(
        !is_pending(store, &mail.id, at + Duration::seconds(1)).await,
        "not due before its retry time"
    );
    assert!(is_pending(store, &mail.id, retry_at).await);
    assert!(matches!(
        claim(store, &t, &mail.id, retry_at).await,
        OutboxClaim::Claimed { attempts: 0, .. }
    ));
    store
        .complete_outbox(&t, &mail.id, "m-1")
        .await
        .expect("complete");
    store
        .defer_outbox(&t, &mail.id, "throttled", retry_at)
        .await
        .expect("a sent email is left as it is");
    assert_eq!(
        claim(store, &t, &mail.id, retry_at).await,
        OutboxClaim::AlreadySent
    );
}

pub async fn permanent_outbox_failure_is_listed_and_not_pending(store: &dyn FullStore) {
    let (t, u, mail) = user_with_email(store).await;
    let at = now();
    assert!(matches!(
        claim(store, &t, &mail.id, at).await,
        OutboxClaim::Claimed { .. }
    ));
    store
        .fail_outbox(&t, &mail.id, "MessageRejected: bad address", true, at)
        .await
        .expect("fail");
    let later = at + Duration::hours(1);
    assert!(!is_pending(store, &mail.id, later).await);
    assert_eq!(claim(store, &t, &mail.id, later).await, OutboxClaim::Gone);
    let failed = store.failed_outbox(10_000).await.expect("failed");
    let mine: Vec<_> = failed.iter().filter(|f| f.email.id == mail.id).collect();
    assert_eq!(mine.len(), 1, "listed once");
    let f = mine[0];
    assert_eq!(f.reason, "MessageRejected: bad address");
    assert_eq!(f.attempts, 1);
    assert_eq!(f.email.tenant_id, t);
    assert_eq!(f.email.user_id, u.id);
    assert_eq!(f.email.kind, EmailKind::Invitation);
    assert_eq!(f.email.data, serde_json::Value::Null, "the link is dropped");
    assert!(f.failed_at >= at - Duration::minutes(5));
    store
        .fail_outbox(&t, &mail.id, "again", true, later)
        .await
        .expect("failing twice changes nothing");
    let again = store.failed_outbox(10_000).await.expect("failed");
    let mine: Vec<_> = again.iter().filter(|f| f.email.id == mail.id).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].reason, "MessageRejected: bad address");
}

pub async fn expired_outbox_lease_can_be_claimed_again(store: &dyn FullStore) {
    let (t, _, mail) = user_with_email(store).await;
    let at = now();
    assert!(matches!(
        claim(store, &t, &mail.id, at).await,
        OutboxClaim::Claimed { .. }
    ));
    // The first mailer died holding the lease: once it ends the email is
    // pending again, and the next claim takes it (no attempt was counted).
    let expired = at + Duration::seconds(61);
    assert!(is_pending(store, &mail.id, expired).await);
    assert_eq!(
        claim(store, &t, &mail.id, expired).await,
        OutboxClaim::Claimed {
            email: mail.clone(),
            attempts: 0
        }
    );
    assert!(matches!(
        claim(store, &t, &mail.id, expired + Duration::seconds(1)).await,
        OutboxClaim::Busy { .. }
    ));
}

/// A tenant's failed emails: only its own, newest first, paged; a retired
/// one leaves both failed lists and cannot be retired twice.
pub async fn failed_emails_are_listed_per_tenant_and_retired(store: &dyn FullStore) {
    let t = fresh_tenant();
    let p = profile(store, &t, "Standard").await;
    let at = now();
    let mut ids = Vec::new();
    for i in 0..3 {
        let u = sample_user(&t, &p, "Ada", "Lovelace", &format!("ada{i}@example.com"));
        let mut mail = email_to(&u, EmailKind::Invitation);
        // Ids in creation order, as the use cases make them.
        mail.id = peak_domain::ids::monotonic_ulid().to_string();
        store
            .write_user(UserWrite {
                previous: None,
                next: Some(&u),
                audit: &[],
                outbox: std::slice::from_ref(&mail),
            })
            .await
            .expect("create");
        store
            .fail_outbox(&t, &mail.id, "MessageRejected", true, at)
            .await
            .expect("fail");
        ids.push(mail.id);
    }
    // Another tenant's failure is never in this tenant's list.
    let (other, _, other_mail) = user_with_email(store).await;
    store
        .fail_outbox(&other, &other_mail.id, "MessageRejected", true, at)
        .await
        .expect("fail");

    let first = store
        .failed_outbox_of(&t, &PageRequest::first(2))
        .await
        .expect("page 1");
    let cursor = first.next_cursor.clone().expect("a second page");
    let second = store
        .failed_outbox_of(
            &t,
            &PageRequest {
                limit: 2,
                cursor: Some(cursor.clone()),
            },
        )
        .await
        .expect("page 2");
    assert_eq!(second.next_cursor, None);
    let listed: Vec<_> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|f| f.email.id.clone())
        .collect();
    let newest_first: Vec<_> = ids.iter().rev().cloned().collect();
    assert_eq!(listed, newest_first);
    assert!(first.items.iter().all(|f| f.email.tenant_id == t));
    assert_eq!(
        store
            .failed_outbox_of(
                &other,
                &PageRequest {
                    limit: 2,
                    cursor: Some(cursor)
                }
            )
            .await,
        Err(StoreError::InvalidCursor),
        "a cursor is no use in another tenant"
    );
    assert_eq!(
        store.failed_email(&other, &ids[0]).await.expect("read"),
        None,
        "not another tenant's"
    );
    let one = store
        .failed_email(&t, &ids[0])
        .await
        .expect("read")
        .expect("failed");
    assert_eq!(one.reason, "MessageRejected");

    assert!(
        store
            .retire_failed_outbox(&t, &ids[0])
            .await
            .expect("retire")
    );
    assert!(
        !store
            .retire_failed_outbox(&t, &ids[0])
            .await
            .expect("again")
    );
    assert!(
        !store
            .retire_failed_outbox(&other, &ids[1])
            .await
            .expect("other tenant")
    );
    assert_eq!(store.failed_email(&t, &ids[0]).await.expect("read"), None);
    let left = store
        .failed_outbox_of(&t, &PageRequest::first(10))
        .await
        .expect("list");
    assert_eq!(left.items.len(), 2);
    assert!(left.items.iter().all(|f| f.email.id != ids[0]));
    assert!(
        store
            .failed_outbox(10_000)
            .await
            .expect("operators' list")
            .iter()
            .all(|f| f.email.id != ids[0]),
        "off the operators' list too"
    );
    // A pending (never failed) email is not a failed one.
    let (t2, _, pending) = user_with_email(store).await;
    assert_eq!(
        store.failed_email(&t2, &pending.id).await.expect("read"),
        None
    );
    assert!(
        !store
            .retire_failed_outbox(&t2, &pending.id)
            .await
            .expect("retire")
    );
}
