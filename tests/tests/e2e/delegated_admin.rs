//! Delegated administration, by example, on both stores: what a sales rep
//! or a User Manager customer is told when they reach beyond what they hold
//! (the property itself is `delegation.rs`), bulk invites by non-admins,
//! addresses that are taken, re-invites, hourly budgets, and reset requests
//! that leave the user's version alone.

use peak_domain::TenantId;
use peak_tests::{TestApp, problem, spawn_dynamodb_with, spawn_sqlite_with};
use reqwest::Method;
use serde_json::{Value, json};

macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $case() { let app = super::spawn_sqlite_with(super::options()).await; app.seed_accounts(&["ACC-A"]).await; super::$case(app).await; })*
        }
        mod dynamodb {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $case() { let app = super::spawn_dynamodb_with(super::options()).await; app.seed_accounts(&["ACC-A"]).await; super::$case(app).await; })*
        }
    };
}

on_both_stores!(
    refusals_name_what_exceeds,
    a_rep_bulk_invites_exactly_the_rows_they_could_invite,
    an_email_change_to_a_taken_address_is_refused_and_sends_nothing,
    an_accepted_invitation_is_reinvitable_by_an_admin_only,
    delegated_invitations_have_an_hourly_budget,
    a_strangers_reset_request_leaves_the_version_alone,
);

/// Small budgets, so the budget test reaches them.
fn options() -> peak_local::StartOptions {
    peak_local::StartOptions {
        settings_env: [
            ("DELEGATED_INVITATIONS_PER_HOUR", "3,50"),
            ("EMAIL_CHANGES_PER_HOUR", "5,50"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec(),
        ..Default::default()
    }
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body)
}

fn unique(label: &str) -> String {
    format!(
        "{label}-{}@example.com",
        ulid::Ulid::new().to_string().to_lowercase()
    )
}

/// A User Manager customer of account ACC-A with the Standard profile.
async fn user_manager(app: &TestApp) -> String {
    app.seed_user("customer", &["ACC-A"], &[], &["user_manager"])
        .await
        .1
}

/// A sales rep of ACC-A who may manage and invite its customer users.
async fn rep(app: &TestApp) -> String {
    app.seed_user(
        "sales_rep",
        &["ACC-A"],
        &[
            ("my_customers.customer_users", "manage"),
            ("my_customers.invite_customer_users", "enabled"),
        ],
        &[],
    )
    .await
    .1
}

async fn profile_with(app: &TestApp, name: &str, settings: Value) -> String {
    let id = app.create_profile(name).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (status, body) = send(
        app.admin(Method::PATCH, &format!("/profiles/{id}"))
            .header("if-match", "\"1\"")
            .json(&json!({ "settings": settings })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    id
}

async fn standard(app: &TestApp) -> String {
    let (_, body) = send(app.admin(Method::GET, "/profiles")).await;
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|p| p["name"] == "Standard")
        .expect("Standard")["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

fn invite_body(email: &str, profile: &str, accounts: &[&str], groups: &[&str]) -> Value {
    json!({
        "first_name": "Ivy", "last_name": "Invitee", "email": email, "role": "customer",
        "profile_id": profile, "customer_accounts": accounts, "extension_groups": groups,
    })
}

async fn refusals_name_what_exceeds(app: TestApp) {
    let manager = user_manager(&app).await;
    let strong = profile_with(
        &app,
        "Cancels and edits cases",
        json!({"my_subscriptions.cancel": "enabled", "my_cases.edit": "enabled"}),
    )
    .await;
    let email = unique("ivy");
    let resp = app
        .with_token(&manager, Method::POST, "/users")
        .json(&invite_body(&email, &strong, &["ACC-A"], &[]))
        .send()
        .await
        .expect("send");
    let body = problem(resp, 403).await;
    assert_eq!(body["code"], "permission_exceeds_yours", "{body}");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect();
    assert_eq!(
        fields,
        ["settings.my_cases.edit", "settings.my_subscriptions.cancel"],
        "{body}"
    );
    assert_eq!(
        body["errors"][0]["reason"], "gives enabled; you hold disabled",
        "{body}"
    );
    // A group they do not hold, an account they do not serve: named too.
    let std = standard(&app).await;
    let resp = app
        .with_token(&manager, Method::POST, "/users")
        .json(&invite_body(&email, &std, &["ACC-A"], &["billing_manager"]))
        .send()
        .await
        .expect("send");
    let body = problem(resp, 403).await;
    assert_eq!(body["code"], "group_not_held");
    assert_eq!(
        body["errors"][0]["reason"],
        "billing_manager: you do not hold this group"
    );
    let resp = app
        .with_token(&manager, Method::POST, "/users")
        .json(&invite_body(&email, &std, &["ACC-A", "ACC-Z"], &[]))
        .send()
        .await
        .expect("send");
    let body = problem(resp, 403).await;
    assert_eq!(body["code"], "account_not_served");
    assert_eq!(
        body["errors"][0]["reason"],
        "ACC-Z: you do not serve this account"
    );
    // Nothing of it was stored; the same invitation within their reach is.
    let (status, list) = send(app.admin(Method::GET, &format!("/users?email={email}"))).await;
    assert_eq!(
        (status, list["items"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let (status, body) = send(
        app.with_token(&manager, Method::POST, "/users")
            .json(&invite_body(&email, &std, &["ACC-A"], &["user_manager"])),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

async fn a_rep_bulk_invites_exactly_the_rows_they_could_invite(app: TestApp) {
    let rep = rep(&app).await;
    let ok = unique("ok");
    let csv = format!(
        "First name,Last name,Email,Role,Profile,Extension groups,Customer accounts\n\
         Ok,Row,{ok},customer,Standard,,ACC-A\n\
         Other,Account,{},customer,Standard,,ACC-B\n\
         Would,Admin,{},admin,Standard,,\n\
         Has,Group,{},customer,Standard,billing_manager,ACC-A\n\
         The,Admin,admin@tenant.example,customer,Standard,,ACC-A\n",
        unique("acc-b"),
        unique("admin"),
        unique("group"),
    );
    let upload = |query: &str| {
        app.with_token(&rep, Method::POST, &format!("/bulk-invites{query}"))
            .header("content-type", "text/csv")
            .body(csv.clone())
    };
    // A job the runner works as the rep: its report read back.
    let dry = app.dry_run(upload("?dry_run=true")).await.body;
    let codes: Vec<String> = dry["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            e["issues"]
                .as_array()
                .and_then(|i| i.first())
                .map_or("valid".to_owned(), |i| {
                    i["code"].as_str().unwrap_or("").to_owned()
                })
        })
        .collect();
    // The admin's address is not revealed to a rep who cannot see them.
    assert_eq!(
        codes,
        [
            "valid",
            "account_not_served",
            "role_not_grantable",
            "group_not_held",
            "valid"
        ],
        "{dry}"
    );
    let (status, job) = send(upload("")).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().expect("job id").to_owned();
    let state = &app.running.state;
    let tenant = TenantId::parse(&app.tenant).expect("tenant");
    peak_bulk_jobs::run(
        &state.ctx("test-runner"),
        state.jobs.as_ref(),
        state.files.as_ref(),
        &tenant,
        &id,
        &peak_bulk::Limits::default(),
        |_| true,
    )
    .await
    .expect("run");
    let resp = app
        .with_token(&rep, Method::GET, &format!("/bulk-invites/{id}/report"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let report = resp.text().await.expect("report");
    let outcomes: Vec<(String, String)> = report
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').map(|f| f.trim_matches('"')).collect();
            (f[2].to_owned(), f[4].to_owned())
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("invited".to_owned(), String::new()),
            ("failed".to_owned(), "account_not_served".to_owned()),
            ("failed".to_owned(), "role_not_grantable".to_owned()),
            ("failed".to_owned(), "group_not_held".to_owned()),
            ("skipped".to_owned(), "user_exists".to_owned()),
        ],
        "{report}"
    );
    let (_, found) = send(app.admin(Method::GET, &format!("/users?email={ok}"))).await;
    assert_eq!(found["items"][0]["status"], "invited", "{found}");
}

async fn an_email_change_to_a_taken_address_is_refused_and_sends_nothing(app: TestApp) {
    let (user_id, user_token) = app.seed_user("customer", &["ACC-A"], &[], &[]).await;
    let taken = "admin@tenant.example";
    let (_, user) = send(app.admin(Method::GET, &format!("/users/{user_id}"))).await;
    let mails_before = app.my_outbox().await.len();
    // By an admin, in another case: still the admin's address.
    let resp = app
        .admin(Method::PATCH, &format!("/users/{user_id}"))
        .header("if-match", format!("\"{}\"", user["version"]))
        .json(&json!({"email": "ADMIN@tenant.example"}))
        .send()
        .await
        .expect("send");
    assert_eq!(problem(resp, 409).await["code"], "email_taken");
    // By the user themself.
    let resp = app
        .with_token(&user_token, Method::PATCH, "/me")
        .header("if-match", format!("\"{}\"", user["version"]))
        .json(&json!({"email": taken}))
        .send()
        .await
        .expect("send");
    assert_eq!(problem(resp, 409).await["code"], "email_taken");
    assert_eq!(
        app.my_outbox().await.len(),
        mails_before,
        "nothing was sent"
    );
    let (_, after) = send(app.admin(Method::GET, &format!("/users/{user_id}"))).await;
    assert_eq!(after, user, "nothing changed");
    // A free address is still accepted (and verified).
    let (status, body) = send(
        app.with_token(&user_token, Method::PATCH, "/me")
            .header("if-match", format!("\"{}\"", user["version"]))
            .json(&json!({"email": unique("free")})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["pending_email"].is_string(), "{body}");
}

async fn an_accepted_invitation_is_reinvitable_by_an_admin_only(app: TestApp) {
    let manager = user_manager(&app).await;
    let std = standard(&app).await;
    let email = unique("accepted");
    let (id, token) = app.invite_customer(&email).await;
    let resp = app
        .anonymous(Method::POST, &format!("/invitations/{token}/accept"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200, "accept");
    let (_, before) = send(app.admin(Method::GET, &format!("/users/{id}"))).await;
    assert_eq!(before["invitation"]["state"], "accepted", "{before}");
    // The User Manager of the account cannot take the address over...
    let resp = app
        .with_token(&manager, Method::POST, "/users")
        .json(&invite_body(&email, &std, &["ACC-A"], &[]))
        .send()
        .await
        .expect("send");
    assert_eq!(problem(resp, 409).await["code"], "email_taken");
    let (_, after) = send(app.admin(Method::GET, &format!("/users/{id}"))).await;
    assert_eq!(after, before, "unchanged");
    // ...an admin can send a fresh invitation.
    let (status, body) =
        send(
            app.admin(Method::POST, "/users")
                .json(&invite_body(&email, &std, &["ACC-A"], &[])),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["id"], id, "the same user, invited afresh");
    assert_eq!(body["invitation"]["state"], "pending");
}

async fn delegated_invitations_have_an_hourly_budget(app: TestApp) {
    let rep = rep(&app).await;
    let std = standard(&app).await;
    for i in 0..3 {
        let (status, body) = send(
            app.with_token(&rep, Method::POST, "/users")
                .json(&invite_body(
                    &unique(&format!("b{i}")),
                    &std,
                    &["ACC-A"],
                    &[],
                )),
        )
        .await;
        assert_eq!(status, 201, "invitation {i}: {body}");
    }
    let mails = app.my_outbox().await.len();
    let resp = app
        .with_token(&rep, Method::POST, "/users")
        .json(&invite_body(&unique("b3"), &std, &["ACC-A"], &[]))
        .send()
        .await
        .expect("send");
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    assert_eq!(problem(resp, 429).await["code"], "too_many_requests");
    assert_eq!(app.my_outbox().await.len(), mails, "nothing more was sent");
    // Admins are not held to it (bulk invites are theirs).
    let (status, _) = send(app.admin(Method::POST, "/users").json(&invite_body(
        &unique("admin-invite"),
        &std,
        &["ACC-A"],
        &[],
    )))
    .await;
    assert_eq!(status, 201);
}

async fn a_strangers_reset_request_leaves_the_version_alone(app: TestApp) {
    let email = unique("reset");
    let (id, token) = app.invite_customer(&email).await;
    app.activate(&token).await;
    let (_, before) = send(app.admin(Method::GET, &format!("/users/{id}"))).await;
    let mails = app.my_outbox().await.len();
    let (status, _) = send(
        app.anonymous(Method::POST, "/password-resets")
            .json(&json!({"tenant": app.tenant, "email": email})),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(app.my_outbox().await.len(), mails + 1, "the reset email");
    // The admin's edit with the version they read still goes through.
    let (status, body) = send(
        app.admin(Method::PATCH, &format!("/users/{id}"))
            .header("if-match", format!("\"{}\"", before["version"]))
            .json(&json!({"first_name": "Ada"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}
