//! User-store behaviour beyond the shared contract: what this adapter
//! promises on top (write-order audit, ties in the list order, refused
//! inconsistent writes).

use peak_domain::TenantId;
use peak_domain::audit::AuditEvent;
use peak_domain::model::user::{User, UserId, UserQuery};
use peak_domain::ports::{AuditLog, PageRequest, ProfileStore, StoreError, UserRecords, UserWrite};
use peak_store_contract::fresh_tenant;
use peak_store_contract::users::{profile, sample_user};
use peak_store_sqlite::SqliteStore;

async fn create(store: &SqliteStore, u: &User, audit: &[AuditEvent]) -> Result<(), StoreError> {
    store
        .write_user(UserWrite {
            previous: None,
            next: Some(u),
            audit,
            outbox: &[],
        })
        .await
}

/// Every page of `q` at `limit` per page.
async fn list_all(store: &SqliteStore, t: &TenantId, q: &UserQuery, limit: u32) -> Vec<User> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_users(t, q, &PageRequest { limit, cursor })
            .await
            .unwrap();
        assert!(page.items.len() <= limit as usize);
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
        assert!(out.len() < 1000, "pagination does not end");
    }
}

#[tokio::test]
async fn equal_names_page_by_id_and_emails_page_in_email_order() {
    let store = SqliteStore::open_in_memory().unwrap();
    let t = fresh_tenant();
    let p = profile(&store, &t, "Standard").await;
    let mut users = Vec::new();
    for i in [3, 0, 4, 1, 2] {
        let u = sample_user(&t, &p, "John", "Smith", &format!("j{i}@example.com"));
        create(&store, &u, &[]).await.unwrap();
        users.push(u);
    }
    let mut by_id = users.clone();
    by_id.sort_by(|a, b| a.id.cmp(&b.id));
    for limit in [1, 2, 3] {
        assert_eq!(
            list_all(&store, &t, &UserQuery::default(), limit).await,
            by_id
        );
    }

    let by_email_query = UserQuery {
        email_prefix: Some("J".into()),
        ..Default::default()
    };
    let emails: Vec<String> = list_all(&store, &t, &by_email_query, 2)
        .await
        .iter()
        .map(|u| u.email.as_str().to_owned())
        .collect();
    assert_eq!(
        emails,
        [
            "j0@example.com",
            "j1@example.com",
            "j2@example.com",
            "j3@example.com",
            "j4@example.com"
        ]
    );

    // A cursor of one order is refused by the other.
    let by_name = store
        .list_users(&t, &UserQuery::default(), &PageRequest::first(2))
        .await
        .unwrap();
    assert_eq!(
        store
            .list_users(
                &t,
                &by_email_query,
                &PageRequest {
                    limit: 2,
                    cursor: by_name.next_cursor
                }
            )
            .await,
        Err(StoreError::InvalidCursor)
    );
}

#[tokio::test]
async fn audit_lists_in_write_order_whatever_the_ids() {
    let store = SqliteStore::open_in_memory().unwrap();
    let t = fresh_tenant();
    let p = profile(&store, &t, "Standard").await;
    let u = sample_user(&t, &p, "Ada", "Lovelace", "ada@example.com");
    // Ids minted within one millisecond need not sort in write order.
    let mut ids: Vec<String> = (0..3).map(|_| UserId::generate().to_string()).collect();
    ids.sort();
    ids.reverse();
    let events: Vec<AuditEvent> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut e = AuditEvent::new(
                &t,
                "actor",
                &format!("step{i}"),
                Some(&u.id),
                "req",
                u.created_at,
            );
            e.id = id.clone();
            e
        })
        .collect();
    create(&store, &u, &events).await.unwrap();
    let listed = store
        .list_audit(&t, Some(&u.id), &PageRequest::first(10))
        .await
        .unwrap();
    let actions: Vec<&str> = listed.items.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["step2", "step1", "step0"]);
}

#[tokio::test]
async fn inconsistent_writes_are_refused_and_write_nothing() {
    let store = SqliteStore::open_in_memory().unwrap();
    let t = fresh_tenant();
    let p = profile(&store, &t, "Standard").await;
    let mut a = sample_user(&t, &p, "Ada", "Lovelace", "ada@example.com");
    a.idp_subject = Some("auth0|same".into());
    create(&store, &a, &[]).await.unwrap();

    // Another user of the tenant with the same identity-provider subject.
    let mut b = sample_user(&t, &p, "Bob", "Builder", "bob@example.com");
    b.idp_subject = a.idp_subject.clone();
    assert!(matches!(
        create(&store, &b, &[]).await,
        Err(StoreError::Backend(_))
    ));
    assert_eq!(store.get_user(&t, &b.id).await.unwrap(), None);

    // An audit event of another tenant.
    let c = sample_user(&t, &p, "Cy", "Coder", "cy@example.com");
    let foreign = AuditEvent::new(
        &fresh_tenant(),
        "actor",
        "user.invited",
        Some(&c.id),
        "req",
        c.created_at,
    );
    assert!(matches!(
        create(&store, &c, &[foreign]).await,
        Err(StoreError::Backend(_))
    ));
    assert_eq!(store.get_user(&t, &c.id).await.unwrap(), None);

    // Changing the id.
    let mut moved = a.clone();
    moved.id = c.id.clone();
    moved.version += 1;
    assert!(matches!(
        store
            .write_user(UserWrite {
                previous: Some(&a),
                next: Some(&moved),
                audit: &[],
                outbox: &[],
            })
            .await,
        Err(StoreError::Backend(_))
    ));

    let held = store.get_profile(&t, &p).await.unwrap().unwrap();
    assert_eq!(held.holder_count, 1, "only Ada holds the profile");
    let everyone = store
        .list_users(&t, &UserQuery::default(), &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(everyone.items, vec![a]);
}
