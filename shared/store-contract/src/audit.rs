//! The audit-log contract.

use crate::fixtures::{FullStore, audit, bumped, create, profile, sample_user};
use crate::fresh_tenant;
use peak_domain::ports::{PageRequest, UserWrite};

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
