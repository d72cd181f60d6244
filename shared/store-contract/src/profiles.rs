//! The profiles port's contract.

use crate::{fresh_tenant, now, sample_profile};
use peak_domain::catalogue::catalogue;
use peak_domain::ids::ProfileId;
use peak_domain::model::profile::{Profile, ProfileName};
use peak_domain::ports::{PageRequest, ProfileStore, StoreError};
use std::collections::BTreeMap;

fn edited(p: &Profile, name: &str) -> Profile {
    let mut changes = BTreeMap::new();
    changes.insert("my_cases.view".to_owned(), "hidden".into());
    let mut next = p.clone();
    next.name = ProfileName::parse(name).expect("valid name");
    next.settings = p
        .settings
        .apply(catalogue(), &changes)
        .expect("valid change");
    next.version = p.version + 1;
    next.updated_at = now();
    next
}

async fn get(store: &dyn ProfileStore, p: &Profile) -> Option<Profile> {
    store.get_profile(&p.tenant_id, &p.id).await.expect("get")
}

pub async fn create_then_get_round_trips(store: &dyn ProfileStore) {
    let t = fresh_tenant();
    let p = sample_profile(&t, "Wholesale Customers");
    store.insert_profile(&p).await.expect("insert");
    assert_eq!(get(store, &p).await, Some(p.clone()));
    let missing = ProfileId::generate();
    assert_eq!(store.get_profile(&t, &missing).await.expect("get"), None);
}

pub async fn same_id_twice_is_refused(store: &dyn ProfileStore) {
    let t = fresh_tenant();
    let p = sample_profile(&t, "First");
    store.insert_profile(&p).await.expect("insert");
    let mut again = sample_profile(&t, "Second");
    again.id = p.id.clone();
    assert_eq!(
        store.insert_profile(&again).await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(get(store, &p).await, Some(p));
    // The refused insert did not reserve its name either.
    store
        .insert_profile(&sample_profile(&t, "Second"))
        .await
        .expect("name still free");
}

pub async fn names_are_unique_per_tenant_ignoring_case(store: &dyn ProfileStore) {
    let t = fresh_tenant();
    store
        .insert_profile(&sample_profile(&t, "VIP Customers"))
        .await
        .expect("insert");
    let dup = sample_profile(&t, "vip customers");
    assert_eq!(store.insert_profile(&dup).await, Err(StoreError::NameTaken));
    assert_eq!(get(store, &dup).await, None);
    let other_tenant = fresh_tenant();
    store
        .insert_profile(&sample_profile(&other_tenant, "VIP CUSTOMERS"))
        .await
        .expect("same name in another tenant is fine");
}

pub async fn update_with_current_version_succeeds(store: &dyn ProfileStore) {
    let t = fresh_tenant();
    let mut p = sample_profile(&t, "Standard");
    store.insert_profile(&p).await.expect("insert");
    store
        .change_profile_holders(&t, &p.id, 2)
        .await
        .expect("holders");
    p.holder_count = 2;
    let next = edited(&p, "Standard");
    store.update_profile(&p, &next).await.expect("update");
    let stored = get(store, &p).await.expect("present");
    assert_eq!(stored, next);
    assert_eq!(stored.version, 2);
    assert_eq!(stored.holder_count, 2, "an edit keeps the holder count");
    assert_eq!(stored.settings.as_map()["my_cases.view"], "hidden");
}

pub async fn stale_update_is_refused_and_changes_nothing(store: &dyn ProfileStore) {
    let t = fresh_tenant();
    let p = sample_profile(&t, "Standard");
    store.insert_profile(&p).await.expect("insert");
    let v2 = edited(&p, "Standard v2");
    store.update_profile(&p, &v2).await.expect("first edit");
    // A second editor still holding version 1.
    let stale = edited(&p, "Standard stale");
    assert_eq!(
        store.update_profile(&p, &stale).await,
        Err(StoreError::VersionMismatch)
    );
    assert_eq!(get(store, &p).await, Some(v2));
    // The stale edit's name was not reserved.
    store
        .insert_profile(&sample_profile(&t, "Standard stale"))
        .await
        .expect("name still free");
    let gone = sample_profile(&t, "Never stored");
    assert_eq!(
        store.update_profile(&gone, &edited(&gone, "x")).await,
        Err(StoreError::NotFound)
    );
}

pub async fn rename_frees_the_old_name_and_respects_taken_ones(store: &dyn ProfileStore) {
    let t = fresh_tenant();
    let a = sample_profile(&t, "Alpha");
    let b = sample_profile(&t, "Beta");
    store.insert_profile(&a).await.expect("insert a");
    store.insert_profile(&b).await.expect("insert b");

    let clash = edited(&a, "BETA");
    assert_eq!(
        store.update_profile(&a, &clash).await,
        Err(StoreError::NameTaken)
    );
    assert_eq!(get(store, &a).await, Some(a.clone()), "nothing changed");

    let case_only = edited(&a, "ALPHA");
    store
        .update_profile(&a, &case_only)
        .await
        .expect("case-only rename");
    let renamed = edited(&case_only, "Gamma");
    store
        .update_profile(&case_only, &renamed)
        .await
        .expect("rename");
    store
        .insert_profile(&sample_profile(&t, "alpha"))
        .await
        .expect("old name is free again");
    assert_eq!(
        store.insert_profile(&sample_profile(&t, "gamma")).await,
        Err(StoreError::NameTaken)
    );
}

pub async fn delete_respects_version_and_holders(store: &dyn ProfileStore) {
    let t = fresh_tenant();
    let p = sample_profile(&t, "Doomed");
    store.insert_profile(&p).await.expect("insert");

    assert_eq!(
        store.delete_profile(&t, &p.id, Some(7)).await,
        Err(StoreError::VersionMismatch)
    );
    store
        .change_profile_holders(&t, &p.id, 1)
        .await
        .expect("+1");
    assert_eq!(
        store.delete_profile(&t, &p.id, Some(1)).await,
        Err(StoreError::InUse { holders: 1 })
    );
    assert_eq!(
        store.delete_profile(&t, &p.id, None).await,
        Err(StoreError::InUse { holders: 1 })
    );
    assert!(get(store, &p).await.is_some(), "still there");
    store
        .change_profile_holders(&t, &p.id, -1)
        .await
        .expect("-1");
    store
        .delete_profile(&t, &p.id, Some(1))
        .await
        .expect("delete");
    assert_eq!(get(store, &p).await, None);
    assert_eq!(
        store.delete_profile(&t, &p.id, None).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        store.change_profile_holders(&t, &p.id, 1).await,
        Err(StoreError::NotFound)
    );
    store
        .insert_profile(&sample_profile(&t, "DOOMED"))
        .await
        .expect("a deleted profile's name is free");
}

pub async fn pagination_is_stable_complete_and_opaque(store: &dyn ProfileStore) {
    let t = fresh_tenant();
    let mut ids = Vec::new();
    for i in 0..7 {
        let p = sample_profile(&t, &format!("Profile {i}"));
        store.insert_profile(&p).await.expect("insert");
        ids.push(p.id);
    }
    ids.sort();

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_profiles(
                &t,
                &PageRequest {
                    limit: 3,
                    cursor: cursor.clone(),
                },
            )
            .await
            .expect("list");
        sizes.push(page.items.len());
        seen.extend(page.items.into_iter().map(|p| p.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
        assert!(sizes.len() < 10, "pagination does not end");
    }
    assert_eq!(seen, ids, "every profile once, in id order");
    assert_eq!(sizes[..3], [3, 3, 1]);

    let first = store
        .list_profiles(&t, &PageRequest::first(3))
        .await
        .expect("list");
    let foreign = fresh_tenant();
    assert_eq!(
        store
            .list_profiles(
                &foreign,
                &PageRequest {
                    limit: 3,
                    cursor: first.next_cursor
                }
            )
            .await,
        Err(StoreError::InvalidCursor),
        "a cursor is useless in another tenant"
    );
    assert_eq!(
        store
            .list_profiles(
                &t,
                &PageRequest {
                    limit: 3,
                    cursor: Some("garbage!".into())
                }
            )
            .await,
        Err(StoreError::InvalidCursor)
    );
    let empty = store
        .list_profiles(&foreign, &PageRequest::first(3))
        .await
        .expect("list");
    assert!(empty.items.is_empty() && empty.next_cursor.is_none());
}

pub async fn tenants_are_isolated(store: &dyn ProfileStore) {
    let a = fresh_tenant();
    let b = fresh_tenant();
    let p = sample_profile(&a, "Secret");
    store.insert_profile(&p).await.expect("insert");

    assert_eq!(store.get_profile(&b, &p.id).await.expect("get"), None);
    let mut as_b = p.clone();
    as_b.tenant_id = b.clone();
    assert_eq!(
        store.update_profile(&as_b, &edited(&as_b, "Stolen")).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        store.delete_profile(&b, &p.id, None).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        store.change_profile_holders(&b, &p.id, 5).await,
        Err(StoreError::NotFound)
    );
    // Same id inserted under tenant B is a different item, not a clash.
    store.insert_profile(&as_b).await.expect("B's own item");
    let listed = store
        .list_profiles(&b, &PageRequest::first(100))
        .await
        .expect("list");
    assert_eq!(listed.items, vec![as_b]);
    assert_eq!(get(store, &p).await, Some(p), "A's profile untouched");
}
