//! What the contract cases share: a store serving the user and profile
//! ports, sample users, and the writes the cases make.

use crate::{fresh_tenant, sample_profile};
use peak_domain::TenantId;
use peak_domain::audit::{AuditEvent, FieldChange};
use peak_domain::ids::ProfileId;
use peak_domain::model::user::{
    AccountNumber, Email, Invitation, InvitationState, PersonName, User, UserId, UserStatus,
};
use peak_domain::outbox::{EmailKind, OutboxEmail};
use peak_domain::ports::{ProfileStore, StoreError, UserStore, UserWrite};
use peak_domain::role::Role;
use time::{Duration, OffsetDateTime};

/// What the user contract needs: one adapter serving both ports.
pub trait FullStore: ProfileStore + UserStore {}

impl<T: ProfileStore + UserStore> FullStore for T {}

pub(crate) fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .expect("valid nanosecond")
}

pub(crate) fn hash(seed: &str) -> String {
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

pub(crate) fn audit(u: &User, action: &str, changes: Vec<FieldChange>) -> AuditEvent {
    AuditEvent::new(&u.tenant_id, "actor-1", action, Some(&u.id), "req-1", now())
        .with_changes(changes)
}

pub(crate) fn email_to(u: &User, kind: EmailKind) -> OutboxEmail {
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

pub(crate) async fn create(store: &dyn FullStore, u: &User) -> Result<(), StoreError> {
    store
        .write_user(UserWrite {
            previous: None,
            next: Some(u),
            audit: &[audit(u, "user.invited", vec![])],
            outbox: &[],
        })
        .await
}

pub(crate) async fn update(
    store: &dyn FullStore,
    prev: &User,
    next: &User,
) -> Result<(), StoreError> {
    store
        .write_user(UserWrite {
            previous: Some(prev),
            next: Some(next),
            audit: &[],
            outbox: &[],
        })
        .await
}

pub(crate) fn bumped(u: &User) -> User {
    let mut n = u.clone();
    n.version += 1;
    n.updated_at = now();
    n
}

pub(crate) async fn holders(store: &dyn FullStore, t: &TenantId, p: &ProfileId) -> u64 {
    store
        .get_profile(t, p)
        .await
        .expect("get")
        .expect("profile")
        .holder_count
}

/// A user with one invitation email, written together.
pub(crate) async fn user_with_email(store: &dyn FullStore) -> (TenantId, User, OutboxEmail) {
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
