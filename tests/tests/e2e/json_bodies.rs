//! Every route that takes a JSON body takes a JSON *object*: an array is a
//! 422, never read positionally into the object's fields (serde's derive
//! would accept `["x"]` as `{"name": "x"}` and `[null, null]` as a patch of
//! nothing). The routes come from the OpenAPI document, so a new JSON-body
//! route is covered without touching this file.

use peak_tests::{TestApp, spawn_sqlite};
use reqwest::Method;
use serde_json::Value;

/// (method, path) of every operation whose request body is JSON.
fn json_body_routes() -> Vec<(Method, String)> {
    let doc = peak_api::openapi::document();
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if !op["requestBody"]["content"]["application/json"].is_null() {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
                routes.push((method, path.clone()));
            }
        }
    }
    routes
}

/// The route with real targets filled in, and the request to send to it
/// (with the target's current ETag, so only the body can be wrong).
async fn request_for(
    app: &TestApp,
    method: &Method,
    path: &str,
    ids: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let (prefix, id) = ids
        .iter()
        .find(|(prefix, _)| path.starts_with(prefix))
        .copied()
        .unwrap_or(("", ""));
    let path = path.replace("{id}", id).replace("{number}", id);
    assert!(
        !path.contains('{'),
        "no target for {path} (prefix {prefix:?}): add one above"
    );
    if path == "/password-resets" {
        return app.anonymous(method.clone(), &path);
    }
    let mut req = app.admin(method.clone(), &path);
    if *method == Method::PATCH {
        let current = app.admin(Method::GET, &path).send().await.expect("send");
        assert_eq!(current.status(), 200, "GET {path}");
        let tag = current.headers()["etag"].to_str().expect("etag").to_owned();
        req = req.header("if-match", tag);
    }
    req
}

#[tokio::test]
async fn an_array_where_an_object_is_expected_is_422_on_every_json_route() {
    let app = spawn_sqlite().await;
    // `/settings` is the tenant record's: give this test's tenant one.
    let record = peak_domain::model::tenant::NewTenant {
        id: app.tenant.clone(),
        display_name: "Arrays".into(),
        portal_url: "https://portal.arrays.example".into(),
        sender_address: "no-reply@arrays.example".into(),
        reply_to: None,
        invitation_ttl_days: 7,
    }
    .validate(time::OffsetDateTime::now_utc())
    .expect("tenant");
    app.stores
        .tenants
        .create_tenant(&record)
        .await
        .expect("tenant record");
    let profile = app.create_profile("Arrays").await;
    let profile_id = profile["id"].as_str().expect("id").to_owned();
    let (user_id, _) = app.invite_customer("array.target@acme.example").await;
    let ids = [
        ("/profiles/", profile_id.as_str()),
        ("/users/", user_id.as_str()),
        // An account number: PUT creates it if it is not there.
        ("/accounts/", "ARRAYS-1"),
    ];
    let routes = json_body_routes();
    for expected in [
        "/profiles",
        "/profiles/{id}",
        "/users",
        "/users/{id}",
        "/me",
    ] {
        assert!(
            routes.iter().any(|(_, p)| p == expected),
            "{expected} takes a JSON body: {routes:?}"
        );
    }
    let tenant = app.tenant.clone();
    let bodies = [
        r#"["x"]"#.to_owned(),
        "[null, null]".to_owned(),
        "[]".to_owned(),
        // Positionally a valid invite / profile / reset request.
        format!(r#"["{tenant}", "array.target@acme.example"]"#),
        r#"["Ada", "Lovelace", "ada.array@acme.example", "customer"]"#.to_owned(),
    ];
    let mut failures = Vec::new();
    for (method, path) in &routes {
        for body in &bodies {
            let resp = request_for(&app, method, path, &ids)
                .await
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .expect("send");
            let status = resp.status().as_u16();
            let problem: Value = resp.json().await.unwrap_or(Value::Null);
            let field = problem["errors"][0]["field"].as_str().unwrap_or_default();
            if (status, problem["code"].as_str(), field) != (422, Some("validation_failed"), "body")
            {
                failures.push(format!(
                    "{method} {path} {body} -> {status} {}",
                    problem["code"]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Nothing was created or changed by them.
    let p: Value = app
        .admin(Method::GET, &format!("/profiles/{profile_id}"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(p["version"], profile["version"]);
}
