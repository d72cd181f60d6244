//! The users port's contract: the one-transaction write with its guards
//! (email, subject, invitation), memberships and profile holder counts; the
//! lookups and the lists.

pub use crate::fixtures::{FullStore, profile, sample_user};
use crate::fixtures::{audit, bumped, create, email_to, hash, holders, now, update};
use crate::fresh_tenant;
use peak_domain::TenantId;
use peak_domain::audit::{AuditEvent, FieldChange};
use peak_domain::ids::ProfileId;
use peak_domain::model::user::{AccountNumber, Email, PersonName, UserQuery, UserStatus};
use peak_domain::outbox::EmailKind;
use peak_domain::ports::{PageRequest, StoreError, UserWrite};
use peak_domain::role::Role;
use std::sync::Arc;

pub async fn user_round_trips_with_its_lookups(store: &dyn FullStore) {
    let t = fresh_tenant();
    let p = profile(store, &t, "Standard").await;
    let u = sample_user(&t, &p, "Ada", "Lovelace", "Ada@Example.com");
    create(store, &u).await.expect("create");
    assert_eq!(
        store.get_user(&t, &u.id).await.expect("get"),
        Some(u.clone())
    );
    let by_email = Email::parse("ada@EXAMPLE.com").expect("email");
    assert_eq!(
        store.find_user_by_email(&t, &by_email).await.expect("find"),
        Some(u.clone())
    );
    let hash = &u.invitation.as_ref().expect("inv").token_hash;
    assert_eq!(
        store.find_user_by_invitation(hash).await.expect("find"),
        Some(u.clone())
    );
    assert_eq!(
        holders(store, &t, &p).await,
        1,
        "the user holds the profile"
    );
    assert_eq!(
        store
            .find_user_by_subject(&t, "auth0|nobody")
            .await
            .expect("find"),
        None
    );
    let mut same_id = sample_user(&t, &p, "Other", "Person", "other@example.com");
    same_id.id = u.id.clone();
    assert_eq!(
        create(store, &same_id).await,
        Err(StoreError::AlreadyExists)
    );
}

pub async fn missing_profile_is_refused_and_nothing_is_written(store: &dyn FullStore) {
    let t = fresh_tenant();
    let u = sample_user(
        &t,
        &ProfileId::generate(),
        "No",
        "Profile",
        "np@example.com",
    );
    assert_eq!(create(store, &u).await, Err(StoreError::ProfileMissing));
    assert_eq!(store.get_user(&t, &u.id).await.expect("get"), None);
    assert_eq!(
        store.find_user_by_email(&t, &u.email).await.expect("find"),
        None
    );
}

pub async fn emails_are_unique_per_tenant_ignoring_case(store: &dyn FullStore) {
    let t = fresh_tenant();
    let p = profile(store, &t, "Standard").await;
    create(store, &sample_user(&t, &p, "A", "One", "same@example.com"))
        .await
        .expect("first");
    let dup = sample_user(&t, &p, "B", "Two", "SAME@example.com");
    assert_eq!(create(store, &dup).await, Err(StoreError::EmailTaken));
    assert_eq!(store.get_user(&t, &dup.id).await.expect("get"), None);
    assert_eq!(
        holders(store, &t, &p).await,
        1,
        "the refused user holds nothing"
    );
    let other = fresh_tenant();
    let op = profile(store, &other, "Standard").await;
    create(
        store,
        &sample_user(&other, &op, "C", "Three", "same@example.com"),
    )
    .await
    .expect("same email in another tenant");
}

pub async fn stale_writes_are_refused_and_change_nothing(store: &dyn FullStore) {
    let t = fresh_tenant();
    let p = profile(store, &t, "Standard").await;
    let u = sample_user(&t, &p, "Ada", "Lovelace", "ada@example.com");
    create(store, &u).await.expect("create");
    let mut v2 = bumped(&u);
    v2.first_name = PersonName::parse("first_name", "Augusta").expect("name");
    update(store, &u, &v2).await.expect("v2");
    let mut stale = bumped(&u);
    stale.status = UserStatus::Suspended;
    let side_audit = [audit(&u, "user.suspended", vec![])];
    let side_mail = [email_to(&u, EmailKind::PasswordReset)];
    assert_eq!(
        store
            .write_user(UserWrite {
                previous: Some(&u),
                next: Some(&stale),
                audit: &side_audit,
                outbox: &side_mail
            })
            .await,
        Err(StoreError::VersionMismatch)
    );
    assert_eq!(
        store.get_user(&t, &u.id).await.expect("get"),
        Some(v2.clone())
    );
    let history = store
        .list_audit(&t, Some(&u.id), &PageRequest::first(50))
        .await
        .expect("audit");
    assert!(
        history.items.iter().all(|e| e.action != "user.suspended"),
        "no audit from a refused write"
    );
    assert!(
        store
            .pending_outbox(1000, now())
            .await
            .expect("outbox")
            .iter()
            .all(|m| m.user_id != u.id),
        "no email from a refused write"
    );
    let ghost = sample_user(&t, &p, "Ghost", "User", "ghost@example.com");
    assert_eq!(
        update(store, &ghost, &bumped(&ghost)).await,
        Err(StoreError::NotFound)
    );
}

pub async fn changes_move_the_lookups_and_holder_counts(store: &dyn FullStore) {
    let t = fresh_tenant();
    let p1 = profile(store, &t, "One").await;
    let p2 = profile(store, &t, "Two").await;
    let u = sample_user(&t, &p1, "Ada", "Lovelace", "ada@example.com");
    create(store, &u).await.expect("create");
    let taken = sample_user(&t, &p1, "Taken", "Address", "taken@example.com");
    create(store, &taken).await.expect("create other");

    let mut onto_taken = bumped(&u);
    onto_taken.email = Email::parse("Taken@example.com").expect("email");
    assert_eq!(
        update(store, &u, &onto_taken).await,
        Err(StoreError::EmailTaken)
    );
    assert_eq!(
        store.get_user(&t, &u.id).await.expect("get"),
        Some(u.clone())
    );

    let mut next = bumped(&u);
    next.email = Email::parse("ada@new.example.com").expect("email");
    next.profile_id = p2.clone();
    next.idp_subject = Some("auth0|ada".into());
    let old_hash = u.invitation.as_ref().expect("inv").token_hash.clone();
    let mut inv = u.invitation.clone().expect("inv");
    inv.token_hash = hash("resent");
    next.invitation = Some(inv);
    update(store, &u, &next).await.expect("update");

    assert_eq!(
        store.find_user_by_email(&t, &u.email).await.expect("find"),
        None,
        "old email freed"
    );
    assert_eq!(
        store
            .find_user_by_email(&t, &next.email)
            .await
            .expect("find"),
        Some(next.clone())
    );
    assert_eq!(
        store
            .find_user_by_subject(&t, "auth0|ada")
            .await
            .expect("find"),
        Some(next.clone())
    );
    assert_eq!(
        store
            .find_user_by_invitation(&old_hash)
            .await
            .expect("find"),
        None,
        "old link dead"
    );
    assert_eq!(
        store
            .find_user_by_invitation(&hash("resent"))
            .await
            .expect("find"),
        Some(next.clone())
    );
    assert_eq!(
        (holders(store, &t, &p1).await, holders(store, &t, &p2).await),
        (1, 1)
    );
    create(
        store,
        &sample_user(&t, &p1, "Reuse", "Old", "ada@example.com"),
    )
    .await
    .expect("the old address is free for someone else");
    assert_eq!(
        store.delete_profile(&t, &p2, None).await,
        Err(StoreError::InUse { holders: 1 }),
        "a held profile cannot be deleted"
    );
}

pub async fn delete_removes_the_user_and_personal_data(store: &dyn FullStore) {
    let t = fresh_tenant();
    let p = profile(store, &t, "Standard").await;
    let mut u = sample_user(&t, &p, "Ada", "Lovelace", "ada@example.com");
    u.idp_subject = Some("auth0|ada".into());
    create(store, &u).await.expect("create");
    let mut renamed = bumped(&u);
    renamed.first_name = PersonName::parse("first_name", "Augusta").expect("name");
    let change = [audit(
        &u,
        "user.updated",
        vec![
            FieldChange {
                field: "first_name".into(),
                before: Some("Ada".into()),
                after: Some("Augusta".into()),
            },
            FieldChange {
                field: "status".into(),
                before: Some("invited".into()),
                after: Some("active".into()),
            },
        ],
    )];
    store
        .write_user(UserWrite {
            previous: Some(&u),
            next: Some(&renamed),
            audit: &change,
            outbox: &[],
        })
        .await
        .expect("rename");
    let gone = [AuditEvent::new(
        &t,
        "actor-1",
        "user.deleted",
        Some(&u.id),
        "req-9",
        now(),
    )];
    store
        .write_user(UserWrite {
            previous: Some(&renamed),
            next: None,
            audit: &gone,
            outbox: &[],
        })
        .await
        .expect("delete");

    assert_eq!(store.get_user(&t, &u.id).await.expect("get"), None);
    assert_eq!(
        store.find_user_by_email(&t, &u.email).await.expect("find"),
        None
    );
    assert_eq!(
        store
            .find_user_by_subject(&t, "auth0|ada")
            .await
            .expect("find"),
        None
    );
    let hash = &u.invitation.as_ref().expect("inv").token_hash;
    assert_eq!(
        store.find_user_by_invitation(hash).await.expect("find"),
        None
    );
    assert_eq!(holders(store, &t, &p).await, 0);
    assert!(
        store
            .list_users(&t, &UserQuery::default(), &PageRequest::first(10))
            .await
            .expect("list")
            .items
            .is_empty()
    );

    let history = store
        .list_audit(&t, Some(&u.id), &PageRequest::first(10))
        .await
        .expect("audit");
    let actions: Vec<&str> = history.items.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["user.deleted", "user.updated", "user.invited"],
        "newest first, actions kept"
    );
    let text = serde_json::to_string(&history.items).expect("json");
    assert!(
        !text.contains("Ada") && !text.contains("Augusta"),
        "personal data removed: {text}"
    );
    assert!(text.contains("\"active\""), "non-personal changes kept");
    // The address can be invited again.
    create(
        store,
        &sample_user(&t, &p, "Ada", "Again", "ada@example.com"),
    )
    .await
    .expect("re-invite");
    assert_eq!(
        store
            .write_user(UserWrite {
                previous: Some(&renamed),
                next: None,
                audit: &[],
                outbox: &[]
            })
            .await,
        Err(StoreError::NotFound)
    );
}

pub async fn lists_filter_by_index_in_a_stable_order(store: &dyn FullStore) {
    let t = fresh_tenant();
    let p1 = profile(store, &t, "One").await;
    let p2 = profile(store, &t, "Two").await;
    let acct = |a: &str| AccountNumber::parse("a", a).expect("acct");
    let mut users = Vec::new();
    for (first, last, email, status, role, prof, accounts) in [
        (
            "Ada",
            "Lovelace",
            "ada@x.example",
            UserStatus::Active,
            Role::Customer,
            &p1,
            vec!["ACME"],
        ),
        (
            "Alan",
            "Turing",
            "alan@y.example",
            UserStatus::Invited,
            Role::Customer,
            &p1,
            vec!["ACME", "GLOBEX"],
        ),
        (
            "Grace",
            "Hopper",
            "grace@x.example",
            UserStatus::Suspended,
            Role::SalesRep,
            &p2,
            vec!["GLOBEX"],
        ),
        (
            "Linus",
            "Torvalds",
            "linus@z.example",
            UserStatus::Active,
            Role::Admin,
            &p2,
            vec![],
        ),
        (
            "Barbara",
            "Liskov",
            "barbara@x.example",
            UserStatus::Active,
            Role::Customer,
            &p2,
            vec!["INITECH"],
        ),
        (
            "Ken",
            "Thompson",
            "ken@y.example",
            UserStatus::Active,
            Role::Partner,
            &p1,
            vec!["ACME"],
        ),
    ] {
        let mut u = sample_user(&t, prof, first, last, email);
        u.status = status;
        u.role = role;
        u.customer_accounts = accounts.into_iter().map(acct).collect();
        create(store, &u).await.expect("create");
        users.push(u);
    }
    let other = fresh_tenant();
    let op = profile(store, &other, "One").await;
    create(
        store,
        &sample_user(&other, &op, "Eve", "Lovelace", "eve@x.example"),
    )
    .await
    .expect("other tenant");

    let names = |q: UserQuery| list_names(store, &t, q);
    assert_eq!(
        names(UserQuery::default()).await,
        [
            "Hopper", "Liskov", "Lovelace", "Thompson", "Torvalds", "Turing"
        ]
    );
    assert_eq!(
        names(UserQuery {
            status: Some(UserStatus::Active),
            ..Default::default()
        })
        .await,
        ["Liskov", "Lovelace", "Thompson", "Torvalds"]
    );
    assert_eq!(
        names(UserQuery {
            role: Some(Role::Customer),
            ..Default::default()
        })
        .await,
        ["Liskov", "Lovelace", "Turing"]
    );
    assert_eq!(
        names(UserQuery {
            profile: Some(p2.clone()),
            ..Default::default()
        })
        .await,
        ["Hopper", "Liskov", "Torvalds"]
    );
    assert_eq!(
        names(UserQuery {
            account: Some(acct("ACME")),
            ..Default::default()
        })
        .await,
        ["Lovelace", "Thompson", "Turing"]
    );
    assert_eq!(
        names(UserQuery {
            name_prefix: Some("LO".into()),
            ..Default::default()
        })
        .await,
        ["Lovelace"]
    );
    assert_eq!(
        names(UserQuery {
            name_prefix: Some("t".into()),
            ..Default::default()
        })
        .await,
        ["Thompson", "Torvalds", "Turing"]
    );
    assert_eq!(
        names(UserQuery {
            email_prefix: Some("A".into()),
            ..Default::default()
        })
        .await,
        ["Lovelace", "Turing"],
        "ordered by email"
    );
    assert_eq!(
        names(UserQuery {
            account: Some(acct("ACME")),
            status: Some(UserStatus::Active),
            role: Some(Role::Customer),
            ..Default::default()
        })
        .await,
        ["Lovelace"]
    );
    assert_eq!(
        names(UserQuery {
            email_prefix: Some("grace@".into()),
            status: Some(UserStatus::Active),
            ..Default::default()
        })
        .await,
        Vec::<String>::new()
    );
    assert!(
        names(UserQuery {
            account: Some(acct("NOPE")),
            ..Default::default()
        })
        .await
        .is_empty()
    );

    let first = store
        .list_users(&t, &UserQuery::default(), &PageRequest::first(2))
        .await
        .expect("list");
    assert_eq!(
        store
            .list_users(
                &other,
                &UserQuery::default(),
                &PageRequest {
                    limit: 2,
                    cursor: first.next_cursor
                }
            )
            .await,
        Err(StoreError::InvalidCursor)
    );
    // A name change moves the user in every index that orders by name.
    let ada = users[0].clone();
    let mut renamed = bumped(&ada);
    renamed.last_name = PersonName::parse("last_name", "Zuse").expect("name");
    update(store, &ada, &renamed).await.expect("rename");
    assert_eq!(
        names(UserQuery {
            account: Some(acct("ACME")),
            ..Default::default()
        })
        .await,
        ["Thompson", "Turing", "Zuse"]
    );
    assert_eq!(
        names(UserQuery {
            name_prefix: Some("lo".into()),
            ..Default::default()
        })
        .await,
        Vec::<String>::new()
    );
}

/// A list over a set of accounts (`under=`, a non-admin's whole reach):
/// paged 2 at a time it gives every user of any of the accounts once, in
/// name order — a user on two of them once — and nobody else; with other
/// filters and in email order too; an empty set is nobody.
pub async fn lists_over_a_set_of_accounts_give_each_user_once(store: &dyn FullStore) {
    let t = fresh_tenant();
    let p = profile(store, &t, "One").await;
    let acct = |a: &str| AccountNumber::parse("a", a).expect("acct");
    for (last, accounts, role) in [
        ("Adams", vec!["P"], Role::Customer),
        ("Baker", vec!["C1"], Role::Customer),
        ("Clark", vec!["P", "C1"], Role::Customer),
        ("Davis", vec!["C2"], Role::Customer),
        ("Evans", vec!["SIB"], Role::Customer),
        ("Foster", vec!["C2", "SIB"], Role::Customer),
        ("Green", vec!["C1"], Role::SalesRep),
        ("Hall", vec![], Role::Customer),
        ("Irwin", vec!["P", "C1", "C2"], Role::Customer),
    ] {
        let email = format!("{}@x.example", last.to_lowercase());
        let mut u = sample_user(&t, &p, "Pat", last, &email);
        u.role = role;
        u.customer_accounts = accounts.into_iter().map(acct).collect();
        create(store, &u).await.expect("create");
    }
    let set = |accounts: &[&str]| Some(accounts.iter().map(|a| acct(a)).collect());
    let names = |q: UserQuery| list_names(store, &t, q);
    assert_eq!(
        names(UserQuery {
            accounts: set(&["P", "C1", "C2"]),
            ..Default::default()
        })
        .await,
        [
            "Adams", "Baker", "Clark", "Davis", "Foster", "Green", "Irwin"
        ]
    );
    assert_eq!(
        names(UserQuery {
            accounts: set(&["P", "C1", "C2"]),
            role: Some(Role::Customer),
            ..Default::default()
        })
        .await,
        ["Adams", "Baker", "Clark", "Davis", "Foster", "Irwin"]
    );
    assert_eq!(
        names(UserQuery {
            accounts: set(&["C1", "C2"]),
            name_prefix: Some("pat".into()),
            ..Default::default()
        })
        .await,
        Vec::<String>::new(),
        "the name key is \"last first\""
    );
    assert_eq!(
        names(UserQuery {
            accounts: set(&["C1", "C2", "NOPE"]),
            name_prefix: Some("c".into()),
            ..Default::default()
        })
        .await,
        ["Clark"]
    );
    assert_eq!(
        names(UserQuery {
            accounts: set(&["P", "SIB"]),
            email_prefix: Some("".into()),
            ..Default::default()
        })
        .await,
        ["Adams", "Clark", "Evans", "Foster", "Irwin"],
        "in email order (the same here)"
    );
    assert_eq!(
        names(UserQuery {
            account: Some(acct("C1")),
            accounts: set(&["P", "C2"]),
            ..Default::default()
        })
        .await,
        Vec::<String>::new(),
        "`account` and `accounts` both hold"
    );
    assert_eq!(
        names(UserQuery {
            accounts: set(&[]),
            ..Default::default()
        })
        .await,
        Vec::<String>::new()
    );
}

/// Every page of `q` at 2 per page: the last names, in list order.
async fn list_names(store: &dyn FullStore, t: &TenantId, q: UserQuery) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_users(t, &q, &PageRequest { limit: 2, cursor })
            .await
            .expect("list");
        assert!(page.items.len() <= 2);
        out.extend(page.items.iter().map(|u| u.last_name.as_str().to_owned()));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break out,
        }
        assert!(out.len() < 100, "pagination does not end");
    }
}

pub async fn concurrent_creates_of_one_email_make_one_user(store: Arc<dyn FullStore>) {
    let t = fresh_tenant();
    let p = profile(store.as_ref(), &t, "Standard").await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = Arc::clone(&store);
        let u = sample_user(&t, &p, "Racer", &format!("No{i}"), "race@example.com");
        tasks.push(tokio::spawn(
            async move { create(store.as_ref(), &u).await },
        ));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.expect("join") {
            Ok(()) => ok += 1,
            Err(StoreError::EmailTaken) | Err(StoreError::Unavailable(_)) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(ok, 1);
    let all = store
        .list_users(&t, &UserQuery::default(), &PageRequest::first(100))
        .await
        .expect("list");
    assert_eq!(all.items.len(), 1);
    assert_eq!(holders(store.as_ref(), &t, &p).await, 1);
}

pub async fn concurrent_edits_of_one_version_let_one_win(store: Arc<dyn FullStore>) {
    let t = fresh_tenant();
    let p = profile(store.as_ref(), &t, "Standard").await;
    let u = sample_user(&t, &p, "Ada", "Lovelace", "ada@example.com");
    create(store.as_ref(), &u).await.expect("create");
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = Arc::clone(&store);
        let prev = u.clone();
        let mut next = bumped(&u);
        next.first_name = PersonName::parse("first_name", &format!("Editor{i}")).expect("name");
        tasks.push(tokio::spawn(async move {
            (next.clone(), update(store.as_ref(), &prev, &next).await)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (next, result) = task.await.expect("join");
        match result {
            Ok(()) => winners.push(next),
            Err(StoreError::VersionMismatch) | Err(StoreError::Unavailable(_)) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(
        store.get_user(&t, &u.id).await.expect("get"),
        Some(winners[0].clone()),
        "the winner's edit is what is stored"
    );
}

/// A profile delete racing users who take the profile up: either the
/// delete wins (and no user holds the deleted profile: every later write
/// is refused `ProfileMissing`) or it is refused `InUse` with the count of
/// those who got in, never both. Rounds start the delete at different
/// points among the writes.
pub async fn a_profile_is_never_deleted_under_a_user_taking_it_up(store: Arc<dyn FullStore>) {
    for round in 0..6 {
        let t = fresh_tenant();
        let p = profile(store.as_ref(), &t, "Contested").await;
        let mut creates = Vec::new();
        let mut delete = None;
        for i in 0..12 {
            if i == round * 2 {
                let (store, t, p) = (Arc::clone(&store), t.clone(), p.clone());
                delete = Some(tokio::spawn(async move {
                    store.delete_profile(&t, &p, None).await
                }));
            }
            let store = Arc::clone(&store);
            let u = sample_user(
                &t,
                &p,
                "Racer",
                &format!("No{i}"),
                &format!("racer{i}@example.com"),
            );
            creates.push(tokio::spawn(
                async move { create(store.as_ref(), &u).await },
            ));
        }
        let mut held = 0;
        for task in creates {
            match task.await.expect("join") {
                Ok(()) => held += 1,
                Err(StoreError::ProfileMissing) | Err(StoreError::Unavailable(_)) => {}
                Err(e) => panic!("round {round}: unexpected {e:?}"),
            }
        }
        let deleted = delete.expect("spawned").await.expect("join");
        let users = store
            .list_users(&t, &UserQuery::default(), &PageRequest::first(100))
            .await
            .expect("list");
        assert_eq!(users.items.len(), held, "round {round}");
        match deleted {
            Ok(()) => {
                assert_eq!(held, 0, "round {round}: users hold a deleted profile");
                assert!(store.get_profile(&t, &p).await.expect("get").is_none());
            }
            Err(StoreError::InUse { holders: h }) => {
                assert!(h >= 1, "round {round}");
                assert_eq!(holders(store.as_ref(), &t, &p).await, held as u64);
            }
            Err(StoreError::Unavailable(_)) => {
                assert_eq!(holders(store.as_ref(), &t, &p).await, held as u64);
            }
            Err(e) => panic!("round {round}: unexpected {e:?}"),
        }
    }
}
