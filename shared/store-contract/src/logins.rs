//! The sign-in contract.

use crate::fixtures::{FullStore, bumped, create, now, profile, sample_user, update};
use crate::fresh_tenant;
use peak_domain::model::user::{PersonName, UserId, UserQuery};
use peak_domain::ports::{PageRequest, UserWrite};
use time::Duration;

pub async fn sign_ins_are_recorded_newest_wins_without_a_new_version(store: &dyn FullStore) {
    let t = fresh_tenant();
    let p = profile(store, &t, "Buyers").await;
    let u = sample_user(&t, &p, "Ada", "Lovelace", "ada@acme.example");
    create(store, &u).await.expect("create");
    // An admin's copy of the user, read before the sign-in below.
    let stale = store.get_user(&t, &u.id).await.expect("get").expect("user");
    let at = now();
    assert!(store.record_login(&t, &u.id, at).await.expect("record"));
    let read = store.get_user(&t, &u.id).await.expect("get").expect("user");
    assert_eq!(read.last_login_at, Some(at));
    assert_eq!(read.version, u.version, "a sign-in is not an edit");
    // A late delivery of an older sign-in never wins.
    assert!(
        !store
            .record_login(&t, &u.id, at - Duration::hours(1))
            .await
            .expect("record")
    );
    let later = at + Duration::minutes(1);
    assert!(store.record_login(&t, &u.id, later).await.expect("record"));
    let read = store.get_user(&t, &u.id).await.expect("get").expect("user");
    assert_eq!(read.last_login_at, Some(later));
    // A whole-record write from a copy read before the sign-ins (its
    // last_login_at is older) does not undo them.
    let mut next = bumped(&stale);
    next.first_name = PersonName::parse("first_name", "Augusta").expect("name");
    update(store, &stale, &next).await.expect("update");
    let read = store.get_user(&t, &u.id).await.expect("get").expect("user");
    assert_eq!(read.first_name.as_str(), "Augusta");
    assert_eq!(
        read.last_login_at,
        Some(later),
        "the sign-in survives the edit"
    );
    // Every read shows it: by subject, by email, in lists.
    let by_email = store
        .find_user_by_email(&t, &u.email)
        .await
        .expect("find")
        .expect("user");
    assert_eq!(by_email.last_login_at, Some(later));
    let listed = store
        .list_users(&t, &UserQuery::default(), &PageRequest::first(10))
        .await
        .expect("list");
    assert_eq!(listed.items[0].last_login_at, Some(later));
    // No such user: nothing recorded, nothing created.
    let ghost = UserId::generate();
    assert!(!store.record_login(&t, &ghost, at).await.expect("record"));
    assert_eq!(store.get_user(&t, &ghost).await.expect("get"), None);
    // A deleted user's sign-in goes with them: a user created again with
    // the same id starts without one.
    store
        .write_user(UserWrite {
            previous: Some(&read),
            next: None,
            audit: &[],
            outbox: &[],
        })
        .await
        .expect("delete");
    create(store, &u).await.expect("create again");
    let again = store.get_user(&t, &u.id).await.expect("get").expect("user");
    assert_eq!(again.last_login_at, None);
}
