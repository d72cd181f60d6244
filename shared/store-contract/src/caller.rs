//! The caller-lookup contract ([`CallerStore`]): the tenant record and the
//! user holding a subject, read together and never stale — and, through
//! `peak_domain::users::signed_in`, what that means for a request: a suspension,
//! a closed tenant and a profile edit apply to the very next request.

use crate::tenants::sample_tenant;
use crate::users::sample_user;
use crate::{fresh_tenant, sample_profile};
use peak_domain::TenantId;
use peak_domain::catalogue::catalogue;
use peak_domain::error::Error;
use peak_domain::model::profile::{Profile, ProfileSettings};
use peak_domain::model::tenant::TenantStatus;
use peak_domain::model::user::{User, UserStatus};
use peak_domain::ports::{CallerRecords, CallerStore};
use peak_domain::ports::{ProfileStore, UserStore, UserWrite};
use peak_domain::role::Role;
use peak_domain::tenants::TenantStore;
use peak_domain::users::signed_in;
use peak_domain::users::{Ctx, UserSettings};
use std::collections::BTreeMap;

pub trait CallerFullStore:
    CallerStore + UserStore + ProfileStore + TenantStore + peak_domain::accounts::AccountStore
{
}
impl<T: CallerStore + UserStore + ProfileStore + TenantStore + peak_domain::accounts::AccountStore>
    CallerFullStore for T
{
}

/// Expands to one `#[tokio::test]` per caller-lookup case. `$make` is an
/// async expression yielding an `Arc` of a store serving all four ports.
#[macro_export]
macro_rules! caller_store_contract {
    ($make:expr) => {
        $crate::caller_store_contract!(@cases $make;
            the_caller_is_the_tenant_and_the_user_holding_the_subject,
            the_caller_follows_every_user_write_at_once,
            a_suspended_caller_is_refused_at_once,
            a_closed_tenant_is_refused_at_once,
            a_profile_edit_applies_to_its_holders_next_request,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let store = $make.await;
                $crate::caller::$case(&*store).await;
            }
        )*
    };
}

/// An active user of `tenant` holding `subject`, with a profile of its own.
async fn signed_up(
    store: &dyn CallerFullStore,
    tenant: &TenantId,
    subject: &str,
    role: Role,
) -> (User, Profile) {
    let profile = sample_profile(tenant, &format!("P {}", ulid::Ulid::new()));
    store.insert_profile(&profile).await.expect("profile");
    let mut u = sample_user(
        tenant,
        &profile.id,
        "Ada",
        "Lovelace",
        &format!("{}@example.com", ulid::Ulid::new()),
    );
    u.role = role;
    u.status = UserStatus::Active;
    u.invitation = None;
    u.idp_subject = Some(subject.to_owned());
    write(store, None, Some(&u)).await;
    (u, profile)
}

async fn write(store: &dyn CallerFullStore, previous: Option<&User>, next: Option<&User>) {
    store
        .write_user(UserWrite {
            previous,
            next,
            audit: &[],
            outbox: &[],
        })
        .await
        .expect("user write");
}

/// `u` one version on, changed by `change`.
fn bumped(u: &User, change: impl FnOnce(&mut User)) -> User {
    let mut next = u.clone();
    next.version += 1;
    change(&mut next);
    next
}

async fn caller(store: &dyn CallerFullStore, tenant: &TenantId, subject: &str) -> CallerRecords {
    store.caller(tenant, subject).await.expect("caller")
}

fn ctx(store: &dyn CallerFullStore) -> Ctx<'_> {
    static SETTINGS: std::sync::OnceLock<UserSettings> = std::sync::OnceLock::new();
    Ctx {
        users: store,
        profiles: store,
        tenants: store,
        accounts: store,
        catalogue: catalogue(),
        settings: SETTINGS.get_or_init(UserSettings::default),
        now: time::OffsetDateTime::now_utc(),
        request_id: "contract",
        tenant: None,
    }
}

/// What authenticating a request as (`tenant`, `subject`) answers.
async fn sign_in(
    store: &dyn CallerFullStore,
    tenant: &TenantId,
    subject: &str,
) -> Result<peak_domain::users::policy::Actor, Error> {
    signed_in::signed_in(&ctx(store), store, tenant, subject)
        .await
        .map(|(_, actor)| actor)
}

fn denied(result: Result<peak_domain::users::policy::Actor, Error>) -> &'static str {
    match result {
        Err(Error::AccessDenied { code, .. }) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

pub async fn the_caller_is_the_tenant_and_the_user_holding_the_subject(
    store: &dyn CallerFullStore,
) {
    // A tenant without a record (from before tenants were data), nobody.
    let bare = fresh_tenant();
    assert_eq!(
        caller(store, &bare, "auth0|ada").await,
        CallerRecords::default()
    );
    let (u, _) = signed_up(store, &bare, "auth0|ada", Role::Customer).await;
    let found = caller(store, &bare, "auth0|ada").await;
    assert_eq!(found.tenant, None);
    assert_eq!(found.user, Some(u.clone()));

    // A tenant with a record: both, in one answer.
    let tenant = sample_tenant();
    store.create_tenant(&tenant).await.expect("tenant");
    let (v, _) = signed_up(store, &tenant.id, "auth0|ada", Role::Admin).await;
    assert_eq!(
        caller(store, &tenant.id, "auth0|ada").await,
        CallerRecords {
            tenant: Some(tenant.clone()),
            user: Some(v.clone()),
        },
        "the same subject in another tenant is another user"
    );
    assert_eq!(
        caller(store, &tenant.id, "auth0|nobody").await,
        CallerRecords {
            tenant: Some(tenant.clone()),
            user: None,
        }
    );
    assert_eq!(
        caller(store, &tenant.id, "").await,
        CallerRecords {
            tenant: Some(tenant.clone()),
            user: None,
        },
        "an empty subject is nobody's; the tenant is still read"
    );

    // The last sign-in is not part of the answer (it is kept apart).
    assert!(
        store
            .record_login(&bare, &u.id, time::OffsetDateTime::now_utc())
            .await
            .expect("login")
    );
    let found = caller(store, &bare, "auth0|ada").await.user.expect("user");
    assert_eq!(found.last_login_at, None);
    assert_eq!(found, u);
}

pub async fn the_caller_follows_every_user_write_at_once(store: &dyn CallerFullStore) {
    let t = fresh_tenant();
    let (u, _) = signed_up(store, &t, "auth0|ada", Role::SalesRep).await;
    let other = sample_profile(&t, "Other");
    store.insert_profile(&other).await.expect("profile");

    let renamed = bumped(&u, |n| {
        n.first_name =
            peak_domain::model::user::PersonName::parse("first_name", "Augusta").unwrap();
        n.role = Role::Partner;
        n.profile_id = other.id.clone();
        n.extension_groups = vec![];
    });
    write(store, Some(&u), Some(&renamed)).await;
    assert_eq!(
        caller(store, &t, "auth0|ada").await.user,
        Some(renamed.clone())
    );

    // A new login: the old subject no longer finds the user, the new does.
    let moved = bumped(&renamed, |n| n.idp_subject = Some("auth0|ada-2".into()));
    write(store, Some(&renamed), Some(&moved)).await;
    assert_eq!(caller(store, &t, "auth0|ada").await.user, None);
    assert_eq!(
        caller(store, &t, "auth0|ada-2").await.user,
        Some(moved.clone())
    );

    // Unlinked, then linked back.
    let unlinked = bumped(&moved, |n| n.idp_subject = None);
    write(store, Some(&moved), Some(&unlinked)).await;
    assert_eq!(caller(store, &t, "auth0|ada-2").await.user, None);
    let relinked = bumped(&unlinked, |n| n.idp_subject = Some("auth0|ada".into()));
    write(store, Some(&unlinked), Some(&relinked)).await;
    assert_eq!(
        caller(store, &t, "auth0|ada").await.user,
        Some(relinked.clone())
    );

    // Deleted: gone at once.
    write(store, Some(&relinked), None).await;
    assert_eq!(caller(store, &t, "auth0|ada").await.user, None);
}

pub async fn a_suspended_caller_is_refused_at_once(store: &dyn CallerFullStore) {
    let t = fresh_tenant();
    let (u, _) = signed_up(store, &t, "auth0|ada", Role::Admin).await;
    let actor = sign_in(store, &t, "auth0|ada").await.expect("signed in");
    assert_eq!(actor.user, u);

    let suspended = bumped(&u, |n| n.status = UserStatus::Suspended);
    write(store, Some(&u), Some(&suspended)).await;
    assert_eq!(
        denied(sign_in(store, &t, "auth0|ada").await),
        "user_suspended"
    );

    let enabled = bumped(&suspended, |n| n.status = UserStatus::Active);
    write(store, Some(&suspended), Some(&enabled)).await;
    assert_eq!(
        sign_in(store, &t, "auth0|ada").await.expect("back").user,
        enabled
    );

    write(store, Some(&enabled), None).await;
    assert_eq!(
        denied(sign_in(store, &t, "auth0|ada").await),
        "unknown_user"
    );
    assert_eq!(
        denied(sign_in(store, &t, "auth0|nobody").await),
        "unknown_user"
    );
}

pub async fn a_closed_tenant_is_refused_at_once(store: &dyn CallerFullStore) {
    let tenant = sample_tenant();
    store.create_tenant(&tenant).await.expect("tenant");
    signed_up(store, &tenant.id, "auth0|ada", Role::Admin).await;
    assert!(sign_in(store, &tenant.id, "auth0|ada").await.is_ok());

    let mut closed = tenant.clone();
    closed.version += 1;
    closed.status = TenantStatus::Closed;
    store
        .update_tenant(tenant.version, &closed, &[])
        .await
        .expect("close");
    assert_eq!(
        denied(sign_in(store, &tenant.id, "auth0|ada").await),
        "tenant_closed"
    );
    // Whoever asks: nothing is said about the closed tenant's users.
    assert_eq!(
        denied(sign_in(store, &tenant.id, "auth0|nobody").await),
        "tenant_closed"
    );
}

pub async fn a_profile_edit_applies_to_its_holders_next_request(store: &dyn CallerFullStore) {
    const SETTING: &str = "my_customers.customer_users";
    let t = fresh_tenant();
    let (_, profile) = signed_up(store, &t, "auth0|rep", Role::SalesRep).await;
    let before = sign_in(store, &t, "auth0|rep").await.expect("signed in");
    assert!(!before.permissions.allows(SETTING, &["manage"]));

    let changes = BTreeMap::from([(SETTING.to_owned(), serde_json::Value::from("manage"))]);
    let edited = Profile {
        settings: ProfileSettings::defaults(catalogue())
            .apply(catalogue(), &changes)
            .expect("valid settings"),
        version: profile.version + 1,
        ..profile.clone()
    };
    store
        .update_profile(&profile, &edited)
        .await
        .expect("edit profile");
    let after = sign_in(store, &t, "auth0|rep").await.expect("signed in");
    assert!(
        after.permissions.allows(SETTING, &["manage"]),
        "the very next request holds the edited profile"
    );
}
