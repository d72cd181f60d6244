//! Our users and Auth0 kept in step, against a stateful fake of the
//! Management API routes we call (`peak_auth0::fake`): outages in the middle
//! of accept, suspend, edit and delete lose nothing and converge once Auth0
//! is back; a 429 storm is waited out, not hammered; reconciliation repairs
//! drift.

use base64::Engine;
use peak_api::WebhookConfig;
use peak_auth0::fake::{FakeAuth0, FakeUser, Fault};
use peak_auth0::{Auth0Client, Auth0Config};
use peak_domain::identity::IdentityProvider;
use peak_domain::idp_work::IdpWorkItem;
use peak_idp_sync::{Worker, reconcile};
use peak_local::StartOptions;
use peak_tests::TestApp;
use peak_webhooks::WebhookSecrets;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

const SECRET_SEED: u8 = 3;
/// The Event Stream's bearer token in these tests.
pub(crate) const STREAM_TOKEN: &str = "est-token-sync-0123456789abcdefghijklmnop";

pub(crate) fn secret() -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([SECRET_SEED; 32])
    )
}

pub(crate) struct Env {
    pub app: TestApp,
    pub fake: FakeAuth0,
    pub idp: Arc<dyn IdentityProvider>,
    /// The same client, as the directory reconciliation reads.
    pub client: Auth0Client,
    pub worker: Worker,
    /// Hours the worker's clock is ahead (each later run goes further, past
    /// every backoff the runs before it set).
    ahead: std::sync::atomic::AtomicI64,
}

/// The local server with Auth0 = the fake (calls bounded to `deadline`),
/// and a worker the test drives itself.
pub(crate) async fn env_with(sqlite: bool, deadline: Duration) -> Env {
    let stores = if sqlite {
        peak_local::Stores::from(peak_store_sqlite::SqliteStore::open_in_memory().expect("sqlite"))
    } else {
        peak_tests::dynamodb_stores().await
    };
    env_over(stores, deadline).await
}

/// [`env_with`] over the given stores.
pub(crate) async fn env_over(stores: peak_local::Stores, deadline: Duration) -> Env {
    let fake = FakeAuth0::start().await;
    let mut config: Auth0Config = fake.config();
    config.call_deadline = deadline;
    config.request_timeout = Duration::from_millis(500);
    let client = Auth0Client::new(config);
    let idp: Arc<dyn IdentityProvider> = Arc::new(client.clone());
    let options = StartOptions {
        identity: Some(idp.clone()),
        webhooks: Some(Arc::new(WebhookConfig {
            action_secrets: Some(WebhookSecrets::parse(&secret()).expect("secret")),
            event_stream_tokens: vec![STREAM_TOKEN.to_owned()],
        })),
        ..StartOptions::default()
    };
    let app = peak_tests::spawn_with(stores, options).await;
    let worker = Worker::new(app.stores.users.clone(), idp.clone());
    Env {
        app,
        fake,
        idp,
        client,
        worker,
        ahead: std::sync::atomic::AtomicI64::new(0),
    }
}

pub(crate) async fn env(sqlite: bool) -> Env {
    env_with(sqlite, Duration::from_secs(2)).await
}

pub(crate) async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn user(app: &TestApp, id: &str) -> Value {
    let (status, body) = send(app.admin(Method::GET, &format!("/users/{id}"))).await;
    assert_eq!(status, 200, "GET user {id}: {body}");
    body
}

/// This tenant's owed Auth0 work.
pub(crate) async fn owed(app: &TestApp) -> Vec<IdpWorkItem> {
    app.stores
        .users
        .list_idp_work(1000)
        .await
        .expect("owed work")
        .into_iter()
        .filter(|w| w.work.tenant_id.as_str() == app.tenant)
        .collect()
}

/// Auth0 tells us (signed Post Change Password, no tenant) that the person
/// behind `subject` set a password.
pub(crate) async fn password_changed(app: &TestApp, subject: &str) -> (u16, Value) {
    let id = format!("pcp_{}", ulid::Ulid::new());
    let now = OffsetDateTime::now_utc();
    let body = json!({
        "type": "password.changed",
        "id": id,
        "time": now.format(&time::format_description::well_known::Rfc3339).unwrap(),
        "data": { "user_id": subject, "tenant": null },
    })
    .to_string();
    let signature =
        WebhookSecrets::parse(&secret())
            .unwrap()
            .sign(&id, now.unix_timestamp(), body.as_bytes());
    send(
        app.anonymous(Method::POST, "/webhooks/auth0")
            .header("webhook-id", &id)
            .header("webhook-timestamp", now.unix_timestamp().to_string())
            .header("webhook-signature", signature)
            .body(body),
    )
    .await
}

/// Invite → accept (Auth0 login + ticket) → the person sets a password at
/// Auth0 → Auth0 tells us → active. Returns (user id, Auth0 subject).
pub(crate) async fn active_user(e: &Env, email: &str) -> (String, String) {
    let (id, token) = e.app.invite_customer(email).await;
    let (status, body) = send(
        e.app
            .anonymous(Method::POST, &format!("/invitations/{token}/accept")),
    )
    .await;
    assert_eq!(status, 200, "accept: {body}");
    let url = body["password_setup_url"].as_str().expect("ticket url");
    let subject = e
        .fake
        .complete_ticket(url)
        .expect("a ticket the fake issued");
    let (status, body) = password_changed(&e.app, &subject).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("applied")),
        "{body}"
    );
    assert_eq!(user(&e.app, &id).await["status"], "active");
    (id, subject)
}

/// Runs the worker at a time when every backoff set so far has passed.
pub(crate) async fn drain_later(e: &Env) -> peak_idp_sync::SweepSummary {
    let hours = e.ahead.fetch_add(2, std::sync::atomic::Ordering::Relaxed) + 2;
    e.worker
        .run_due(OffsetDateTime::now_utc() + time::Duration::hours(hours))
        .await
        .expect("store")
}

async fn invite_accept_waits_out_an_outage(sqlite: bool) {
    let e = env(sqlite).await;
    let (id, token) = e.app.invite_customer("ivy@acme.example").await;
    let accept = || {
        e.app
            .anonymous(Method::POST, &format!("/invitations/{token}/accept"))
    };

    e.fake.set_down(true);
    let (status, body) = send(accept()).await;
    assert_eq!(status, 503, "Auth0 down: {body}");
    assert!(e.fake.users().is_empty());
    let u = user(&e.app, &id).await;
    assert_eq!(u["status"], "invited");
    // The link still works: the person simply tries again.
    let (status, _) = send(
        e.app
            .anonymous(Method::GET, &format!("/invitations/{token}")),
    )
    .await;
    assert_eq!(status, 200);

    e.fake.set_down(false);
    let (status, body) = send(accept()).await;
    assert_eq!(status, 200, "{body}");
    let first = body["password_setup_url"].as_str().unwrap().to_owned();
    // Accepting again finds the same login: one person, one login.
    let (status, body) = send(accept()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(e.fake.users().len(), 1);
    let login = e.fake.user_by_email("ivy@acme.example").expect("login");
    assert_eq!(login.app_metadata["tenant"], e.app.tenant.as_str());
    assert_eq!(login.app_metadata["peak_user_id"], id.as_str());
    assert!(
        login.app_metadata.get("user_id").is_none(),
        "user_id is reserved by Auth0"
    );
    assert!(!login.blocked);
    assert_eq!(
        login.verification_emails_sent, 0,
        "Auth0 sends no email of its own"
    );

    let subject = e.fake.complete_ticket(&first).expect("ticket");
    assert_eq!(subject, login.user_id);
    let (status, _) = password_changed(&e.app, &subject).await;
    assert_eq!(status, 200);
    assert_eq!(user(&e.app, &id).await["status"], "active");
    assert!(owed(&e.app).await.is_empty(), "accepting owes nothing");
}

#[tokio::test]
async fn invite_accept_waits_out_an_outage_on_sqlite() {
    invite_accept_waits_out_an_outage(true).await;
}

#[tokio::test]
async fn invite_accept_waits_out_an_outage_on_dynamodb() {
    invite_accept_waits_out_an_outage(false).await;
}

async fn suspend_edit_delete_converge_after_an_outage(sqlite: bool) {
    let e = env(sqlite).await;
    let (id, subject) = active_user(&e, "sam@acme.example").await;
    let person = e.app.token_for_subject(&subject);

    e.fake.set_down(true);
    // Suspend: refused by our API at once, whatever Auth0's state.
    let (status, body) = send(e.app.admin(Method::POST, &format!("/users/{id}/suspend"))).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = send(e.app.with_token(&person, Method::GET, "/me")).await;
    assert_eq!(status, 403, "a suspended user's token is refused at once");
    let summary = e.worker.run_due(OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(summary.failed, 1);
    let work = owed(&e.app).await;
    assert_eq!(work.len(), 1);
    assert_eq!(work[0].attempts, 1);
    assert!(work[0].last_error.is_some());
    assert!(!e.fake.user(&subject).unwrap().blocked);

    // An edit meanwhile: one record, the newest state.
    let version = user(&e.app, &id).await["version"].as_u64().unwrap();
    let (status, body) = send(
        e.app
            .admin(Method::PATCH, &format!("/users/{id}"))
            .header("if-match", format!("\"{version}\""))
            .json(&json!({ "first_name": "Samuel" })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(owed(&e.app).await.len(), 1);
    assert_eq!(drain_later(&e).await.failed, 1, "still down");

    e.fake.set_down(false);
    let summary = drain_later(&e).await;
    assert_eq!((summary.done, summary.failed), (1, 0));
    let login = e.fake.user(&subject).unwrap();
    assert!(login.blocked, "suspended here → blocked at Auth0");
    assert_eq!(login.given_name.as_deref(), Some("Samuel"));
    assert!(owed(&e.app).await.is_empty());

    // Enable, then delete during another outage.
    let (status, _) = send(e.app.admin(Method::POST, &format!("/users/{id}/enable"))).await;
    assert_eq!(status, 200);
    assert_eq!(drain_later(&e).await.done, 1);
    assert!(!e.fake.user(&subject).unwrap().blocked);

    e.fake.set_down(true);
    let (status, _) = send(e.app.admin(Method::DELETE, &format!("/users/{id}"))).await;
    assert_eq!(status, 204);
    assert_eq!(drain_later(&e).await.failed, 1);
    assert!(e.fake.user(&subject).is_some());
    e.fake.set_down(false);
    assert_eq!(drain_later(&e).await.done, 1);
    assert!(
        e.fake.user(&subject).is_none(),
        "deleted here → deleted at Auth0"
    );
    assert!(owed(&e.app).await.is_empty());
    // Running again does nothing more.
    e.fake.clear_requests();
    assert_eq!(
        drain_later(&e).await,
        peak_idp_sync::SweepSummary::default()
    );
    assert!(e.fake.requests().is_empty());
}

#[tokio::test]
async fn suspend_edit_delete_converge_after_an_outage_on_sqlite() {
    suspend_edit_delete_converge_after_an_outage(true).await;
}

#[tokio::test]
async fn suspend_edit_delete_converge_after_an_outage_on_dynamodb() {
    suspend_edit_delete_converge_after_an_outage(false).await;
}

/// Management API requests (token requests are the Authentication API's,
/// outside its rate limit) as (method, path).
fn api_calls(fake: &FakeAuth0) -> Vec<(String, String)> {
    fake.requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/api/v2/"))
        .map(|r| (r.method, r.path))
        .collect()
}

/// An accept costs Auth0 two calls (create, ticket) when the address has no
/// login — it cost three (find by email, create, ticket) before creating
/// first — and an address that has a login still gets the lookup (and the
/// relink) it got before.
#[tokio::test]
async fn an_accept_costs_two_auth0_calls() {
    let e = env(true).await;
    let (_, token) = e.app.invite_customer("una@acme.example").await;
    e.fake.clear_requests();
    let (status, body) = send(
        e.app
            .anonymous(Method::POST, &format!("/invitations/{token}/accept")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let calls = api_calls(&e.fake);
    assert_eq!(
        calls,
        vec![
            ("POST".to_owned(), "/api/v2/users".to_owned()),
            (
                "POST".to_owned(),
                "/api/v2/tickets/password-change".to_owned()
            ),
        ],
        "one accept, two Management API calls"
    );

    // The address has a login of an earlier user record of this tenant
    // (deleted here, its login left behind): create answers 409, the
    // lookup finds the login, and it is relinked to the new user.
    let earlier = ulid::Ulid::new().to_string();
    let mut old = FakeUser::new(FakeAuth0::CONNECTION, "vic@acme.example")
        .with_tenant(&e.app.tenant, &earlier);
    old.email_verified = true;
    let subject = e.fake.insert_user(old);
    let (id, token) = e.app.invite_customer("vic@acme.example").await;
    e.fake.clear_requests();
    let (status, body) = send(
        e.app
            .anonymous(Method::POST, &format!("/invitations/{token}/accept")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let methods: Vec<_> = api_calls(&e.fake)
        .into_iter()
        .map(|(m, p)| format!("{m} {}", p.split('%').next().unwrap_or(&p)))
        .collect();
    assert_eq!(
        methods,
        [
            "POST /api/v2/users",
            "GET /api/v2/users-by-email",
            "PATCH /api/v2/users/auth0",
            "POST /api/v2/tickets/password-change",
        ],
        "an existing login: create refused, looked up, relinked"
    );
    assert_eq!(e.fake.users().len(), 2, "no second login for one address");
    let login = e.fake.user(&subject).expect("the earlier login");
    assert_eq!(login.app_metadata["peak_user_id"], id.as_str());
}

#[tokio::test]
async fn a_429_storm_is_waited_out_not_hammered() {
    let e = env_with(true, Duration::from_secs(20)).await;
    let (id, subject) = active_user(&e, "rae@acme.example").await;
    let (status, _) = send(e.app.admin(Method::POST, &format!("/users/{id}/suspend"))).await;
    assert_eq!(status, 200);

    e.fake.clear_requests();
    // Auth0's global limit: only x-ratelimit-* headers, no Retry-After.
    e.fake.fail_next(3, Fault::RateLimit { reset_in_secs: 2 });
    let summary = e.worker.run_due(OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(summary.done, 1, "{summary:?}");
    assert!(e.fake.user(&subject).unwrap().blocked);
    let api: Vec<_> = e
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/api/v2/"))
        .collect();
    assert_eq!(api.iter().filter(|r| r.status == 429).count(), 3, "{api:?}");
    assert_eq!(
        api.len(),
        6,
        "three refusals, then the push and the two revocations: {api:?}"
    );
    for pair in api[..4].windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(
            gap >= Duration::from_millis(900),
            "x-ratelimit-reset was not waited out ({gap:?})"
        );
    }
}

#[tokio::test]
async fn reconciliation_repairs_drift_and_reports_it() {
    let e = env(true).await;
    let (id, subject) = active_user(&e, "lee@acme.example").await;
    let (_, other) = active_user(&e, "max@acme.example").await;
    let (status, _) = send(e.app.admin(Method::POST, &format!("/users/{id}/suspend"))).await;
    assert_eq!(status, 200);
    assert_eq!(drain_later(&e).await.done, 1);
    // Drift: unblocked in the dashboard, renamed there too; a login whose
    // user is gone here; a login somebody made by hand.
    e.fake.set_blocked(&subject, false);
    let orphan = e.fake.insert_user(
        FakeUser::new(e.fake.connection.clone(), "gone@acme.example")
            .with_tenant(&e.app.tenant, &ulid::Ulid::new().to_string()),
    );
    e.fake.insert_user(FakeUser::new(
        e.fake.connection.clone(),
        "hand@acme.example",
    ));

    let report = reconcile(e.app.stores.users.as_ref(), e.idp.as_ref(), &e.client).await;
    assert!(report.complete);
    assert_eq!(report.source, "export");
    assert_eq!(report.logins_seen, 4);
    assert_eq!(report.repaired, 1, "{report:?}");
    assert_eq!(report.deleted_orphans, 1, "{report:?}");
    assert_eq!(report.foreign, 1, "{report:?}");
    assert_eq!(report.in_step, 1, "{report:?}");
    assert!(e.fake.user(&subject).unwrap().blocked, "blocked again");
    assert!(e.fake.user(&orphan).is_none());
    assert!(e.fake.user(&other).is_some());

    // In step now: a second run changes nothing.
    let again = reconcile(e.app.stores.users.as_ref(), e.idp.as_ref(), &e.client).await;
    assert_eq!((again.repaired, again.deleted_orphans), (0, 0), "{again:?}");
}

/// A password-change ticket sends the person on to *their tenant's* portal
/// sign-in (its record's portal URL), not the deployment's default one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_returns_to_the_tenants_own_portal() {
    let env = env(true).await;
    let app = &env.app;
    let record = peak_domain::model::tenant::NewTenant {
        id: app.tenant.clone(),
        display_name: "Acme Records".into(),
        portal_url: "https://portal.acme-records.example".into(),
        sender_address: "no-reply@acme-records.example".into(),
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
    let (_, token) = app.invite_customer("ticket.portal@acme.example").await;
    let (status, body) =
        send(app.anonymous(Method::POST, &format!("/invitations/{token}/accept"))).await;
    assert_eq!(status, 200, "{body}");
    let url = body["password_setup_url"]
        .as_str()
        .expect("password_setup_url");
    let ticket = env.fake.ticket(url).expect("the fake issued this ticket");
    assert_eq!(
        ticket.result_url.as_deref(),
        Some("https://portal.acme-records.example/login"),
        "{ticket:?}"
    );
}
