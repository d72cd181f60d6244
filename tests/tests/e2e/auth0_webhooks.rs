//! `POST /webhooks/auth0` over real HTTP: what Auth0 tells us changes our
//! users once, in order, and only when it is authentic.

use base64::Engine;
use peak_api::WebhookConfig;
use peak_local::StartOptions;
use peak_tests::{TestApp, spawn_dynamodb_with, spawn_sqlite_with};
use peak_webhooks::WebhookSecrets;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const STREAM_TOKEN: &str = "est-token-0123456789abcdefghijklmnopqrstuv";

fn secret(seed: u8) -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([seed; 32])
    )
}

fn options() -> StartOptions {
    StartOptions {
        webhooks: Some(Arc::new(WebhookConfig {
            action_secrets: Some(WebhookSecrets::parse(&secret(7)).expect("secret")),
            event_stream_tokens: vec![STREAM_TOKEN.to_owned()],
        })),
        ..StartOptions::default()
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("format")
}

/// A Standard Webhooks delivery of an Action event, signed with `secret`
/// at `signed_at`.
struct Delivery {
    id: String,
    timestamp: i64,
    body: String,
    signature: String,
}

fn action(kind: &str, data: Value, secret_seed: u8, signed_at: OffsetDateTime) -> Delivery {
    let id = format!("pcp_{}", ulid::Ulid::new());
    let body = json!({ "type": kind, "id": id, "time": rfc3339(now()), "data": data }).to_string();
    let timestamp = signed_at.unix_timestamp();
    let signature = WebhookSecrets::parse(&secret(secret_seed))
        .expect("secret")
        .sign(&id, timestamp, body.as_bytes());
    Delivery {
        id,
        timestamp,
        body,
        signature,
    }
}

async fn post_signed(app: &TestApp, d: &Delivery) -> (u16, Value) {
    let resp = app
        .anonymous(Method::POST, "/webhooks/auth0")
        .header("webhook-id", &d.id)
        .header("webhook-timestamp", d.timestamp.to_string())
        .header("webhook-signature", &d.signature)
        .header("content-type", "application/json")
        .body(d.body.clone())
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn stream_event(
    kind: &str,
    subject: &str,
    tenant: &str,
    blocked: bool,
    at: OffsetDateTime,
) -> String {
    json!({
        "id": format!("evt_{}", ulid::Ulid::new()),
        "source": "urn:auth0:example.auth0app.com",
        "specversion": "1.0",
        "type": kind,
        "time": rfc3339(at),
        "data": { "object": {
            "user_id": subject,
            "email": "someone@acme.example",
            "blocked": blocked,
            "app_metadata": { "tenant": tenant },
        }}
    })
    .to_string()
}

async fn post_stream(app: &TestApp, token: &str, body: &str) -> (u16, Value) {
    let resp = app
        .anonymous(Method::POST, "/webhooks/auth0")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/cloudevents+json")
        .body(body.to_owned())
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn user(app: &TestApp, id: &str) -> Option<Value> {
    let resp = app
        .admin(Method::GET, &format!("/users/{id}"))
        .send()
        .await
        .expect("send");
    match resp.status().as_u16() {
        200 => Some(resp.json().await.expect("json")),
        404 => None,
        other => panic!("GET user: {other}"),
    }
}

async fn audit_actions(app: &TestApp, id: &str) -> Vec<String> {
    app.all_items(&app.token("admin"), &format!("/users/{id}/audit"))
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// An invited user who accepted (so has a login), not yet active.
async fn accepted(app: &TestApp, email: &str) -> (String, String) {
    let (id, token) = app.invite_customer(email).await;
    let resp = app
        .anonymous(Method::POST, &format!("/invitations/{token}/accept"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200, "accept");
    let subject = format!("dev|{id}");
    (id, subject)
}

async fn password_set_activates_once(app: TestApp) {
    let (id, subject) = accepted(&app, "ana@acme.example").await;
    assert_eq!(user(&app, &id).await.unwrap()["status"], "invited");

    // Post Change Password carries no tenant: it is found from the login.
    let d = action(
        "password.changed",
        json!({ "user_id": subject, "tenant": null }),
        7,
        now(),
    );
    let (status, body) = post_signed(&app, &d).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("applied")));
    assert_eq!(user(&app, &id).await.unwrap()["status"], "active");

    // The same delivery again (a replay, or the sender's retry): recorded
    // already, acknowledged, nothing changes.
    let before = audit_actions(&app, &id).await;
    let (status, body) = post_signed(&app, &d).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("duplicate")));
    assert_eq!(audit_actions(&app, &id).await, before);
    assert_eq!(
        before.iter().filter(|a| *a == "user.activated").count(),
        1,
        "{before:?}"
    );

    // Post Login: the last sign-in shows on the user, without a new version
    // (an admin's edit in progress does not go stale) and without an audit line.
    let u = user(&app, &id).await.unwrap();
    assert_eq!(u["last_login_at"], Value::Null);
    let tenant = app.tenant.clone();
    let login = action(
        "user.logged_in",
        json!({ "user_id": subject, "tenant": tenant }),
        7,
        now(),
    );
    let (status, body) = post_signed(&app, &login).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("applied")),
        "{body}"
    );
    let after = user(&app, &id).await.unwrap();
    let seen = after["last_login_at"]
        .as_str()
        .expect("last_login_at")
        .to_owned();
    assert_eq!(after["version"], u["version"]);
    assert_eq!(audit_actions(&app, &id).await, before);
    // A late delivery of an earlier sign-in does not move it back.
    let mut earlier = action(
        "user.logged_in",
        json!({ "user_id": subject, "tenant": tenant }),
        7,
        now(),
    );
    earlier.body = earlier.body.replace(&rfc3339(now())[..4], "2020");
    earlier.signature = WebhookSecrets::parse(&secret(7)).unwrap().sign(
        &earlier.id,
        earlier.timestamp,
        earlier.body.as_bytes(),
    );
    let (status, body) = post_signed(&app, &earlier).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("stale")),
        "{body}"
    );
    assert_eq!(
        user(&app, &id).await.unwrap()["last_login_at"],
        seen.as_str()
    );
}

#[tokio::test]
async fn password_set_activates_once_on_sqlite() {
    password_set_activates_once(spawn_sqlite_with(options()).await).await;
}

#[tokio::test]
async fn password_set_activates_once_on_dynamodb() {
    password_set_activates_once(spawn_dynamodb_with(options()).await).await;
}

#[tokio::test]
async fn forged_stale_and_malformed_deliveries_change_nothing() {
    let app = spawn_sqlite_with(options()).await;
    let (id, subject) = accepted(&app, "bo@acme.example").await;
    let data = json!({ "user_id": subject, "tenant": null });
    let good = || action("password.changed", data.clone(), 7, now());
    let before = audit_actions(&app, &id).await;

    let mut cases: Vec<(&str, Delivery, u16)> = Vec::new();
    cases.push((
        "signed with another secret",
        action("password.changed", data.clone(), 9, now()),
        401,
    ));
    let mut tampered = good();
    tampered.body = tampered
        .body
        .replace("password.changed", "password.changed ");
    cases.push(("body changed after signing", tampered, 401));
    cases.push((
        "signed 10 minutes ago",
        action(
            "password.changed",
            data.clone(),
            7,
            now() - time::Duration::minutes(10),
        ),
        401,
    ));
    cases.push((
        "signed 10 minutes ahead",
        action(
            "password.changed",
            data.clone(),
            7,
            now() + time::Duration::minutes(10),
        ),
        401,
    ));
    let mut other_id = good();
    other_id.id = format!("pcp_{}", ulid::Ulid::new());
    other_id.signature = WebhookSecrets::parse(&secret(7)).unwrap().sign(
        &other_id.id,
        other_id.timestamp,
        other_id.body.as_bytes(),
    );
    cases.push(("body id differs from webhook-id", other_id, 400));
    let mut not_json = good();
    not_json.body = "{not json".into();
    not_json.signature = WebhookSecrets::parse(&secret(7)).unwrap().sign(
        &not_json.id,
        not_json.timestamp,
        not_json.body.as_bytes(),
    );
    cases.push(("malformed body", not_json, 400));
    let mut huge = good();
    huge.body = format!("{{\"pad\":\"{}\"}}", "x".repeat(300_000));
    cases.push(("oversized body", huge, 413));
    let mut bad_sig = good();
    bad_sig.signature = "v1,not-base64!!".into();
    cases.push(("a signature header that is not one", bad_sig, 400));

    for (what, d, want) in &cases {
        let (status, body) = post_signed(&app, d).await;
        assert_eq!(status, *want, "{what}: {body}");
        assert!(
            !body.to_string().contains("bo@acme.example"),
            "{what}: the answer echoes the delivery"
        );
    }
    // No headers at all.
    let resp = app
        .anonymous(Method::POST, "/webhooks/auth0")
        .body(good().body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "unsigned");
    // A wrong bearer token on the Event Streams channel.
    let (status, _) = post_stream(
        &app,
        "not-the-token-0123456789abcdefghijklmnop",
        &stream_event("user.deleted", &subject, &app.tenant, false, now()),
    )
    .await;
    assert_eq!(status, 401, "wrong bearer");

    assert_eq!(user(&app, &id).await.unwrap()["status"], "invited");
    assert_eq!(audit_actions(&app, &id).await, before);

    // And the genuine delivery still works afterwards.
    let (status, _) = post_signed(&app, &good()).await;
    assert_eq!(status, 200);
    assert_eq!(user(&app, &id).await.unwrap()["status"], "active");
}

#[tokio::test]
async fn dashboard_block_suspends_unless_we_changed_the_user_since() {
    let app = spawn_sqlite_with(options()).await;
    let (id, subject) = accepted(&app, "cy@acme.example").await;
    let d = action("password.changed", json!({ "user_id": subject }), 7, now());
    assert_eq!(post_signed(&app, &d).await.0, 200);
    assert_eq!(user(&app, &id).await.unwrap()["status"], "active");

    // A block that happened before our last change of the user is stale.
    let old = stream_event(
        "com.auth0.user.updated",
        &subject,
        &app.tenant,
        true,
        now() - time::Duration::hours(1),
    );
    let (status, body) = post_stream(&app, STREAM_TOKEN, &old).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("stale")));
    assert_eq!(user(&app, &id).await.unwrap()["status"], "active");

    let fresh = stream_event("user.updated", &subject, &app.tenant, true, now());
    let (status, body) = post_stream(&app, STREAM_TOKEN, &fresh).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("applied")));
    let u = user(&app, &id).await.unwrap();
    assert_eq!(u["status"], "suspended");

    // Event Streams deliver at least once: a repeat is acknowledged, not applied.
    let (status, body) = post_stream(&app, STREAM_TOKEN, &fresh).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("duplicate")));
    assert_eq!(user(&app, &id).await.unwrap()["version"], u["version"]);

    // Another tenant's login, or a login we never made, changes nothing here.
    let elsewhere = stream_event("user.deleted", &subject, "some-other-tenant", false, now());
    let (status, body) = post_stream(&app, STREAM_TOKEN, &elsewhere).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("no_change")));
    assert!(user(&app, &id).await.is_some());

    // Deleted in the dashboard: gone here too.
    let deleted = stream_event("user.deleted", &subject, &app.tenant, false, now());
    let (status, body) = post_stream(&app, STREAM_TOKEN, &deleted).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("applied")));
    assert!(user(&app, &id).await.is_none());
}

#[tokio::test]
async fn webhook_route_is_unavailable_until_configured() {
    let app = spawn_sqlite_with(StartOptions::default()).await;
    let d = action(
        "password.changed",
        json!({ "user_id": "auth0|x" }),
        7,
        now(),
    );
    let (status, body) = post_signed(&app, &d).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("webhooks_not_configured"))
    );
}
