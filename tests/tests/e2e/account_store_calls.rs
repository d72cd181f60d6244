//! How many DynamoDB calls the account routes make, counted by an SDK
//! interceptor on the real client against DynamoDB Local, through the HTTP
//! API (as `store_calls.rs` does for the user routes). The numbers are the
//! README's "Store calls per operation" rows for accounts; the point is
//! that a search page is one Query, whatever the directory's size.

use crate::store_calls::{CallCounter as Calls, counts};
use peak_local::Stores;
use peak_tests::spawn;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn account_routes_store_calls() {
    assert!(
        std::env::var("DYNAMODB_ENDPOINT").is_ok(),
        "DynamoDB Local is not running: run the tests with scripts/test.sh"
    );
    let base = peak_store_dynamodb::client_from_env().await;
    let table = format!("calls-{}", ulid::Ulid::new());
    peak_store_dynamodb::create_table(&base, &table)
        .await
        .expect("table");
    let calls = Calls::default();
    let conf = base
        .config()
        .to_builder()
        .interceptor(calls.clone())
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(conf);
    let app = spawn(Stores::from(peak_store_dynamodb::DynamoStore::new(
        client, table,
    )))
    .await;
    let admin = app.token("admin");
    let put = |number: &str, body: serde_json::Value| {
        app.with_token(&admin, Method::PUT, &format!("/accounts/{number}"))
            .json(&body)
            .send()
    };
    // Auth as store_calls.rs measures it: an admin's is one BatchGetItem
    // (the tenant record and the subject item with the user's copy); a
    // non-admin's adds their profile (one Query: the profile and its
    // holder shards); a rep's or partner's also their reach (per served
    // account its path, one GetItem, and a Query per 100 descendants), at
    // the same time as the profile.
    let admin_auth = [("BatchGetItem", 1usize)];
    let rep_auth = [
        ("BatchGetItem", 1usize),
        ("GetItem", 1usize),
        ("Query", 2usize),
    ];
    let with = |auth: &[(&str, usize)], extra: &[(&str, usize)]| {
        let mut c = counts(auth);
        for (k, v) in extra {
            *c.entry((*k).to_owned()).or_insert(0) += v;
        }
        c
    };
    let plus = |extra: &[(&str, usize)]| with(&admin_auth, extra);

    assert_eq!(
        put("ACME", json!({"name": "Acme Corp"}))
            .await
            .unwrap()
            .status(),
        201
    );
    calls.take();
    for i in 0..30 {
        let resp = put(
            &format!("ACME-{i:02}"),
            json!({"name": format!("Acme {i}"), "parent": "ACME"}),
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), 201);
    }
    // Each create: auth + the account (absent) + its parent; one transaction.
    let created = calls.take();
    assert_eq!(
        created,
        counts(&[
            ("BatchGetItem", 30),
            ("GetItem", 30 * 2),
            ("TransactWriteItems", 30)
        ]),
        "30 creates"
    );

    // One search page: auth + 1 Query (31 accounts, 62 entries in the index).
    let resp = app
        .with_token(&admin, Method::GET, "/accounts?q=acme&limit=10")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(calls.take(), plus(&[("Query", 1)]), "search page");
    let resp = app
        .with_token(&admin, Method::GET, "/accounts?q=acme%201&limit=5")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(calls.take(), plus(&[("Query", 1)]), "search by name");

    // Get: auth + 1 read. Resending what is stored: auth + reads, no write.
    let resp = app
        .with_token(&admin, Method::GET, "/accounts/ACME-07")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(calls.take(), plus(&[("GetItem", 1)]), "get");
    let resp = put("ACME-07", json!({"name": "Acme 7", "parent": "ACME"}))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        calls.take(),
        plus(&[("GetItem", 2)]),
        "unchanged upsert writes nothing"
    );

    // A rep's list: auth + per served account its read, and its
    // descendants (a read for the path, a query per page of 100).
    let rep = app.token("sales_rep");
    let resp = app
        .with_token(&rep, Method::GET, "/accounts?limit=100")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let listed: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 31);
    assert_eq!(
        calls.take(),
        with(&rep_auth, &[("GetItem", 2), ("Query", 1)]),
        "rep list"
    );

    // The machine client: its tenant only (it has no user record), then
    // the route.
    let sync = app
        .running
        .client_token(&app.tenant, "billing-sync", "accounts:read")
        .unwrap();
    let resp = app
        .with_token(&sync, Method::GET, "/accounts?q=acme&limit=10")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        calls.take(),
        counts(&[("GetItem", 1), ("Query", 1)]),
        "machine search"
    );
}
