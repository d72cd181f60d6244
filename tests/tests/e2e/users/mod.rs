//! The user lifecycle end to end, over HTTP, on both stores, one file per
//! concern: the walk-through of one user's life, invitations and their
//! links, concurrent edits, who may do what to whom, tenant isolation, the
//! signed-out password reset, self-service, and list filters. The helpers
//! they share are here.

use peak_domain::outbox::OutboxEmail;
use peak_tests::TestApp;
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

/// Runs every case named once on SQLite and once on DynamoDB Local. Multi
/// threaded, so that concurrent requests really run at the same time.
macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $case() { super::$case(crate::users::with_directory(peak_tests::spawn_sqlite().await).await).await; })*
        }
        mod dynamodb {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $case() { super::$case(crate::users::with_directory(peak_tests::spawn_dynamodb().await).await).await; })*
        }
    };
}

mod batch;
mod edits;
mod invitations;
mod isolation;
mod lifecycle;
mod list;
mod me;
mod password_reset;
mod permissions;

const ACC_A: &str = "ACC-A";
const ACC_B: &str = "ACC-B";
const ACC_C: &str = "ACC-C";
/// Above `ACC-A` and `ACC-B` (siblings).
const ACC_P: &str = "ACC-P";
/// Below `ACC-A`, and below that.
const ACC_A1: &str = "ACC-A1";
const ACC_A1X: &str = "ACC-A1X";

/// The app with the accounts these tests put users on in its directory
/// (invites and edits refuse accounts it does not hold): `ACC-P` above
/// `ACC-A` (above `ACC-A1`, above `ACC-A1X`) and `ACC-B`; `ACC-C` and
/// `ACME` on their own.
async fn with_directory(app: TestApp) -> TestApp {
    app.seed_accounts(&[ACC_P, ACC_C, "ACME"]).await;
    app.seed_account(ACC_A, ACC_A, Some(ACC_P)).await;
    app.seed_account(ACC_B, ACC_B, Some(ACC_P)).await;
    app.seed_account(ACC_A1, ACC_A1, Some(ACC_A)).await;
    app.seed_account(ACC_A1X, ACC_A1X, Some(ACC_A1)).await;
    app
}

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
    peak_local::seed_accounts(&app.stores, &t2, &[(ACC_A, ACC_A, None)])
        .await
        .expect("the other tenant's account");
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
