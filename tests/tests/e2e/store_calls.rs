//! How many DynamoDB calls each operation makes, counted by an SDK
//! interceptor on the real client against DynamoDB Local, through the HTTP
//! API. The numbers are the README's "Store calls per operation" table; a
//! change that adds a call to a hot path fails here and must update both.

use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use peak_local::Stores;
use peak_tests::{TestApp, spawn};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Default)]
struct CallCounter(Arc<Mutex<Vec<String>>>);

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    /// Once per operation (before the retry loop): the request's
    /// `X-Amz-Target` names it, e.g. `DynamoDB_20120810.GetItem`.
    fn read_after_serialization(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = context
            .request()
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("?")
            .to_owned();
        self.0.lock().unwrap().push(op);
        Ok(())
    }
}

impl CallCounter {
    fn take(&self) -> BTreeMap<String, usize> {
        let mut calls = self.0.lock().unwrap();
        let mut counts = BTreeMap::new();
        for op in calls.drain(..) {
            *counts.entry(op).or_insert(0) += 1;
        }
        counts
    }
}

async fn app_with_counter() -> (TestApp, CallCounter) {
    assert!(
        std::env::var("DYNAMODB_ENDPOINT").is_ok(),
        "DynamoDB Local is not running: run the tests with scripts/test.sh"
    );
    let base = peak_store_dynamodb::client_from_env().await;
    let table = format!("calls-{}", ulid::Ulid::new());
    peak_store_dynamodb::create_table(&base, &table)
        .await
        .expect("table");
    let counter = CallCounter::default();
    let conf = base
        .config()
        .to_builder()
        .interceptor(counter.clone())
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(conf);
    let app = spawn(Stores::from(peak_store_dynamodb::DynamoStore::new(
        client, table,
    )))
    .await;
    counter.take();
    (app, counter)
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[tokio::test]
async fn store_calls_per_operation() {
    let (app, counter) = app_with_counter().await;
    let admin = app.token("admin");
    let profiles = app.all_items(&admin, "/profiles").await;
    let standard = profiles.iter().find(|p| p["name"] == "Standard").unwrap()["id"].clone();
    counter.take();

    // Every authenticated request first loads its caller: the subject
    // lookup, the user record, the user's profile.
    let auth = [("GetItem", 3), ("Query", 1)];
    let mut table = Vec::new();
    let mut measure = |name: &str, got: BTreeMap<String, usize>| {
        table.push(format!("{name}: {got:?}"));
        got
    };

    let resp = app
        .with_token(&admin, Method::GET, "/profile-catalogue")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        measure("catalogue", counter.take()),
        counts(&auth),
        "catalogue = auth only"
    );

    let body = json!({"first_name": "Ada", "last_name": "Lovelace", "email": "ada@calls.example",
                      "role": "customer", "profile_id": standard, "customer_accounts": ["ACME"]});
    let resp = app
        .with_token(&admin, Method::POST, "/users")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let user: Value = resp.json().await.unwrap();
    let id = user["id"].as_str().unwrap().to_owned();
    let invite = measure("invite", counter.take());
    // auth (3) + profile exists (1) + email lookup (1 guard read); one transaction.
    assert_eq!(
        invite,
        counts(&[("GetItem", 5), ("Query", 1), ("TransactWriteItems", 1)])
    );

    let resp = app
        .with_token(&admin, Method::GET, &format!("/users/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        measure("get user", counter.take()),
        counts(&[("GetItem", 3), ("Query", 2)]),
        "auth + 1 read"
    );

    let resp = app
        .with_token(&admin, Method::GET, "/users?limit=10")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        measure("list page", counter.take()),
        counts(&[("GetItem", 3), ("Query", 2), ("BatchGetItem", 1)]),
        "auth + 1 query"
    );

    let resp = app
        .with_token(&admin, Method::PATCH, &format!("/users/{id}"))
        .header("if-match", "\"1\"")
        .json(&json!({"first_name": "Augusta"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        measure("edit", counter.take()),
        counts(&[("GetItem", 3), ("Query", 2), ("TransactWriteItems", 1)]),
        "auth + read + 1 transaction"
    );

    // A batch: the auth reads once, then per operation what its single
    // route makes beyond them (one read, one transaction), one after the
    // other.
    let resp = app
        .with_token(&admin, Method::POST, "/users/batch")
        .json(&json!({"operations": [
            {"op": "update", "id": id, "if_match": "\"2\"", "patch": {"first_name": "Ada"}},
            {"op": "update", "id": id, "if_match": "\"3\"", "patch": {"last_name": "King"}},
            {"op": "update", "id": id, "if_match": "\"4\"", "patch": {"first_name": "Augusta"}},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let results: Value = resp.json().await.unwrap();
    assert!(
        results["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == 200),
        "{results}"
    );
    assert_eq!(
        measure("batch of 3 edits", counter.take()),
        counts(&[("GetItem", 3), ("Query", 4), ("TransactWriteItems", 3)]),
        "auth + (read + 1 transaction) per operation"
    );

    let resp = app
        .with_token(
            &admin,
            Method::GET,
            &format!("/profiles/{}", standard.as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        measure("get profile", counter.take()),
        counts(&[("GetItem", 4), ("Query", 1)])
    );

    let resp = app
        .with_token(&admin, Method::POST, "/users")
        .header("idempotency-key", "calls-1")
        .json(
            &json!({"first_name": "Grace", "last_name": "Hopper", "email": "grace@calls.example",
                      "role": "customer", "profile_id": standard, "customer_accounts": ["ACME"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let keyed = measure("invite with Idempotency-Key", counter.take());
    assert_eq!(
        keyed,
        counts(&[
            ("GetItem", 5),
            ("Query", 1),
            ("PutItem", 1),
            ("TransactWriteItems", 1),
            ("UpdateItem", 1)
        ]),
        "claim + complete the key"
    );

    eprintln!("store calls per operation:\n{}", table.join("\n"));
}

/// A bulk invite of 100 rows, end to end: the upload (accepted and
/// queued) and the job. Per invited row one user transaction (the user,
/// its guards, membership, audit event and invitation email: one
/// `TransactWriteItems`); per chunk of 25 rows one `BatchWriteItem` of
/// report entries and one conditional `PutItem` checkpoint. The README's
/// "per 1,000 rows" figures are these times ten.
#[tokio::test]
async fn bulk_invite_store_calls_per_row_and_chunk() {
    let (app, counter) = app_with_counter().await;
    let mut csv = String::from("First name,Last name,Email,Role,Profile,Customer accounts\n");
    for i in 0..100 {
        csv.push_str(&format!(
            "P{i},Person,p{i}@calls.example,customer,Standard,ACME\n"
        ));
    }
    let resp = app
        .admin(Method::POST, "/bulk-invites")
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let job: Value = resp.json().await.unwrap();
    let upload = counter.take();
    // auth (4) + the job (1 PutItem); the file goes to the file store.
    assert_eq!(
        upload,
        counts(&[("GetItem", 3), ("Query", 1), ("PutItem", 1)]),
        "{upload:?}"
    );

    let state = app.running.state.clone();
    let ctx = state.ctx("calls");
    let tenant = peak_domain::TenantId::parse(&app.tenant).unwrap();
    let end = peak_bulk_jobs::run(
        &ctx,
        state.jobs.as_ref(),
        state.files.as_ref(),
        &tenant,
        job["id"].as_str().unwrap(),
        &peak_bulk::Limits::default(),
        |_| true,
    )
    .await
    .unwrap();
    assert!(
        matches!(end, peak_bulk_jobs::RunEnd::Finished(_)),
        "{end:?}"
    );
    let run = counter.take();
    eprintln!("bulk invite of 100 rows: {run:?}");
    assert_eq!(
        run["TransactWriteItems"], 100,
        "one transaction per invited row"
    );
    assert_eq!(run["BatchWriteItem"], 4, "one batch of entries per 25 rows");
    // Take the job, 4 checkpoints, finish.
    assert_eq!(run["PutItem"], 1 + 4 + 1, "{run:?}");
    let writes: usize = [
        "TransactWriteItems",
        "BatchWriteItem",
        "PutItem",
        "UpdateItem",
    ]
    .iter()
    .map(|op| run.get(*op).copied().unwrap_or(0))
    .sum();
    eprintln!("write requests per 1,000 rows: {}", writes * 10);
}
