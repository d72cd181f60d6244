//! The user-store contract: users with their guards (email, subject,
//! invitation), memberships, profile holder counts, audit trail, outbox,
//! idempotency keys and rate limits.

use crate::{fresh_tenant, sample_profile};
use peak_domain::TenantId;
use peak_domain::audit::{AuditEvent, FieldChange};
use peak_domain::idp_events::{IdpDelivery, IdpEventKind, Recorded};
use peak_domain::idp_work::{IdpOp, IdpSteps, IdpWorkItem};
use peak_domain::ids::ProfileId;
use peak_domain::outbox::{EmailKind, OutboxClaim, OutboxEmail};
use peak_domain::ports::{
    IdempotencyClaim, PageRequest, ProfileStore, SavedResponse, StoreError, UserStore, UserWrite,
};
use peak_domain::role::Role;
use peak_domain::user::{
    AccountNumber, Email, Invitation, InvitationState, PersonName, User, UserId, UserQuery,
    UserStatus,
};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// What the user contract needs: one adapter serving both ports.
pub trait FullStore: ProfileStore + UserStore {}
impl<T: ProfileStore + UserStore> FullStore for T {}

fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .expect("valid nanosecond")
}

fn hash(seed: &str) -> String {
    format!(
        "{:0>64}",
        seed.bytes().map(|b| format!("{b:02x}")).collect::<String>()
    )
    .chars()
    .rev()
    .take(64)
    .collect()
}

pub async fn profile(store: &dyn FullStore, tenant: &TenantId, name: &str) -> ProfileId {
    let p = sample_profile(tenant, name);
    store.insert_profile(&p).await.expect("insert profile");
    p.id
}

pub fn sample_user(
    tenant: &TenantId,
    profile: &ProfileId,
    first: &str,
    last: &str,
    email: &str,
) -> User {
    let t = now();
    User {
        tenant_id: tenant.clone(),
        id: UserId::generate(),
        email: Email::parse(email).expect("email"),
        pending_email: None,
        first_name: PersonName::parse("first_name", first).expect("first"),
        last_name: PersonName::parse("last_name", last).expect("last"),
        account_number: Some(AccountNumber::parse("account_number", "ACC-1").expect("acct")),
        customer_accounts: vec![AccountNumber::parse("a", "ACME").expect("acct")],
        role: Role::Customer,
        profile_id: profile.clone(),
        extension_groups: vec!["customer_order_entry".into()],
        status: UserStatus::Invited,
        idp_subject: None,
        invitation: Some(Invitation {
            token_hash: hash(&format!("{email}{}", ulid::Ulid::new())),
            state: InvitationState::Pending,
            expires_at: t + Duration::days(7),
            sent_at: t,
            accepted_at: None,
        }),
        version: 1,
        created_at: t,
        updated_at: t,
        last_login_at: None,
    }
}

fn audit(u: &User, action: &str, changes: Vec<FieldChange>) -> AuditEvent {
    AuditEvent::new(&u.tenant_id, "actor-1", action, Some(&u.id), "req-1", now())
        .with_changes(changes)
}

fn email_to(u: &User, kind: EmailKind) -> OutboxEmail {
    OutboxEmail {
        tenant_id: u.tenant_id.clone(),
        id: ulid::Ulid::new().to_string(),
        kind,
        to: u.email.clone(),
        user_id: u.id.clone(),
        data: serde_json::json!({"link": "https://portal.example/accept?token=abc"}),
        created_at: now(),
    }
}

async fn create(store: &dyn FullStore, u: &User) -> Result<(), StoreError> {
    store
        .write_user(UserWrite {
            previous: None,
            next: Some(u),
            audit: &[audit(u, "user.invited", vec![])],
            outbox: &[],
        })
        .await
}

async fn update(store: &dyn FullStore, prev: &User, next: &User) -> Result<(), StoreError> {
    store
        .write_user(UserWrite {
            previous: Some(prev),
            next: Some(next),
            audit: &[],
            outbox: &[],
        })
        .await
}

fn bumped(u: &User) -> User {
    let mut n = u.clone();
    n.version += 1;
    n.updated_at = now();
    n
}

async fn holders(store: &dyn FullStore, t: &TenantId, p: &ProfileId) -> u64 {
    store
        .get_profile(t, p)
        .await
        .expect("get")
        .expect("profile")
        .holder_count
}

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

pub async fn audit_lists_newest_first_per_user_and_tenant(store: &dyn FullStore) {
    let t = fresh_tenant();
    let p = profile(store, &t, "Standard").await;
    let a = sample_user(&t, &p, "A", "One", "a@example.com");
    let b = sample_user(&t, &p, "B", "Two", "b@example.com");
    create(store, &a).await.expect("a");
    create(store, &b).await.expect("b");
    let mut prev = a.clone();
    for i in 0..3 {
        let next = bumped(&prev);
        let ev = [audit(&a, &format!("user.step{i}"), vec![])];
        store
            .write_user(UserWrite {
                previous: Some(&prev),
                next: Some(&next),
                audit: &ev,
                outbox: &[],
            })
            .await
            .expect("write");
        prev = next;
    }
    let mine = store
        .list_audit(&t, Some(&a.id), &PageRequest::first(2))
        .await
        .expect("audit");
    assert_eq!(
        mine.items
            .iter()
            .map(|e| e.action.as_str())
            .collect::<Vec<_>>(),
        ["user.step2", "user.step1"]
    );
    let rest = store
        .list_audit(
            &t,
            Some(&a.id),
            &PageRequest {
                limit: 10,
                cursor: mine.next_cursor,
            },
        )
        .await
        .expect("audit");
    assert_eq!(
        rest.items
            .iter()
            .map(|e| e.action.as_str())
            .collect::<Vec<_>>(),
        ["user.step0", "user.invited"]
    );
    assert!(rest.next_cursor.is_none());
    let all = store
        .list_audit(&t, None, &PageRequest::first(10))
        .await
        .expect("audit");
    assert_eq!(all.items.len(), 5);
    assert_eq!(all.items[0].action, "user.step2");
    assert!(
        store
            .list_audit(&fresh_tenant(), None, &PageRequest::first(10))
            .await
            .expect("audit")
            .items
            .is_empty()
    );
}

/// A user with one invitation email, written together.
async fn user_with_email(store: &dyn FullStore) -> (TenantId, User, OutboxEmail) {
    let t = fresh_tenant();
    let p = profile(store, &t, "Standard").await;
    let u = sample_user(&t, &p, "Ada", "Lovelace", "ada@example.com");
    let mail = email_to(&u, EmailKind::Invitation);
    store
        .write_user(UserWrite {
            previous: None,
            next: Some(&u),
            audit: &[],
            outbox: std::slice::from_ref(&mail),
        })
        .await
        .expect("create");
    (t, u, mail)
}

async fn is_pending(store: &dyn FullStore, id: &str, at: OffsetDateTime) -> bool {
    store
        .pending_outbox(10_000, at)
        .await
        .expect("pending outbox")
        .iter()
        .any(|m| m.id == id)
}

async fn claim(store: &dyn FullStore, t: &TenantId, id: &str, at: OffsetDateTime) -> OutboxClaim {
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

/// This tenant's owed work (other cases share the store's pending list).
async fn owed(store: &dyn FullStore, t: &TenantId) -> Vec<IdpWorkItem> {
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

async fn due(store: &dyn FullStore, t: &TenantId, at: OffsetDateTime) -> usize {
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

fn delivery(id: &str, kind: IdpEventKind) -> IdpDelivery {
    IdpDelivery {
        id: id.to_owned(),
        kind,
        subject: "auth0|ada".into(),
        tenant: Some("acme".into()),
        occurred_at: OffsetDateTime::from_unix_timestamp(1_799_999_000).expect("time"),
        pushed_blocked: Some(true),
    }
}

async fn pending_ids(store: &dyn FullStore, at: OffsetDateTime) -> Vec<String> {
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
