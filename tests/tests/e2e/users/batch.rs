//! `POST /users/batch` over HTTP, on both stores: each operation answered
//! in order exactly as its single route answers it (a test compares them),
//! independent of the others; delegated admins refused item by item where
//! the single operation refuses; `Idempotency-Key` replays the answer and
//! changes nothing more; the limit named, and nothing run, over it; owed
//! Auth0 work per user for a batch of suspensions.

use super::{ACC_A, ACC_B, invitation, invite_as_admin, new_profile, read_user, send};
use super::{Reply, unique_email};
use peak_domain::idp_work::IdpOp;
use peak_tests::TestApp;
use reqwest::Method;
use serde_json::{Value, json};

on_both_stores!(
    a_mixed_batch_answers_each_operation_in_order,
    delegated_admins_are_refused_item_by_item_as_singly,
    an_idempotent_replay_answers_the_same_and_changes_nothing,
    over_the_limit_or_empty_nothing_runs,
    one_users_items_and_what_users_share_keep_request_order,
    a_hundred_deletes_sharing_one_profile_all_land,
);

async fn batch(app: &TestApp, token: &str, operations: Value) -> Reply {
    send(
        app.with_token(token, Method::POST, "/users/batch")
            .json(&json!({ "operations": operations })),
    )
    .await
}

/// The batch's results, checked to be a 200 with one result per operation.
fn results(r: &Reply, expected: usize) -> Vec<Value> {
    assert_eq!(r.status, 200, "{}", r.text);
    let results = r.body["results"].as_array().expect("results").clone();
    assert_eq!(results.len(), expected, "{}", r.text);
    results
}

fn statuses(results: &[Value]) -> Vec<u64> {
    results
        .iter()
        .map(|r| r["status"].as_u64().expect("status"))
        .collect()
}

/// A problem document without its request id (the one thing a batch item
/// and a single request cannot share).
fn without_request_id(body: &Value) -> Value {
    let mut body = body.clone();
    if let Some(o) = body.as_object_mut() {
        assert!(
            o.remove("request_id").is_some_and(|v| v.is_string()),
            "a request id: {body}"
        );
    }
    body
}

/// The item answered exactly as `single` did: status, and body (problem
/// documents alike but for the request id).
fn same_answer(item: &Value, single: &Reply, what: &str) {
    assert_eq!(
        item["status"], single.status,
        "{what}: {item} vs {}",
        single.text
    );
    assert_eq!(
        without_request_id(&item["body"]),
        without_request_id(&single.body),
        "{what}"
    );
}

async fn a_mixed_batch_answers_each_operation_in_order(app: TestApp) {
    let profile = new_profile(&app, "Batch customers").await;
    let mut invited = Vec::new();
    for name in ["ann", "ben", "cat"] {
        let body = invitation(
            name,
            "Batch",
            &unique_email(name),
            "customer",
            &[ACC_A],
            &profile,
        );
        invited.push(invite_as_admin(&app, &body).await.id());
    }
    let (a, b, c) = (&invited[0], &invited[1], &invited[2]);
    let (active, _) = app.seed_user("customer", &[ACC_A], &[], &[]).await;
    let unknown = ulid::Ulid::new().to_string();
    let admin = app.token("admin");
    let r = batch(
        &app,
        &admin,
        json!([
            {"op": "update", "id": a, "if_match": "\"7\"", "patch": {"last_name": "Stale"}},
            {"op": "update", "id": b, "if_match": "\"1\"", "patch": {"last_name": "Fresh"}},
            {"op": "suspend", "id": unknown},
            {"op": "update", "id": c, "if_match": "\"1\"", "patch": {"email": "not-an-email"}},
            {"op": "suspend", "id": "not-a-user-id"},
            {"op": "revoke_invitation", "id": a},
            {"op": "reset_password", "id": b},
            {"op": "reset_password", "id": active},
            {"op": "update", "id": c, "patch": {"last_name": "NoVersion"}},
            {"op": "delete", "id": c},
        ]),
    )
    .await;
    let results = results(&r, 10);
    assert_eq!(
        statuses(&results),
        [412, 200, 404, 422, 404, 200, 409, 202, 428, 204],
        "{}",
        r.text
    );
    let codes: Vec<_> = results
        .iter()
        .map(|r| r["body"]["code"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(
        codes,
        [
            "stale_version",
            "-",
            "not_found",
            "validation_failed",
            "not_found",
            "-",
            "invalid_status",
            "-",
            "if_match_required",
            "-"
        ]
    );
    // Results name their target, in order; problems are whole documents.
    assert_eq!(results[2]["id"], unknown);
    assert_eq!(results[4]["id"], "not-a-user-id");
    assert_eq!(results[3]["body"]["errors"][0]["field"], "email");
    for i in [0, 2, 3, 4, 6, 8] {
        let p = &results[i]["body"];
        assert_eq!(p["status"], results[i]["status"]);
        assert!(
            p["type"]
                .as_str()
                .unwrap()
                .starts_with("urn:peak-users:problem:")
        );
        assert!(p["title"].is_string() && p["detail"].is_string(), "{p}");
        assert_eq!(p["request_id"].as_str(), r.header("x-request-id"));
    }
    // Successes: the user and its new ETag, as the single routes answer.
    assert_eq!(results[1]["etag"], "\"2\"");
    assert_eq!(results[1]["body"]["last_name"], "Fresh");
    assert_eq!(results[5]["body"]["invitation"]["state"], "revoked");
    assert_eq!(results[7]["body"], json!({"status": "queued"}));
    assert!(results[9].get("body").is_none(), "204: no body");

    // Independent: the failures changed nothing, the successes stayed.
    let (_, a_now) = read_user(&app, &admin, a).await.expect("a");
    assert_eq!(a_now["last_name"], "Batch");
    let (b_version, b_now) = read_user(&app, &admin, b).await.expect("b");
    assert_eq!((b_version, b_now["last_name"].as_str()), (2, Some("Fresh")));
    assert!(read_user(&app, &admin, c).await.is_none(), "c deleted");

    // Each refusal is what the single route answers.
    let single = send(app.admin(Method::POST, &format!("/users/{unknown}/suspend"))).await;
    same_answer(&results[2], &single, "unknown id");
    let single = send(app.admin(Method::POST, "/users/not-a-user-id/suspend")).await;
    same_answer(&results[4], &single, "malformed id");
    let single = send(
        app.admin(Method::PATCH, &format!("/users/{b}"))
            .header("if-match", "\"2\"")
            .json(&json!({"email": "not-an-email"})),
    )
    .await;
    same_answer(&results[3], &single, "bad field");
    let single = send(
        app.admin(Method::PATCH, &format!("/users/{a}"))
            .header("if-match", "\"7\"")
            .json(&json!({"last_name": "Stale"})),
    )
    .await;
    assert_eq!((single.status, single.code()), (412, "stale_version"));
}

/// A User Manager customer and a sales rep of ACC-A: (label, token).
async fn delegates(app: &TestApp) -> Vec<(&'static str, String)> {
    let manager = app
        .seed_user("customer", &[ACC_A], &[], &["user_manager"])
        .await
        .1;
    let rep = app
        .seed_user(
            "sales_rep",
            &[ACC_A],
            &[
                ("my_customers.customer_users", "manage"),
                ("my_customers.invite_customer_users", "enabled"),
            ],
            &[],
        )
        .await
        .1;
    vec![("user manager", manager), ("sales rep", rep)]
}

async fn delegated_admins_are_refused_item_by_item_as_singly(app: TestApp) {
    let admin = app.token("admin");
    for (who, token) in delegates(&app).await {
        let (reachable, _) = app.seed_user("customer", &[ACC_A], &[], &[]).await;
        let (other_account, _) = app.seed_user("customer", &[ACC_B], &[], &[]).await;
        let (stronger, _) = app.seed_user("admin", &[], &[], &[]).await;
        let (raised, _) = app.seed_user("customer", &[ACC_A], &[], &[]).await;
        let version = |id: String| {
            let (app, admin) = (&app, &admin);
            async move { read_user(app, admin, &id).await.expect("user").0 }
        };
        let raised_v = version(raised.clone()).await;
        let before = [
            version(other_account.clone()).await,
            version(stronger.clone()).await,
            raised_v,
        ];
        let ops = json!([
            {"op": "suspend", "id": reachable},
            {"op": "suspend", "id": other_account},
            {"op": "suspend", "id": stronger},
            {"op": "update", "id": raised, "if_match": format!("\"{raised_v}\""), "patch": {"role": "admin"}},
            {"op": "update", "id": raised, "if_match": format!("\"{raised_v}\""), "patch": {"customer_accounts": [ACC_A, ACC_B]}},
            {"op": "reset_password", "id": other_account},
            {"op": "delete", "id": stronger},
        ]);
        let r = batch(&app, &token, ops.clone()).await;
        let results = results(&r, 7);
        assert_eq!(results[0]["status"], 200, "{who}: {}", r.text);
        assert_eq!(results[0]["body"]["status"], "suspended");
        // Every other item refused, exactly as its single request is.
        let singles = [
            app.with_token(
                &token,
                Method::POST,
                &format!("/users/{other_account}/suspend"),
            ),
            app.with_token(&token, Method::POST, &format!("/users/{stronger}/suspend")),
            app.with_token(&token, Method::PATCH, &format!("/users/{raised}"))
                .header("if-match", format!("\"{raised_v}\""))
                .json(&ops[3]["patch"]),
            app.with_token(&token, Method::PATCH, &format!("/users/{raised}"))
                .header("if-match", format!("\"{raised_v}\""))
                .json(&ops[4]["patch"]),
            app.with_token(
                &token,
                Method::POST,
                &format!("/users/{other_account}/password-reset"),
            ),
            app.with_token(&token, Method::DELETE, &format!("/users/{stronger}")),
        ];
        for (i, single) in singles.into_iter().enumerate() {
            let single = send(single).await;
            assert!(
                single.status >= 400,
                "{who}: item {} passes singly: {}",
                i + 1,
                single.text
            );
            same_answer(&results[i + 1], &single, &format!("{who}, item {}", i + 1));
        }
        assert!(
            statuses(&results).contains(&403),
            "{who}: some refusal is a 403: {}",
            r.text
        );
        // Refused items changed nothing.
        let after = [
            version(other_account).await,
            version(stronger).await,
            version(raised).await,
        ];
        assert_eq!(before, after, "{who}");
    }
}

async fn an_idempotent_replay_answers_the_same_and_changes_nothing(app: TestApp) {
    let admin = app.token("admin");
    let (x, _) = app.seed_user("customer", &[ACC_A], &[], &[]).await;
    let (y, _) = app.seed_user("customer", &[ACC_A], &[], &[]).await;
    let y_v = read_user(&app, &admin, &y).await.expect("y").0;
    let body = json!({"operations": [
        {"op": "suspend", "id": x},
        {"op": "update", "id": y, "if_match": format!("\"{y_v}\""), "patch": {"first_name": "Once"}},
        {"op": "update", "id": y, "if_match": "\"99\"", "patch": {"last_name": "Never"}},
    ]});
    let key = format!("batch-{}", ulid::Ulid::new());
    let post = || {
        app.admin(Method::POST, "/users/batch")
            .header("idempotency-key", &key)
            .json(&body)
    };
    let first = send(post()).await;
    assert_eq!(
        statuses(&results(&first, 3)),
        [200, 200, 412],
        "{}",
        first.text
    );
    let audit_before = send(app.admin(Method::GET, "/audit?limit=100")).await;
    let (x_v, _) = read_user(&app, &admin, &x).await.expect("x");
    let (y_v2, _) = read_user(&app, &admin, &y).await.expect("y");

    let again = send(post()).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.text, first.text, "the same answer, byte for byte");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(read_user(&app, &admin, &x).await.expect("x").0, x_v);
    assert_eq!(read_user(&app, &admin, &y).await.expect("y").0, y_v2);
    let audit_after = send(app.admin(Method::GET, "/audit?limit=100")).await;
    assert_eq!(
        audit_after.body["items"], audit_before.body["items"],
        "nothing more audited"
    );

    // The key answers only this request.
    let other = send(
        app.admin(Method::POST, "/users/batch")
            .header("idempotency-key", &key)
            .json(&json!({"operations": [{"op": "suspend", "id": y}]})),
    )
    .await;
    assert_eq!(
        (other.status, other.code()),
        (422, "idempotency_key_reused")
    );
}

async fn over_the_limit_or_empty_nothing_runs(app: TestApp) {
    let admin = app.token("admin");
    let (x, _) = app.seed_user("customer", &[ACC_A], &[], &[]).await;
    let (version, _) = read_user(&app, &admin, &x).await.expect("x");
    let ops: Vec<Value> = (0..101)
        .map(|_| json!({"op": "suspend", "id": x}))
        .collect();
    let r = batch(&app, &admin, json!(ops)).await;
    assert_eq!(
        (r.status, r.code()),
        (422, "validation_failed"),
        "{}",
        r.text
    );
    assert_eq!(r.body["errors"][0]["field"], "operations");
    let reason = r.body["errors"][0]["reason"].as_str().expect("reason");
    assert!(reason.contains("100") && reason.contains("101"), "{reason}");
    let r = batch(&app, &admin, json!([])).await;
    assert_eq!(
        (r.status, r.code()),
        (422, "validation_failed"),
        "{}",
        r.text
    );
    // A body the schema does not allow is refused whole, naming the item.
    let r = batch(
        &app,
        &admin,
        json!([{"op": "suspend", "id": x}, {"op": "fly", "id": x}]),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (422, "validation_failed"),
        "{}",
        r.text
    );
    let (now, user) = read_user(&app, &admin, &x).await.expect("x");
    assert_eq!((now, user["status"].as_str()), (version, Some("active")));
}

/// Items on different users run at the same time, but those on one user
/// run in request order (each `if_match` here is the version the item
/// before it on that user wrote), and so do those touching what users
/// share: deleting `z` frees the address `w` then takes. Run one after the
/// other, every item succeeds; so it must here, answered in request order.
async fn one_users_items_and_what_users_share_keep_request_order(app: TestApp) {
    let admin = app.token("admin");
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(app.seed_user("customer", &[ACC_A], &[], &[]).await.0);
    }
    let (x, y, z, w) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    let z_email = read_user(&app, &admin, z).await.expect("z").1["email"].clone();
    let edit = |id: &str, v: u64, name: &str| json!({"op": "update", "id": id, "if_match": format!("\"{v}\""), "patch": {"first_name": name}});
    let r = batch(
        &app,
        &admin,
        json!([
            edit(x, 1, "X1"),
            edit(y, 1, "Y1"),
            edit(x, 2, "X2"),
            {"op": "suspend", "id": z},
            edit(y, 2, "Y2"),
            edit(x, 3, "X3"),
            {"op": "delete", "id": z},
            {"op": "update", "id": w, "if_match": "\"1\"", "patch": {"email": z_email}},
        ]),
    )
    .await;
    let results = results(&r, 8);
    assert_eq!(
        statuses(&results),
        [200, 200, 200, 200, 200, 200, 204, 200],
        "{}",
        r.text
    );
    let ids_in_order: Vec<_> = results.iter().map(|r| r["id"].clone()).collect();
    assert_eq!(ids_in_order, [x, y, x, z, y, x, z, w].map(|id| json!(id)));
    let etags: Vec<_> = results.iter().map(|r| r["etag"].clone()).collect();
    assert_eq!(
        etags,
        ["\"2\"", "\"2\"", "\"3\"", "\"2\"", "\"3\"", "\"4\""]
            .map(|e| json!(e))
            .into_iter()
            .chain([Value::Null, json!("\"2\"")])
            .collect::<Vec<_>>()
    );
    assert_eq!(results[5]["body"]["first_name"], "X3");
    assert_eq!(results[7]["body"]["pending_email"], z_email, "{}", r.text);
    let (_, x_now) = read_user(&app, &admin, x).await.expect("x");
    let (_, y_now) = read_user(&app, &admin, y).await.expect("y");
    assert_eq!(
        (&x_now["first_name"], &y_now["first_name"]),
        (&json!("X3"), &json!("Y2"))
    );
}

/// Deleting a user takes them off their profile's holder count, one item
/// every such write shares (so a batch runs its deletes in request order,
/// see `users::plan`): a hundred deletes of users of one profile all land
/// and the count is right.
async fn a_hundred_deletes_sharing_one_profile_all_land(app: TestApp) {
    let admin = app.token("admin");
    let profile = new_profile(&app, "Deleted together").await;
    let mut ids = Vec::new();
    for i in 0..100 {
        let body = invitation(
            "del",
            &format!("N{i}"),
            &unique_email("del"),
            "customer",
            &[ACC_A],
            &profile,
        );
        ids.push(invite_as_admin(&app, &body).await.id());
    }
    assert_eq!(holders(&app, &admin, &profile).await, 100);
    let ops: Vec<Value> = ids
        .iter()
        .map(|id| json!({"op": "delete", "id": id}))
        .collect();
    let r = batch(&app, &admin, json!(ops)).await;
    assert_eq!(statuses(&results(&r, 100)), [204; 100], "{}", r.text);
    assert_eq!(holders(&app, &admin, &profile).await, 0);
}

async fn holders(app: &TestApp, admin: &str, profile: &str) -> u64 {
    let r = send(app.with_token(admin, Method::GET, &format!("/profiles/{profile}"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["user_count"].as_u64().expect("user_count")
}

/// Auth0 hears of each suspension through the owed-work records, as it
/// does of single ones: one record per user, owed until the worker runs.
async fn a_batch_of_suspensions_leaves_owed_work_per_user(sqlite: bool) {
    let e = crate::auth0_sync::env(sqlite).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(e.app.seed_user("customer", &[ACC_A], &[], &[]).await.0);
    }
    assert!(crate::auth0_sync::owed(&e.app).await.is_empty());
    let ops: Vec<Value> = ids
        .iter()
        .map(|id| json!({"op": "suspend", "id": id}))
        .collect();
    let r = batch(&e.app, &e.app.token("admin"), json!(ops)).await;
    assert_eq!(statuses(&results(&r, 5)), [200; 5], "{}", r.text);
    let owed = crate::auth0_sync::owed(&e.app).await;
    let mut owed_ids: Vec<_> = owed
        .iter()
        .filter(|w| w.work.op == IdpOp::Sync && !w.done)
        .map(|w| w.work.user_id.to_string())
        .collect();
    owed_ids.sort();
    ids.sort();
    assert_eq!(owed_ids, ids, "one owed sync per suspended user: {owed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_suspensions_leaves_owed_work_per_user_sqlite() {
    a_batch_of_suspensions_leaves_owed_work_per_user(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_suspensions_leaves_owed_work_per_user_dynamodb() {
    a_batch_of_suspensions_leaves_owed_work_per_user(false).await;
}
