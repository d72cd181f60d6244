//! The user-store and job-store contracts against the real Amazon DynamoDB
//! Local, plus what is particular to this adapter.
//!
//! Needs `DYNAMODB_ENDPOINT`: `scripts/dynamodb-local.sh start` prints it.
//! One table per test binary, created from infra/template.yaml; every case
//! uses fresh tenants, so they share it.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use peak_domain::model::user::{AccountNumber, PersonName, User, UserQuery, UserStatus};
use peak_domain::ports::{OutboxQueue, PageRequest, StoreError, UserRecords, UserWrite};
use peak_store_contract::fresh_tenant;
use peak_store_contract::users::{profile, sample_user};
use peak_store_dynamodb::{DynamoStore, client_from_env, create_table};
use std::sync::Arc;
use tokio::sync::OnceCell;

static TABLE: OnceCell<String> = OnceCell::const_new();

/// A client for the test's own runtime (each `#[tokio::test]` has one, and
/// a client's connections belong to the runtime that opened them).
async fn client() -> Client {
    if std::env::var("DYNAMODB_ENDPOINT").map_or(true, |v| v.is_empty()) {
        panic!(
            "DynamoDB Local is not running: start it with `scripts/dynamodb-local.sh start` \
             and export DYNAMODB_ENDPOINT, or run scripts/test.sh"
        );
    }
    client_from_env().await
}

/// The table of this test binary, created once.
async fn table(client: &Client) -> &'static str {
    TABLE
        .get_or_init(|| async {
            let name = format!("peak-users-test-{}", ulid::Ulid::new());
            create_table(client, &name).await.unwrap_or_else(|e| {
                panic!("could not create the test table ({e}): is DynamoDB Local running at DYNAMODB_ENDPOINT?")
            });
            name
        })
        .await
}

async fn make_store() -> Arc<DynamoStore> {
    let client = client().await;
    let table = table(&client).await;
    Arc::new(DynamoStore::new(client, table))
}

peak_store_contract::user_store_contract!(make_store());

peak_store_contract::job_store_contract!(make_store());

peak_store_contract::tenant_store_contract!(make_store());

peak_store_contract::account_store_contract!(make_store());
peak_store_contract::caller_store_contract!(make_store());

// Beyond the contract: what is particular to this adapter.

async fn create(store: &DynamoStore, u: &User) -> Result<(), StoreError> {
    store
        .write_user(UserWrite {
            previous: None,
            next: Some(u),
            audit: &[],
            outbox: &[],
        })
        .await
}

/// Every page of `q` at `limit` per page: the full names, in list order.
async fn all_pages(
    store: &DynamoStore,
    t: &peak_domain::TenantId,
    q: &UserQuery,
    limit: u32,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_users(t, q, &PageRequest { limit, cursor })
            .await
            .expect("list");
        assert!(page.items.len() <= limit as usize);
        out.extend(page.items.iter().map(User::full_name));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break out,
        }
        assert!(out.len() < 1000, "pagination does not end");
    }
}

#[tokio::test]
async fn names_with_spaces_sort_like_name_then_id() {
    // "smith ann" must come before "smith ann marie" (a '#' separator would
    // put it after: '#' sorts above ' ').
    let store = make_store().await;
    let t = fresh_tenant();
    let p = profile(&*store, &t, "Standard").await;
    for (first, last, email) in [
        ("Ann Marie", "Smith", "am@example.com"),
        ("Ann", "Smith", "ann@example.com"),
        ("Bob", "Smit", "bob@example.com"),
        ("Zed", "Smith Jones", "zed@example.com"),
        ("Al", "Lo", "al@example.com"),
        ("Lou", "Lo Bianco", "lou@example.com"),
    ] {
        create(&store, &sample_user(&t, &p, first, last, email))
            .await
            .expect("create");
    }
    let expected = [
        "Al Lo",
        "Lou Lo Bianco",
        "Bob Smit",
        "Ann Smith",
        "Ann Marie Smith",
        "Zed Smith Jones",
    ];
    for limit in [1, 2, 100] {
        assert_eq!(
            all_pages(&store, &t, &UserQuery::default(), limit).await,
            expected
        );
    }
    let prefixed = |p: &str| UserQuery {
        name_prefix: Some(p.into()),
        ..Default::default()
    };
    assert_eq!(
        all_pages(&store, &t, &prefixed("Smith Ann"), 1).await,
        ["Ann Smith", "Ann Marie Smith"]
    );
    assert_eq!(
        all_pages(&store, &t, &prefixed("lo"), 1).await,
        ["Al Lo", "Lou Lo Bianco"]
    );
    assert_eq!(
        all_pages(&store, &t, &prefixed("lo b"), 1).await,
        ["Lou Lo Bianco"],
        "the space is part of the prefix"
    );
    assert_eq!(
        all_pages(&store, &t, &prefixed("smith "), 1).await,
        ["Ann Smith", "Ann Marie Smith", "Zed Smith Jones"]
    );
    assert!(
        all_pages(&store, &t, &prefixed("lo\u{1}"), 1)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn sparse_filters_page_through_the_whole_partition() {
    // Filters that the chosen index does not serve drop items after they
    // are read: pages must still be full and the cursor exact.
    let store = make_store().await;
    let t = fresh_tenant();
    let p = profile(&*store, &t, "Standard").await;
    let mut expected = Vec::new();
    for i in 0..15 {
        let mut u = sample_user(
            &t,
            &p,
            "User",
            &format!("N{i:02}"),
            &format!("u{i:02}@example.com"),
        );
        if i % 4 == 1 {
            u.status = UserStatus::Active;
            u.role = peak_domain::Role::Partner;
            expected.push(u.full_name());
        } else if i % 4 == 2 {
            u.status = UserStatus::Active;
        }
        create(&store, &u).await.expect("create");
    }
    let q = UserQuery {
        status: Some(UserStatus::Active),
        role: Some(peak_domain::Role::Partner),
        account: Some(AccountNumber::parse("a", "ACME").expect("acct")),
        ..Default::default()
    };
    for limit in [1, 2, 3, 100] {
        assert_eq!(all_pages(&store, &t, &q, limit).await, expected);
    }
    let by_email = UserQuery {
        email_prefix: Some("U".into()),
        ..q.clone()
    };
    assert_eq!(all_pages(&store, &t, &by_email, 1).await, expected);
}

#[tokio::test]
async fn a_cursor_survives_its_user_moving_away() {
    let store = make_store().await;
    let t = fresh_tenant();
    let p = profile(&*store, &t, "Standard").await;
    let mut users = Vec::new();
    for last in ["Able", "Baker", "Charlie", "Delta"] {
        let u = sample_user(
            &t,
            &p,
            "X",
            last,
            &format!("{}@example.com", last.to_lowercase()),
        );
        create(&store, &u).await.expect("create");
        users.push(u);
    }
    let acme = UserQuery {
        account: Some(AccountNumber::parse("a", "ACME").expect("acct")),
        ..Default::default()
    };
    for q in [UserQuery::default(), acme] {
        let first = store
            .list_users(&t, &q, &PageRequest::first(2))
            .await
            .expect("list");
        assert_eq!(first.items, users[..2]);
        // The last user of the page is renamed to the end, then the list
        // resumes where that user was.
        let baker = store
            .get_user(&t, &users[1].id)
            .await
            .expect("get")
            .expect("present");
        let mut renamed = baker.clone();
        renamed.version += 1;
        renamed.last_name = PersonName::parse("last_name", "Zulu").expect("name");
        store
            .write_user(UserWrite {
                previous: Some(&baker),
                next: Some(&renamed),
                audit: &[],
                outbox: &[],
            })
            .await
            .expect("rename");
        let rest = store
            .list_users(
                &t,
                &q,
                &PageRequest {
                    limit: 10,
                    cursor: first.next_cursor,
                },
            )
            .await
            .expect("list");
        let names: Vec<&str> = rest.items.iter().map(|u| u.last_name.as_str()).collect();
        assert_eq!(names, ["Charlie", "Delta", "Zulu"]);
        // Put it back for the next query.
        let mut back = renamed.clone();
        back.version += 1;
        back.last_name = baker.last_name.clone();
        store
            .write_user(UserWrite {
                previous: Some(&renamed),
                next: Some(&back),
                audit: &[],
                outbox: &[],
            })
            .await
            .expect("rename back");
        users[1] = back;
    }
}

#[tokio::test]
async fn memberships_follow_every_change() {
    let store = make_store().await;
    let t = fresh_tenant();
    let p = profile(&*store, &t, "Standard").await;
    let acct = |a: &str| AccountNumber::parse("a", a).expect("acct");
    let mut u = sample_user(&t, &p, "Ada", "Lovelace", "ada@example.com");
    u.customer_accounts = vec![acct("ACME"), acct("GLOBEX")];
    create(&store, &u).await.expect("create");
    let mut next = u.clone();
    next.version = 2;
    next.status = UserStatus::Suspended;
    next.customer_accounts = vec![acct("GLOBEX"), acct("INITECH")];
    store
        .write_user(UserWrite {
            previous: Some(&u),
            next: Some(&next),
            audit: &[],
            outbox: &[],
        })
        .await
        .expect("update");
    let in_account = |a: &str, status: Option<UserStatus>| UserQuery {
        account: Some(acct(a)),
        status,
        ..Default::default()
    };
    let list = |q: UserQuery| {
        let store = Arc::clone(&store);
        let t = t.clone();
        async move {
            store
                .list_users(&t, &q, &PageRequest::first(10))
                .await
                .expect("list")
                .items
        }
    };
    assert!(list(in_account("ACME", None)).await.is_empty(), "left ACME");
    assert_eq!(
        list(in_account("GLOBEX", Some(UserStatus::Suspended))).await,
        [next.clone()],
        "the copy in GLOBEX is the new user"
    );
    assert_eq!(list(in_account("INITECH", None)).await, [next.clone()]);
    store
        .write_user(UserWrite {
            previous: Some(&next),
            next: None,
            audit: &[],
            outbox: &[],
        })
        .await
        .expect("delete");
    for a in ["ACME", "GLOBEX", "INITECH"] {
        assert!(list(in_account(a, None)).await.is_empty());
    }
}

#[tokio::test]
async fn a_sent_email_loses_its_data_and_leaves_the_pending_index() {
    use peak_domain::outbox::{EmailKind, OutboxEmail};
    let store = make_store().await;
    let t = fresh_tenant();
    let p = profile(&*store, &t, "Standard").await;
    let u = sample_user(&t, &p, "Ada", "Lovelace", "ada@example.com");
    let mail = OutboxEmail {
        tenant_id: t.clone(),
        id: ulid::Ulid::new().to_string(),
        kind: EmailKind::Invitation,
        to: u.email.clone(),
        user_id: u.id.clone(),
        data: serde_json::json!({"link": "https://portal.example/accept?token=secret"}),
        created_at: u.created_at,
    };
    store
        .write_user(UserWrite {
            previous: None,
            next: Some(&u),
            audit: &[],
            outbox: std::slice::from_ref(&mail),
        })
        .await
        .expect("create");
    let now = time::OffsetDateTime::now_utc();
    assert!(matches!(
        store
            .claim_outbox(&t, &mail.id, now, 60)
            .await
            .expect("claim"),
        peak_domain::outbox::OutboxClaim::Claimed { .. }
    ));
    let leased = get_outbox_item(&store, &t, &mail.id).await;
    assert!(
        matches!(leased.get("leased_until"), Some(AttributeValue::N(_))),
        "a claimed item says so (the stream handler skips it)"
    );
    store
        .complete_outbox(&t, &mail.id, "ses-message-1")
        .await
        .expect("complete");
    let raw = get_outbox_item(&store, &t, &mail.id).await;
    assert!(!raw.contains_key("data"), "the one-time link is gone");
    assert!(!raw.contains_key("GSI2PK") && !raw.contains_key("GSI2SK"));
    assert!(!raw.contains_key("leased_until"));
    assert!(raw.contains_key("sent_at"));
    assert_eq!(
        raw.get("message_id"),
        Some(&AttributeValue::S("ses-message-1".into()))
    );
    assert!(
        matches!(raw.get("expires_at"), Some(AttributeValue::N(_))),
        "expires by TTL"
    );
    assert_eq!(
        store
            .claim_outbox(&t, "01NOSUCHEMAIL000000000000", now, 60)
            .await
            .expect("claim"),
        peak_domain::outbox::OutboxClaim::Gone,
        "an unknown email is never to be sent"
    );
}

async fn get_outbox_item(
    store: &DynamoStore,
    t: &peak_domain::TenantId,
    id: &str,
) -> std::collections::HashMap<String, AttributeValue> {
    store
        .client()
        .get_item()
        .table_name(store.table())
        .key("PK", AttributeValue::S(format!("OUTBOX#{t}#{id}")))
        .key("SK", AttributeValue::S("OUTBOX".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get")
        .item
        .expect("kept")
}

#[tokio::test]
async fn a_failed_email_moves_from_the_pending_to_the_failed_index() {
    use peak_domain::outbox::{EmailKind, OutboxEmail};
    let store = make_store().await;
    let t = fresh_tenant();
    let p = profile(&*store, &t, "Standard").await;
    let u = sample_user(&t, &p, "Ada", "Lovelace", "ada@example.com");
    let mail = OutboxEmail {
        tenant_id: t.clone(),
        id: ulid::Ulid::new().to_string(),
        kind: EmailKind::Invitation,
        to: u.email.clone(),
        user_id: u.id.clone(),
        data: serde_json::json!({"link": "https://portal.example/accept?token=secret"}),
        created_at: u.created_at,
    };
    store
        .write_user(UserWrite {
            previous: None,
            next: Some(&u),
            audit: &[],
            outbox: std::slice::from_ref(&mail),
        })
        .await
        .expect("create");
    let raw = get_outbox_item(&store, &t, &mail.id).await;
    assert_eq!(raw.get("entity"), Some(&AttributeValue::S("outbox".into())));
    assert_eq!(
        raw.get("GSI2SK"),
        Some(&AttributeValue::S(format!("0000000000000#{}", mail.id))),
        "a fresh email is due at once"
    );
    store
        .fail_outbox(
            &t,
            &mail.id,
            "rejected",
            true,
            time::OffsetDateTime::now_utc(),
        )
        .await
        .expect("fail");
    let raw = get_outbox_item(&store, &t, &mail.id).await;
    assert!(!raw.contains_key("data"), "the one-time link is gone");
    assert!(!raw.contains_key("GSI2PK") && !raw.contains_key("GSI2SK"));
    assert_eq!(
        raw.get("GSI3PK"),
        Some(&AttributeValue::S("OUTBOX#FAILED".into()))
    );
    assert!(
        matches!(raw.get("expires_at"), Some(AttributeValue::N(_))),
        "expires by TTL"
    );
}

#[tokio::test]
async fn a_write_the_server_cannot_take_changes_nothing() {
    // 25 accounts (the domain's cap) make a 30-item transaction. AWS takes
    // up to 100 items; DynamoDB Local 1.11.478 only 10, and refuses it.
    let store = make_store().await;
    let t = fresh_tenant();
    let p = profile(&*store, &t, "Standard").await;
    let mut u = sample_user(&t, &p, "Many", "Accounts", "many@example.com");
    u.customer_accounts = (0..25)
        .map(|i| AccountNumber::parse("a", &format!("ACC-{i:02}")).expect("acct"))
        .collect();
    match create(&store, &u).await {
        Ok(()) => {
            let q = UserQuery {
                account: Some(u.customer_accounts[24].clone()),
                ..Default::default()
            };
            let listed = store
                .list_users(&t, &q, &PageRequest::first(10))
                .await
                .expect("list");
            assert_eq!(listed.items, [u]);
        }
        Err(StoreError::Backend(msg)) => {
            assert!(msg.contains("ValidationException"), "{msg}");
            assert_eq!(store.get_user(&t, &u.id).await.expect("get"), None);
            assert_eq!(
                store.find_user_by_email(&t, &u.email).await.expect("find"),
                None
            );
        }
        Err(e) => panic!("unexpected {e:?}"),
    }
}

#[tokio::test]
async fn a_malformed_user_item_is_a_backend_error() {
    let store = make_store().await;
    let t = fresh_tenant();
    let id = peak_domain::model::user::UserId::generate();
    store
        .client()
        .put_item()
        .table_name(store.table())
        .item("PK", AttributeValue::S(format!("TENANT#{t}#USER#{id}")))
        .item("SK", AttributeValue::S("USER".into()))
        .item("entity", AttributeValue::S("user".into()))
        .item("version", AttributeValue::S("one".into()))
        .item("GSI1PK", AttributeValue::S(format!("TENANT#{t}#USERS")))
        .item("GSI1SK", AttributeValue::S(format!("broken\u{1}{id}")))
        .send()
        .await
        .expect("put a broken item");
    assert!(matches!(
        store.get_user(&t, &id).await,
        Err(StoreError::Backend(_))
    ));
    assert!(matches!(
        store
            .list_users(&t, &UserQuery::default(), &PageRequest::first(10))
            .await,
        Err(StoreError::Backend(_))
    ));
}

async fn get_raw(
    store: &DynamoStore,
    pk: String,
    sk: &str,
) -> Option<std::collections::HashMap<String, AttributeValue>> {
    store
        .client()
        .get_item()
        .table_name(store.table())
        .key("PK", AttributeValue::S(pk))
        .key("SK", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get")
        .item
}

#[tokio::test]
async fn a_job_is_indexed_while_runnable_and_expires_once_finished() {
    use peak_domain::bulk_job::{JobEntry, JobStatus};
    use peak_domain::ports::JobStore;
    let store = make_store().await;
    let t = fresh_tenant();
    let job = peak_store_contract::jobs::sample_job(&t);
    store.create_job(&job).await.expect("create");
    let pk = format!("JOB#{t}#{}", job.id);
    let raw = get_raw(&store, pk.clone(), "JOB").await.expect("job");
    assert_eq!(raw["entity"], AttributeValue::S("bulk_job".into()));
    assert_eq!(raw["GSI2PK"], AttributeValue::S("JOB#RUNNABLE".into()));
    assert_eq!(
        raw["GSI2SK"],
        AttributeValue::S(format!("0000000000000#{}#{t}", job.id)),
        "queued: due at once, then by id"
    );
    assert!(!raw.contains_key("expires_at"), "a live job never expires");

    let entry = JobEntry {
        row: 2,
        email: "ada@example.com".into(),
        outcome: "invited".into(),
        column: None,
        code: String::new(),
        reason: String::new(),
    };
    store
        .put_job_entries(&t, &job.id, std::slice::from_ref(&entry))
        .await
        .expect("put");
    let raw = get_raw(&store, pk.clone(), "ROW#0000000002")
        .await
        .expect("entry");
    assert_eq!(raw["entity"], AttributeValue::S("bulk_job_entry".into()));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let AttributeValue::N(ttl) = &raw["expires_at"] else {
        panic!("an entry expires by TTL");
    };
    let ttl: i64 = ttl.parse().expect("epoch seconds");
    assert!((now + 30 * 86_400 - 5..=now + 30 * 86_400 + 5).contains(&ttl));
    assert!(!raw.contains_key("code") && !raw.contains_key("column"));

    let mut done = job.clone();
    done.status = JobStatus::Done;
    done.version = 2;
    store.update_job(1, &done).await.expect("finish");
    let raw = get_raw(&store, pk, "JOB").await.expect("job");
    assert!(!raw.contains_key("GSI2PK") && !raw.contains_key("GSI2SK"));
    assert_eq!(
        raw["expires_at"],
        AttributeValue::N((done.updated_at.unix_timestamp() + 30 * 86_400).to_string())
    );
}

#[tokio::test]
async fn a_malformed_job_item_is_a_backend_error() {
    use peak_domain::ports::JobStore;
    let store = make_store().await;
    let t = fresh_tenant();
    let id = ulid::Ulid::new().to_string();
    store
        .client()
        .put_item()
        .table_name(store.table())
        .item("PK", AttributeValue::S(format!("JOB#{t}#{id}")))
        .item("SK", AttributeValue::S("JOB".into()))
        .item("entity", AttributeValue::S("bulk_job".into()))
        .item("version", AttributeValue::S("one".into()))
        .send()
        .await
        .expect("put a broken item");
    assert!(matches!(
        store.get_job(&t, &id).await,
        Err(StoreError::Backend(_))
    ));
}

/// Subject items written before they carried the user's copy (the guard
/// alone) still authenticate — through the user's own item, one round trip
/// more — and the user's next write gives them the copy.
#[tokio::test]
async fn a_subject_item_from_before_the_copy_still_finds_its_user() {
    use peak_domain::ports::CallerStore;
    let store = make_store().await;
    let t = fresh_tenant();
    let p = profile(&*store, &t, "Standard").await;
    let mut u = sample_user(&t, &p, "Ada", "Lovelace", "ada@example.com");
    u.status = UserStatus::Active;
    u.invitation = None;
    u.idp_subject = Some("auth0|old".into());
    create(&store, &u).await.expect("create");
    let pk = format!("TENANT#{t}#SUBJECT#auth0|old");
    assert!(
        get_raw(&store, pk.clone(), "GUARD")
            .await
            .expect("subject item")
            .contains_key("version"),
        "a subject item carries the copy"
    );
    store
        .client()
        .put_item()
        .table_name(store.table())
        .item("PK", AttributeValue::S(pk.clone()))
        .item("SK", AttributeValue::S("GUARD".into()))
        .item("entity", AttributeValue::S("subject_guard".into()))
        .item("tenant_id", AttributeValue::S(t.to_string()))
        .item("user_id", AttributeValue::S(u.id.to_string()))
        .send()
        .await
        .expect("put an old subject item");
    assert_eq!(
        store.caller(&t, "auth0|old").await.expect("caller").user,
        Some(u.clone())
    );

    let mut next = u.clone();
    next.version = 2;
    next.status = UserStatus::Suspended;
    store
        .write_user(UserWrite {
            previous: Some(&u),
            next: Some(&next),
            audit: &[],
            outbox: &[],
        })
        .await
        .expect("suspend");
    let raw = get_raw(&store, pk, "GUARD").await.expect("subject item");
    assert_eq!(
        raw["version"],
        AttributeValue::N("2".into()),
        "copied again"
    );
    assert_eq!(
        store.caller(&t, "auth0|old").await.expect("caller").user,
        Some(next)
    );
}

/// A filter the key cannot serve (role's index, status filtered) reads a
/// bounded number of users per request: a page comes back short, even
/// empty, with a cursor that resumes after the last user read, and paging
/// on finds every match exactly once, in order.
#[tokio::test]
async fn a_filtered_list_reads_a_bounded_number_of_users_per_page() {
    let client = client().await;
    let table = table(&client).await;
    let bounded = DynamoStore::new(client.clone(), table).with_filtered_read_bound(10);
    let unbounded = DynamoStore::new(client, table);
    let t = fresh_tenant();
    let p = profile(&bounded, &t, "Standard").await;
    for i in 0..30 {
        let mut u = sample_user(
            &t,
            &p,
            "Pat",
            &format!("Name{i:02}"),
            &format!("p{i}@example.com"),
        );
        if i == 3 || i == 27 {
            u.status = UserStatus::Suspended;
        }
        create(&bounded, &u).await.expect("create");
    }
    let q = UserQuery {
        role: Some(peak_domain::role::Role::Customer),
        status: Some(UserStatus::Suspended),
        ..Default::default()
    };
    // The first page read 10 users, none of them suspended after the 4th.
    let first = bounded
        .list_users(&t, &q, &PageRequest::first(25))
        .await
        .expect("list");
    assert_eq!(
        first.items.len(),
        1,
        "only Name03 is among the first 10 read"
    );
    assert!(
        first.next_cursor.is_some(),
        "a short page says where to go on"
    );
    let second = bounded
        .list_users(
            &t,
            &q,
            &PageRequest {
                limit: 25,
                cursor: first.next_cursor.clone(),
            },
        )
        .await
        .expect("list");
    assert!(
        second.items.is_empty(),
        "users 10-19: no match, yet a cursor"
    );
    assert!(second.next_cursor.is_some());
    assert_eq!(
        all_pages(&bounded, &t, &q, 25).await,
        ["Pat Name03", "Pat Name27"]
    );
    // Unbounded for 30 users: one full answer, no cursor.
    let whole = unbounded
        .list_users(&t, &q, &PageRequest::first(25))
        .await
        .expect("list");
    assert_eq!(whole.items.len(), 2);
    assert!(whole.next_cursor.is_none());
}

/// A list over several accounts shares the read bound between their
/// Queries: where one stops short the page ends at the smallest stopping
/// point and the cursor resumes there for all of them, so paging on finds
/// every match exactly once, in order (a user on two accounts once), as
/// the unbounded read does in one page.
#[tokio::test]
async fn a_list_over_several_accounts_pages_within_the_read_bound() {
    let client = client().await;
    let table = table(&client).await;
    let bounded = DynamoStore::new(client.clone(), table).with_filtered_read_bound(6);
    let unbounded = DynamoStore::new(client, table);
    let t = fresh_tenant();
    let p = profile(&bounded, &t, "Standard").await;
    let numbers = ["A", "B", "C"];
    let acct = |a: &str| AccountNumber::parse("a", a).expect("acct");
    let mut expected = Vec::new();
    for i in 0..30 {
        let mut u = sample_user(
            &t,
            &p,
            "Pat",
            &format!("Name{i:02}"),
            &format!("p{i}@example.com"),
        );
        let mut accounts = vec![acct(numbers[i % 3])];
        if i % 5 == 0 {
            accounts.push(acct(numbers[(i + 1) % 3]));
        }
        u.customer_accounts = accounts;
        if i % 4 == 1 {
            u.status = UserStatus::Suspended;
            expected.push(format!("Pat Name{i:02}"));
        }
        create(&bounded, &u).await.expect("create");
    }
    let q = UserQuery {
        accounts: Some(numbers.iter().map(|a| acct(a)).collect()),
        status: Some(UserStatus::Suspended),
        ..Default::default()
    };
    let first = bounded
        .list_users(&t, &q, &PageRequest::first(25))
        .await
        .expect("list");
    assert!(
        first.items.len() < expected.len() && first.next_cursor.is_some(),
        "the bound stops the first page short, with a cursor"
    );
    assert_eq!(all_pages(&bounded, &t, &q, 25).await, expected);
    assert_eq!(all_pages(&bounded, &t, &q, 2).await, expected);
    let whole = unbounded
        .list_users(&t, &q, &PageRequest::first(25))
        .await
        .expect("list");
    assert!(whole.next_cursor.is_none());
    let whole: Vec<String> = whole.items.iter().map(User::full_name).collect();
    assert_eq!(whole, expected);
}

/// A profile stored before the holder shards (its count on the profile
/// item, no shard items): users taking it up get their shard created (with
/// the profile checked), the count is the item's plus the shards', and a
/// delete still waits for the sum to reach zero, then removes the shards.
#[tokio::test]
async fn a_profile_from_before_the_holder_shards_keeps_its_count() {
    use peak_domain::ports::ProfileStore;
    use peak_store_dynamodb::item::ProfileItem;
    let store = make_store().await;
    let t = fresh_tenant();
    let mut old = peak_store_contract::sample_profile(&t, "Legacy");
    old.holder_count = 1; // a holder from before, counted on the item
    store
        .client()
        .put_item()
        .table_name(store.table())
        .set_item(Some(ProfileItem::try_from(&old).unwrap().0))
        .send()
        .await
        .expect("put an old profile item");
    let held = |store: Arc<DynamoStore>| {
        let (t, id) = (t.clone(), old.id.clone());
        async move {
            store
                .get_profile(&t, &id)
                .await
                .unwrap()
                .unwrap()
                .holder_count
        }
    };
    let u = sample_user(&t, &old.id, "New", "Holder", "new@example.com");
    let create = UserWrite {
        previous: None,
        next: Some(&u),
        audit: &[],
        outbox: &[],
    };
    store
        .write_user(create)
        .await
        .expect("create on an old profile");
    assert_eq!(held(store.clone()).await, 2);
    assert_eq!(
        store.delete_profile(&t, &old.id, None).await,
        Err(StoreError::InUse { holders: 2 })
    );
    // The new holder leaves: their shard goes back to 0.
    let gone = UserWrite {
        previous: Some(&u),
        next: None,
        audit: &[],
        outbox: &[],
    };
    store.write_user(gone).await.expect("delete the user");
    assert_eq!(held(store.clone()).await, 1);
    // The old holder leaves (as a user write would, from another shard):
    // one shard goes below zero, the sum to zero.
    let other = sample_user(&t, &old.id, "Old", "Holder", "old@example.com");
    let mut moved = other.clone();
    moved.profile_id = profile(store.as_ref(), &t, "Elsewhere").await;
    moved.version += 1;
    // Stored as if from before: the user item alone, then moved away.
    store
        .client()
        .put_item()
        .table_name(store.table())
        .set_item(Some(
            peak_store_dynamodb::user_item::user_item(&other).unwrap(),
        ))
        .send()
        .await
        .expect("put an old user item");
    store
        .write_user(UserWrite {
            previous: Some(&other),
            next: Some(&moved),
            audit: &[],
            outbox: &[],
        })
        .await
        .expect("move the old holder away");
    assert_eq!(held(store.clone()).await, 0);
    store
        .delete_profile(&t, &old.id, None)
        .await
        .expect("delete once nobody holds it");
    let left = store
        .client()
        .query()
        .table_name(store.table())
        .key_condition_expression("PK = :pk AND begins_with(SK, :sk)")
        .expression_attribute_values(":pk", AttributeValue::S(format!("TENANT#{t}")))
        .expression_attribute_values(":sk", AttributeValue::S(format!("PROFILE#{}", old.id)))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert_eq!(left.count(), 0, "the profile and every shard are gone");
    let late = sample_user(&t, &old.id, "Late", "Comer", "late@example.com");
    assert_eq!(
        store
            .write_user(UserWrite {
                previous: None,
                next: Some(&late),
                audit: &[],
                outbox: &[],
            })
            .await,
        Err(StoreError::ProfileMissing)
    );
}
