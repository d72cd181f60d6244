//! The seed's "Customer Association" as a frontend drives it, on both
//! stores: search the directory by a few letters, pick accounts from the
//! result, invite with them; an unknown or closed account is refused naming
//! it; a user keeps an account closed after they got it, and sees its
//! status; a sales rep serving a parent account invites into and manages
//! its child accounts' users, but not a sibling's; and nobody outside an
//! account learns from a 422 whether it exists.

use peak_tests::{TestApp, problem};
use reqwest::Method;
use serde_json::{Value, json};

on_both_stores!(
    search_pick_two_and_invite,
    unknown_and_closed_accounts_are_refused_by_name,
    a_rep_serves_child_accounts_and_not_a_siblings,
    out_of_reach_numbers_are_not_yours_before_they_are_looked_up,
    bulk_rows_and_batch_items_name_unknown_and_closed_accounts,
);

/// ACME above ACME-EU (above ACME-EU-DE) and ACME-US; ACORN closed; GLOBEX
/// another company.
async fn directory(app: &TestApp) {
    for (number, name, parent) in [
        ("ACME", "Acme Corp", None),
        ("ACME-EU", "Acme Europe", Some("ACME")),
        ("ACME-EU-DE", "Acme Deutschland", Some("ACME-EU")),
        ("ACME-US", "Acme America", Some("ACME")),
        ("ACORN", "Acorn Foods", None),
        ("GLOBEX", "Globex", None),
    ] {
        let resp = app
            .admin(Method::PUT, &format!("/accounts/{number}"))
            .json(&json!({"name": name, "parent": parent}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "{number}");
    }
    let resp = app
        .admin(Method::PUT, "/accounts/ACORN")
        .json(&json!({"name": "Acorn Foods", "status": "closed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

async fn standard(app: &TestApp) -> String {
    let profiles = app.all_items(&app.token("admin"), "/profiles").await;
    profiles
        .iter()
        .find(|p| p["name"] == "Standard")
        .expect("Standard")["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn invitation(email: &str, profile: &str, accounts: &[&str]) -> Value {
    json!({"first_name": "Ivy", "last_name": "Invitee", "email": email, "role": "customer",
           "profile_id": profile, "customer_accounts": accounts})
}

async fn invite(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    app.with_token(token, Method::POST, "/users")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// An invite by `token` that must succeed (201): the new user.
async fn invited(
    app: &TestApp,
    token: &str,
    email: &str,
    profile: &str,
    accounts: &[&str],
) -> Value {
    json_of(
        invite(app, token, &invitation(email, profile, accounts)).await,
        201,
    )
    .await
}

/// An invite by `token` that must be refused with `status`: the problem.
async fn refused(
    app: &TestApp,
    token: &str,
    email: &str,
    profile: &str,
    accounts: &[&str],
    status: u16,
) -> Value {
    problem(
        invite(app, token, &invitation(email, profile, accounts)).await,
        status,
    )
    .await
}

async fn json_of(resp: reqwest::Response, status: u16) -> Value {
    let got = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "{body}");
    body
}

fn errors(p: &Value) -> Vec<(String, String)> {
    p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn user_count(app: &TestApp) -> usize {
    app.all_items(&app.token("admin"), "/users").await.len()
}

async fn search_pick_two_and_invite(app: TestApp) {
    directory(&app).await;
    let admin = app.token("admin");
    // The dropdown: a few letters, matching numbers and names by prefix.
    let found = app.all_items(&admin, "/accounts?q=ac").await;
    let numbers: Vec<&str> = found
        .iter()
        .map(|a| a["number"].as_str().unwrap())
        .collect();
    assert_eq!(
        numbers,
        ["ACME", "ACME-EU", "ACME-EU-DE", "ACME-US", "ACORN"]
    );
    // Pick two (the open ones a frontend would offer) and invite.
    let picked: Vec<&str> = found
        .iter()
        .filter(|a| a["status"] == "active")
        .map(|a| a["number"].as_str().unwrap())
        .filter(|n| *n == "ACME-EU" || *n == "ACME-US")
        .collect();
    assert_eq!(picked, ["ACME-EU", "ACME-US"]);
    let profile = standard(&app).await;
    let user = invited(&app, &admin, "ivy@acme.example", &profile, &picked).await;
    assert_eq!(user["customer_accounts"], json!(["ACME-EU", "ACME-US"]));
    // The user shows each account with its name and status.
    let id = user["id"].as_str().unwrap();
    let shown = json_of(
        app.admin(Method::GET, &format!("/users/{id}"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(
        shown["accounts"],
        json!([
            {"number": "ACME-EU", "name": "Acme Europe", "status": "active"},
            {"number": "ACME-US", "name": "Acme America", "status": "active"},
        ])
    );
}

async fn unknown_and_closed_accounts_are_refused_by_name(app: TestApp) {
    directory(&app).await;
    let admin = app.token("admin");
    let profile = standard(&app).await;
    let before = user_count(&app).await;
    let p = refused(
        &app,
        &admin,
        "nobody@acme.example",
        &profile,
        &["ACME", "ACME-XX", "ACORN"],
        422,
    )
    .await;
    assert_eq!(
        errors(&p),
        [
            (
                "customer_accounts[1]".to_owned(),
                "no customer account ACME-XX in this tenant".to_owned()
            ),
            (
                "customer_accounts[2]".to_owned(),
                "customer account ACORN is closed".to_owned()
            ),
        ]
    );
    assert_eq!(user_count(&app).await, before, "nothing written");

    // A user on ACME-US keeps it when it closes; GET shows it closed.
    let user = invited(&app, &admin, "kept@acme.example", &profile, &["ACME-US"]).await;
    let path = format!("/users/{}", user["id"].as_str().unwrap());
    let resp = app
        .admin(Method::PUT, "/accounts/ACME-US")
        .json(&json!({"name": "Acme America", "parent": "ACME", "status": "closed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let shown = json_of(app.admin(Method::GET, &path).send().await.unwrap(), 200).await;
    assert_eq!(shown["accounts"][0]["status"], "closed");
    // Keeping it while adding an open one: fine (only added ones are
    // checked); adding another closed one, or an unknown one: refused.
    let patch = async |accounts: &[&str], version: u64| {
        app.admin(Method::PATCH, &path)
            .header("if-match", format!("\"{version}\""))
            .json(&json!({"customer_accounts": accounts}))
            .send()
            .await
            .unwrap()
    };
    json_of(patch(&["ACME-US", "ACME-EU"], 1).await, 200).await;
    let p = problem(
        patch(&["ACME-US", "ACME-EU", "ACORN", "NOPE"], 2).await,
        422,
    )
    .await;
    assert_eq!(
        errors(&p),
        [
            (
                "customer_accounts[2]".to_owned(),
                "customer account ACORN is closed".to_owned()
            ),
            (
                "customer_accounts[3]".to_owned(),
                "no customer account NOPE in this tenant".to_owned()
            ),
        ]
    );
    // Removing is always allowed, the closed one included.
    let done = json_of(patch(&["ACME-EU"], 2).await, 200).await;
    assert_eq!(done["customer_accounts"], json!(["ACME-EU"]));
    // A rep's own assignments are checked the same way by the admin.
    let (rep_id, _) = app.seed_user("sales_rep", &["ACME"], &[], &[]).await;
    let p = problem(
        app.admin(Method::PATCH, &format!("/users/{rep_id}"))
            .header("if-match", "\"1\"")
            .json(&json!({"customer_accounts": ["ACME", "ACORN"]}))
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
    assert_eq!(
        errors(&p),
        [(
            "customer_accounts[1]".to_owned(),
            "customer account ACORN is closed".to_owned()
        )]
    );
    let reassigned = json_of(
        app.admin(Method::PATCH, &format!("/users/{rep_id}"))
            .header("if-match", "\"1\"")
            .json(&json!({"customer_accounts": ["ACME-EU"]}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(reassigned["customer_accounts"], json!(["ACME-EU"]));
    // An account from before the directory shows as unknown.
    let (old, _) = app.seed_user("customer", &["LEGACY-9"], &[], &[]).await;
    let shown = json_of(
        app.admin(Method::GET, &format!("/users/{old}"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(
        shown["accounts"],
        json!([{"number": "LEGACY-9", "name": null, "status": "unknown"}])
    );
}

async fn a_rep_serves_child_accounts_and_not_a_siblings(app: TestApp) {
    directory(&app).await;
    let admin = app.token("admin");
    let profile = standard(&app).await;
    // A rep serving ACME-EU (ACME-EU-DE below it; ACME-US its sibling).
    let (_, rep) = app
        .seed_user(
            "sales_rep",
            &["ACME-EU"],
            &[
                ("my_customers.customer_users", "manage"),
                ("my_customers.invite_customer_users", "enabled"),
            ],
            &[],
        )
        .await;
    // Their dropdown: their account and its child.
    let mine = app.all_items(&rep, "/accounts?q=ac").await;
    let numbers: Vec<&str> = mine.iter().map(|a| a["number"].as_str().unwrap()).collect();
    assert_eq!(numbers, ["ACME-EU", "ACME-EU-DE"]);

    // Invites into the child account, then lists, reads and edits there.
    let de = invited(&app, &rep, "de@acme.example", &profile, &["ACME-EU-DE"]).await;
    let de_path = format!("/users/{}", de["id"].as_str().unwrap());
    let listed = app.all_items(&rep, "/users?account=ACME-EU-DE").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], de["id"]);
    let shown = json_of(
        app.with_token(&rep, Method::GET, &de_path)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(shown["accounts"][0]["name"], "Acme Deutschland");
    let edited = json_of(
        app.with_token(&rep, Method::PATCH, &de_path)
            .header("if-match", "\"1\"")
            .json(&json!({"last_name": "Edited", "customer_accounts": ["ACME-EU-DE", "ACME-EU"]}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(
        edited["customer_accounts"],
        json!(["ACME-EU", "ACME-EU-DE"])
    );
    let resp = app
        .with_token(&rep, Method::POST, &format!("{de_path}/invitation/resend"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // The sibling's users: not found; its list: forbidden; inviting there:
    // not theirs.
    let us = invited(&app, &admin, "us@acme.example", &profile, &["ACME-US"]).await;
    let us_path = format!("/users/{}", us["id"].as_str().unwrap());
    problem(
        app.with_token(&rep, Method::GET, &us_path)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    problem(
        app.with_token(&rep, Method::PATCH, &us_path)
            .header("if-match", "\"1\"")
            .json(&json!({"last_name": "Nope"}))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    problem(
        app.with_token(&rep, Method::GET, "/users?account=ACME-US")
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    // Nor the parent's own users.
    problem(
        app.with_token(&rep, Method::GET, "/users?account=ACME")
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    let p = refused(&app, &rep, "sib@acme.example", &profile, &["ACME-US"], 403).await;
    assert_eq!(p["code"], "account_not_served");
    // A user on the child and the sibling: visible (a shared account),
    // not changeable (not all of theirs).
    let both = invited(
        &app,
        &admin,
        "both@acme.example",
        &profile,
        &["ACME-EU-DE", "ACME-US"],
    )
    .await;
    let both_path = format!("/users/{}", both["id"].as_str().unwrap());
    let shown = json_of(
        app.with_token(&rep, Method::GET, &both_path)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    // The sibling's directory entry is not the rep's to read.
    assert_eq!(
        shown["accounts"],
        json!([
            {"number": "ACME-EU-DE", "name": "Acme Deutschland", "status": "active"},
            {"number": "ACME-US", "name": null, "status": null},
        ])
    );
    problem(
        app.with_token(&rep, Method::PATCH, &both_path)
            .header("if-match", "\"1\"")
            .json(&json!({"last_name": "Nope"}))
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;

    // A customer User Manager of ACME-EU does not get the child account.
    let (_, manager) = app
        .seed_user("customer", &["ACME-EU"], &[], &["user_manager"])
        .await;
    let p = refused(
        &app,
        &manager,
        "cm@acme.example",
        &profile,
        &["ACME-EU-DE"],
        403,
    )
    .await;
    assert_eq!(p["code"], "account_not_served");
    let de_only = invited(
        &app,
        &admin,
        "deonly@acme.example",
        &profile,
        &["ACME-EU-DE"],
    )
    .await;
    problem(
        app.with_token(
            &manager,
            Method::GET,
            &format!("/users/{}", de_only["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap(),
        404,
    )
    .await;
}

async fn out_of_reach_numbers_are_not_yours_before_they_are_looked_up(app: TestApp) {
    directory(&app).await;
    let profile = standard(&app).await;
    let (_, manager) = app
        .seed_user("customer", &["ACME-EU"], &[], &["user_manager"])
        .await;
    let (_, rep) = app
        .seed_user(
            "sales_rep",
            &["ACME-EU"],
            &[
                ("my_customers.customer_users", "manage"),
                ("my_customers.invite_customer_users", "enabled"),
            ],
            &[],
        )
        .await;
    let before = user_count(&app).await;
    for token in [&manager, &rep] {
        // An existing account, a closed one and a made-up one outside their
        // reach are all the same answer: not yours (403), never "closed" or
        // "no such account" (which would map the directory for them).
        let mut answers = Vec::new();
        for (i, other) in ["GLOBEX", "ACORN", "NO-SUCH-CO"].iter().enumerate() {
            let p = refused(
                &app,
                token,
                &format!("x{i}@acme.example"),
                &profile,
                &["ACME-EU", other],
                403,
            )
            .await;
            answers.push((p["code"].clone(), errors(&p)));
        }
        for (answer, other) in answers.iter().zip(["GLOBEX", "ACORN", "NO-SUCH-CO"]) {
            assert_eq!(answer.0, "account_not_served");
            assert_eq!(
                answer.1,
                [(
                    "customer_accounts".to_owned(),
                    format!("{other}: you do not serve this account")
                )]
            );
        }
    }
    // Editing a user of theirs to add one: the same.
    let user = invited(&app, &rep, "mine@acme.example", &profile, &["ACME-EU"]).await;
    let path = format!("/users/{}", user["id"].as_str().unwrap());
    for other in ["GLOBEX", "NO-SUCH-CO"] {
        let p = problem(
            app.with_token(&manager, Method::PATCH, &path)
                .header("if-match", "\"1\"")
                .json(&json!({"customer_accounts": ["ACME-EU", other]}))
                .send()
                .await
                .unwrap(),
            403,
        )
        .await;
        assert_eq!(p["code"], "account_not_served", "{other}");
    }
    assert_eq!(user_count(&app).await, before + 1, "only the one invite");
}

async fn bulk_rows_and_batch_items_name_unknown_and_closed_accounts(app: TestApp) {
    directory(&app).await;
    let before = user_count(&app).await;
    let csv = "First name,Last name,Email,Role,Profile,Customer accounts\n\
        Ada,Open,ada@bulk.example,customer,Standard,ACME-EU\n\
        Bob,Unknown,bob@bulk.example,customer,Standard,ACME-EU;ACME-XX\n\
        Cy,Closed,cy@bulk.example,customer,Standard,ACORN\n";
    let upload = |query: &str| {
        app.admin(Method::POST, &format!("/bulk-invites{query}"))
            .header("content-type", "text/csv")
            .body(csv)
    };
    // The dry run: each row as a single invite would answer.
    // (A job, worked by the runner; its report read back.)
    let dry = app.dry_run(upload("?dry_run=true")).await.body;
    let issues = |report: &Value, row: u64| -> Vec<(String, String)> {
        report["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["row"] == row)
            .unwrap()["issues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["code"].as_str().unwrap().to_owned(),
                    i["reason"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(issues(&dry, 2), []);
    assert_eq!(
        issues(&dry, 3),
        [(
            "account_not_open".to_owned(),
            "no customer account ACME-XX in this tenant".to_owned()
        )]
    );
    assert_eq!(
        issues(&dry, 4),
        [(
            "account_not_open".to_owned(),
            "customer account ACORN is closed".to_owned()
        )]
    );
    assert_eq!(user_count(&app).await, before, "a dry run writes nothing");

    // The job: the open row invited, the others reported the same way.
    let job = json_of(upload("").send().await.unwrap(), 202).await;
    let id = job["id"].as_str().unwrap();
    let state = app.running.state.clone();
    let tenant = peak_domain::TenantId::parse(&app.tenant).unwrap();
    let end = peak_bulk_jobs::run(
        &state.ctx("association"),
        state.jobs.as_ref(),
        state.files.as_ref(),
        &tenant,
        id,
        &peak_bulk::Limits::default(),
        |_| true,
    )
    .await
    .unwrap();
    let peak_bulk_jobs::RunEnd::Finished(done) = end else {
        panic!("{end:?}");
    };
    assert_eq!((done.counts.invited, done.counts.failed), (1, 2));
    let report = app
        .admin(Method::GET, &format!("/bulk-invites/{id}/report"))
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        report.contains("no customer account ACME-XX in this tenant")
            && report.contains("customer account ACORN is closed")
            && report.matches("account_not_open").count() == 2,
        "{report}"
    );
    assert_eq!(user_count(&app).await, before + 1);

    // A batch: each update item checked as its single PATCH; the others
    // go through.
    let ada = app
        .all_items(&app.token("admin"), "/users?email=ada@bulk.example")
        .await;
    let ada_id = ada[0]["id"].as_str().unwrap();
    let r = json_of(
        app.admin(Method::POST, "/users/batch")
            .json(&json!({"operations": [
                {"op": "update", "id": ada_id, "if_match": "\"1\"",
                 "patch": {"customer_accounts": ["ACME-EU", "ACME-XX"]}},
                {"op": "update", "id": ada_id, "if_match": "\"1\"",
                 "patch": {"customer_accounts": ["ACME-EU", "ACME-US"]}},
            ]}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let results = r["results"].as_array().unwrap();
    assert_eq!(results[0]["status"], 422, "{r}");
    assert_eq!(
        errors(&results[0]["body"]),
        [(
            "customer_accounts[1]".to_owned(),
            "no customer account ACME-XX in this tenant".to_owned()
        )]
    );
    assert_eq!(results[1]["status"], 200, "{r}");
    assert_eq!(
        results[1]["body"]["customer_accounts"],
        json!(["ACME-EU", "ACME-US"])
    );
}
