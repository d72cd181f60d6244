//! How many DynamoDB calls the account routes make, counted by an SDK
//! interceptor on the real client against DynamoDB Local, through the HTTP
//! API (as `store_calls.rs` does for the user routes). The numbers are the
//! README's "Store calls per operation" rows for accounts; the point is
//! that a search page is one Query, whatever the directory's size. Their
//! read and write units are pinned in `docs/capacity.json` as
//! `store_calls.rs` pins the user routes' (`store_capacity.rs`).

use crate::store_calls::{CallCounter as Calls, Wire, counts};
use crate::store_capacity::{self, AskCapacity};
use peak_local::Stores;
use peak_tests::spawn;
use reqwest::Method;
use serde_json::json;
use std::collections::BTreeMap;

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
    let wire = Wire::around(&base);
    let conf = base
        .config()
        .to_builder()
        .interceptor(calls.clone())
        .interceptor(AskCapacity)
        .http_client(wire.clone())
        .build();
    // Each measured route's calls and units, for docs/capacity.json.
    let mut capacity = BTreeMap::new();
    let mut record = |name: &str, calls: &BTreeMap<String, usize>| {
        let units = wire.take_units();
        assert_eq!(units.failed, 0, "{name}: a DynamoDB request failed");
        capacity.insert(name.to_owned(), units.to_json(calls, None));
    };
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
    wire.take_units();
    let resp = put("ACME-00", json!({"name": "Acme 0", "parent": "ACME"}))
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let one = calls.take();
    record("`PUT /accounts/{number}` (create under a parent)", &one);
    for i in 1..30 {
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
        one,
        counts(&[
            ("BatchGetItem", 1),
            ("GetItem", 2),
            ("TransactWriteItems", 1)
        ]),
        "a create"
    );
    assert_eq!(
        created,
        counts(&[
            ("BatchGetItem", 29),
            ("GetItem", 29 * 2),
            ("TransactWriteItems", 29)
        ]),
        "29 more creates"
    );
    wire.take_units();

    // One search page: auth + 1 Query (31 accounts, 62 entries in the index).
    let resp = app
        .with_token(&admin, Method::GET, "/accounts?q=acme&limit=10")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(calls.take(), plus(&[("Query", 1)]), "search page");
    record(
        "`GET /accounts?q=` (one page, admin)",
        &plus(&[("Query", 1)]),
    );
    let resp = app
        .with_token(&admin, Method::GET, "/accounts?q=acme%201&limit=5")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(calls.take(), plus(&[("Query", 1)]), "search by name");
    wire.take_units();

    // Get: auth + 1 read. Resending what is stored: auth + reads, no write.
    let resp = app
        .with_token(&admin, Method::GET, "/accounts/ACME-07")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(calls.take(), plus(&[("GetItem", 1)]), "get");
    record("`GET /accounts/{number}` (admin)", &plus(&[("GetItem", 1)]));
    let resp = put("ACME-07", json!({"name": "Acme 7", "parent": "ACME"}))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        calls.take(),
        plus(&[("GetItem", 2)]),
        "unchanged upsert writes nothing"
    );
    wire.take_units();

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
    let rep_list = with(&rep_auth, &[("GetItem", 2), ("Query", 1)]);
    assert_eq!(calls.take(), rep_list, "rep list");
    record(
        "`GET /accounts` (a rep serving one account, 31 below it)",
        &rep_list,
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
    let machine = counts(&[("GetItem", 1), ("Query", 1)]);
    assert_eq!(calls.take(), machine, "machine search");
    record(
        "`GET /accounts?q=` by the billing sync's machine client",
        &machine,
    );
    store_capacity::pin(&capacity);
}
