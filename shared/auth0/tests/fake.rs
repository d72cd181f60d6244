//! The fake behaves as Auth0 documents the routes we call, where a test of
//! our client could otherwise be fooled: reserved `app_metadata` names,
//! rate-limit headers on every answer, eventually consistent search with
//! `q` and `sort`, tickets, and `PATCH` properties the definition allows.

use peak_auth0::fake::{FakeAuth0, FakeUser, Fault};
use serde_json::{Value, json};
use std::time::Duration;

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

async fn api(fake: &FakeAuth0) -> Api {
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{}/oauth/token", fake.base_url))
        .json(&json!({
            "grant_type": "client_credentials", "client_id": fake.client_id,
            "client_secret": fake.client_secret, "audience": format!("{}/api/v2/", fake.base_url),
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Api {
        http,
        base: fake.base_url.clone(),
        token: token["access_token"].as_str().unwrap().to_owned(),
    }
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }
}

fn new_user(email: &str, app_metadata: Value) -> Value {
    json!({
        "connection": FakeAuth0::CONNECTION, "email": email,
        "password": "a-long-Passw0rd!", "app_metadata": app_metadata,
    })
}

#[tokio::test]
async fn reserved_app_metadata_names_are_refused_as_auth0_documents() {
    let fake = FakeAuth0::start().await;
    let api = api(&fake).await;
    for key in peak_auth0::RESERVED_APP_METADATA_KEYS {
        let resp = api
            .call(
                reqwest::Method::POST,
                "/api/v2/users",
                Some(new_user("a@example.com", json!({ *key: "x" }))),
            )
            .await;
        assert_eq!(resp.status(), 400, "app_metadata.{key}");
    }
    for key in ["a.b", "a$b"] {
        let resp = api
            .call(
                reqwest::Method::POST,
                "/api/v2/users",
                Some(new_user("a@example.com", json!({ key: 1 }))),
            )
            .await;
        assert_eq!(resp.status(), 400, "{key}");
    }
    let resp = api
        .call(
            reqwest::Method::POST,
            "/api/v2/users",
            Some(new_user("a@example.com", json!({ "peak_user_id": "x" }))),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let id = resp.json::<Value>().await.unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v2/users/{}", id.replace('|', "%7C"));
    let resp = api
        .call(
            reqwest::Method::PATCH,
            &path,
            Some(json!({ "app_metadata": { "user_id": "x" } })),
        )
        .await;
    assert_eq!(resp.status(), 400, "PATCH refuses them too");
    // Properties the update definition does not name are allowed.
    let resp = api
        .call(
            reqwest::Method::PATCH,
            &path,
            Some(json!({ "given_name": "Jo", "something_new": 1 })),
        )
        .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn every_answer_carries_the_rate_limit_headers_and_a_429_only_those() {
    let fake = FakeAuth0::start().await;
    let api = api(&fake).await;
    let resp = api
        .call(reqwest::Method::GET, "/api/v2/users/auth0%7Cnone", None)
        .await;
    assert_eq!(resp.status(), 404);
    for h in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        assert!(resp.headers().contains_key(h), "{h} on a 404");
    }
    fake.fail_next(1, Fault::RateLimit { reset_in_secs: 3 });
    let resp = api
        .call(reqwest::Method::GET, "/api/v2/users/auth0%7Cnone", None)
        .await;
    assert_eq!(resp.status(), 429);
    assert!(
        !resp.headers().contains_key("retry-after"),
        "the global limit has no Retry-After"
    );
    assert_eq!(resp.headers()["x-ratelimit-remaining"], "0");
    // A limit per second, enforced.
    fake.set_rate_limit(Some(2));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // More calls than two per second can take, however slow the machine
    // (a loaded one once spread four calls over two windows).
    let mut statuses = Vec::new();
    for _ in 0..40 {
        let status = api
            .call(reqwest::Method::GET, "/api/v2/users/auth0%7Cnone", None)
            .await
            .status()
            .as_u16();
        statuses.push(status);
        if status == 429 {
            break;
        }
    }
    assert!(statuses.contains(&429), "{statuses:?}");
}

#[tokio::test]
async fn search_is_eventually_consistent_and_understands_q_and_sort() {
    let fake = FakeAuth0::start().await;
    fake.set_search_lag(Duration::from_millis(300));
    let api = api(&fake).await;
    fake.insert_user(FakeUser::new(&fake.connection, "b@example.com").with_tenant("acme", "1"));
    fake.insert_user(FakeUser::new(&fake.connection, "a@example.com").with_tenant("globex", "2"));
    let q = "/api/v2/users?q=identities.connection%3A%22Username-Password-Authentication%22&include_totals=true";
    let now: Value = api
        .call(reqwest::Method::GET, q, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(now["total"], 0, "not searchable yet");
    tokio::time::sleep(Duration::from_millis(350)).await;
    let later: Value = api
        .call(reqwest::Method::GET, q, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(later["total"], 2);
    assert_eq!(
        later["users"][0]["email"], "b@example.com",
        "created_at:1 by default"
    );
    let sorted: Value = api
        .call(reqwest::Method::GET, &format!("{q}&sort=email%3A1"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sorted["users"][0]["email"], "a@example.com");
    let tenant: Value = api
        .call(
            reqwest::Method::GET,
            "/api/v2/users?q=app_metadata.tenant%3A%22acme%22",
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tenant.as_array().unwrap().len(), 1);
    let resp = api
        .call(
            reqwest::Method::GET,
            "/api/v2/users?page=10&per_page=100",
            None,
        )
        .await;
    assert_eq!(resp.status(), 400, "no paging past 1,000");
}

#[tokio::test]
async fn tickets_take_result_url_or_client_id_and_ttl_0_is_the_default() {
    let fake = FakeAuth0::start().await;
    let api = api(&fake).await;
    let id = fake.insert_user(FakeUser::new(&fake.connection, "t@example.com"));
    let ticket = |body: Value| {
        api.call(
            reqwest::Method::POST,
            "/api/v2/tickets/password-change",
            Some(body),
        )
    };
    let resp = ticket(json!({ "user_id": id, "ttl_sec": 0 })).await;
    assert_eq!(resp.status(), 201, "client_id is optional");
    let url = resp.json::<Value>().await.unwrap()["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        fake.ticket(&url).unwrap().ttl_sec,
        FakeAuth0::DEFAULT_TICKET_TTL_SECS
    );
    let resp =
        ticket(json!({ "user_id": id, "client_id": "c", "result_url": "https://x.example" })).await;
    assert_eq!(
        resp.status(),
        400,
        "client_id and result_url exclude each other"
    );
}
