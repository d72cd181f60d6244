//! The user lifecycle end to end, over HTTP, on both stores: invitations and
//! their links, edits with versions, suspension, deletion and the audit
//! trail, idempotent and concurrent writes, who may do what to whom, tenant
//! isolation, the signed-out password reset, self-service and list filters.

use peak_domain::outbox::{EmailKind, OutboxEmail};
use peak_tests::{TestApp, problem, spawn_dynamodb, spawn_sqlite};
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// Runs every case below once on SQLite and once on DynamoDB Local. Multi
/// threaded, so that concurrent requests really run at the same time.
macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $case() { super::$case(super::spawn_sqlite().await).await; })*
        }
        mod dynamodb {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $case() { super::$case(super::spawn_dynamodb().await).await; })*
        }
    };
}

on_both_stores!(
    lifecycle_walk_through,
    invitation_link_states,
    idempotent_invite,
    concurrent_invites_of_one_email_create_one_user,
    concurrent_edits_with_one_version,
    permission_matrix,
    tenant_isolation,
    signed_out_reset_reveals_nothing,
    me_self_service,
    list_filters_and_search,
);

const ACC_A: &str = "ACC-A";
const ACC_B: &str = "ACC-B";
const ACC_C: &str = "ACC-C";

// ------------------------------------------------------------------ helpers

/// A response read whole: status, headers, raw text and JSON (`Null` when
/// the body is empty or not JSON).
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: HeaderMap,
    text: String,
    body: Value,
}

impl Reply {
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn etag(&self) -> &str {
        self.header("etag").expect("an ETag header")
    }

    fn id(&self) -> String {
        self.body["id"].as_str().expect("an id").to_owned()
    }
}

async fn send(req: RequestBuilder) -> Reply {
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        text,
        body,
    }
}

/// An address no other user of the test has.
fn unique_email(label: &str) -> String {
    format!(
        "{label}-{}@example.com",
        ulid::Ulid::new().to_string().to_lowercase()
    )
}

fn quoted(version: u64) -> String {
    format!("\"{version}\"")
}

fn invitation(
    first: &str,
    last: &str,
    email: &str,
    role: &str,
    accounts: &[&str],
    profile: &str,
) -> Value {
    json!({
        "first_name": first,
        "last_name": last,
        "email": email,
        "role": role,
        "profile_id": profile,
        "customer_accounts": accounts,
    })
}

/// A fresh profile of this tenant (as its admin); returns its id.
async fn new_profile(app: &TestApp, name: &str) -> String {
    app.create_profile(name).await["id"]
        .as_str()
        .expect("profile id")
        .to_owned()
}

async fn invite_as_admin(app: &TestApp, body: &Value) -> Reply {
    let r = send(app.admin(Method::POST, "/users").json(body)).await;
    assert_eq!(r.status, 201, "invite: {}", r.text);
    r
}

/// Pending emails to `address` (any tenant of this app's store).
async fn emails_to(app: &TestApp, address: &str) -> Vec<OutboxEmail> {
    app.outbox()
        .await
        .into_iter()
        .filter(|m| m.to.as_str().eq_ignore_ascii_case(address))
        .collect()
}

/// The one-time token at the end of an email's `data.link`.
fn link_token(mail: &OutboxEmail) -> String {
    let link = mail.data["link"].as_str().expect("data.link in the email");
    link.rsplit('/')
        .next()
        .expect("a last path segment")
        .to_owned()
}

/// `(version, body)` of a user read with `token`; `None` when it is a 404.
async fn read_user(app: &TestApp, token: &str, id: &str) -> Option<(u64, Value)> {
    let r = send(app.with_token(token, Method::GET, &format!("/users/{id}"))).await;
    match r.status {
        200 => Some((r.body["version"].as_u64().expect("version"), r.body)),
        404 => None,
        other => panic!("reading user {id}: {other} {}", r.text),
    }
}

/// The ids in a list response's items.
fn ids_of(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|u| u["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Every item of a list, page by page (`limit` per page when given),
/// checking that each page is a 200 of at most `limit` items.
async fn all_items(app: &TestApp, token: &str, query: &str, limit: Option<u32>) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..500 {
        let mut req = app.with_token(token, Method::GET, query);
        if let Some(l) = limit {
            req = req.query(&[("limit", l.to_string())]);
        }
        if let Some(c) = &cursor {
            req = req.query(&[("cursor", c)]);
        }
        let r = send(req).await;
        assert_eq!(r.status, 200, "{query} (cursor {cursor:?}): {}", r.text);
        let page = r.body["items"].as_array().expect("items");
        if let Some(l) = limit {
            assert!(
                page.len() <= l as usize,
                "{query}: {} items on a page",
                page.len()
            );
        }
        items.extend(page.iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
    panic!("{query}: the pages never end");
}

/// The ids of every user a list query returns (all pages).
async fn all_ids(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    ids_of(&all_items(app, token, query, None).await)
}

/// Another tenant, with an admin (bootstrapped) and an active customer user
/// on account `ACC-A` (the same account number as in this test's tenant)
/// who went through invitation and activation. Returns
/// (tenant, admin token, user id, user token).
async fn other_tenant_with_user(app: &TestApp, email: &str) -> (String, String, String, String) {
    let (t2, t2_admin) = app.other_tenant_admin().await;
    let profiles = send(app.with_token(&t2_admin, Method::GET, "/profiles")).await;
    assert_eq!(profiles.status, 200, "{}", profiles.text);
    let profile = profiles.body["items"][0]["id"]
        .as_str()
        .expect("the other tenant's seeded profile")
        .to_owned();
    let r = send(
        app.with_token(&t2_admin, Method::POST, "/users")
            .json(&invitation(
                "Otto",
                "Elsewhere",
                email,
                "customer",
                &[ACC_A],
                &profile,
            )),
    )
    .await;
    assert_eq!(r.status, 201, "invite in the other tenant: {}", r.text);
    let id = r.id();
    let mail = app
        .outbox()
        .await
        .into_iter()
        .find(|m| m.tenant_id.as_str() == t2 && m.user_id.as_str() == id)
        .expect("the other tenant's invitation email");
    let token = app.activate(&link_token(&mail)).await;
    (t2, t2_admin, id, token)
}

/// One checked request of a table-driven test.
struct Cell {
    route: String,
    actor: &'static str,
    target: &'static str,
    expected: u16,
    want_code: Option<&'static str>,
    got: u16,
    code: String,
    note: String,
}

impl Cell {
    fn ok(&self) -> bool {
        self.expected == self.got
            && self.note.is_empty()
            && self.want_code.is_none_or(|c| c == self.code)
    }
}

/// The usual problem code for an expected status.
fn code_for(status: u16) -> Option<&'static str> {
    match status {
        403 => Some("forbidden"),
        404 => Some("not_found"),
        _ => None,
    }
}

/// Panics with the whole table (wrong cells marked) unless every cell is right.
fn assert_cells(title: &str, cells: &[Cell]) {
    let wrong = cells.iter().filter(|c| !c.ok()).count();
    if wrong == 0 {
        return;
    }
    let mut out = format!(
        "{title}: {wrong} of {} cells wrong (marked ✗)\n",
        cells.len()
    );
    let _ = writeln!(
        out,
        "   {:<36} {:<20} {:<16} {:>24} {:>5}  code / note",
        "route", "actor", "target", "expected", "got"
    );
    for c in cells {
        let expected = match c.want_code {
            Some(code) => format!("{} {code}", c.expected),
            None => c.expected.to_string(),
        };
        let _ = writeln!(
            out,
            "{}  {:<36} {:<20} {:<16} {:>24} {:>5}  {}{}{}",
            if c.ok() { " " } else { "✗" },
            c.route,
            c.actor,
            c.target,
            expected,
            c.got,
            c.code,
            if c.note.is_empty() { "" } else { " — " },
            c.note
        );
    }
    panic!("{out}");
}

// -------------------------------------------------------------------- cases

async fn lifecycle_walk_through(app: TestApp) {
    let profile = new_profile(&app, "Standard customers").await;
    let (first, last) = ("Zelphira", "Quintanilla");
    let email = unique_email("zelphira.quintanilla");

    // Invite: 201, Location, ETag "1", invited, one invitation email.
    let r = invite_as_admin(
        &app,
        &invitation(first, last, &email, "customer", &[ACC_A], &profile),
    )
    .await;
    assert_eq!(r.etag(), "\"1\"");
    let id = r.id();
    assert_eq!(r.header("location"), Some(format!("/users/{id}").as_str()));
    assert_eq!(r.body["status"], "invited");
    assert_eq!(r.body["email"], email);
    assert_eq!(r.body["invitation"]["state"], "pending");
    assert_eq!(r.body["customer_accounts"], json!([ACC_A]));
    let mails = emails_to(&app, &email).await;
    assert_eq!(
        mails.len(),
        1,
        "exactly one email to the invitee: {mails:?}"
    );
    assert_eq!(mails[0].kind, EmailKind::Invitation);
    assert_eq!(mails[0].user_id.as_str(), id);
    let link = mails[0].data["link"].as_str().expect("link");
    assert!(
        link.starts_with(&format!("{}/invitations/", app.running.url())),
        "{link}"
    );
    let token = link_token(&mails[0]);
    assert!(token.len() >= 32, "an unguessable token: {token}");

    // Opening the link (twice) shows the invitation and consumes nothing.
    for _ in 0..2 {
        let r = send(app.anonymous(Method::GET, &format!("/invitations/{token}"))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["state"], "pending");
        assert_eq!(r.body["first_name"], first);
        assert_eq!(r.body["tenant"], app.tenant);
        let shown = r.body["email"].as_str().expect("masked email");
        assert!(shown.contains("***") && shown != email, "{shown}");
    }
    let (version, user) = read_user(&app, &app.token("admin"), &id)
        .await
        .expect("invited user");
    assert_eq!((version, user["status"].as_str()), (1, Some("invited")));

    // Accepting: where to set the password.
    let r = send(app.anonymous(Method::POST, &format!("/invitations/{token}/accept"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.body["password_setup_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("http")),
        "{}",
        r.text
    );
    // Setting the password activates the user.
    let user_token = app.activate(&token).await;
    let r = send(app.admin(Method::GET, &format!("/users/{id}"))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.body["invitation"]["state"], "accepted");
    let v = r.body["version"].as_u64().expect("version");
    assert_eq!(r.etag(), quoted(v));
    // The link has done its job.
    let r = send(app.anonymous(Method::GET, &format!("/invitations/{token}"))).await;
    assert_eq!(r.status, 410, "{}", r.text);
    assert_eq!(r.code(), "invitation_used");

    // Edit with If-Match; a stale one is refused and changes nothing; none
    // at all is a 428.
    let path = format!("/users/{id}");
    let r = send(
        app.admin(Method::PATCH, &path)
            .header("if-match", quoted(v))
            .json(&json!({"first_name": "Zelphine"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.etag(), quoted(v + 1));
    assert_eq!(r.body["first_name"], "Zelphine");
    let r = send(
        app.admin(Method::PATCH, &path)
            .header("if-match", quoted(v))
            .json(&json!({"first_name": "Stale"})),
    )
    .await;
    assert_eq!((r.status, r.code()), (412, "stale_version"), "{}", r.text);
    let r = send(
        app.admin(Method::PATCH, &path)
            .json(&json!({"first_name": "NoMatch"})),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (428, "if_match_required"),
        "{}",
        r.text
    );
    let (now_v, now) = read_user(&app, &app.token("admin"), &id)
        .await
        .expect("user");
    assert_eq!(
        (now_v, now["first_name"].as_str()),
        (v + 1, Some("Zelphine"))
    );

    // Suspend: the user's own token is refused at once, on every route.
    let r = send(app.admin(Method::POST, &format!("{path}/suspend"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "suspended");
    for route in ["/me", "/profile-catalogue"] {
        let r = send(app.with_token(&user_token, Method::GET, route)).await;
        assert_eq!(
            (r.status, r.code()),
            (403, "user_suspended"),
            "{route}: {}",
            r.text
        );
    }

    // Enable: the token works again.
    let r = send(app.admin(Method::POST, &format!("{path}/enable"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "active");
    let r = send(app.with_token(&user_token, Method::GET, "/me")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["id"], id.as_str());

    // A password reset by the admin: 202 and an email.
    let r = send(app.admin(Method::POST, &format!("{path}/password-reset"))).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let resets: Vec<_> = emails_to(&app, &email)
        .await
        .into_iter()
        .filter(|m| m.kind == EmailKind::PasswordReset)
        .collect();
    assert_eq!(resets.len(), 1, "{resets:?}");

    // Delete: gone, and the token belongs to nobody.
    let r = send(app.admin(Method::DELETE, &path)).await;
    assert_eq!(r.status, 204, "{}", r.text);
    problem(app.admin(Method::GET, &path).send().await.unwrap(), 404).await;
    let r = send(app.with_token(&user_token, Method::GET, "/me")).await;
    assert_eq!((r.status, r.code()), (403, "unknown_user"), "{}", r.text);

    // The audit trail, newest first, without who they were.
    let r = send(app.admin(Method::GET, &format!("{path}/audit"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let actions: Vec<&str> = r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        [
            "user.deleted",
            "user.password_reset_requested",
            "user.enabled",
            "user.suspended",
            "user.updated",
            "user.activated",
            "invitation.accepted",
            "user.invited",
        ]
    );
    let local_part = email.split('@').next().unwrap();
    for personal in [first, last, "Zelphine", email.as_str(), local_part] {
        assert!(
            !r.text.contains(personal),
            "the audit of a deleted user still holds {personal:?}: {}",
            r.text
        );
    }
}

async fn invitation_link_states(app: TestApp) {
    let profile = new_profile(&app, "Invitees").await;
    let email = unique_email("link.states");
    let body = invitation("Ruth", "Resend", &email, "customer", &[ACC_A], &profile);
    let id = invite_as_admin(&app, &body).await.id();
    let first = link_token(&emails_to(&app, &email).await[0]);

    // Resend: a new link; the old one is unknown from now on.
    let r = send(app.admin(Method::POST, &format!("/users/{id}/invitation/resend"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "invited");
    assert_eq!(r.body["invitation"]["state"], "pending");
    let mails = emails_to(&app, &email).await;
    assert_eq!(mails.len(), 2, "{mails:?}");
    let resent = mails
        .iter()
        .find(|m| m.kind == EmailKind::InvitationResent)
        .expect("an invitation_resent email");
    let second = link_token(resent);
    assert_ne!(first, second);
    let r = send(app.anonymous(Method::GET, &format!("/invitations/{first}"))).await;
    assert_eq!((r.status, r.code()), (404, "not_found"), "{}", r.text);
    let r = send(app.anonymous(Method::POST, &format!("/invitations/{first}/accept"))).await;
    assert_eq!(
        r.status, 404,
        "the replaced link cannot be accepted: {}",
        r.text
    );
    let r = send(app.anonymous(Method::GET, &format!("/invitations/{second}"))).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // The address is taken while the invitation is pending (in any case).
    for address in [email.clone(), email.to_uppercase()] {
        let r = send(app.admin(Method::POST, "/users").json(&invitation(
            "Other",
            "Person",
            &address,
            "customer",
            &[ACC_A],
            &profile,
        )))
        .await;
        assert_eq!(
            (r.status, r.code()),
            (409, "email_taken"),
            "{address}: {}",
            r.text
        );
    }

    // Revoke: the link says so; revoking again is a conflict.
    let r = send(app.admin(Method::POST, &format!("/users/{id}/invitation/revoke"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["invitation"]["state"], "revoked");
    assert_eq!(r.body["status"], "invited");
    let r = send(app.anonymous(Method::GET, &format!("/invitations/{second}"))).await;
    assert_eq!(
        (r.status, r.code()),
        (410, "invitation_revoked"),
        "{}",
        r.text
    );
    let r = send(app.anonymous(Method::POST, &format!("/invitations/{second}/accept"))).await;
    assert_eq!(
        (r.status, r.code()),
        (410, "invitation_revoked"),
        "{}",
        r.text
    );
    let r = send(app.admin(Method::POST, &format!("/users/{id}/invitation/revoke"))).await;
    assert_eq!(
        (r.status, r.code()),
        (409, "no_pending_invitation"),
        "{}",
        r.text
    );

    // Inviting the address again is a fresh invite of the same user.
    let again = invitation("Ruth", "Reinvited", &email, "customer", &[ACC_A], &profile);
    let r = invite_as_admin(&app, &again).await;
    assert_eq!(r.id(), id, "re-invite keeps the user id");
    assert_eq!(r.body["status"], "invited");
    assert_eq!(r.body["last_name"], "Reinvited");
    assert_eq!(r.body["invitation"]["state"], "pending");
    let tokens: BTreeSet<String> = emails_to(&app, &email)
        .await
        .iter()
        .filter(|m| m.kind == EmailKind::Invitation)
        .map(link_token)
        .collect();
    let third: Vec<&String> = tokens.iter().filter(|t| **t != first).collect();
    assert_eq!(third.len(), 1, "one new invitation email: {tokens:?}");
    let r = send(app.anonymous(Method::GET, &format!("/invitations/{}", third[0]))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(app.anonymous(Method::GET, &format!("/invitations/{second}"))).await;
    assert_eq!(r.status, 404, "only the newest link resolves: {}", r.text);
    let list = all_items(
        &app,
        &app.token("admin"),
        &format!("/users?email={email}"),
        None,
    )
    .await;
    assert_eq!(ids_of(&list), [id]);
}

async fn idempotent_invite(app: TestApp) {
    let profile = new_profile(&app, "Invitees").await;
    let email = unique_email("idem");
    let body = invitation("Ida", "Potent", &email, "customer", &[ACC_A], &profile);
    let key = format!("invite-{}", ulid::Ulid::new());

    let first = send(
        app.admin(Method::POST, "/users")
            .header("idempotency-key", key.as_str())
            .json(&body),
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.header("idempotent-replayed"), None);
    let second = send(
        app.admin(Method::POST, "/users")
            .header("idempotency-key", key.as_str())
            .json(&body),
    )
    .await;
    assert_eq!(second.status, 201, "{}", second.text);
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(second.text, first.text, "the same body");
    assert_eq!(second.header("location"), first.header("location"));
    assert_eq!(second.header("etag"), first.header("etag"));

    let list = all_items(
        &app,
        &app.token("admin"),
        &format!("/users?email={email}"),
        None,
    )
    .await;
    assert_eq!(ids_of(&list), [first.id()], "exactly one user");
    let mails = emails_to(&app, &email).await;
    assert_eq!(mails.len(), 1, "exactly one invitation email: {mails:?}");

    // The same key for another request is refused and creates nothing.
    let other_email = unique_email("idem.other");
    let other = invitation("Ida", "Other", &other_email, "customer", &[ACC_A], &profile);
    let r = send(
        app.admin(Method::POST, "/users")
            .header("idempotency-key", key.as_str())
            .json(&other),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (422, "idempotency_key_reused"),
        "{}",
        r.text
    );
    let list = all_items(
        &app,
        &app.token("admin"),
        &format!("/users?email={other_email}"),
        None,
    )
    .await;
    assert!(list.is_empty(), "{list:?}");
    // Keys are per caller: another admin may use the same key.
    let (_, other_admin) = app.seed_user("admin", &[], &[], &[]).await;
    let r = send(
        app.with_token(&other_admin, Method::POST, "/users")
            .header("idempotency-key", key.as_str())
            .json(&other),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.header("idempotent-replayed"), None);
}

async fn concurrent_invites_of_one_email_create_one_user(app: TestApp) {
    let profile = new_profile(&app, "Invitees").await;
    let email = unique_email("race");
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let req = app.admin(Method::POST, "/users").json(&invitation(
                &format!("Racer{i}"),
                "Same",
                &email,
                "customer",
                &[ACC_A],
                &profile,
            ));
            tokio::spawn(send(req))
        })
        .collect();
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.expect("task"));
    }
    let summary: Vec<String> = replies
        .iter()
        .map(|r| format!("{} {}", r.status, r.code()))
        .collect();
    let created: Vec<&Reply> = replies.iter().filter(|r| r.status == 201).collect();
    assert_eq!(created.len(), 1, "exactly one 201: {summary:?}");
    assert!(
        replies
            .iter()
            .filter(|r| r.status != 201)
            .all(|r| r.status == 409 && r.code() == "email_taken"),
        "every other one 409 email_taken: {summary:?}"
    );
    let list = all_items(
        &app,
        &app.token("admin"),
        &format!("/users?email={email}"),
        None,
    )
    .await;
    assert_eq!(ids_of(&list), [created[0].id()], "one user");
    let mails = emails_to(&app, &email).await;
    assert_eq!(mails.len(), 1, "one invitation email: {mails:?}");
    assert_eq!(mails[0].user_id.as_str(), created[0].id());
}

async fn concurrent_edits_with_one_version(app: TestApp) {
    let profile = new_profile(&app, "Invitees").await;
    let email = unique_email("edits");
    let id = invite_as_admin(
        &app,
        &invitation("Eddie", "Edits", &email, "customer", &[ACC_A], &profile),
    )
    .await
    .id();
    let path = format!("/users/{id}");
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let req = app
                .admin(Method::PATCH, &path)
                .header("if-match", "\"1\"")
                .json(&json!({"first_name": format!("Editor{i}")}));
            tokio::spawn(send(req))
        })
        .collect();
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.expect("task"));
    }
    let summary: Vec<String> = replies
        .iter()
        .map(|r| format!("{} {}", r.status, r.code()))
        .collect();
    let won: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
    assert_eq!(won.len(), 1, "exactly one 200: {summary:?}");
    assert_eq!(
        replies
            .iter()
            .filter(|r| r.status == 412 && r.code() == "stale_version")
            .count(),
        19,
        "19 × 412 stale_version: {summary:?}"
    );
    let winner = won[0].body["first_name"].as_str().expect("name").to_owned();
    let (version, now) = read_user(&app, &app.token("admin"), &id)
        .await
        .expect("user");
    assert_eq!(version, 2);
    assert_eq!(now["first_name"], winner.as_str());
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Get,
    Patch,
    Suspend,
    Enable,
    Reset,
    Delete,
    Audit,
}

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::Get => "GET /users/{id}",
            Op::Patch => "PATCH /users/{id}",
            Op::Suspend => "POST /users/{id}/suspend",
            Op::Enable => "POST /users/{id}/enable (suspended)",
            Op::Reset => "POST /users/{id}/password-reset",
            Op::Delete => "DELETE /users/{id}",
            Op::Audit => "GET /users/{id}/audit",
        }
    }

    /// Whether success changes the stored user (a new version). Asking for
    /// a password reset queues an email and an audit event but leaves the
    /// user's version alone, so nobody's If-Match goes stale over it.
    fn mutates(self) -> bool {
        !matches!(self, Op::Get | Op::Audit | Op::Reset)
    }

    fn request(self, app: &TestApp, token: &str, id: &str, version: u64) -> RequestBuilder {
        let path = format!("/users/{id}");
        match self {
            Op::Get => app.with_token(token, Method::GET, &path),
            Op::Patch => app
                .with_token(token, Method::PATCH, &path)
                .header("if-match", quoted(version))
                .json(&json!({"first_name": "Changed"})),
            Op::Suspend => app.with_token(token, Method::POST, &format!("{path}/suspend")),
            Op::Enable => app.with_token(token, Method::POST, &format!("{path}/enable")),
            Op::Reset => app.with_token(token, Method::POST, &format!("{path}/password-reset")),
            Op::Delete => app.with_token(token, Method::DELETE, &path),
            Op::Audit => app.with_token(token, Method::GET, &format!("{path}/audit")),
        }
    }
}

/// "stronger": a customer of the actors' account holding an extension group
/// (Billing Manager) none of the non-admin actors holds — the delegation
/// rule lets them see that colleague but not act on them
/// (`user_holds_more_than_you`).
const TARGETS: [&str; 4] = [
    "own account",
    "other account",
    "other tenant",
    "stronger, own acct",
];

/// Rows: the actors in order (admin, rep+manage, rep default,
/// cust+user_manager, customer); columns: [`TARGETS`].
#[rustfmt::skip]
const MATRIX: &[(Op, [[u16; 4]; 5])] = &[
    (Op::Get,     [[200, 200, 404, 200], [200, 404, 404, 200], [404, 404, 404, 404], [200, 404, 404, 200], [404, 404, 404, 404]]),
    (Op::Patch,   [[200, 200, 404, 200], [200, 404, 404, 403], [404, 404, 404, 404], [200, 404, 404, 403], [404, 404, 404, 404]]),
    (Op::Suspend, [[200, 200, 404, 200], [200, 404, 404, 403], [404, 404, 404, 404], [200, 404, 404, 403], [404, 404, 404, 404]]),
    (Op::Enable,  [[200, 200, 404, 200], [200, 404, 404, 403], [404, 404, 404, 404], [200, 404, 404, 403], [404, 404, 404, 404]]),
    (Op::Reset,   [[202, 202, 404, 202], [202, 404, 404, 403], [404, 404, 404, 404], [202, 404, 404, 403], [404, 404, 404, 404]]),
    (Op::Delete,  [[204, 204, 404, 204], [403, 404, 404, 403], [404, 404, 404, 404], [403, 404, 404, 403], [404, 404, 404, 404]]),
    (Op::Audit,   [[200, 200, 404, 200], [403, 404, 404, 403], [404, 404, 404, 404], [403, 404, 404, 403], [404, 404, 404, 404]]),
];

struct Actor {
    name: &'static str,
    id: String,
    token: String,
}

async fn permission_matrix(app: TestApp) {
    let actors = [
        ("admin", app.seed_user("admin", &[], &[], &[]).await),
        (
            "rep+manage",
            app.seed_user(
                "sales_rep",
                &[ACC_A],
                &[
                    ("my_customers.customer_users", "manage"),
                    ("my_customers.invite_customer_users", "enabled"),
                ],
                &[],
            )
            .await,
        ),
        (
            "rep default",
            app.seed_user("sales_rep", &[ACC_A], &[], &[]).await,
        ),
        (
            "cust+user_manager",
            app.seed_user("customer", &[ACC_A], &[], &["user_manager"])
                .await,
        ),
        (
            "customer",
            app.seed_user("customer", &[ACC_A], &[], &[]).await,
        ),
    ]
    .map(|(name, (id, token))| Actor { name, id, token });
    let admin = &actors[0].token;
    let (_, t2_admin, t2_user, _) = other_tenant_with_user(&app, &unique_email("elsewhere")).await;
    let (t2_version, _) = read_user(&app, &t2_admin, &t2_user)
        .await
        .expect("the other tenant's user");
    let mut cells = Vec::new();

    // Every route on a user × actor × where the target is. A fresh target
    // per cell (suspended first for enable), so cells cannot interfere.
    for (op, table) in MATRIX {
        for (ai, actor) in actors.iter().enumerate() {
            for (ri, target) in TARGETS.into_iter().enumerate() {
                let (id, reader) = if ri == 2 {
                    (t2_user.clone(), t2_admin.as_str())
                } else {
                    let account = if ri == 1 { ACC_B } else { ACC_A };
                    let groups: &[&str] = if ri == 3 { &["billing_manager"] } else { &[] };
                    let (id, _) = app.seed_user("customer", &[account], &[], groups).await;
                    if *op == Op::Enable {
                        let r = send(app.with_token(
                            admin,
                            Method::POST,
                            &format!("/users/{id}/suspend"),
                        ))
                        .await;
                        assert_eq!(r.status, 200, "suspending a target first: {}", r.text);
                    }
                    (id, admin.as_str())
                };
                let (before, _) = read_user(&app, reader, &id).await.expect("target");
                let r = send(op.request(&app, &actor.token, &id, before)).await;
                let after = read_user(&app, reader, &id).await.map(|(v, _)| v);
                let succeeded = (200..300).contains(&r.status);
                let note = match (succeeded && op.mutates(), after) {
                    (true, Some(v)) if *op == Op::Delete => {
                        format!("deleted, yet still there (v{v})")
                    }
                    (true, Some(v)) if v <= before => format!("succeeded, yet version stayed {v}"),
                    (true, None) if *op != Op::Delete => {
                        "succeeded, and the target vanished".to_owned()
                    }
                    (false, a) if a != Some(before) => format!("target changed: v{before} → {a:?}"),
                    _ => String::new(),
                };
                let expected = table[ai][ri];
                let reach_refusal =
                    ri == 3 && expected == 403 && !matches!(op, Op::Delete | Op::Audit);
                cells.push(Cell {
                    route: op.label().to_owned(),
                    actor: actor.name,
                    target,
                    expected,
                    want_code: if reach_refusal {
                        Some("user_holds_more_than_you")
                    } else {
                        code_for(expected)
                    },
                    got: r.status,
                    code: r.code().to_owned(),
                    note,
                });
            }
        }
    }

    // Listing one account: who may, and what they see.
    let (list_own, _) = app.seed_user("customer", &[ACC_A], &[], &[]).await;
    let (list_other, _) = app.seed_user("customer", &[ACC_B], &[], &[]).await;
    for (actor, expected) in actors.iter().zip([200, 200, 403, 200, 403]) {
        let r = send(app.with_token(
            &actor.token,
            Method::GET,
            &format!("/users?account={ACC_A}"),
        ))
        .await;
        let mut note = String::new();
        if r.status == 200 {
            let items =
                all_items(&app, &actor.token, &format!("/users?account={ACC_A}"), None).await;
            let ids = ids_of(&items);
            if !ids.contains(&list_own) {
                note.push_str("own-account user missing; ");
            }
            if ids.contains(&list_other) {
                note.push_str("other-account user listed; ");
            }
            if ids.contains(&t2_user) {
                note.push_str("other tenant's user listed; ");
            }
            if actor.name != "admin" && items.iter().any(|u| u["role"] != "customer") {
                note.push_str("a non-customer listed to a non-admin; ");
            }
            if actor.name == "admin" && !ids.contains(&actors[1].id) {
                note.push_str("the rep on the account missing for the admin; ");
            }
        }
        cells.push(Cell {
            route: format!("GET /users?account={ACC_A}"),
            actor: actor.name,
            target: "-",
            expected,
            want_code: code_for(expected),
            got: r.status,
            code: r.code().to_owned(),
            note,
        });
    }

    // Inviting a customer onto an account the actor serves, and onto one
    // they do not.
    let profile = new_profile(&app, "Invitees").await;
    let invite_expected = [[201, 201], [201, 403], [403, 403], [201, 403], [403, 403]];
    for (actor, expected) in actors.iter().zip(invite_expected) {
        for ((account, target), expected) in
            [(ACC_A, "onto own account"), (ACC_B, "onto other acct")]
                .into_iter()
                .zip(expected)
        {
            let email = unique_email("invitee");
            let r = send(
                app.with_token(&actor.token, Method::POST, "/users")
                    .json(&invitation(
                        "Ivy",
                        "Invitee",
                        &email,
                        "customer",
                        &[account],
                        &profile,
                    )),
            )
            .await;
            let stored = all_items(&app, admin, &format!("/users?email={email}"), None)
                .await
                .len();
            let note = match (r.status == 201, stored) {
                (true, 1) | (false, 0) => String::new(),
                (_, n) => format!("{n} users stored with that address"),
            };
            cells.push(Cell {
                route: "POST /users (customer)".to_owned(),
                actor: actor.name,
                target,
                expected,
                // Reps without the right to invite are refused as such;
                // those who may invite, for the account.
                want_code: match (expected, account) {
                    (403, ACC_B) if matches!(actor.name, "rep+manage" | "cust+user_manager") => {
                        Some("account_not_served")
                    }
                    _ => code_for(expected),
                },
                got: r.status,
                code: r.code().to_owned(),
                note,
            });
        }
    }

    // Nobody suspends or deletes themselves.
    for actor in &actors {
        for (route, req) in [
            (
                "POST /users/{me}/suspend",
                app.with_token(
                    &actor.token,
                    Method::POST,
                    &format!("/users/{}/suspend", actor.id),
                ),
            ),
            (
                "DELETE /users/{me}",
                app.with_token(
                    &actor.token,
                    Method::DELETE,
                    &format!("/users/{}", actor.id),
                ),
            ),
        ] {
            let r = send(req).await;
            let me = send(app.with_token(&actor.token, Method::GET, "/me")).await;
            cells.push(Cell {
                route: route.to_owned(),
                actor: actor.name,
                target: "themselves",
                expected: 409,
                want_code: Some("cannot_act_on_self"),
                got: r.status,
                code: r.code().to_owned(),
                note: if me.status == 200 && me.body["status"] == "active" {
                    String::new()
                } else {
                    format!("afterwards GET /me is {} {}", me.status, me.code())
                },
            });
        }
    }

    // The delegation rule: only an admin makes someone an admin, hands out
    // accounts, groups or permissions beyond their own, sets an account
    // number or changes another user's login email.
    let strong_profile = {
        let id = new_profile(&app, "Stronger than Standard").await;
        let r = send(
            app.with_token(admin, Method::PATCH, &format!("/profiles/{id}"))
                .header("if-match", "\"1\"")
                .json(&json!({"settings": {"my_subscriptions.cancel": "enabled", "my_cases.edit": "enabled"}})),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        id
    };
    for (ai, grant_expected, accounts_expected) in [(0, 200, 200), (1, 403, 403), (3, 403, 403)] {
        let actor = &actors[ai];
        for (what, patch, expected, code) in [
            (
                "role admin",
                json!({"role": "admin"}),
                grant_expected,
                "role_not_grantable",
            ),
            (
                "accounts A+B",
                json!({"customer_accounts": [ACC_A, ACC_B]}),
                accounts_expected,
                "account_not_served",
            ),
            (
                "email",
                json!({"email": unique_email("taken-over")}),
                grant_expected,
                "email_change_admin_only",
            ),
            (
                "account_number",
                json!({"account_number": "OTHER-CO-1"}),
                grant_expected,
                "account_number_admin_only",
            ),
            (
                "groups +billing_manager",
                json!({"extension_groups": ["billing_manager"]}),
                grant_expected,
                "group_not_held",
            ),
            (
                "profile stronger",
                json!({"profile_id": strong_profile}),
                grant_expected,
                "permission_exceeds_yours",
            ),
        ] {
            let (id, _) = app.seed_user("customer", &[ACC_A], &[], &[]).await;
            let (before, _) = read_user(&app, admin, &id).await.expect("target");
            let r = send(
                app.with_token(&actor.token, Method::PATCH, &format!("/users/{id}"))
                    .header("if-match", quoted(before))
                    .json(&patch),
            )
            .await;
            let (after, user) = read_user(&app, admin, &id).await.expect("target");
            let changed = after != before;
            let note = if changed == (r.status == 200) {
                String::new()
            } else {
                format!("stored user v{after}: role {}", user["role"])
            };
            cells.push(Cell {
                route: format!("PATCH /users/{{id}} {what}"),
                actor: actor.name,
                target: "own account",
                expected,
                want_code: (expected == 403).then_some(code),
                got: r.status,
                code: r.code().to_owned(),
                note,
            });
        }
        let email = unique_email("would-be-admin");
        let r = send(
            app.with_token(&actor.token, Method::POST, "/users")
                .json(&invitation(
                    "Adam",
                    "Min",
                    &email,
                    "admin",
                    &[ACC_A],
                    &profile,
                )),
        )
        .await;
        let expected = if ai == 0 { 201 } else { 403 };
        cells.push(Cell {
            route: "POST /users (role admin)".to_owned(),
            actor: actor.name,
            target: "onto own account",
            expected,
            want_code: (expected == 403).then_some("role_not_grantable"),
            got: r.status,
            code: r.code().to_owned(),
            note: String::new(),
        });
    }

    // The other tenant's user went through all of that untouched.
    let (t2_after, t2_now) = read_user(&app, &t2_admin, &t2_user)
        .await
        .expect("the other tenant's user still exists");
    assert_eq!(
        (t2_after, t2_now["status"].as_str()),
        (t2_version, Some("active"))
    );
    assert_cells("permission matrix", &cells);
}

async fn tenant_isolation(app: TestApp) {
    let subject = format!("auth0|t1-only-{}", ulid::Ulid::new());
    let t1_active = app
        .seed_user_with_subject(&subject, "customer", &[ACC_A], &[], &[])
        .await;
    let profile = new_profile(&app, "Invitees").await;
    let shared_email = unique_email("shared");
    let t1_invited = invite_as_admin(
        &app,
        &invitation(
            "Tess",
            "Tenantone",
            &shared_email,
            "customer",
            &[ACC_A],
            &profile,
        ),
    )
    .await
    .id();
    let (t2, t2_admin, t2_user, _) = other_tenant_with_user(&app, &unique_email("t2")).await;
    let t1_admin = app.token("admin");
    let t1_ids = [t1_active.clone(), t1_invited.clone()];

    // Every /users/{id} route on T1's users, as T2's admin: not found.
    let mut wrong = Vec::new();
    for id in &t1_ids {
        let (before, _) = read_user(&app, &t1_admin, id).await.expect("T1 user");
        let path = format!("/users/{id}");
        let routes = [
            (Method::GET, path.clone()),
            (Method::PATCH, path.clone()),
            (Method::DELETE, path.clone()),
            (Method::POST, format!("{path}/suspend")),
            (Method::POST, format!("{path}/enable")),
            (Method::POST, format!("{path}/password-reset")),
            (Method::POST, format!("{path}/invitation/resend")),
            (Method::POST, format!("{path}/invitation/revoke")),
            (Method::GET, format!("{path}/audit")),
        ];
        for (method, route) in routes {
            let mut req = app
                .with_token(&t2_admin, method.clone(), &route)
                .header("if-match", quoted(before));
            if method == Method::PATCH {
                req = req.json(&json!({"first_name": "Pwned"}));
            }
            let r = send(req).await;
            if (r.status, r.code()) != (404, "not_found") {
                wrong.push(format!("{method} {route}: {} {}", r.status, r.text));
            }
        }
        let (after, _) = read_user(&app, &t1_admin, id)
            .await
            .expect("T1 user survives");
        if after != before {
            wrong.push(format!("T1 user {id} changed: v{before} → v{after}"));
        }
    }

    // The same address may be a user in both tenants; lists never mix.
    let t2_profile = send(app.with_token(&t2_admin, Method::GET, "/profiles"))
        .await
        .body["items"][0]["id"]
        .as_str()
        .expect("T2 profile")
        .to_owned();
    let r = send(
        app.with_token(&t2_admin, Method::POST, "/users")
            .json(&invitation(
                "Tess",
                "Tenanttwo",
                &shared_email,
                "customer",
                &[ACC_A],
                &t2_profile,
            )),
    )
    .await;
    assert_eq!(
        r.status, 201,
        "the same address in another tenant: {}",
        r.text
    );
    let t2_shared = r.id();
    let t2_ids = [t2_user.clone(), t2_shared.clone()];
    for query in [
        "/users".to_owned(),
        format!("/users?account={ACC_A}"),
        format!("/users?email={shared_email}"),
        "/users?q=tenant".to_owned(),
        "/users?status=invited".to_owned(),
        "/users?role=customer".to_owned(),
    ] {
        let t1_list = ids_of(&all_items(&app, &t1_admin, &query, None).await);
        if t1_list.iter().any(|id| t2_ids.contains(id)) {
            wrong.push(format!("T1 {query} lists a T2 user: {t1_list:?}"));
        }
        let t2_list = ids_of(&all_items(&app, &t2_admin, &query, None).await);
        if t2_list.iter().any(|id| t1_ids.contains(id)) {
            wrong.push(format!("T2 {query} lists a T1 user: {t2_list:?}"));
        }
    }
    let by_email = ids_of(
        &all_items(
            &app,
            &t1_admin,
            &format!("/users?email={shared_email}"),
            None,
        )
        .await,
    );
    if by_email != [t1_invited.clone()] {
        wrong.push(format!(
            "T1 ?email= shows {by_email:?}, not just its own user"
        ));
    }

    // T2's tenant claim with a T1 user's subject: nobody there.
    let crossed = app.running.token(&t2, &subject, "admin").expect("token");
    for route in [
        "/me".to_owned(),
        format!("/users/{t1_active}"),
        "/users".to_owned(),
    ] {
        let r = send(app.with_token(&crossed, Method::GET, &route)).await;
        if (r.status, r.code()) != (403, "unknown_user") {
            wrong.push(format!(
                "T2 claim + T1 subject, GET {route}: {} {}",
                r.status, r.text
            ));
        }
    }
    // …while the same subject in its own tenant is fine.
    let own = app
        .running
        .token(&app.tenant, &subject, "customer")
        .expect("token");
    let r = send(app.with_token(&own, Method::GET, "/me")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["id"], t1_active.as_str());

    assert!(
        wrong.is_empty(),
        "tenant isolation broken:\n{}",
        wrong.join("\n")
    );
}

async fn signed_out_reset_reveals_nothing(app: TestApp) {
    let (_, token) = app.seed_user("customer", &[ACC_A], &[], &[]).await;
    let me = send(app.with_token(&token, Method::GET, "/me")).await;
    let known = me.body["email"].as_str().expect("email").to_owned();
    let reset = |email: &str| {
        app.anonymous(Method::POST, "/password-resets")
            .json(&json!({"tenant": app.tenant, "email": email}))
    };
    let outbox_before = app.outbox().await.len();

    let for_known = send(reset(&known)).await;
    let unknown = unique_email("nobody");
    let for_unknown = send(reset(&unknown)).await;
    assert_eq!(for_known.status, 202, "{}", for_known.text);
    assert_eq!(for_unknown.status, 202, "{}", for_unknown.text);
    assert_eq!(for_known.text, for_unknown.text, "identical bodies");
    assert_eq!(
        for_known.header("content-type"),
        for_unknown.header("content-type")
    );
    let resets = emails_to(&app, &known).await;
    assert_eq!(resets.len(), 1, "{resets:?}");
    assert_eq!(resets[0].kind, EmailKind::PasswordReset);
    assert!(emails_to(&app, &unknown).await.is_empty());
    assert_eq!(app.outbox().await.len(), outbox_before + 1);

    // An invited user (no password yet) gets the same answer and no email.
    let profile = new_profile(&app, "Invitees").await;
    let invited = unique_email("invited");
    invite_as_admin(
        &app,
        &invitation("Ina", "Vited", &invited, "customer", &[ACC_A], &profile),
    )
    .await;
    let r = send(reset(&invited)).await;
    assert_eq!((r.status, r.text.as_str()), (202, for_known.text.as_str()));
    assert!(
        emails_to(&app, &invited)
            .await
            .iter()
            .all(|m| m.kind != EmailKind::PasswordReset)
    );

    // Five an hour per address; the sixth is a 429 with Retry-After. (The
    // window is the clock hour: if the loop straddles one, try again.)
    let hour = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            / 3600
    };
    let mut limited = None;
    for _attempt in 0..2 {
        let address = unique_email("flood");
        let started = hour();
        let mut statuses = Vec::new();
        for _ in 0..5 {
            statuses.push(send(reset(&address)).await.status);
        }
        let sixth = send(reset(&address)).await;
        if hour() != started {
            continue;
        }
        assert_eq!(statuses, [202; 5], "the first five are accepted");
        limited = Some(sixth);
        break;
    }
    let sixth = limited.expect("a rate-limit window without an hour boundary");
    assert_eq!(
        (sixth.status, sixth.code()),
        (429, "too_many_requests"),
        "{}",
        sixth.text
    );
    let retry_after: u64 = sixth
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    // The limit is per address.
    assert_eq!(send(reset(&known)).await.status, 202);

    let r = send(reset("not an address")).await;
    assert_eq!(
        (r.status, r.code()),
        (422, "validation_failed"),
        "{}",
        r.text
    );
    assert_eq!(r.body["errors"][0]["field"], "email");
}

async fn me_self_service(app: TestApp) {
    let (id, token) = app
        .seed_user(
            "customer",
            &[ACC_A],
            &[("my_subscriptions.cancel", "enabled")],
            &[],
        )
        .await;
    let me = |method: Method, path: &str| app.with_token(&token, method, path);

    let r = send(me(Method::GET, "/me")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["id"], id.as_str());
    assert_eq!(r.body["role"], "customer");
    assert_eq!(r.body["status"], "active");
    let permissions = &r.body["permissions"];
    assert_eq!(permissions["role"], "customer", "{}", r.text);
    assert_eq!(
        permissions["settings"]["my_subscriptions.cancel"],
        "enabled"
    );
    assert_eq!(
        permissions["settings"]["my_account.account_users"],
        "hidden"
    );
    assert!(
        permissions["settings"]
            .get("my_customers.customer_users")
            .is_none(),
        "My Customers does not apply to a customer: {permissions}"
    );
    let old_email = r.body["email"].as_str().expect("email").to_owned();
    let v = r.body["version"].as_u64().expect("version");
    assert_eq!(r.etag(), quoted(v));

    // Names, with If-Match.
    let r = send(me(Method::PATCH, "/me").json(&json!({"first_name": "Renata"}))).await;
    assert_eq!(
        (r.status, r.code()),
        (428, "if_match_required"),
        "{}",
        r.text
    );
    let r = send(
        me(Method::PATCH, "/me")
            .header("if-match", quoted(v))
            .json(&json!({"first_name": "Renata", "last_name": "Self"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.etag(), quoted(v + 1));
    assert_eq!(
        (r.body["first_name"].as_str(), r.body["last_name"].as_str()),
        (Some("Renata"), Some("Self"))
    );
    let r = send(
        me(Method::PATCH, "/me")
            .header("if-match", quoted(v))
            .json(&json!({"first_name": "Stale"})),
    )
    .await;
    assert_eq!((r.status, r.code()), (412, "stale_version"), "{}", r.text);

    // A new login email waits for verification; both addresses hear of it.
    let new_email = unique_email("moved");
    let r = send(
        me(Method::PATCH, "/me")
            .header("if-match", quoted(v + 1))
            .json(&json!({"email": new_email})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["email"], old_email.as_str(), "login email unchanged");
    assert_eq!(r.body["pending_email"], new_email.as_str());
    let r = send(me(Method::GET, "/me")).await;
    assert_eq!(
        (r.body["email"].as_str(), r.body["pending_email"].as_str()),
        (Some(old_email.as_str()), Some(new_email.as_str()))
    );
    let mails: Vec<OutboxEmail> = app
        .outbox()
        .await
        .into_iter()
        .filter(|m| m.user_id.as_str() == id)
        .collect();
    assert_eq!(mails.len(), 2, "{mails:?}");
    let verification = mails
        .iter()
        .find(|m| m.kind == EmailKind::EmailChangeVerification)
        .expect("a verification email");
    assert!(verification.to.as_str().eq_ignore_ascii_case(&new_email));
    let notice = mails
        .iter()
        .find(|m| m.kind == EmailKind::EmailChangeNotice)
        .expect("a notice to the old address");
    assert!(notice.to.as_str().eq_ignore_ascii_case(&old_email));
    assert!(
        !notice.data.to_string().contains(&new_email),
        "the notice masks the new address: {}",
        notice.data
    );

    // Following the link: opening shows, POST confirms, once.
    let link = verification.data["link"].as_str().expect("link");
    assert!(link.contains("/email-verifications/"), "{link}");
    let vtoken = link.rsplit('/').next().expect("token");
    let r = send(app.anonymous(Method::GET, &format!("/email-verifications/{vtoken}"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(app.anonymous(Method::POST, &format!("/email-verifications/{vtoken}"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["email"], new_email.as_str());
    assert_eq!(r.body["pending_email"], Value::Null);
    let r = send(app.anonymous(Method::POST, &format!("/email-verifications/{vtoken}"))).await;
    assert_eq!(
        (r.status, r.code()),
        (410, "verification_used"),
        "{}",
        r.text
    );
    let r = send(me(Method::GET, "/me")).await;
    assert_eq!(r.status, 200, "the same sign-in still works: {}", r.text);
    assert_eq!(r.body["email"], new_email.as_str());
    let current = r.body["version"].as_u64().expect("version");

    // A password reset for oneself goes to the new address.
    let r = send(me(Method::POST, "/me/password-reset")).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let resets: Vec<_> = emails_to(&app, &new_email)
        .await
        .into_iter()
        .filter(|m| m.kind == EmailKind::PasswordReset)
        .collect();
    assert_eq!(resets.len(), 1, "{resets:?}");

    // Nothing else about oneself can be changed here.
    let r = send(
        me(Method::PATCH, "/me")
            .header("if-match", quoted(current + 1))
            .json(&json!({"role": "admin"})),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (422, "validation_failed"),
        "{}",
        r.text
    );
    assert!(
        r.body["errors"][0]["reason"]
            .as_str()
            .is_some_and(|m| m.contains("unknown field `role`")),
        "{}",
        r.text
    );
    let r = send(me(Method::GET, "/me")).await;
    assert_eq!(r.body["role"], "customer");
}

#[derive(Clone, Copy)]
enum Order {
    /// By "last first" (lowercased), then id.
    Name,
    /// By the lowercased email, then id.
    Email,
}

/// Checks list queries against the full list: a filtered list holds exactly
/// the users of the full list that match, in the list's order; and of the
/// users made by the test, exactly the expected ones.
struct Lister<'a> {
    app: &'a TestApp,
    token: String,
    everyone: Vec<Value>,
    mine: Vec<String>,
}

fn name_key(u: &Value) -> String {
    format!(
        "{} {}",
        u["last_name"].as_str().unwrap_or("").to_lowercase(),
        u["first_name"].as_str().unwrap_or("").to_lowercase()
    )
}

fn text(u: &Value, field: &str) -> String {
    u[field].as_str().unwrap_or("").to_owned()
}

impl Lister<'_> {
    async fn check(
        &self,
        query: &str,
        matches: impl Fn(&Value) -> bool,
        order: Order,
        expected_mine: &[&String],
    ) {
        let got = ids_of(&all_items(self.app, &self.token, query, None).await);
        let mut want: Vec<&Value> = self.everyone.iter().filter(|u| matches(u)).collect();
        match order {
            Order::Name => want.sort_by_key(|u| (name_key(u), text(u, "id"))),
            Order::Email => want.sort_by_key(|u| (text(u, "email").to_lowercase(), text(u, "id"))),
        }
        let want: Vec<String> = want.iter().map(|u| text(u, "id")).collect();
        assert_eq!(got, want, "{query}: the matching users, in order");
        let got_mine: BTreeSet<&String> = got.iter().filter(|id| self.mine.contains(id)).collect();
        let expected: BTreeSet<&String> = expected_mine.iter().copied().collect();
        assert_eq!(got_mine, expected, "{query}: of the users made here");
    }
}

async fn list_filters_and_search(app: TestApp) {
    let admin = app.token("admin");
    let p1 = new_profile(&app, "Retail").await;
    let p2 = new_profile(&app, "Wholesale").await;
    /// first, last, email, role, accounts, profile
    type Person<'a> = (&'a str, &'a str, &'a str, &'a str, &'a [&'a str], &'a str);
    let people: [Person; 5] = [
        (
            "Ada",
            "Lovelace",
            "lst-ada@example.com",
            "customer",
            &[ACC_A],
            &p1,
        ),
        (
            "Alan",
            "Turing",
            "lst-alan@example.com",
            "customer",
            &[ACC_B],
            &p2,
        ),
        (
            "Grace",
            "Hopper",
            "lst-grace@example.org",
            "sales_rep",
            &[ACC_A, ACC_B],
            &p1,
        ),
        (
            "Linus",
            "Lovell",
            "lst-linus@example.com",
            "partner",
            &[],
            &p2,
        ),
        (
            "Barbara",
            "Liskov",
            "lst-barbara@example.net",
            "customer",
            &[ACC_A],
            &p1,
        ),
    ];
    let mut ids = Vec::new();
    for (first, last, email, role, accounts, profile) in people {
        let body = invitation(first, last, email, role, accounts, profile);
        ids.push(invite_as_admin(&app, &body).await.id());
    }
    let (active, _) = app.seed_user("customer", &[ACC_C], &[], &[]).await;
    let (suspended, _) = app.seed_user("customer", &[ACC_C], &[], &[]).await;
    let r = send(app.admin(Method::POST, &format!("/users/{suspended}/suspend"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let [ada, alan, grace, linus, barbara] = [0, 1, 2, 3, 4].map(|i| ids[i].clone());
    ids.extend([active.clone(), suspended.clone()]);

    // The tenant's seeded users are in the lists too: compare with the full list.
    let everyone = all_items(&app, &admin, "/users", None).await;
    let l = Lister {
        app: &app,
        token: admin.clone(),
        everyone,
        mine: ids.clone(),
    };
    let all_mine: Vec<&String> = ids.iter().collect();
    l.check("/users", |_| true, Order::Name, &all_mine).await;

    // Status.
    let status = |s: &'static str| move |u: &Value| u["status"] == s;
    let invited = [&ada, &alan, &grace, &linus, &barbara];
    l.check(
        "/users?status=invited",
        status("invited"),
        Order::Name,
        &invited,
    )
    .await;
    l.check(
        "/users?status=active",
        status("active"),
        Order::Name,
        &[&active],
    )
    .await;
    l.check(
        "/users?status=suspended",
        status("suspended"),
        Order::Name,
        &[&suspended],
    )
    .await;
    // Role.
    let role = |r: &'static str| move |u: &Value| u["role"] == r;
    l.check(
        "/users?role=sales_rep",
        role("sales_rep"),
        Order::Name,
        &[&grace],
    )
    .await;
    l.check(
        "/users?role=partner",
        role("partner"),
        Order::Name,
        &[&linus],
    )
    .await;
    let customers = [&ada, &alan, &barbara, &active, &suspended];
    l.check(
        "/users?role=customer",
        role("customer"),
        Order::Name,
        &customers,
    )
    .await;
    // Profile.
    let profile = |p: String| move |u: &Value| u["profile_id"] == p.as_str();
    let q = format!("/users?profile={p1}");
    l.check(
        &q,
        profile(p1.clone()),
        Order::Name,
        &[&ada, &grace, &barbara],
    )
    .await;
    let q = format!("/users?profile={p2}");
    l.check(&q, profile(p2.clone()), Order::Name, &[&alan, &linus])
        .await;
    // Account.
    let account = |a: &'static str| {
        move |u: &Value| {
            u["customer_accounts"]
                .as_array()
                .is_some_and(|l| l.contains(&json!(a)))
        }
    };
    let q = format!("/users?account={ACC_A}");
    l.check(&q, account(ACC_A), Order::Name, &[&ada, &grace, &barbara])
        .await;
    let q = format!("/users?account={ACC_B}");
    l.check(&q, account(ACC_B), Order::Name, &[&alan, &grace])
        .await;
    let q = format!("/users?account={ACC_C}");
    l.check(&q, account(ACC_C), Order::Name, &[&active, &suspended])
        .await;
    // Name prefix on "last first", any case.
    let named = |p: &'static str| move |u: &Value| name_key(u).starts_with(p);
    l.check("/users?q=lov", named("lov"), Order::Name, &[&ada, &linus])
        .await;
    l.check(
        "/users?q=LOVELACE%20A",
        named("lovelace a"),
        Order::Name,
        &[&ada],
    )
    .await;
    l.check(
        "/users?q=lovelace%20b",
        named("lovelace b"),
        Order::Name,
        &[],
    )
    .await;
    l.check("/users?q=Tur", named("tur"), Order::Name, &[&alan])
        .await;
    assert_eq!(
        all_ids(&app, &admin, "/users?q=lov").await,
        [ada.clone(), linus.clone()],
        "lovelace ada before lovell linus"
    );
    // Email prefix, any case, in email order.
    let mailed = |p: &'static str| move |u: &Value| text(u, "email").to_lowercase().starts_with(p);
    l.check("/users?email=lst-", mailed("lst-"), Order::Email, &invited)
        .await;
    l.check(
        "/users?email=LST-A",
        mailed("lst-a"),
        Order::Email,
        &[&ada, &alan],
    )
    .await;
    assert_eq!(
        all_ids(&app, &admin, "/users?email=lst-").await,
        [
            ada.clone(),
            alan.clone(),
            barbara.clone(),
            grace.clone(),
            linus.clone()
        ]
    );
    // Combined.
    let q = format!("/users?status=invited&role=customer&account={ACC_A}");
    let both = |u: &Value| status("invited")(u) && role("customer")(u) && account(ACC_A)(u);
    l.check(&q, both, Order::Name, &[&ada, &barbara]).await;
    let q = format!("/users?email=lst-&account={ACC_B}");
    let both = |u: &Value| mailed("lst-")(u) && account(ACC_B)(u);
    l.check(&q, both, Order::Email, &[&alan, &grace]).await;

    // Cursor pagination with limit=2 collects the same, once, in order.
    for query in [
        "/users",
        "/users?status=invited",
        "/users?role=customer",
        "/users?email=lst-",
        "/users?q=l",
    ] {
        let paged = ids_of(&all_items(&app, &admin, query, Some(2)).await);
        let whole = all_ids(&app, &admin, query).await;
        assert_eq!(paged, whole, "{query}: pages of two");
        let unique: BTreeSet<&String> = paged.iter().collect();
        assert_eq!(unique.len(), paged.len(), "{query}: no duplicates");
    }

    // Bad filters are named.
    for (query, field) in [
        ("/users?status=gone", "status"),
        ("/users?role=king", "role"),
        ("/users?profile=nope", "profile"),
        ("/users?account=ACC%23A", "account"),
        ("/users?q=", "q"),
        ("/users?email=", "email"),
    ] {
        let r = send(app.with_token(&admin, Method::GET, query)).await;
        assert_eq!(
            (r.status, r.code()),
            (422, "validation_failed"),
            "{query}: {}",
            r.text
        );
        assert_eq!(r.body["errors"][0]["field"], field, "{query}");
    }
    let r = send(app.with_token(&admin, Method::GET, "/users?cursor=bogus")).await;
    assert_eq!((r.status, r.code()), (400, "invalid_cursor"), "{}", r.text);
}
