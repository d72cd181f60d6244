//! Tenants as data, on both stores: an operator creates a tenant (twice is
//! a clear error), invites its first admin through the normal invitation;
//! they accept and manage their tenant's settings (`If-Match`, audited),
//! and a shorter invitation lifetime applies to the very next invitation;
//! closing refuses the tenant's users at once; purging erases them.

use peak_domain::catalogue::catalogue;
use peak_domain::model::tenant::NewTenant;
use peak_domain::tenants;
use peak_domain::users::Ctx;
use peak_tests::{TestApp, spawn_dynamodb, spawn_sqlite};
use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[tokio::test]
async fn tenant_lifecycle_on_sqlite() {
    tenant_lifecycle(spawn_sqlite().await).await;
}

#[tokio::test]
async fn tenant_lifecycle_on_dynamodb() {
    tenant_lifecycle(spawn_dynamodb().await).await;
}

async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    if_match: Option<&str>,
) -> (u16, Option<String>, Value) {
    let mut req = app.with_token(token, method, path);
    if let Some(b) = body {
        req = req.json(&b);
    }
    if let Some(v) = if_match {
        req = req.header("if-match", v);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let etag = resp
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = resp.text().await.expect("body");
    (
        status,
        etag,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn days_from_now(expires: &str) -> i64 {
    let at = OffsetDateTime::parse(expires, &Rfc3339).expect("rfc3339");
    ((at - OffsetDateTime::now_utc()).as_seconds_f64() / 86_400.0).round() as i64
}

fn new_tenant(id: &str) -> NewTenant {
    NewTenant {
        id: id.into(),
        display_name: "Globex".into(),
        portal_url: "https://portal.globex.example".into(),
        sender_address: "no-reply@globex.example".into(),
        reply_to: None,
        invitation_ttl_days: 7,
    }
}

async fn tenant_lifecycle(app: TestApp) {
    let id = format!("g{}", ulid::Ulid::new()).to_lowercase();
    let tenant = peak_domain::TenantId::parse(&id).expect("tenant id");
    let stores = &app.stores;
    let now = OffsetDateTime::now_utc();
    let created = tenants::create_tenant(
        stores.tenants.as_ref(),
        stores.profiles.as_ref(),
        catalogue(),
        new_tenant(&id),
        now,
    )
    .await
    .expect("create");
    // Twice: a clear error, and the first tenant stays as it was.
    let mut other = new_tenant(&id);
    other.display_name = "Someone else".into();
    let again = tenants::create_tenant(
        stores.tenants.as_ref(),
        stores.profiles.as_ref(),
        catalogue(),
        other,
        now,
    )
    .await;
    assert!(
        matches!(
            again,
            Err(peak_domain::Error::Conflict {
                code: "tenant_exists",
                ..
            })
        ),
        "{again:?}"
    );
    assert_eq!(
        tenants::get_tenant(stores.tenants.as_ref(), &tenant)
            .await
            .expect("get"),
        created
    );

    // The first admin: invited as anyone is (user `invited`, email in the
    // outbox with a link that lasts the tenant's 7 days).
    let state = &app.running.state;
    peak_local::seed_accounts(
        stores,
        &id,
        &[
            ("GLOBEX-1", "Globex One", None),
            ("ACC-1", "Account One", None),
        ],
    )
    .await
    .expect("the tenant's accounts");
    let ctx = Ctx {
        users: stores.users.as_ref(),
        profiles: stores.profiles.as_ref(),
        tenants: stores.tenants.as_ref(),
        accounts: stores.accounts.as_ref(),
        catalogue: catalogue(),
        settings: &state.settings,
        now,
        request_id: "test",
        tenant: None,
    };
    let admin = tenants::invite_admin(&ctx, &tenant, "Hank", "Scorpio", "hank@globex.example")
        .await
        .expect("invite admin");
    let mails: Vec<_> = app
        .outbox()
        .await
        .into_iter()
        .filter(|m| m.tenant_id == tenant)
        .collect();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].user_id, admin.id);
    assert_eq!(
        days_from_now(mails[0].data["expires_at"].as_str().expect("expires_at")),
        7
    );
    let link = mails[0].data["link"].as_str().expect("link");
    let token = link.rsplit('/').next().expect("token");
    let hank = app.activate(token).await;

    // Hank manages his tenant: settings read with their version...
    let (status, etag, body) = call(&app, &hank, Method::GET, "/settings", None, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(etag.as_deref(), Some("\"1\""));
    assert_eq!(body["invitation_ttl_days"], 7);
    assert_eq!(body["portal_url"], "https://portal.globex.example");
    // ...changed only with If-Match, within 1 to 30 days, never the portal URL.
    let patch = json!({"invitation_ttl_days": 3, "reply_to": "help@globex.example"});
    let (status, _, body) = call(
        &app,
        &hank,
        Method::PATCH,
        "/settings",
        Some(patch.clone()),
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (428, Some("if_match_required")),
        "{body}"
    );
    for bad in [
        json!({"invitation_ttl_days": 31}),
        json!({"invitation_ttl_days": 0}),
    ] {
        let (status, _, body) = call(
            &app,
            &hank,
            Method::PATCH,
            "/settings",
            Some(bad),
            Some("\"1\""),
        )
        .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["errors"][0]["field"], "invitation_ttl_days");
    }
    let (status, _, body) = call(
        &app,
        &hank,
        Method::PATCH,
        "/settings",
        Some(json!({"portal_url": "https://evil.example"})),
        Some("\"1\""),
    )
    .await;
    assert!(status == 400 || status == 422, "{status} {body}");
    let (status, etag, body) = call(
        &app,
        &hank,
        Method::PATCH,
        "/settings",
        Some(patch.clone()),
        Some("\"1\""),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(etag.as_deref(), Some("\"2\""));
    assert_eq!(body["invitation_ttl_days"], 3);
    assert_eq!(body["portal_url"], "https://portal.globex.example");
    let (status, _, body) = call(
        &app,
        &hank,
        Method::PATCH,
        "/settings",
        Some(json!({"invitation_ttl_days": 9})),
        Some("\"1\""),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (412, Some("stale_version")),
        "{body}"
    );

    // The very next invitation lasts 3 days: no redeploy.
    let (_, _, profiles) = call(&app, &hank, Method::GET, "/profiles", None, None).await;
    let standard = profiles["items"][0]["id"].clone();
    let (status, _, user) = call(
        &app,
        &hank,
        Method::POST,
        "/users",
        Some(json!({
            "first_name": "Homer", "last_name": "Simpson", "email": "homer@globex.example",
            "role": "customer", "profile_id": standard, "customer_accounts": ["GLOBEX-1"]
        })),
        None,
    )
    .await;
    assert_eq!(status, 201, "{user}");
    assert_eq!(
        days_from_now(
            user["invitation"]["expires_at"]
                .as_str()
                .expect("expires_at")
        ),
        3
    );

    // Audited, with what changed.
    let (_, _, audit) = call(&app, &hank, Method::GET, "/audit", None, None).await;
    let event = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["action"] == "tenant.settings_updated")
        .expect("settings change audited")
        .clone();
    assert_eq!(event["actor"], admin.id.as_str());
    let fields: Vec<_> = event["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["field"].clone())
        .collect();
    assert_eq!(
        fields,
        [
            json!("settings.invitation_ttl_days"),
            json!("settings.reply_to")
        ]
    );

    // Settings are the tenant's admins' only; a tenant configured by the
    // deployment alone has none to show.
    let (status, _, _) = call(
        &app,
        &app.token("customer"),
        Method::GET,
        "/settings",
        None,
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, _) = call(
        &app,
        &app.token("admin"),
        Method::GET,
        "/settings",
        None,
        None,
    )
    .await;
    assert_eq!(status, 404);

    // Links that work while the tenant is open: Homer's invitation and the
    // confirmation of Hank's new address.
    let homer_link = app
        .outbox()
        .await
        .into_iter()
        .find(|m| m.to.as_str() == "homer@globex.example")
        .expect("Homer's invitation")
        .data["link"]
        .as_str()
        .expect("link")
        .to_owned();
    let (_, me_etag, _) = call(&app, &hank, Method::GET, "/me", None, None).await;
    let (status, _, body) = call(
        &app,
        &hank,
        Method::PATCH,
        "/me",
        Some(json!({"email": "hank.new@globex.example"})),
        me_etag.as_deref(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let confirm_link = app
        .outbox()
        .await
        .into_iter()
        .find(|m| m.to.as_str() == "hank.new@globex.example")
        .expect("the confirmation email")
        .data["link"]
        .as_str()
        .expect("link")
        .to_owned();
    let path_of = |link: &str| {
        link[link
            .find("/invitations")
            .or(link.find("/email-verifications"))
            .expect("path")..]
            .to_owned()
    };
    let (homer_path, confirm_path) = (path_of(&homer_link), path_of(&confirm_link));

    // The invitation page is in the tenant's own name, and its sign-in
    // link goes to the tenant's portal (not the deployment's brand).
    let r = app
        .anonymous(Method::GET, &homer_path)
        .header("accept", "text/html")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    let html = r.text().await.expect("html");
    assert!(html.contains("invited to Globex"), "{html}");
    assert!(html.contains("https://portal.globex.example"), "{html}");

    // Closed: Hank is refused at once, with a valid token.
    tenants::close_tenant(stores.tenants.as_ref(), &tenant, OffsetDateTime::now_utc())
        .await
        .expect("close");
    // ...and the tenant's links accept and confirm nothing: 403
    // `tenant_closed` as JSON, a page saying the portal is closed to a
    // browser, with no button.
    for (method, path) in [
        (Method::GET, homer_path.clone()),
        (Method::POST, format!("{homer_path}/accept")),
        (Method::GET, confirm_path.clone()),
        (Method::POST, confirm_path.clone()),
    ] {
        let r = app
            .anonymous(method.clone(), &path)
            .send()
            .await
            .expect("send");
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("tenant_closed")),
            "{method} {path}: {body}"
        );
        let r = app
            .anonymous(method.clone(), &path)
            .header("accept", "text/html")
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 403, "{method} {path} (browser)");
        let html = r.text().await.expect("html");
        assert!(html.contains("This portal is closed"), "{html}");
        assert!(!html.contains("<form"), "{html}");
    }
    let hank_now = stores
        .users
        .get_user(&tenant, &admin.id)
        .await
        .expect("get")
        .expect("Hank");
    assert_eq!(hank_now.email.as_str(), "hank@globex.example");
    let homer = stores
        .users
        .find_user_by_email(
            &tenant,
            &peak_domain::model::user::Email::parse("homer@globex.example").expect("email"),
        )
        .await
        .expect("find")
        .expect("Homer");
    assert_eq!(
        homer.idp_subject, None,
        "the closed tenant's invitee got no login"
    );
    let (status, _, body) = call(&app, &hank, Method::GET, "/me", None, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("tenant_closed")),
        "{body}"
    );
    // Other tenants are untouched.
    let (status, _, _) = call(&app, &app.token("admin"), Method::GET, "/me", None, None).await;
    assert_eq!(status, 200);

    // Purged: every user deleted as user deletion does.
    let deleted = tenants::purge_tenant(&ctx, stores.tenants.as_ref(), &tenant)
        .await
        .expect("purge");
    assert_eq!(deleted, 2);
    let left = stores
        .users
        .list_users(
            &tenant,
            &Default::default(),
            &peak_domain::ports::PageRequest::first(10),
        )
        .await
        .expect("list");
    assert!(left.items.is_empty());
    let trail = stores
        .users
        .list_audit(&tenant, None, &peak_domain::ports::PageRequest::first(100))
        .await
        .expect("audit");
    let text = serde_json::to_string(&trail.items).expect("json");
    assert!(
        !text.contains("homer@globex.example") && !text.contains("Scorpio"),
        "{text}"
    );
}

#[tokio::test]
async fn each_request_sees_only_its_own_tenants_settings_on_sqlite() {
    own_settings_per_request(spawn_sqlite().await).await;
}

#[tokio::test]
async fn each_request_sees_only_its_own_tenants_settings_on_dynamodb() {
    own_settings_per_request(spawn_dynamodb().await).await;
}

/// A tenant created with `days` of invitation lifetime, and its first
/// admin's token (invited by the operator, accepted).
async fn tenant_with_admin(app: &TestApp, days: u8) -> (String, String) {
    let id = format!("t{}", ulid::Ulid::new()).to_lowercase();
    let tenant = peak_domain::TenantId::parse(&id).expect("tenant id");
    let stores = &app.stores;
    let now = OffsetDateTime::now_utc();
    let mut new = new_tenant(&id);
    new.invitation_ttl_days = days;
    tenants::create_tenant(
        stores.tenants.as_ref(),
        stores.profiles.as_ref(),
        catalogue(),
        new,
        now,
    )
    .await
    .expect("create");
    peak_local::seed_accounts(
        stores,
        &id,
        &[
            ("GLOBEX-1", "Globex One", None),
            ("ACC-1", "Account One", None),
        ],
    )
    .await
    .expect("the tenant's accounts");
    let ctx = Ctx {
        users: stores.users.as_ref(),
        profiles: stores.profiles.as_ref(),
        tenants: stores.tenants.as_ref(),
        accounts: stores.accounts.as_ref(),
        catalogue: catalogue(),
        settings: &app.running.state.settings,
        now,
        request_id: "test",
        tenant: None,
    };
    let admin = tenants::invite_admin(&ctx, &tenant, "Ann", "Admin", &format!("ann@{id}.example"))
        .await
        .expect("invite admin");
    let mail = app
        .outbox()
        .await
        .into_iter()
        .find(|m| m.user_id == admin.id)
        .expect("invitation email");
    let link = mail.data["link"].as_str().expect("link");
    let token = app.activate(link.rsplit('/').next().expect("token")).await;
    (id, token)
}

async fn invite_expiry_days(app: &TestApp, admin: &str, email: &str) -> i64 {
    let (_, _, profiles) = call(app, admin, Method::GET, "/profiles", None, None).await;
    let (status, _, user) = call(
        app,
        admin,
        Method::POST,
        "/users",
        Some(json!({
            "first_name": "Pat", "last_name": "Person", "email": email,
            "role": "customer", "profile_id": profiles["items"][0]["id"],
            "customer_accounts": ["ACC-1"]
        })),
        None,
    )
    .await;
    assert_eq!(status, 201, "{user}");
    days_from_now(
        user["invitation"]["expires_at"]
            .as_str()
            .expect("expires_at"),
    )
}

/// Two tenants' requests, interleaved on one server, each invite with their
/// own tenant's lifetime; a change by one tenant's admin applies to its
/// next request and never to the other tenant's.
async fn own_settings_per_request(app: TestApp) {
    let (a, a_admin) = tenant_with_admin(&app, 3).await;
    let (b, b_admin) = tenant_with_admin(&app, 14).await;
    let invite = |i: usize| {
        let (tenant, token) = if i.is_multiple_of(2) {
            (&a, &a_admin)
        } else {
            (&b, &b_admin)
        };
        let app = &app;
        async move { invite_expiry_days(app, token, &format!("p{i}@{tenant}.example")).await }
    };
    let days = tokio::join!(
        invite(0),
        invite(1),
        invite(2),
        invite(3),
        invite(4),
        invite(5)
    );
    assert_eq!(days, (3, 14, 3, 14, 3, 14));

    let (status, _, body) = call(
        &app,
        &a_admin,
        Method::PATCH,
        "/settings",
        Some(json!({"invitation_ttl_days": 21})),
        Some("\"1\""),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        invite_expiry_days(&app, &a_admin, &format!("next@{a}.example")).await,
        21
    );
    assert_eq!(
        invite_expiry_days(&app, &b_admin, &format!("next@{b}.example")).await,
        14
    );
}
