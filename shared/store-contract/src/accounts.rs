//! The account-directory contract: accounts are created once and changed
//! only from their current version (with their audit, and their parent
//! still as read), searched by number or name prefix with each account
//! once, and their children and descendants listed by key, page by page.

use peak_domain::TenantId;
use peak_domain::accounts::{Account, AccountName, AccountStatus, AccountStore, AccountWrite};
use peak_domain::audit::AuditEvent;
use peak_domain::model::user::AccountNumber;
use peak_domain::ports::{PageRequest, StoreError, UserStore};
use time::OffsetDateTime;

pub trait AccountFullStore: AccountStore + UserStore {}
impl<T: AccountStore + UserStore> AccountFullStore for T {}

/// Expands to one `#[tokio::test]` per account-store case. `$make` is an
/// async expression yielding something that derefs to a store serving the
/// account and user ports.
#[macro_export]
macro_rules! account_store_contract {
    ($make:expr) => {
        $crate::account_store_contract!(@cases $make;
            accounts_round_trip_and_numbers_are_unique,
            many_accounts_are_read_at_once_and_only_the_tenants,
            account_writes_check_versions_and_carry_their_audit,
            a_parent_that_moved_since_it_was_read_refuses_the_write,
            search_matches_number_or_name_once_in_order_through_pages,
            search_pages_past_long_runs_of_accounts_matched_twice,
            children_and_descendants_follow_the_hierarchy,
            moving_an_account_moves_its_subtree_atomically,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let store = $make.await;
                $crate::accounts::$case(&*store).await;
            }
        )*
    };
}

fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .expect("valid nanosecond")
}

fn number(n: &str) -> AccountNumber {
    AccountNumber::parse("number", n).expect("valid number")
}

/// A new account `n` named `name` under `parent` (as stored).
pub fn sample_account(tenant: &TenantId, n: &str, name: &str, parent: Option<&Account>) -> Account {
    let t = now();
    Account {
        tenant_id: tenant.clone(),
        number: number(n),
        name: AccountName::parse("name", name).expect("valid name"),
        parent: parent.map(|p| p.number.clone()),
        ancestors: parent.map_or_else(Vec::new, |p| {
            let mut a = p.ancestors.clone();
            a.push(p.number.clone());
            a
        }),
        status: AccountStatus::Active,
        version: 1,
        created_at: t,
        updated_at: t,
    }
}

/// Stores a new account (with its parent checked).
pub async fn create(store: &dyn AccountFullStore, a: &Account, parent: Option<&Account>) {
    store
        .write_account(AccountWrite {
            previous: None,
            next: a,
            parent,
            moved: &[],
            audit: &[],
        })
        .await
        .expect("create account");
}

async fn get(store: &dyn AccountFullStore, t: &TenantId, n: &str) -> Option<Account> {
    store.get_account(t, &number(n)).await.expect("get")
}

fn numbers(items: &[Account]) -> Vec<&str> {
    items.iter().map(|a| a.number.as_str()).collect()
}

/// Every page of a list, `limit` at a time.
async fn all_pages<F, Fut>(limit: u32, mut page: F) -> Vec<String>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = Result<peak_domain::ports::Page<Account>, StoreError>>,
{
    let mut out = Vec::new();
    let mut request = PageRequest::first(limit);
    for _ in 0..100 {
        let got = page(request.clone()).await.expect("page");
        assert!(got.items.len() <= limit as usize);
        out.extend(got.items.iter().map(|a| a.number.as_str().to_owned()));
        match got.next_cursor {
            Some(c) => request.cursor = Some(c),
            None => return out,
        }
    }
    panic!("more than 100 pages");
}

pub async fn accounts_round_trip_and_numbers_are_unique(store: &dyn AccountFullStore) {
    let t = super::fresh_tenant();
    let t = &t;
    let root = sample_account(t, "ACME", "Acme Corp", None);
    let child = sample_account(t, "ACME-EU", "Acme Europe", Some(&root));
    assert_eq!(get(store, t, "ACME").await, None);
    create(store, &root, None).await;
    create(store, &child, Some(&root)).await;
    assert_eq!(get(store, t, "ACME").await, Some(root.clone()));
    assert_eq!(get(store, t, "ACME-EU").await, Some(child.clone()));
    // Numbers compare as given: another case is another account.
    assert_eq!(get(store, t, "acme").await, None);

    let mut again = root.clone();
    again.name = AccountName::parse("name", "Someone else").unwrap();
    let refused = store
        .write_account(AccountWrite {
            previous: None,
            next: &again,
            parent: None,
            moved: &[],
            audit: &[],
        })
        .await;
    assert_eq!(refused, Err(StoreError::AlreadyExists));
    assert_eq!(get(store, t, "ACME").await, Some(root), "untouched");

    let other = super::fresh_tenant();
    assert_eq!(get(store, &other, "ACME").await, None, "tenants are apart");
    let found = store
        .search_accounts(&other, "", &PageRequest::first(10))
        .await
        .unwrap();
    assert!(found.items.is_empty());
}

/// `get_accounts`: the ones that exist, each once, of this tenant only.
pub async fn many_accounts_are_read_at_once_and_only_the_tenants(store: &dyn AccountFullStore) {
    let t = super::fresh_tenant();
    let t = &t;
    let root = sample_account(t, "ACME", "Acme Corp", None);
    let child = sample_account(t, "ACME-EU", "Acme Europe", Some(&root));
    create(store, &root, None).await;
    create(store, &child, Some(&root)).await;
    let asked = [
        number("ACME-EU"),
        number("NOPE"),
        number("ACME"),
        number("ACME"),
    ];
    let mut found = store.get_accounts(t, &asked).await.expect("get accounts");
    found.sort_by(|a, b| a.number.cmp(&b.number));
    assert_eq!(found, vec![root.clone(), child]);
    assert_eq!(store.get_accounts(t, &[]).await.expect("none"), vec![]);
    let other = super::fresh_tenant();
    assert_eq!(
        store.get_accounts(&other, &asked).await.expect("other"),
        vec![],
        "tenants are apart"
    );
    // As many as a user may hold (25), and more: all of them.
    let many: Vec<Account> = (0..30)
        .map(|i| sample_account(t, &format!("M-{i:02}"), "Many", None))
        .collect();
    for a in &many {
        create(store, a, None).await;
    }
    let numbers: Vec<AccountNumber> = many.iter().map(|a| a.number.clone()).collect();
    let mut found = store.get_accounts(t, &numbers).await.expect("many");
    found.sort_by(|a, b| a.number.cmp(&b.number));
    assert_eq!(found, many);
}

pub async fn account_writes_check_versions_and_carry_their_audit(store: &dyn AccountFullStore) {
    let t = super::fresh_tenant();
    let t = &t;
    let a = sample_account(t, "GLOBEX", "Globex", None);
    let created = AuditEvent::new(t, "client:billing", "account.created", None, "r1", now());
    store
        .write_account(AccountWrite {
            previous: None,
            next: &a,
            parent: None,
            moved: &[],
            audit: std::slice::from_ref(&created),
        })
        .await
        .unwrap();

    let mut closed = a.clone();
    closed.status = AccountStatus::Closed;
    closed.version = 2;
    let event = AuditEvent::new(t, "client:billing", "account.closed", None, "r2", now());
    store
        .write_account(AccountWrite {
            previous: Some(&a),
            next: &closed,
            parent: None,
            moved: &[],
            audit: std::slice::from_ref(&event),
        })
        .await
        .unwrap();
    assert_eq!(get(store, t, "GLOBEX").await, Some(closed.clone()));

    // From the old version again: refused, nothing written.
    let mut stale = a.clone();
    stale.name = AccountName::parse("name", "Stale").unwrap();
    stale.version = 2;
    let late = AuditEvent::new(t, "client:billing", "account.updated", None, "r3", now());
    let refused = store
        .write_account(AccountWrite {
            previous: Some(&a),
            next: &stale,
            parent: None,
            moved: &[],
            audit: std::slice::from_ref(&late),
        })
        .await;
    assert_eq!(refused, Err(StoreError::VersionMismatch));
    assert_eq!(get(store, t, "GLOBEX").await, Some(closed.clone()));

    // Replacing one that is not there.
    let ghost = sample_account(t, "GHOST", "Ghost", None);
    let mut ghost2 = ghost.clone();
    ghost2.version = 2;
    let refused = store
        .write_account(AccountWrite {
            previous: Some(&ghost),
            next: &ghost2,
            parent: None,
            moved: &[],
            audit: &[],
        })
        .await;
    assert_eq!(refused, Err(StoreError::NotFound));
    assert_eq!(get(store, t, "GHOST").await, None);

    let audit = store
        .list_audit(t, None, &PageRequest::first(10))
        .await
        .unwrap();
    let actions: Vec<_> = audit.items.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["account.closed", "account.created"]);
    assert_eq!(audit.items[0], event);
}

pub async fn a_parent_that_moved_since_it_was_read_refuses_the_write(store: &dyn AccountFullStore) {
    let t = super::fresh_tenant();
    let t = &t;
    let parent = sample_account(t, "P", "Parent", None);
    create(store, &parent, None).await;
    let mut renamed = parent.clone();
    renamed.name = AccountName::parse("name", "Parent renamed").unwrap();
    renamed.version = 2;
    store
        .write_account(AccountWrite {
            previous: Some(&parent),
            next: &renamed,
            parent: None,
            moved: &[],
            audit: &[],
        })
        .await
        .unwrap();
    // Planned against version 1 of the parent.
    let child = sample_account(t, "C", "Child", Some(&parent));
    let refused = store
        .write_account(AccountWrite {
            previous: None,
            next: &child,
            parent: Some(&parent),
            moved: &[],
            audit: &[AuditEvent::new(t, "u", "account.created", None, "r", now())],
        })
        .await;
    assert_eq!(refused, Err(StoreError::VersionMismatch));
    assert_eq!(get(store, t, "C").await, None, "nothing written");
    let audit = store
        .list_audit(t, None, &PageRequest::first(10))
        .await
        .unwrap();
    assert!(audit.items.is_empty(), "nor its audit");
    let children = store
        .child_accounts(t, &parent.number, &PageRequest::first(10))
        .await
        .unwrap();
    assert!(children.items.is_empty());
}

pub async fn search_matches_number_or_name_once_in_order_through_pages(
    store: &dyn AccountFullStore,
) {
    let t = super::fresh_tenant();
    let t = &t;
    for (n, name) in [
        ("ACME-1", "Acme Corp"),
        ("ACME-2", "Zed Industries"),
        ("B-1", "acme west"),
        ("C-1", "Other"),
        ("acme-0", "Lowercase number"),
    ] {
        create(store, &sample_account(t, n, name, None), None).await;
    }
    // "acme west" < "acme-0" < "acme-1" < "acme-2": a space sorts below '-'.
    // ACME-1 matches by number and by name: listed once, by number.
    let expected = ["B-1", "acme-0", "ACME-1", "ACME-2"];
    for limit in [1, 2, 3, 10] {
        let got = all_pages(limit, |p| async move {
            store.search_accounts(t, "acme", &p).await
        })
        .await;
        assert_eq!(got, expected, "limit {limit}");
    }
    let first = store
        .search_accounts(t, "acme", &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(numbers(&first.items), expected);
    assert_eq!(first.items[0].name.as_str(), "acme west", "whole accounts");

    // By name only, and by a longer number prefix.
    let zed = store
        .search_accounts(t, "zed", &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(numbers(&zed.items), ["ACME-2"]);
    let one = store
        .search_accounts(t, "acme-1", &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(numbers(&one.items), ["ACME-1"]);
    let none = store
        .search_accounts(t, "nothing", &PageRequest::first(10))
        .await
        .unwrap();
    assert!(none.items.is_empty() && none.next_cursor.is_none());

    // No prefix: every account once, by number (lowercased).
    let all = all_pages(2, |p| async move { store.search_accounts(t, "", &p).await }).await;
    assert_eq!(all, ["acme-0", "ACME-1", "ACME-2", "B-1", "C-1"]);

    // A cursor only continues the list it came from.
    let page = store
        .search_accounts(t, "acme", &PageRequest::first(1))
        .await
        .unwrap();
    let cursor = page.next_cursor.expect("more");
    let other_prefix = store
        .search_accounts(
            t,
            "b",
            &PageRequest::new(Some(1), Some(cursor.clone())).unwrap(),
        )
        .await;
    assert_eq!(other_prefix.err(), Some(StoreError::InvalidCursor));
    let other_tenant = store
        .search_accounts(
            &super::fresh_tenant(),
            "acme",
            &PageRequest::new(Some(1), Some(cursor)).unwrap(),
        )
        .await;
    assert_eq!(other_tenant.err(), Some(StoreError::InvalidCursor));
}

/// 130 accounts whose names and numbers both match: their name entries
/// (dropped) all sort before their number entries, more of them than one
/// read takes, so a page must read past a run of nothing to keep.
pub async fn search_pages_past_long_runs_of_accounts_matched_twice(store: &dyn AccountFullStore) {
    let tenant = super::fresh_tenant();
    let t = &tenant;
    for i in 0..130 {
        let a = sample_account(t, &format!("ACME-{i:03}"), &format!("Acme {i:03}"), None);
        create(store, &a, None).await;
    }
    let first = store
        .search_accounts(t, "acme", &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(first.items.len(), 10);
    assert_eq!(first.items[0].number.as_str(), "ACME-000");
    let all = all_pages(
        40,
        |p| async move { store.search_accounts(t, "acme", &p).await },
    )
    .await;
    let expected: Vec<String> = (0..130).map(|i| format!("ACME-{i:03}")).collect();
    assert_eq!(all, expected);
}

pub async fn children_and_descendants_follow_the_hierarchy(store: &dyn AccountFullStore) {
    let t = super::fresh_tenant();
    let t = &t;
    let r = sample_account(t, "R", "Root", None);
    let a = sample_account(t, "R-A", "A", Some(&r));
    let b = sample_account(t, "R-B", "B", Some(&r));
    let a1 = sample_account(t, "R-A1", "A one", Some(&a));
    let a2 = sample_account(t, "R-A2", "A two", Some(&a));
    let a1x = sample_account(t, "X", "A one x", Some(&a1));
    // A root whose number starts like R's: not R's descendant.
    let r2 = sample_account(t, "R2", "Root two", None);
    let r2c = sample_account(t, "R2-C", "Root two child", Some(&r2));
    create(store, &r, None).await;
    for (child, parent) in [(&a, &r), (&b, &r), (&a1, &a), (&a2, &a), (&a1x, &a1)] {
        create(store, child, Some(parent)).await;
    }
    create(store, &r2, None).await;
    create(store, &r2c, Some(&r2)).await;

    let children = all_pages(1, |p| async move {
        store.child_accounts(t, &number("R"), &p).await
    })
    .await;
    assert_eq!(children, ["R-A", "R-B"]);
    let children = all_pages(10, |p| async move {
        store.child_accounts(t, &number("R-A"), &p).await
    })
    .await;
    assert_eq!(children, ["R-A1", "R-A2"]);
    let none = all_pages(10, |p| async move {
        store.child_accounts(t, &number("X"), &p).await
    })
    .await;
    assert!(none.is_empty());

    // In path order, the account itself left out.
    for limit in [1, 2, 10] {
        let below = all_pages(limit, |p| async move {
            store.descendant_accounts(t, &number("R"), &p).await
        })
        .await;
        assert_eq!(below, ["R-A", "R-A1", "X", "R-A2", "R-B"], "limit {limit}");
    }
    let below = all_pages(10, |p| async move {
        store.descendant_accounts(t, &number("R-A1"), &p).await
    })
    .await;
    assert_eq!(below, ["X"]);
    let below = all_pages(10, |p| async move {
        store.descendant_accounts(t, &number("X"), &p).await
    })
    .await;
    assert!(below.is_empty());
    let below = all_pages(10, |p| async move {
        store.descendant_accounts(t, &number("NOPE"), &p).await
    })
    .await;
    assert!(below.is_empty());
    let below = all_pages(10, |p| async move {
        store.descendant_accounts(t, &number("R2"), &p).await
    })
    .await;
    assert_eq!(below, ["R2-C"]);

    // Another tenant sees none of it.
    let other = super::fresh_tenant();
    let below = all_pages(10, |p| {
        let other = other.clone();
        async move { store.descendant_accounts(&other, &number("R"), &p).await }
    })
    .await;
    assert!(below.is_empty());
}

pub async fn moving_an_account_moves_its_subtree_atomically(store: &dyn AccountFullStore) {
    let t = super::fresh_tenant();
    let t = &t;
    let r = sample_account(t, "R", "Root", None);
    let a = sample_account(t, "A", "A", Some(&r));
    let b = sample_account(t, "B", "B", Some(&r));
    let a1 = sample_account(t, "A1", "A one", Some(&a));
    let a1x = sample_account(t, "A1X", "A one x", Some(&a1));
    create(store, &r, None).await;
    for (child, parent) in [(&a, &r), (&b, &r), (&a1, &a), (&a1x, &a1)] {
        create(store, child, Some(parent)).await;
    }

    // A moves under B: A1 and A1X keep their parents, their paths move.
    let mut moved_a = sample_account(t, "A", "A", Some(&b));
    moved_a.version = 2;
    moved_a.created_at = a.created_at;
    let mut new_a1 = a1.clone();
    new_a1.ancestors = vec![number("R"), number("B"), number("A")];
    let mut new_a1x = a1x.clone();
    new_a1x.ancestors = vec![number("R"), number("B"), number("A"), number("A1")];

    // With a descendant read at a version it no longer has: nothing moves.
    let mut stale_a1x = new_a1x.clone();
    stale_a1x.version = 7;
    let refused = store
        .write_account(AccountWrite {
            previous: Some(&a),
            next: &moved_a,
            parent: Some(&b),
            moved: &[new_a1.clone(), stale_a1x],
            audit: &[],
        })
        .await;
    assert_eq!(refused, Err(StoreError::VersionMismatch));
    assert_eq!(get(store, t, "A").await, Some(a.clone()));
    assert_eq!(get(store, t, "A1").await, Some(a1.clone()));

    store
        .write_account(AccountWrite {
            previous: Some(&a),
            next: &moved_a,
            parent: Some(&b),
            moved: &[new_a1.clone(), new_a1x.clone()],
            audit: &[],
        })
        .await
        .unwrap();
    assert_eq!(get(store, t, "A1X").await, Some(new_a1x));
    let r_children = all_pages(10, |p| async move {
        store.child_accounts(t, &number("R"), &p).await
    })
    .await;
    assert_eq!(r_children, ["B"]);
    let b_children = all_pages(10, |p| async move {
        store.child_accounts(t, &number("B"), &p).await
    })
    .await;
    assert_eq!(b_children, ["A"]);
    let below_b = all_pages(10, |p| async move {
        store.descendant_accounts(t, &number("B"), &p).await
    })
    .await;
    assert_eq!(below_b, ["A", "A1", "A1X"]);
    let below_r = all_pages(10, |p| async move {
        store.descendant_accounts(t, &number("R"), &p).await
    })
    .await;
    assert_eq!(below_r, ["B", "A", "A1", "A1X"]);
}
