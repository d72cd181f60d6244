//! The contract of owed identity-provider work.

use crate::fixtures::{FullStore, bumped, create, now, profile, sample_user, update};
use crate::fresh_tenant;
use peak_domain::TenantId;
use peak_domain::idp_work::{IdpOp, IdpSteps, IdpWorkItem};
use peak_domain::model::user::{PersonName, UserStatus};
use peak_domain::ports::UserWrite;
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
