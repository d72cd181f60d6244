//! The customer-account directory end to end, over HTTP, on both stores:
//! an admin and the billing sync's machine client keep it, the invite
//! form searches it, and each role sees its own part of it.

use peak_tests::{TestApp, problem};
use reqwest::Method;
use serde_json::{Value, json};

on_both_stores!(
    admin_creates_reads_changes_and_closes_accounts,
    parent_rules_are_clear_422s_that_change_nothing,
    search_by_number_or_name_prefix_pages_for_the_dropdown,
    each_role_sees_its_own_part_of_the_directory,
    moving_an_account_takes_its_subtree_along,
    machine_clients_call_only_the_account_routes_their_scope_names,
    tenants_and_anonymous_callers_see_nothing,
);

async fn put(app: &TestApp, number: &str, body: Value) -> reqwest::Response {
    app.admin(Method::PUT, &format!("/accounts/{number}"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Creates (or replaces) an account as admin, checking it worked.
async fn upsert(app: &TestApp, number: &str, name: &str, parent: Option<&str>) -> Value {
    let resp = put(app, number, json!({"name": name, "parent": parent})).await;
    assert!(
        resp.status() == 201 || resp.status() == 200,
        "upsert {number}: {}",
        resp.status()
    );
    resp.json().await.unwrap()
}

fn numbers(items: &[Value]) -> Vec<&str> {
    items
        .iter()
        .map(|a| a["number"].as_str().unwrap())
        .collect()
}

async fn get(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.with_token(token, Method::GET, path)
        .send()
        .await
        .unwrap()
}

async fn admin_creates_reads_changes_and_closes_accounts(app: TestApp) {
    let resp = put(&app, "ACME", json!({"name": "Acme Corp"})).await;
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["etag"], "\"1\"");
    assert_eq!(resp.headers()["location"], "/accounts/ACME");
    let acme: Value = resp.json().await.unwrap();
    assert_eq!(acme["status"], "active");
    assert_eq!(acme["parent"], Value::Null);
    assert_eq!(acme["ancestors"], json!([]));

    // The same again (a sync job resending its directory): nothing changes.
    let resp = put(&app, "ACME", json!({"name": "Acme Corp"})).await;
    assert_eq!(resp.status(), 200);
    let same: Value = resp.json().await.unwrap();
    assert_eq!(same["version"], 1);
    assert_eq!(same["updated_at"], acme["updated_at"]);

    let eu = upsert(&app, "ACME-EU", "Acme Europe", Some("ACME")).await;
    assert_eq!(eu["parent"], "ACME");
    assert_eq!(eu["ancestors"], json!(["ACME"]));
    let de = upsert(&app, "ACME-EU-DE", "Acme Deutschland", Some("ACME-EU")).await;
    assert_eq!(de["ancestors"], json!(["ACME", "ACME-EU"]));

    let resp = app
        .admin(Method::GET, "/accounts/ACME-EU")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["etag"], "\"1\"");
    let got: Value = resp.json().await.unwrap();
    assert_eq!(got["name"], "Acme Europe");

    // Close it with the version read; a stale version is refused.
    let resp = app
        .admin(Method::PUT, "/accounts/ACME-EU")
        .header("if-match", "\"1\"")
        .json(&json!({"name": "Acme Europe", "parent": "ACME", "status": "closed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["etag"], "\"2\"");
    let closed: Value = resp.json().await.unwrap();
    assert_eq!(closed["status"], "closed");
    let resp = app
        .admin(Method::PUT, "/accounts/ACME-EU")
        .header("if-match", "\"1\"")
        .json(&json!({"name": "Renamed late", "parent": "ACME"}))
        .send()
        .await
        .unwrap();
    problem(resp, 412).await;
    // Without a status, an existing account keeps its own.
    let renamed = upsert(&app, "ACME-EU", "Acme EU", Some("ACME")).await;
    assert_eq!(renamed["status"], "closed");
    assert_eq!(renamed["version"], 3);

    // Every change is in the tenant's audit trail, by the admin.
    let audit = app.all_items(&app.token("admin"), "/audit").await;
    let actions: Vec<_> = audit
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("account."))
        .map(|e| {
            let target = e["changes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["field"] == "account")
                .unwrap()["after"]
                .as_str()
                .unwrap()
                .to_owned();
            (e["action"].as_str().unwrap().to_owned(), target)
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("account.updated".to_owned(), "ACME-EU".to_owned()),
            ("account.closed".into(), "ACME-EU".into()),
            ("account.created".into(), "ACME-EU-DE".into()),
            ("account.created".into(), "ACME-EU".into()),
            ("account.created".into(), "ACME".into()),
        ]
    );
    let closing = audit
        .iter()
        .find(|e| e["action"] == "account.closed")
        .unwrap();
    assert!(
        closing["changes"]
            .as_array()
            .unwrap()
            .contains(&json!({"field": "status", "before": "active", "after": "closed"})),
        "{closing}"
    );
    assert!(!closing["actor"].as_str().unwrap().is_empty());
}

async fn parent_rules_are_clear_422s_that_change_nothing(app: TestApp) {
    upsert(&app, "ACME", "Acme Corp", None).await;
    upsert(&app, "ACME-EU", "Acme Europe", Some("ACME")).await;
    upsert(&app, "ACME-EU-DE", "Acme Deutschland", Some("ACME-EU")).await;

    let refused = |number: &'static str, body: Value| {
        let app = &app;
        async move { problem(put(app, number, body).await, 422).await }
    };
    let field = |p: &Value| p["errors"][0]["field"].as_str().unwrap().to_owned();
    let reason = |p: &Value| p["errors"][0]["reason"].as_str().unwrap().to_owned();

    let p = refused("ACME", json!({"name": "Acme", "parent": "NOPE"})).await;
    assert_eq!(field(&p), "parent");
    assert!(reason(&p).contains("no customer account NOPE"), "{p}");
    let p = refused("ACME", json!({"name": "Acme", "parent": "ACME"})).await;
    assert!(reason(&p).contains("own parent"), "{p}");
    // ACME under its own grandchild: a cycle.
    let p = refused("ACME", json!({"name": "Acme", "parent": "ACME-EU-DE"})).await;
    assert_eq!(field(&p), "parent");
    assert!(reason(&p).contains("cycle"), "{p}");
    // A new account under a parent in another tenant is unknown here.
    let (_, other) = app.other_tenant_admin().await;
    let resp = app
        .with_token(&other, Method::PUT, "/accounts/OTHER")
        .json(&json!({"name": "Other", "parent": "ACME"}))
        .send()
        .await
        .unwrap();
    assert!(reason(&problem(resp, 422).await).contains("no customer account ACME"));

    // Bad fields, each named.
    let p = refused("ACME-2", json!({"name": " ", "status": "gone"})).await;
    let fields: Vec<_> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].clone())
        .collect();
    assert_eq!(fields, [json!("name"), json!("status")]);
    let p = refused("bad~number", json!({"name": "Bad"})).await;
    assert_eq!(field(&p), "number");
    let resp = app
        .admin(Method::PUT, "/accounts/ACME")
        .json(&json!({"name": "Acme", "colour": "red"}))
        .send()
        .await
        .unwrap();
    let p = problem(resp, 422).await;
    assert!(
        p.to_string().contains("colour"),
        "unknown fields are named: {p}"
    );

    // Nothing moved.
    let acme: Value = get(&app, &app.token("admin"), "/accounts/ACME")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (acme["parent"].clone(), acme["version"].clone()),
        (Value::Null, json!(1))
    );
    let all = app.all_items(&app.token("admin"), "/accounts").await;
    assert_eq!(numbers(&all), ["ACME", "ACME-EU", "ACME-EU-DE"]);
}

async fn search_by_number_or_name_prefix_pages_for_the_dropdown(app: TestApp) {
    for (n, name) in [
        ("ACME-1", "Acme Corp"),
        ("ACME-2", "Zed Industries"),
        ("B-1", "acme west"),
        ("C-1", "Other"),
    ] {
        upsert(&app, n, name, None).await;
    }
    let admin = app.token("admin");
    // A few letters, any case: number or name, each account once.
    let found = app.all_items(&admin, "/accounts?q=AcM").await;
    assert_eq!(numbers(&found), ["B-1", "ACME-1", "ACME-2"]);
    let paged = app.all_items(&admin, "/accounts?q=acm&limit=1").await;
    assert_eq!(paged, found, "one at a time, the same");
    let zed = app.all_items(&admin, "/accounts?q=zed").await;
    assert_eq!(numbers(&zed), ["ACME-2"]);
    assert!(
        app.all_items(&admin, "/accounts?q=nothing")
            .await
            .is_empty()
    );
    let all = app.all_items(&admin, "/accounts?limit=2").await;
    assert_eq!(numbers(&all), ["ACME-1", "ACME-2", "B-1", "C-1"]);

    // A cursor belongs to its search.
    let page: Value = get(&app, &admin, "/accounts?q=acm&limit=1")
        .await
        .json()
        .await
        .unwrap();
    let cursor = page["next_cursor"].as_str().unwrap();
    let resp = get(&app, &admin, &format!("/accounts?q=b&cursor={cursor}")).await;
    assert_eq!(problem(resp, 400).await["code"], "invalid_cursor");
    let resp = get(&app, &admin, &format!("/accounts?q={}", "x".repeat(101))).await;
    assert_eq!(resp.status(), 422);
}

async fn each_role_sees_its_own_part_of_the_directory(app: TestApp) {
    // The seeded rep, partner and customer serve ACME.
    upsert(&app, "ACME", "Acme Corp", None).await;
    upsert(&app, "ACME-EU", "Acme Europe", Some("ACME")).await;
    upsert(&app, "ACME-EU-DE", "Acme Deutschland", Some("ACME-EU")).await;
    upsert(&app, "GLOBEX", "Globex", None).await;
    upsert(&app, "GLOBEX-1", "Globex One", Some("GLOBEX")).await;

    for role in ["sales_rep", "partner"] {
        let token = app.token(role);
        let mine = app.all_items(&token, "/accounts?limit=1").await;
        assert_eq!(numbers(&mine), ["ACME", "ACME-EU", "ACME-EU-DE"], "{role}");
        let searched = app.all_items(&token, "/accounts?q=acme%20d").await;
        assert_eq!(numbers(&searched), ["ACME-EU-DE"], "{role}");
        assert!(app.all_items(&token, "/accounts?q=glo").await.is_empty());
        assert_eq!(
            get(&app, &token, "/accounts/ACME-EU-DE").await.status(),
            200
        );
        problem(get(&app, &token, "/accounts/GLOBEX-1").await, 404).await;
        let resp = app
            .with_token(&token, Method::PUT, "/accounts/ACME-EU")
            .json(&json!({"name": "Mine now", "parent": "ACME"}))
            .send()
            .await
            .unwrap();
        problem(resp, 403).await;
    }
    // A rep serving a child account sees that subtree, not its parent.
    let (_, eu_rep) = app.seed_user("sales_rep", &["ACME-EU"], &[], &[]).await;
    let mine = app.all_items(&eu_rep, "/accounts").await;
    assert_eq!(numbers(&mine), ["ACME-EU", "ACME-EU-DE"]);
    problem(get(&app, &eu_rep, "/accounts/ACME").await, 404).await;

    // Customers: their own accounts, not their children.
    let token = app.token("customer");
    let mine = app.all_items(&token, "/accounts").await;
    assert_eq!(numbers(&mine), ["ACME"]);
    problem(get(&app, &token, "/accounts/ACME-EU").await, 404).await;
    assert_eq!(get(&app, &token, "/accounts/ACME").await.status(), 200);

    // Admins: everything.
    let all = app.all_items(&app.token("admin"), "/accounts").await;
    assert_eq!(all.len(), 5);
}

async fn moving_an_account_takes_its_subtree_along(app: TestApp) {
    upsert(&app, "ACME", "Acme Corp", None).await;
    upsert(&app, "ACME-EU", "Acme Europe", Some("ACME")).await;
    upsert(&app, "ACME-EU-DE", "Acme Deutschland", Some("ACME-EU")).await;
    upsert(&app, "GLOBEX", "Globex", None).await;

    let moved = upsert(&app, "ACME-EU", "Acme Europe", Some("GLOBEX")).await;
    assert_eq!(moved["ancestors"], json!(["GLOBEX"]));
    let admin = app.token("admin");
    let de: Value = get(&app, &admin, "/accounts/ACME-EU-DE")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(de["ancestors"], json!(["GLOBEX", "ACME-EU"]));
    assert_eq!(de["parent"], "ACME-EU");

    // The rep serving ACME no longer reaches the moved subtree.
    let rep = app.token("sales_rep");
    assert_eq!(numbers(&app.all_items(&rep, "/accounts").await), ["ACME"]);
    problem(get(&app, &rep, "/accounts/ACME-EU-DE").await, 404).await;
    let (_, globex_rep) = app.seed_user("partner", &["GLOBEX"], &[], &[]).await;
    let theirs = app.all_items(&globex_rep, "/accounts").await;
    assert_eq!(numbers(&theirs), ["ACME-EU", "ACME-EU-DE", "GLOBEX"]);
}

async fn machine_clients_call_only_the_account_routes_their_scope_names(app: TestApp) {
    let client = |scope: &str| {
        app.running
            .client_token(&app.tenant, "billing-sync", scope)
            .unwrap()
    };
    let sync = client("accounts:read accounts:write");
    let resp = app
        .with_token(&sync, Method::PUT, "/accounts/ACME")
        .json(&json!({"name": "Acme Corp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let resp = app
        .with_token(&sync, Method::PUT, "/accounts/ACME-EU")
        .json(&json!({"name": "Acme Europe", "parent": "ACME"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(get(&app, &sync, "/accounts/ACME-EU").await.status(), 200);
    assert_eq!(app.all_items(&sync, "/accounts").await.len(), 2);
    // Audited as the client.
    let audit = app.all_items(&app.token("admin"), "/audit").await;
    assert!(
        audit
            .iter()
            .filter(|e| e["action"] == "account.created")
            .all(|e| e["actor"] == "client:billing-sync"),
        "{audit:?}"
    );

    // Read only: may not write; write only: may not read.
    let reader = client("accounts:read");
    assert_eq!(get(&app, &reader, "/accounts/ACME").await.status(), 200);
    let resp = app
        .with_token(&reader, Method::PUT, "/accounts/ACME")
        .json(&json!({"name": "Taken over"}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(resp, 403).await["code"], "insufficient_scope");
    let writer = client("accounts:write");
    let resp = get(&app, &writer, "/accounts").await;
    assert_eq!(problem(resp, 403).await["code"], "insufficient_scope");

    // Nothing else, whatever the scope.
    for (method, path) in [
        (Method::GET, "/users"),
        (Method::GET, "/me"),
        (Method::GET, "/profiles"),
        (Method::GET, "/audit"),
        (Method::GET, "/settings"),
        (Method::GET, "/profile-catalogue"),
    ] {
        let resp = app.with_token(&sync, method, path).send().await.unwrap();
        assert_eq!(
            problem(resp, 403).await["code"],
            "insufficient_scope",
            "{path}"
        );
    }
    let resp = app
        .with_token(&sync, Method::POST, "/users")
        .json(&json!({"first_name": "M", "last_name": "C", "email": "m@c.example", "role": "admin", "profile_id": "x", "customer_accounts": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(resp, 403).await["code"], "insufficient_scope");

    // A client token of another tenant sees that tenant's (empty) directory.
    let (other, _) = app.other_tenant_admin().await;
    let elsewhere = app
        .running
        .client_token(&other, "billing-sync", "accounts:read")
        .unwrap();
    assert!(app.all_items(&elsewhere, "/accounts").await.is_empty());
    problem(get(&app, &elsewhere, "/accounts/ACME").await, 404).await;

    // A user-shaped subject with no user is still refused as before.
    let nobody = app.token_for_subject("auth0|nobody");
    let resp = get(&app, &nobody, "/accounts").await;
    assert_eq!(problem(resp, 403).await["code"], "unknown_user");
}

async fn tenants_and_anonymous_callers_see_nothing(app: TestApp) {
    upsert(&app, "ACME", "Acme Corp", None).await;
    let (_, other) = app.other_tenant_admin().await;
    problem(get(&app, &other, "/accounts/ACME").await, 404).await;
    assert!(app.all_items(&other, "/accounts").await.is_empty());
    let resp = app
        .anonymous(Method::GET, "/accounts")
        .send()
        .await
        .unwrap();
    problem(resp, 401).await;
    let resp = app
        .anonymous(Method::PUT, "/accounts/ACME")
        .json(&json!({"name": "Mine"}))
        .send()
        .await
        .unwrap();
    problem(resp, 401).await;
}
