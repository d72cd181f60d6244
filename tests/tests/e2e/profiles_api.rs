//! The profile API end to end, over HTTP, on both stores: what a portal
//! frontend and an admin see.

use peak_tests::{TestApp, problem};
use reqwest::Method;
use serde_json::{Value, json};

on_both_stores!(
    walk_through_create_list_view_edit_stale_edit_delete,
    catalogue_draws_seven_tabs_for_every_role,
    names_are_unique_ignoring_case,
    edits_are_validated_against_the_catalogue,
    edit_needs_if_match,
    profiles_of_another_tenant_are_invisible,
    list_pages_with_opaque_cursors,
    authentication_is_required_and_checked,
    only_admins_manage_profiles,
    bad_requests_get_clear_errors_and_change_nothing,
);

async fn walk_through_create_list_view_edit_stale_edit_delete(app: TestApp) {
    // Create: only a name needed; every setting at its default.
    let resp = app
        .admin(Method::POST, "/profiles")
        .json(&json!({"name": "VIP Customers"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["etag"], "\"1\"");
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = resp.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/profiles/{id}"));
    assert_eq!(created["settings"]["my_subscriptions.cancel"], "disabled");
    assert_eq!(created["settings"]["my_customers.customer_users"], "hidden");

    // List shows it.
    let list: Value = app
        .admin(Method::GET, "/profiles")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // (after the tenant's seeded Standard profile)
    let mine = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id.as_str())
        .expect("listed");
    assert_eq!(mine["name"], "VIP Customers");
    assert_eq!(mine["user_count"], 0);

    // View: read-only representation laid out as the seven tabs.
    let resp = app.admin(Method::GET, &location).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["etag"], "\"1\"");
    let view: Value = resp.json().await.unwrap();
    let tabs = view["tabs"].as_array().unwrap();
    assert_eq!(tabs.len(), 7);
    assert_eq!(tabs[2]["label"], "My Customers");
    assert_eq!(
        tabs[2]["settings"][0]["applies_to"],
        json!(["sales_rep", "partner"])
    );

    // Edit with If-Match.
    let resp = app
        .admin(Method::PATCH, &location)
        .header("if-match", "\"1\"")
        .json(&json!({"name": "VIP", "settings": {"my_subscriptions.cancel": "enabled"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["etag"], "\"2\"");
    let edited: Value = resp.json().await.unwrap();
    assert_eq!(edited["name"], "VIP");
    assert_eq!(edited["settings"]["my_subscriptions.cancel"], "enabled");

    // A second admin still holding version 1 is refused; nothing changes.
    let resp = app
        .admin(Method::PATCH, &location)
        .header("if-match", "\"1\"")
        .json(&json!({"settings": {"my_subscriptions.cancel": "disabled"}}))
        .send()
        .await
        .unwrap();
    let body = problem(resp, 412).await;
    assert_eq!(body["code"], "stale_version");
    let now: Value = app
        .admin(Method::GET, &location)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(now["settings"]["my_subscriptions.cancel"], "enabled");
    assert_eq!(now["version"], 2);

    // Delete, then it is gone.
    let resp = app.admin(Method::DELETE, &location).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    problem(app.admin(Method::GET, &location).send().await.unwrap(), 404).await;
    problem(
        app.admin(Method::DELETE, &location).send().await.unwrap(),
        404,
    )
    .await;
}

async fn catalogue_draws_seven_tabs_for_every_role(app: TestApp) {
    for role in ["admin", "sales_rep", "partner", "customer"] {
        let resp = app
            .as_role(role, Method::GET, "/profile-catalogue")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{role}");
        let c: Value = resp.json().await.unwrap();
        let tabs = c["tabs"].as_array().unwrap();
        assert_eq!(tabs.len(), 7);
        for tab in tabs {
            for s in tab["settings"].as_array().unwrap() {
                let options: Vec<&str> = s["options"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| o["id"].as_str().unwrap())
                    .collect();
                assert!(
                    options.contains(&s["default"].as_str().unwrap()),
                    "{}",
                    s["id"]
                );
            }
        }
    }
}

async fn names_are_unique_ignoring_case(app: TestApp) {
    app.create_profile("Wholesale").await;
    let resp = app
        .admin(Method::POST, "/profiles")
        .json(&json!({"name": "  WHOLESALE "}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(resp, 409).await["code"], "profile_name_taken");
    // Renaming another profile onto it is refused the same way.
    let other = app.create_profile("Retail").await;
    let resp = app
        .admin(
            Method::PATCH,
            &format!("/profiles/{}", other["id"].as_str().unwrap()),
        )
        .header("if-match", "\"1\"")
        .json(&json!({"name": "wholesale"}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(resp, 409).await["code"], "profile_name_taken");
    let list: Value = app
        .admin(Method::GET, "/profiles")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 3);
    assert!(
        names.contains(&"Retail") && names.contains(&"Wholesale") && names.contains(&"Standard")
    );
}

async fn edits_are_validated_against_the_catalogue(app: TestApp) {
    let p = app.create_profile("Basic").await;
    let path = format!("/profiles/{}", p["id"].as_str().unwrap());
    let resp = app
        .admin(Method::PATCH, &path)
        .header("if-match", "\"1\"")
        .json(&json!({"settings": {
            "my_cases.view": "view",
            "my_cases.teleport": "enabled",
            "pay_invoices.payment_methods": "bitcoin"
        }}))
        .send()
        .await
        .unwrap();
    let body = problem(resp, 422).await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "settings.my_cases.teleport",
            "settings.pay_invoices.payment_methods"
        ]
    );
    assert!(
        body["errors"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("card_and_bank_account")
    );
    // Nothing changed, not even the valid part of the edit.
    let now: Value = app
        .admin(Method::GET, &path)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(now["version"], 1);
    // An empty name is named too.
    let resp = app
        .admin(Method::PATCH, &path)
        .header("if-match", "\"1\"")
        .json(&json!({"name": "   "}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(resp, 422).await["errors"][0]["field"], "name");
}

async fn edit_needs_if_match(app: TestApp) {
    let p = app.create_profile("Basic").await;
    let path = format!("/profiles/{}", p["id"].as_str().unwrap());
    let edit = json!({"settings": {"my_cases.edit": "enabled"}});
    let resp = app
        .admin(Method::PATCH, &path)
        .json(&edit)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(resp, 428).await["code"], "if_match_required");
    let resp = app
        .admin(Method::PATCH, &path)
        .header("if-match", "garbage")
        .json(&edit)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(resp, 412).await["code"], "stale_version");
    let now: Value = app
        .admin(Method::GET, &path)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(now["settings"]["my_cases.edit"], "disabled");
    // A delete with a stale If-Match is refused too.
    let resp = app
        .admin(Method::DELETE, &path)
        .header("if-match", "\"9\"")
        .send()
        .await
        .unwrap();
    problem(resp, 412).await;
    assert_eq!(
        app.admin(Method::GET, &path).send().await.unwrap().status(),
        200
    );
}

async fn profiles_of_another_tenant_are_invisible(app: TestApp) {
    let p = app.create_profile("Tenant A only").await;
    let path = format!("/profiles/{}", p["id"].as_str().unwrap());
    let (_, intruder) = app.other_tenant_admin().await;
    let url = format!("{}{path}", app.running.url());
    let get = app
        .http
        .get(&url)
        .bearer_auth(&intruder)
        .send()
        .await
        .unwrap();
    problem(get, 404).await;
    let patch = app
        .http
        .patch(&url)
        .bearer_auth(&intruder)
        .header("if-match", "\"1\"")
        .json(&json!({"name": "pwned"}))
        .send()
        .await
        .unwrap();
    problem(patch, 404).await;
    problem(
        app.http
            .delete(&url)
            .bearer_auth(&intruder)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    let list: Value = app
        .http
        .get(format!("{}/profiles", app.running.url()))
        .bearer_auth(&intruder)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let seen: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(seen, ["Standard"], "only the other tenant's own profile");
    let mine: Value = app
        .admin(Method::GET, &path)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine["name"], "Tenant A only");
    assert_eq!(mine["version"], 1);
}

async fn list_pages_with_opaque_cursors(app: TestApp) {
    for i in 0..5 {
        app.create_profile(&format!("P{i}")).await;
    }
    let mut names = Vec::new();
    let mut next = Some(String::new());
    let mut pages = 0;
    while let Some(cursor) = next {
        let q = if cursor.is_empty() {
            "/profiles?limit=2".to_owned()
        } else {
            format!("/profiles?limit=2&cursor={cursor}")
        };
        let page: Value = app
            .admin(Method::GET, &q)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        names.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap().to_owned()),
        );
        next = page["next_cursor"].as_str().map(str::to_owned);
        pages += 1;
        assert!(pages <= 3, "pages never end");
    }
    names.sort();
    assert_eq!(names, ["P0", "P1", "P2", "P3", "P4", "Standard"]);
    let resp = app
        .admin(Method::GET, "/profiles?cursor=bogus")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(resp, 400).await["code"], "invalid_cursor");
    let resp = app
        .admin(Method::GET, "/profiles?limit=1000")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(resp, 422).await["errors"][0]["field"], "limit");
    let resp = app
        .admin(Method::GET, "/profiles?limit=ten")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(resp, 422).await["errors"][0]["field"], "limit");
}

async fn authentication_is_required_and_checked(app: TestApp) {
    let resp = app
        .anonymous(Method::GET, "/profile-catalogue")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(resp, 401).await["code"], "unauthenticated");
    let resp = app
        .anonymous(Method::GET, "/profiles")
        .bearer_auth("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
        .send()
        .await
        .unwrap();
    let body = problem(resp, 401).await;
    assert!(body["detail"].as_str().unwrap().contains("RS256"));
    // A valid token whose subject is no user of this tenant cannot act,
    // whatever role it claims: the role comes from the user record.
    let stranger = app.token_for_subject("auth0|stranger");
    let resp = app
        .anonymous(Method::GET, "/profile-catalogue")
        .bearer_auth(stranger)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(resp, 403).await["code"], "unknown_user");
    // A customer's token claiming "admin" is still a customer's.
    let claims = app.running.idp.claims_for(
        "auth0|customer",
        &app.tenant,
        "admin",
        std::time::Duration::from_secs(60),
    );
    let token = app.running.idp.sign(&claims).unwrap();
    let resp = app
        .anonymous(Method::GET, "/profiles")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(resp, 403).await["code"], "forbidden");
}

async fn only_admins_manage_profiles(app: TestApp) {
    let p = app.create_profile("Admins only").await;
    let path = format!("/profiles/{}", p["id"].as_str().unwrap());
    for role in ["sales_rep", "partner", "customer"] {
        for (method, path, body) in [
            (Method::GET, "/profiles".to_owned(), None),
            (
                Method::POST,
                "/profiles".to_owned(),
                Some(json!({"name": "Mine"})),
            ),
            (Method::GET, path.clone(), None),
            (Method::PATCH, path.clone(), Some(json!({"name": "Mine"}))),
            (Method::DELETE, path.clone(), None),
        ] {
            let mut req = app
                .as_role(role, method.clone(), &path)
                .header("if-match", "\"1\"");
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(
                problem(resp, 403).await["code"],
                "forbidden",
                "{role} {method} {path}"
            );
        }
    }
    let now: Value = app
        .admin(Method::GET, &path)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (now["name"].as_str(), now["version"].as_u64()),
        (Some("Admins only"), Some(1))
    );
    let list: Value = app
        .admin(Method::GET, "/profiles")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        2,
        "Standard and Admins only"
    );
}

async fn bad_requests_get_clear_errors_and_change_nothing(app: TestApp) {
    let url = format!("{}/profiles", app.running.url());
    let token = app.token("admin");
    let send = |body: &'static str, ct: Option<&'static str>| {
        let mut req = app.http.post(&url).bearer_auth(&token).body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        req.send()
    };
    assert_eq!(
        problem(
            send("{\"name\": ", Some("application/json")).await.unwrap(),
            400
        )
        .await["code"],
        "malformed_json"
    );
    assert_eq!(
        problem(send("", Some("application/json")).await.unwrap(), 400).await["code"],
        "malformed_json"
    );
    assert_eq!(
        problem(
            send("{\"name\":\"x\"}", Some("text/plain")).await.unwrap(),
            415
        )
        .await["code"],
        "unsupported_media_type"
    );
    assert_eq!(
        problem(send("{\"name\":\"x\"}", None).await.unwrap(), 415).await["code"],
        "unsupported_media_type"
    );
    let body = problem(
        send("{\"name\": 5}", Some("application/json"))
            .await
            .unwrap(),
        422,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "name");
    let body = problem(
        send(
            "{\"name\":\"x\",\"tenant\":\"other\"}",
            Some("application/json"),
        )
        .await
        .unwrap(),
        422,
    )
    .await;
    assert!(
        body["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("unknown field `tenant`")
    );
    assert_eq!(
        problem(
            send("{\"name\":\"\"}", Some("application/json"))
                .await
                .unwrap(),
            422
        )
        .await["errors"][0]["field"],
        "name"
    );
    problem(
        app.admin(Method::GET, "/profiles/not-a-ulid")
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    problem(
        app.admin(Method::GET, "/nowhere").send().await.unwrap(),
        404,
    )
    .await;
    let resp = app.admin(Method::PUT, "/profiles").send().await.unwrap();
    assert_eq!(resp.headers()["allow"], "GET, POST");
    problem(resp, 405).await;
    let list: Value = app
        .admin(Method::GET, "/profiles")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Standard"], "no bad request created anything");
}
