//! The user-write plan: what one write puts in its transaction, and how a
//! cancellation is read.

use super::*;
use peak_domain::audit::AuditEvent;
use peak_domain::audit::FieldChange;
use peak_domain::ids::ProfileId;
use peak_domain::model::user::Email;
use peak_domain::model::user::{
    AccountNumber, Invitation, InvitationState, PersonName, UserStatus,
};
use peak_domain::role::Role;
use time::OffsetDateTime;

fn user(accounts: usize) -> User {
    let t = OffsetDateTime::now_utc();
    User {
        tenant_id: TenantId::parse("acme").unwrap(),
        id: UserId::generate(),
        email: Email::parse("ada@example.com").unwrap(),
        pending_email: None,
        first_name: PersonName::parse("f", "Ada").unwrap(),
        last_name: PersonName::parse("l", "Lovelace").unwrap(),
        account_number: None,
        customer_accounts: (0..accounts)
            .map(|i| AccountNumber::parse("a", &format!("ACC-{i:02}")).unwrap())
            .collect(),
        role: Role::Customer,
        profile_id: ProfileId::generate(),
        extension_groups: vec![],
        status: UserStatus::Invited,
        idp_subject: None,
        invitation: Some(Invitation {
            token_hash: "ab".repeat(32),
            state: InvitationState::Pending,
            expires_at: t,
            sent_at: t,
            accepted_at: None,
        }),
        version: 1,
        created_at: t,
        updated_at: t,
        last_login_at: None,
    }
}

fn event(u: &User) -> AuditEvent {
    AuditEvent::new(
        &u.tenant_id,
        "a",
        "user.updated",
        Some(&u.id),
        "r",
        u.updated_at,
    )
}

fn write<'a>(
    prev: Option<&'a User>,
    next: Option<&'a User>,
    audit: &'a [AuditEvent],
) -> UserWrite<'a> {
    UserWrite {
        previous: prev,
        next,
        audit,
        outbox: &[],
    }
}

#[test]
fn a_create_writes_the_user_its_guards_memberships_and_holder() {
    let u = user(2);
    let audit = [event(&u)];
    let plan = plan_user_write("t", &write(None, Some(&u), &audit)).unwrap();
    assert_eq!(
        plan.parts,
        [
            Part::CreateUser,
            Part::EmailPut,
            Part::InvitationPut,
            Part::MembershipPut,
            Part::MembershipPut,
            Part::HolderAdd,
            Part::Audit
        ]
    );
}

#[test]
fn an_edit_touches_only_what_moved() {
    let u = user(1);
    let mut next = u.clone();
    next.version = 2;
    next.status = UserStatus::Active;
    let plan = plan_user_write("t", &write(Some(&u), Some(&next), &[])).unwrap();
    assert_eq!(plan.parts, [Part::ChangeUser, Part::MembershipPut]);

    // A case-only email change keeps the guard.
    next.email = Email::parse("ADA@example.com").unwrap();
    let plan = plan_user_write("t", &write(Some(&u), Some(&next), &[])).unwrap();
    assert!(!plan.has(Part::EmailPut) && !plan.has(Part::EmailDelete));
}

#[test]
fn the_largest_write_fits_one_transaction() {
    // 25 accounts (the domain's cap), renamed (every membership moves),
    // with a new email, subject, invitation and profile, and a few
    // events and emails.
    let u = user(25);
    let mut next = u.clone();
    next.version = 2;
    next.last_name = PersonName::parse("l", "Byron").unwrap();
    next.email = Email::parse("ada@new.example.com").unwrap();
    next.idp_subject = Some("auth0|ada".into());
    next.profile_id = ProfileId::generate();
    if let Some(inv) = next.invitation.as_mut() {
        inv.token_hash = "cd".repeat(32);
    }
    let audit = [event(&u), event(&u), event(&u)];
    let plan = plan_user_write("t", &write(Some(&u), Some(&next), &audit)).unwrap();
    assert_eq!(plan.items.len(), 1 + 2 + 1 + 2 + 50 + 2 + 3);
    assert!(plan.items.len() <= MAX_TRANSACTION_ITEMS);
}

#[test]
fn a_delete_removes_everything_and_scrubs_its_own_events() {
    let mut u = user(1);
    u.idp_subject = Some("auth0|x".into());
    let audit = [event(&u).with_changes(vec![FieldChange {
        field: "email".into(),
        before: Some("ada@example.com".into()),
        after: None,
    }])];
    let plan = plan_user_write("t", &write(Some(&u), None, &audit)).unwrap();
    assert_eq!(
        plan.parts,
        [
            Part::ChangeUser,
            Part::EmailDelete,
            Part::InvitationDelete,
            Part::SubjectDelete,
            Part::MembershipDelete,
            Part::HolderRemove,
            Part::Audit,
            // The last sign-in goes with the user.
            Part::LoginDelete,
            // The login at the identity provider is owed a delete.
            Part::IdpWork
        ]
    );
    let stored = format!("{:?}", plan.items[6]);
    assert!(!stored.contains("ada@example.com"), "{stored}");
}

#[test]
fn inconsistent_writes_are_refused() {
    let u = user(0);
    let other = user(0);
    assert!(matches!(
        plan_user_write("t", &write(Some(&u), Some(&other), &[])),
        Err(StoreError::Backend(_))
    ));
    assert!(plan_user_write("t", &write(None, None, &[])).is_err());
    let foreign = AuditEvent::new(
        &TenantId::parse("other").unwrap(),
        "a",
        "x",
        None,
        "r",
        u.created_at,
    );
    assert!(plan_user_write("t", &write(None, Some(&u), &[foreign])).is_err());
}

/// A store whose client talks to nothing: for code paths that decide
/// without a request.
fn offline_store() -> DynamoStore {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Config, Region};
    let config = Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::from_static("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .build();
    DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(config), "t")
}

#[tokio::test]
async fn cancellation_reasons_decide_by_item_and_priority() {
    let store = offline_store();
    let u = user(1);
    let audit = [event(&u)];
    let w = write(None, Some(&u), &audit);
    let plan = plan_user_write("t", &w).unwrap();
    // CreateUser, EmailPut, InvitationPut, MembershipPut, HolderAdd, Audit
    let reasons = |codes: &[&str]| -> Vec<String> {
        let mut r = vec!["None".to_owned(); plan.items.len()];
        for (i, c) in codes.iter().enumerate() {
            r[i] = (*c).to_owned();
        }
        r
    };
    let verdict = |codes: Vec<String>| {
        let (store, w, plan) = (&store, &w, &plan);
        async move { store.explain(w, plan, &codes).await.unwrap() }
    };
    let ccf = CONDITION_FAILED;
    assert_eq!(
        verdict(reasons(&[ccf, ccf])).await,
        Verdict::Refused(StoreError::AlreadyExists)
    );
    assert_eq!(
        verdict(reasons(&["None", ccf, "None", "None", ccf])).await,
        Verdict::Refused(StoreError::EmailTaken),
        "a taken email wins over a missing profile"
    );
    // A refused holder shard reads the profile (it may only need its
    // shard created): the contract's missing-profile case, on DynamoDB
    // Local, shows `ProfileMissing`.
    assert_eq!(
        verdict(reasons(&["None", "TransactionConflict"])).await,
        Verdict::Retry
    );
    assert_eq!(
        verdict(reasons(&["None", "TransactionConflict", ccf])).await,
        Verdict::Refused(StoreError::Backend(
            "write user: unexpected refusal of InvitationPut".into()
        )),
        "a definite refusal wins over a conflict"
    );
    assert!(matches!(
        verdict(reasons(&["ValidationError"])).await,
        Verdict::Refused(StoreError::Backend(_))
    ));
}
