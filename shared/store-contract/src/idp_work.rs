//! The contract of owed identity-provider work.

use crate::fixtures::{FullStore, bumped, create, now, profile, sample_user, update};
use crate::fresh_tenant;
use peak_domain::TenantId;
use peak_domain::audit::AuditEvent;
use peak_domain::idp_work::{IdpOp, IdpSteps, IdpWorkItem};
use peak_domain::model::user::{PersonName, UserStatus};
use peak_domain::ports::{PageRequest, UserWrite};
use time::{Duration, OffsetDateTime};

/// This tenant's owed work (other cases share the store's pending list).
pub(crate) async fn owed(store: &dyn FullStore, t: &TenantId) -> Vec<IdpWorkItem> {
    let mut mine: Vec<_> = store
        .list_idp_work(1000)
        .await
        .expect("list owed work")
        .into_iter()
        .filter(|w| &w.work.tenant_id == t)
        .collect();
    mine.sort_by_key(|w| w.work.user_id.as_str().to_owned());
    mine
}

pub(crate) async fn due(store: &dyn FullStore, t: &TenantId, at: OffsetDateTime) -> usize {
    store
        .pending_idp_work(1000, at)
        .await
        .expect("pending owed work")
        .into_iter()
        .filter(|w| &w.work.tenant_id == t)
        .count()
}

pub async fn owed_idp_work_follows_the_user_and_completes_only_its_own_seq(store: &dyn FullStore) {
    let t = fresh_tenant();
    let p = profile(store, &t, "Buyers").await;
    let invited = sample_user(&t, &p, "Ada", "Lovelace", "ada@acme.example");
    create(store, &invited).await.expect("create");
    // Accepting links the login: the provider already holds this state.
    let mut active = bumped(&invited);
    active.idp_subject = Some("auth0|ada".into());
    active.status = UserStatus::Active;
    update(store, &invited, &active).await.expect("accept");
    assert!(owed(store, &t).await.is_empty(), "nothing owed yet");
    assert_eq!(
        store.idp_work_of(&t, &invited.id).await.expect("read"),
        None
    );

    // Suspending owes a sync at the new version, due at once.
    let mut suspended = bumped(&active);
    suspended.status = UserStatus::Suspended;
    update(store, &active, &suspended).await.expect("suspend");
    let work = owed(store, &t).await;
    assert_eq!(work.len(), 1);
    assert_eq!(
        (
            work[0].work.op,
            work[0].work.seq,
            work[0].work.subject.as_str()
        ),
        (IdpOp::Sync, suspended.version, "auth0|ada")
    );
    assert_eq!(work[0].attempts, 0);
    let at = now();
    assert_eq!(due(store, &t, at).await, 1);

    // One worker holds it; another finds nothing to take.
    let claimed = store
        .claim_idp_work(&t, &invited.id, at, 60)
        .await
        .expect("claim")
        .expect("claimed");
    assert_eq!(claimed.work, work[0].work);
    assert!(
        store
            .claim_idp_work(&t, &invited.id, at, 60)
            .await
            .expect("claim")
            .is_none()
    );
    assert_eq!(due(store, &t, at).await, 0, "leased work is not due");

    // A rename meanwhile replaces the record: due again, a new seq.
    let mut renamed = bumped(&suspended);
    renamed.first_name = PersonName::parse("first_name", "Augusta").expect("name");
    update(store, &suspended, &renamed).await.expect("rename");
    assert!(
        !store
            .complete_idp_work(&claimed.work, &[])
            .await
            .expect("complete"),
        "the older run must not remove the newer work"
    );
    let work = owed(store, &t).await;
    assert_eq!(work.len(), 1);
    assert_eq!(work[0].work.seq, renamed.version);
    assert_eq!(due(store, &t, at).await, 1);

    // A failure is counted and kept, due again at its retry time.
    let newer = store
        .claim_idp_work(&t, &invited.id, at, 60)
        .await
        .expect("claim")
        .expect("claimed");
    let retry_at = at + Duration::seconds(120);
    store
        .fail_idp_work(&newer.work, "auth0 503", retry_at)
        .await
        .expect("fail");
    let work = owed(store, &t).await;
    assert_eq!(work.len(), 1, "failed work is never dropped");
    assert_eq!(work[0].attempts, 1);
    assert_eq!(work[0].last_error.as_deref(), Some("auth0 503"));
    // One user's record reads as listed; another tenant's id names none.
    assert_eq!(
        store
            .idp_work_of(&t, &invited.id)
            .await
            .expect("read")
            .as_ref(),
        work.first()
    );
    assert_eq!(
        store
            .idp_work_of(&fresh_tenant(), &invited.id)
            .await
            .expect("read"),
        None
    );
    assert_eq!(due(store, &t, at + Duration::seconds(119)).await, 0);
    assert_eq!(due(store, &t, retry_at).await, 1);
    assert!(
        store
            .claim_idp_work(&t, &invited.id, at, 60)
            .await
            .expect("claim")
            .is_none()
    );
    let again = store
        .claim_idp_work(&t, &invited.id, retry_at, 60)
        .await
        .expect("claim")
        .expect("due again");
    assert_eq!(again.attempts, 1);
    assert!(
        again.work.steps.end_sessions,
        "a newer change keeps the sign-out the suspension asked for"
    );
    let notes = vec!["sessions not revoked: 403".to_owned()];
    assert!(
        store
            .complete_idp_work(&again.work, &notes)
            .await
            .expect("complete")
    );
    assert!(owed(store, &t).await.is_empty());
    // Done, it stays as the user's sync state, with what could not be done.
    let record = store
        .idp_work_of(&t, &invited.id)
        .await
        .expect("get")
        .expect("a done record");
    assert!(record.done);
    assert_eq!(record.notes, notes);
    assert_eq!(record.work.steps, IdpSteps::default());
    assert!(
        store
            .claim_idp_work(&t, &invited.id, retry_at, 60)
            .await
            .expect("claim")
            .is_none(),
        "done work is not taken again"
    );

    // Enabling owes a sync that lifts the brute-force block, afresh.
    let mut enabled = bumped(&renamed);
    enabled.status = UserStatus::Active;
    update(store, &renamed, &enabled).await.expect("enable");
    let work = owed(store, &t).await;
    assert_eq!(work.len(), 1);
    assert_eq!(
        work[0].work.steps,
        IdpSteps {
            end_sessions: false,
            clear_login_block: true
        },
        "a done record's steps do not carry over"
    );
    assert!(!work[0].done && work[0].notes.is_empty());
    let claimed = store
        .claim_idp_work(&t, &invited.id, retry_at, 60)
        .await
        .expect("claim")
        .expect("claimed");
    assert!(
        store
            .complete_idp_work(&claimed.work, &[])
            .await
            .expect("complete")
    );
    let renamed = enabled;

    // Changes the provider does not hold owe nothing.
    let mut regrouped = bumped(&renamed);
    regrouped.extension_groups = vec![];
    update(store, &renamed, &regrouped).await.expect("regroup");
    assert!(owed(store, &t).await.is_empty());

    // Deleting owes a delete of the login, with the subject kept.
    store
        .write_user(UserWrite {
            previous: Some(&regrouped),
            next: None,
            audit: &[],
            outbox: &[],
        })
        .await
        .expect("delete");
    let work = owed(store, &t).await;
    assert_eq!(work.len(), 1);
    assert_eq!(
        (
            work[0].work.op,
            work[0].work.seq,
            work[0].work.subject.as_str(),
            work[0].work.steps.end_sessions
        ),
        (IdpOp::Delete, regrouped.version + 1, "auth0|ada", true)
    );
    // A finished delete leaves nothing behind.
    let claimed = store
        .claim_idp_work(&t, &invited.id, retry_at, 60)
        .await
        .expect("claim")
        .expect("claimed");
    assert!(
        store
            .complete_idp_work(&claimed.work, &[])
            .await
            .expect("complete")
    );
    assert_eq!(store.idp_work_of(&t, &invited.id).await.expect("get"), None);
}

/// One tenant's owed work, by user, paged; "retry now" makes a backed-off
/// record due at once with its audit event, keeps its attempts, and does
/// nothing for a user who owes nothing.
pub async fn owed_idp_work_is_listed_per_tenant_and_retried_now(store: &dyn FullStore) {
    let t = fresh_tenant();
    let p = profile(store, &t, "Buyers").await;
    let mut users = Vec::new();
    for i in 0..3 {
        let mut u = sample_user(&t, &p, "Ada", "Lovelace", &format!("ada{i}@acme.example"));
        u.idp_subject = Some(format!("auth0|ada{i}"));
        u.status = UserStatus::Active;
        create(store, &u).await.expect("create");
        let mut suspended = bumped(&u);
        suspended.status = UserStatus::Suspended;
        update(store, &u, &suspended).await.expect("suspend");
        users.push(suspended);
    }
    // Another tenant's owed work.
    let other = fresh_tenant();
    let op = profile(store, &other, "Buyers").await;
    let mut o = sample_user(&other, &op, "Bo", "Other", "bo@other.example");
    o.idp_subject = Some("auth0|bo".into());
    o.status = UserStatus::Active;
    create(store, &o).await.expect("create");
    let mut os = bumped(&o);
    os.status = UserStatus::Suspended;
    update(store, &o, &os).await.expect("suspend");

    let first = store
        .idp_work_of_tenant(&t, &PageRequest::first(2))
        .await
        .expect("page 1");
    let second = store
        .idp_work_of_tenant(
            &t,
            &PageRequest {
                limit: 2,
                cursor: first.next_cursor.clone(),
            },
        )
        .await
        .expect("page 2");
    assert!(first.next_cursor.is_some());
    assert_eq!(second.next_cursor, None);
    let mut expected: Vec<_> = users.iter().map(|u| u.id.as_str().to_owned()).collect();
    expected.sort();
    let listed: Vec<_> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|w| w.work.user_id.as_str().to_owned())
        .collect();
    assert_eq!(listed, expected, "this tenant's only, by user id");

    // A failure backs one off; retrying makes it due at once.
    let at = now();
    let target = &users[0];
    let work = store
        .claim_idp_work(&t, &target.id, at, 60)
        .await
        .expect("claim")
        .expect("owed");
    store
        .fail_idp_work(&work.work, "auth0 down", at + Duration::hours(1))
        .await
        .expect("fail");
    assert!(
        !store
            .pending_idp_work(1000, at + Duration::minutes(1))
            .await
            .expect("due")
            .iter()
            .any(|w| w.work.user_id == target.id),
        "backed off"
    );
    let event = AuditEvent::new(
        &t,
        "admin",
        "identity_work.retried",
        Some(&target.id),
        "r",
        at,
    );
    assert_eq!(
        store
            .retry_idp_work_now(&other, &target.id, &{
                let mut e = event.clone();
                e.tenant_id = other.clone();
                e
            })
            .await
            .expect("other tenant"),
        None,
        "another tenant names no such work"
    );
    let retried = store
        .retry_idp_work_now(&t, &target.id, &event)
        .await
        .expect("retry")
        .expect("owed");
    assert_eq!(retried.attempts, 1);
    assert_eq!(retried.last_error.as_deref(), Some("auth0 down"));
    assert!(
        store
            .pending_idp_work(1000, at)
            .await
            .expect("due")
            .iter()
            .any(|w| w.work.user_id == target.id),
        "due now"
    );
    let audit = store
        .list_audit(&t, Some(&target.id), &PageRequest::first(10))
        .await
        .expect("audit");
    assert!(
        audit
            .items
            .iter()
            .any(|e| e.action == "identity_work.retried")
    );

    // Done: off the list, and nothing to retry.
    let claimed = store
        .claim_idp_work(&t, &target.id, at, 60)
        .await
        .expect("claim")
        .expect("due");
    assert!(
        store
            .complete_idp_work(&claimed.work, &[])
            .await
            .expect("complete")
    );
    let left = store
        .idp_work_of_tenant(&t, &PageRequest::first(10))
        .await
        .expect("list");
    assert!(left.items.iter().all(|w| w.work.user_id != target.id));
    assert_eq!(left.items.len(), 2);
    let again = AuditEvent::new(
        &t,
        "admin",
        "identity_work.retried",
        Some(&target.id),
        "r",
        at,
    );
    assert_eq!(
        store
            .retry_idp_work_now(&t, &target.id, &again)
            .await
            .expect("retry"),
        None
    );
    let audit = store
        .list_audit(&t, Some(&target.id), &PageRequest::first(10))
        .await
        .expect("audit");
    assert_eq!(
        audit
            .items
            .iter()
            .filter(|e| e.action == "identity_work.retried")
            .count(),
        1,
        "a refused retry writes no audit event"
    );
}
