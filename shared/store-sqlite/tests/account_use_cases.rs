//! The account use cases that other features plug into (invites and edits
//! refusing unknown or closed accounts, child accounts in a rep's reach),
//! and the move limit, over a real store.

use peak_domain::accounts::{
    self, AccountCaller, AccountStatus, AccountUpsert, MachineClient, check_accounts_open,
    check_added_accounts_open, reach_of, served_with_descendants,
};
use peak_domain::catalogue::catalogue;
use peak_domain::model::profile::ProfileSettings;
use peak_domain::model::user::AccountNumber;
use peak_domain::permissions::with_extension_groups;
use peak_domain::users::policy::Actor;
use peak_domain::{Error, ProfileId, Role, TenantId};
use peak_store_contract::fresh_tenant;
use peak_store_sqlite::SqliteStore;
use time::OffsetDateTime;

fn n(s: &str) -> AccountNumber {
    AccountNumber::parse("n", s).unwrap()
}

fn sync(t: &TenantId) -> MachineClient {
    MachineClient {
        tenant_id: t.clone(),
        client_id: "billing".into(),
        read: true,
        write: true,
    }
}

async fn put(
    store: &SqliteStore,
    t: &TenantId,
    number: &str,
    parent: Option<&str>,
) -> Result<(), Error> {
    let input = AccountUpsert {
        name: format!("{number} name"),
        parent: parent.map(str::to_owned),
        status: None,
    };
    accounts::upsert_account(
        store,
        AccountCaller::Machine(&sync(t)),
        number,
        None,
        &input,
        "r",
        OffsetDateTime::now_utc(),
    )
    .await
    .map(|_| ())
}

fn actor(t: &TenantId, role: Role, accounts: &[&str]) -> Actor {
    let profile = ProfileId::generate();
    let mut user =
        peak_store_contract::users::sample_user(t, &profile, "Sam", "Rep", "sam@x.example");
    user.role = role;
    user.customer_accounts = accounts.iter().map(|a| n(a)).collect();
    let settings = ProfileSettings::defaults(catalogue());
    let permissions = with_extension_groups(catalogue(), role, &settings, &[]);
    Actor::new(user, permissions)
}

#[tokio::test]
async fn unknown_and_closed_accounts_are_each_named() {
    let store = SqliteStore::open_in_memory().unwrap();
    let t = fresh_tenant();
    put(&store, &t, "OPEN", None).await.unwrap();
    put(&store, &t, "SHUT", None).await.unwrap();
    let close = AccountUpsert {
        name: "SHUT name".into(),
        parent: None,
        status: Some("closed".into()),
    };
    let (closed, _) = accounts::upsert_account(
        &store,
        AccountCaller::Machine(&sync(&t)),
        "SHUT",
        Some(1),
        &close,
        "r",
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    assert_eq!(closed.status, AccountStatus::Closed);

    check_accounts_open(&store, &t, "customer_accounts", &[n("OPEN")])
        .await
        .unwrap();
    let refused = check_accounts_open(
        &store,
        &t,
        "customer_accounts",
        &[n("OPEN"), n("NOPE"), n("SHUT")],
    )
    .await;
    let Err(Error::Validation(errors)) = refused else {
        panic!("{refused:?}");
    };
    let named: Vec<_> = errors
        .iter()
        .map(|e| (e.field.as_str(), e.reason.as_str()))
        .collect();
    assert_eq!(
        named,
        [
            (
                "customer_accounts[1]",
                "no customer account NOPE in this tenant"
            ),
            ("customer_accounts[2]", "customer account SHUT is closed"),
        ]
    );
    // Another tenant's directory does not count.
    assert!(
        check_accounts_open(&store, &fresh_tenant(), "a", &[n("OPEN")])
            .await
            .is_err()
    );
}

#[tokio::test]
async fn reps_reach_descendants_customers_their_own_admins_everything() {
    let store = SqliteStore::open_in_memory().unwrap();
    let t = fresh_tenant();
    for (a, parent) in [
        ("P", None),
        ("P-1", Some("P")),
        ("P-1-A", Some("P-1")),
        ("Q", None),
    ] {
        put(&store, &t, a, parent).await.unwrap();
    }
    let reach = |role, served: &'static [&'static str]| {
        let store = &store;
        let t = &t;
        async move {
            served_with_descendants(store, &actor(t, role, served))
                .await
                .unwrap()
                .map(|m| {
                    m.into_keys()
                        .map(|k| k.as_str().to_owned())
                        .collect::<Vec<_>>()
                })
        }
    };
    assert_eq!(
        reach(Role::SalesRep, &["P", "GONE"]).await.unwrap(),
        ["P", "P-1", "P-1-A"]
    );
    assert_eq!(
        reach(Role::Partner, &["P-1", "P-1-A"]).await.unwrap(),
        ["P-1", "P-1-A"]
    );
    assert_eq!(reach(Role::Customer, &["P"]).await.unwrap(), ["P"]);
    assert_eq!(reach(Role::Admin, &[]).await, None);
}

#[tokio::test]
async fn a_move_carries_a_bounded_subtree_and_nothing_when_refused() {
    let store = SqliteStore::open_in_memory().unwrap();
    let t = fresh_tenant();
    put(&store, &t, "ROOT", None).await.unwrap();
    put(&store, &t, "OTHER", None).await.unwrap();
    put(&store, &t, "BIG", Some("ROOT")).await.unwrap();
    for i in 0..=accounts::use_cases::MAX_MOVED_DESCENDANTS {
        put(&store, &t, &format!("BIG-{i:02}"), Some("BIG"))
            .await
            .unwrap();
    }
    let refused = put(&store, &t, "BIG", Some("OTHER")).await;
    let Err(Error::Validation(errors)) = refused else {
        panic!("{refused:?}");
    };
    assert_eq!(errors[0].field, "parent");
    assert!(
        errors[0].reason.contains("move its children first"),
        "{errors:?}"
    );
    let big = peak_domain::accounts::AccountStore::get_account(&store, &t, &n("BIG"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(big.parent, Some(n("ROOT")), "unmoved");

    // One fewer below it: the move goes through, the subtree with it.
    let last = format!("BIG-{:02}", accounts::use_cases::MAX_MOVED_DESCENDANTS);
    let gone = peak_domain::accounts::AccountStore::get_account(&store, &t, &n(&last))
        .await
        .unwrap()
        .unwrap();
    // (re-parent the extra child elsewhere first)
    put(&store, &t, &last, Some("OTHER")).await.unwrap();
    assert_eq!(gone.ancestors, [n("ROOT"), n("BIG")]);
    put(&store, &t, "BIG", Some("OTHER")).await.unwrap();
    let child = peak_domain::accounts::AccountStore::get_account(&store, &t, &n("BIG-00"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(child.ancestors, [n("OTHER"), n("BIG")]);
}

/// An edit checks only what it adds: a kept closed account passes, an
/// added one is named by its index in the whole list.
#[tokio::test]
async fn an_edit_checks_only_the_accounts_it_adds() {
    let store = SqliteStore::open_in_memory().unwrap();
    let t = fresh_tenant();
    put(&store, &t, "OPEN", None).await.unwrap();
    let shut = AccountUpsert {
        name: "SHUT name".into(),
        parent: None,
        status: Some("closed".into()),
    };
    accounts::upsert_account(
        &store,
        AccountCaller::Machine(&sync(&t)),
        "SHUT",
        None,
        &shut,
        "r",
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    let kept = [n("SHUT"), n("LEGACY")];
    check_added_accounts_open(&store, &t, "f", &[n("SHUT"), n("LEGACY"), n("OPEN")], &kept)
        .await
        .unwrap();
    let refused =
        check_added_accounts_open(&store, &t, "f", &[n("LEGACY"), n("NOPE")], &kept).await;
    let Err(Error::Validation(errors)) = refused else {
        panic!("{refused:?}");
    };
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "f[1]");
    assert_eq!(errors[0].reason, "no customer account NOPE in this tenant");
}

/// A rep's or partner's reach: their accounts and everything below them
/// (numbers not in the directory kept as assigned); a customer's and an
/// admin's: their own accounts only.
#[tokio::test]
async fn reach_covers_descendants_for_reps_and_partners_only() {
    let store = SqliteStore::open_in_memory().unwrap();
    let t = fresh_tenant();
    put(&store, &t, "ROOT", None).await.unwrap();
    put(&store, &t, "A", Some("ROOT")).await.unwrap();
    put(&store, &t, "A1", Some("A")).await.unwrap();
    put(&store, &t, "A1X", Some("A1")).await.unwrap();
    put(&store, &t, "B", Some("ROOT")).await.unwrap();
    put(&store, &t, "OTHER", None).await.unwrap();
    let numbers = |reach: std::collections::BTreeSet<AccountNumber>| -> Vec<String> {
        reach.into_iter().map(|a| a.as_str().to_owned()).collect()
    };
    for role in [Role::SalesRep, Role::Partner] {
        let a = actor(&t, role, &["A", "A1", "LEGACY"]);
        let reach = reach_of(&store, &a.user).await.unwrap();
        assert_eq!(numbers(reach), ["A", "A1", "A1X", "LEGACY"], "{role:?}");
    }
    for role in [Role::Customer, Role::Admin] {
        let a = actor(&t, role, &["A"]);
        assert_eq!(
            numbers(reach_of(&store, &a.user).await.unwrap()),
            ["A"],
            "{role:?}"
        );
    }
}
