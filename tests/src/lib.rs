//! Helpers for the end-to-end tests: start the local server (the same
//! `peak_local::start` the `peak-local` binary uses) on `127.0.0.1:0` over a
//! chosen store, and talk to it over real HTTP.

use peak_auth::DevIdentityProvider;
use peak_domain::ports::ProfileStore;
use peak_local::{DEV_AUDIENCE, DEV_ISSUER, Running};
use reqwest::{Method, RequestBuilder, Response};
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};

/// RSA key generation is slow in debug builds: one key per test binary.
static IDP: LazyLock<Arc<DevIdentityProvider>> = LazyLock::new(|| {
    Arc::new(DevIdentityProvider::generate(DEV_ISSUER, DEV_AUDIENCE).expect("dev key"))
});

pub struct TestApp {
    pub running: Running,
    pub http: reqwest::Client,
    /// A tenant no other test uses.
    pub tenant: String,
}

pub async fn spawn_sqlite() -> TestApp {
    let store = peak_store_sqlite::SqliteStore::open_in_memory().expect("sqlite");
    spawn(Arc::new(store)).await
}

/// Over DynamoDB Local. Fails (never skips) when it is not running.
pub async fn spawn_dynamodb() -> TestApp {
    let Ok(endpoint) = std::env::var("DYNAMODB_ENDPOINT") else {
        panic!(
            "DynamoDB Local is not running: run the tests with scripts/test.sh, or start it with \
             `scripts/dynamodb-local.sh start` and export the DYNAMODB_ENDPOINT it prints"
        );
    };
    assert!(
        endpoint.starts_with("http://127.0.0.1:") || endpoint.starts_with("http://localhost:"),
        "tests only talk to a DynamoDB on loopback, not {endpoint}"
    );
    let client = peak_store_dynamodb::client_from_env().await;
    let table = format!("e2e-{}", ulid::Ulid::new());
    peak_store_dynamodb::create_table(&client, &table)
        .await
        .expect("create table in DynamoDB Local");
    spawn(Arc::new(peak_store_dynamodb::DynamoStore::new(
        client, table,
    )))
    .await
}

pub async fn spawn(store: Arc<dyn ProfileStore>) -> TestApp {
    let running = peak_local::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        store,
        Arc::clone(&IDP),
    )
    .await
    .expect("start local server");
    TestApp {
        running,
        http: reqwest::Client::new(),
        tenant: format!("t{}", ulid::Ulid::new()).to_lowercase(),
    }
}

impl TestApp {
    pub fn token(&self, role: &str) -> String {
        self.token_in(&self.tenant, role)
    }

    pub fn token_in(&self, tenant: &str, role: &str) -> String {
        self.running
            .token(tenant, &format!("auth0|{role}"), role)
            .expect("sign token")
    }

    /// A request as an admin of this test's tenant.
    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.as_role("admin", method, path)
    }

    pub fn as_role(&self, role: &str, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.running.url()))
            .bearer_auth(self.token(role))
    }

    pub fn anonymous(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.running.url()))
    }

    /// Creates a profile as admin and returns its JSON.
    pub async fn create_profile(&self, name: &str) -> serde_json::Value {
        let resp = self
            .admin(Method::POST, "/profiles")
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 201, "create {name}");
        resp.json().await.expect("json")
    }
}

/// The body of a problem+json answer, after checking its status and type.
pub async fn problem(resp: Response, status: u16) -> serde_json::Value {
    assert_eq!(resp.status(), status, "status");
    assert_eq!(
        resp.headers()["content-type"],
        "application/problem+json",
        "problem content type"
    );
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["status"], status);
    assert!(body["code"].is_string(), "stable code: {body}");
    assert!(body["request_id"].is_string(), "request id: {body}");
    body
}
