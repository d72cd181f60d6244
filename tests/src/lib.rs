//! Helpers for the end-to-end tests: start the local server (the same
//! `peak_local::start` the `peak-local` binary uses) on `127.0.0.1:0` over a
//! chosen store, and talk to it over real HTTP.

pub mod fault_proxy;

use peak_auth::DevIdentityProvider;
use peak_domain::outbox::OutboxEmail;
use peak_domain::ports::UserWrite;
use peak_local::{DEV_AUDIENCE, DEV_ISSUER, Running, StartOptions, Stores};
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
    pub stores: Stores,
}

pub async fn spawn_sqlite() -> TestApp {
    spawn_sqlite_with(StartOptions::default()).await
}

pub async fn spawn_sqlite_with(options: StartOptions) -> TestApp {
    let store = peak_store_sqlite::SqliteStore::open_in_memory().expect("sqlite");
    spawn_with(Stores::from(store), options).await
}

/// Over DynamoDB Local. Fails (never skips) when it is not running.
pub async fn spawn_dynamodb() -> TestApp {
    spawn_dynamodb_with(StartOptions::default()).await
}

/// A fresh DynamoDB Local table's stores.
pub async fn dynamodb_stores() -> Stores {
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
    Stores::from(peak_store_dynamodb::DynamoStore::new(client, table))
}

pub async fn spawn_dynamodb_with(options: StartOptions) -> TestApp {
    spawn_with(dynamodb_stores().await, options).await
}

/// Roles seeded in every test tenant, one user each, with subject
/// `auth0|<role>`; the non-admins serve customer account `ACME`.
pub const SEEDED_ROLES: [&str; 4] = ["admin", "sales_rep", "partner", "customer"];

pub async fn spawn(stores: Stores) -> TestApp {
    spawn_with(stores, StartOptions::default()).await
}

pub async fn spawn_with(stores: Stores, options: StartOptions) -> TestApp {
    // Logs (JSON, per request, internal errors included) show on failure.
    peak_api::telemetry::init_for_tests();
    let running = peak_local::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        stores.clone(),
        Arc::clone(&IDP),
        options,
    )
    .await
    .expect("start local server");
    let app = TestApp {
        running,
        http: reqwest::Client::new(),
        tenant: format!("t{}", ulid::Ulid::new()).to_lowercase(),
        stores,
    };
    peak_local::seed_admin(
        &app.stores,
        &app.tenant,
        "auth0|admin",
        "admin@tenant.example",
    )
    .await
    .expect("seed admin");
    for role in &SEEDED_ROLES[1..] {
        app.seed_user_with_subject(&format!("auth0|{role}"), role, &["ACME"], &[], &[])
            .await;
    }
    app
}

impl TestApp {
    /// A token of the seeded user with this role.
    pub fn token(&self, role: &str) -> String {
        self.token_in(&self.tenant, role)
    }

    /// A token for subject `auth0|<role>` in `tenant` (no user exists
    /// there unless the tenant was seeded: then 403 `unknown_user`).
    pub fn token_in(&self, tenant: &str, role: &str) -> String {
        self.running
            .token(tenant, &format!("auth0|{role}"), role)
            .expect("sign token")
    }

    /// A token for any subject of this tenant.
    pub fn token_for_subject(&self, subject: &str) -> String {
        self.running
            .token(&self.tenant, subject, "customer")
            .expect("sign token")
    }

    /// Seeds another tenant with its own admin; returns (tenant, token).
    pub async fn other_tenant_admin(&self) -> (String, String) {
        let tenant = format!("t{}", ulid::Ulid::new()).to_lowercase();
        peak_local::seed_admin(&self.stores, &tenant, "auth0|admin", "admin@other.example")
            .await
            .expect("seed other tenant");
        let token = self.token_in(&tenant, "admin");
        (tenant, token)
    }

    /// Seeds an active user (no email, no invitation) with a profile
    /// holding `profile_settings` (defaults otherwise); returns (id, token).
    pub async fn seed_user(
        &self,
        role: &str,
        accounts: &[&str],
        profile_settings: &[(&str, &str)],
        extension_groups: &[&str],
    ) -> (String, String) {
        let subject = format!("auth0|{role}-{}", ulid::Ulid::new());
        let id = self
            .seed_user_with_subject(&subject, role, accounts, profile_settings, extension_groups)
            .await;
        (id, self.token_for_subject(&subject))
    }

    pub async fn seed_user_with_subject(
        &self,
        subject: &str,
        role: &str,
        accounts: &[&str],
        profile_settings: &[(&str, &str)],
        extension_groups: &[&str],
    ) -> String {
        use peak_domain::catalogue::catalogue;
        use peak_domain::model::profile::{Profile, ProfileName, ProfileSettings};
        use peak_domain::model::user::{
            AccountNumber, Email, PersonName, User, UserId, UserStatus,
        };
        let tenant = peak_domain::TenantId::parse(&self.tenant).expect("tenant");
        let now = time::OffsetDateTime::now_utc();
        let changes = profile_settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
            .collect();
        let settings = ProfileSettings::defaults(catalogue())
            .apply(catalogue(), &changes)
            .expect("valid profile settings");
        // Default settings share the tenant's seeded `Standard` profile;
        // custom settings get a profile of their own.
        let profile_id = if profile_settings.is_empty() {
            let page = self
                .stores
                .profiles
                .list_profiles(&tenant, &peak_domain::ports::PageRequest::first(100))
                .await
                .expect("list profiles");
            page.items
                .into_iter()
                .find(|p| p.name.as_str() == "Standard")
                .expect("seeded Standard profile")
                .id
        } else {
            let profile = Profile {
                tenant_id: tenant.clone(),
                id: peak_domain::ProfileId::generate(),
                name: ProfileName::parse(&format!("seed {}", ulid::Ulid::new())).expect("name"),
                description: String::new(),
                settings,
                version: 1,
                holder_count: 0,
                created_at: now,
                updated_at: now,
            };
            self.stores
                .profiles
                .insert_profile(&profile)
                .await
                .expect("seed profile");
            profile.id
        };
        let id = UserId::generate();
        let user = User {
            tenant_id: tenant,
            id: id.clone(),
            email: Email::parse(&format!("{}@seed.example", id.as_str().to_lowercase()))
                .expect("email"),
            pending_email: None,
            first_name: PersonName::parse("first_name", "Seeded").expect("name"),
            last_name: PersonName::parse("last_name", role).expect("name"),
            account_number: None,
            customer_accounts: accounts
                .iter()
                .map(|a| AccountNumber::parse("a", a).expect("account"))
                .collect(),
            role: peak_domain::Role::parse(role).expect("role"),
            profile_id,
            extension_groups: extension_groups.iter().map(|g| (*g).to_owned()).collect(),
            status: UserStatus::Active,
            idp_subject: Some(subject.to_owned()),
            invitation: None,
            version: 1,
            created_at: now,
            updated_at: now,
            last_login_at: None,
        };
        self.stores
            .users
            .write_user(UserWrite {
                previous: None,
                next: Some(&user),
                audit: &[],
                outbox: &[],
            })
            .await
            .expect("seed user");
        id.to_string()
    }

    /// Puts these accounts (roots, named after their numbers) into this
    /// tenant's directory, unless there already: invites and edits refuse
    /// accounts the directory does not hold.
    pub async fn seed_accounts(&self, numbers: &[&str]) {
        let accounts: Vec<(&str, &str, Option<&str>)> =
            numbers.iter().map(|n| (*n, *n, None)).collect();
        peak_local::seed_accounts(&self.stores, &self.tenant, &accounts)
            .await
            .expect("seed accounts");
    }

    /// Puts `number` under `parent` (or as a root) into this tenant's
    /// directory, unless there already.
    pub async fn seed_account(&self, number: &str, name: &str, parent: Option<&str>) {
        peak_local::seed_accounts(&self.stores, &self.tenant, &[(number, name, parent)])
            .await
            .expect("seed account");
    }

    /// Pending emails of this app's store (all tenants).
    pub async fn outbox(&self) -> Vec<OutboxEmail> {
        self.stores
            .users
            .pending_outbox(10_000, time::OffsetDateTime::now_utc())
            .await
            .expect("outbox")
    }

    /// Pending emails to users of this test's tenant.
    pub async fn my_outbox(&self) -> Vec<OutboxEmail> {
        self.outbox()
            .await
            .into_iter()
            .filter(|m| m.tenant_id.as_str() == self.tenant)
            .collect()
    }

    /// Accepts the invitation with this link token, sets a password on the
    /// dev identity provider, and returns a token of the now-active user.
    pub async fn activate(&self, invitation_token: &str) -> String {
        let resp = self
            .anonymous(
                Method::POST,
                &format!("/invitations/{invitation_token}/accept"),
            )
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200, "accept");
        let body: serde_json::Value = resp.json().await.expect("json");
        let url = body["password_setup_url"]
            .as_str()
            .expect("password_setup_url");
        let ticket = peak_local::LocalIdentityProvider::ticket_of(url).expect("ticket");
        let (tenant, subject) = self
            .running
            .local_idp
            .set_password(&self.running.state, ticket, "correct horse battery")
            .await
            .expect("set password");
        self.running
            .token(tenant.as_str(), &subject, "customer")
            .expect("token")
    }

    /// Invites a customer of account `ACME` (as the admin, with a fresh
    /// profile); returns (user id, the invitation link's token).
    pub async fn invite_customer(&self, email: &str) -> (String, String) {
        self.seed_accounts(&["ACME"]).await;
        let profile = self
            .create_profile(&format!("P {}", ulid::Ulid::new()))
            .await;
        let resp = self
            .admin(Method::POST, "/users")
            .json(&serde_json::json!({
                "first_name": "Ada",
                "last_name": "Lovelace",
                "email": email,
                "role": "customer",
                "profile_id": profile["id"],
                "customer_accounts": ["ACME"],
            }))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 201, "invite");
        let user: serde_json::Value = resp.json().await.expect("json");
        let id = user["id"].as_str().expect("id").to_owned();
        let mail = self
            .my_outbox()
            .await
            .into_iter()
            .find(|m| m.user_id.as_str() == id)
            .expect("the invitation email");
        let link = mail.data["link"].as_str().expect("data.link").to_owned();
        let token = link.rsplit('/').next().expect("token").to_owned();
        (id, token)
    }

    pub fn with_token(&self, token: &str, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.running.url()))
            .bearer_auth(token)
    }

    /// Every page of a list endpoint's `items`.
    pub async fn all_items(&self, token: &str, path: &str) -> Vec<serde_json::Value> {
        let mut items = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let url = match &next {
                Some(c) => format!("{path}{sep}cursor={c}"),
                None => path.to_owned(),
            };
            let page: serde_json::Value = self
                .with_token(token, Method::GET, &url)
                .send()
                .await
                .expect("send")
                .json()
                .await
                .expect("json");
            items.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(c) => next = Some(c.to_owned()),
                None => break items,
            }
            assert!(items.len() < 10_000, "pagination does not end");
        }
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

/// A dry run, worked to its end: the finished job's view, its report
/// (CSV), and the report as the synchronous dry run used to answer it
/// (`counts` and `entries` with `issues`), so tests keep their checks.
#[derive(Debug, Clone)]
pub struct DryRun {
    pub job: serde_json::Value,
    pub report: String,
    pub body: serde_json::Value,
}

/// The fields of one line of a job report (every field quoted but the row).
pub fn report_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    out.push(field);
    out
}

impl TestApp {
    /// Runs the bulk job `id` of this tenant to its end here, as the runner
    /// would (with the account directory); panics unless it finishes.
    pub async fn run_bulk_job(&self, id: &str) -> peak_domain::bulk_job::BulkJob {
        let state = self.running.state.clone();
        let tenant = peak_domain::TenantId::parse(&self.tenant).expect("tenant");
        let ctx = state.ctx("dry-run-test");
        let ports = peak_bulk_jobs::Ports {
            jobs: state.jobs.as_ref(),
            files: state.files.as_ref(),
            accounts: Some(state.accounts.as_ref()),
        };
        let end = peak_bulk_jobs::run_job(
            &ctx,
            ports,
            &tenant,
            id,
            &peak_bulk::Limits::default(),
            |_| true,
        )
        .await
        .expect("run");
        match end {
            peak_bulk_jobs::RunEnd::Finished(job) => *job,
            other => panic!("the job did not finish: {other:?}"),
        }
    }

    /// Sends a `?dry_run=true` upload (it must answer 202 with a queued
    /// dry-run job), runs the job and reads its view and report as the
    /// admin (who sees every job of the tenant).
    pub async fn dry_run(&self, upload: RequestBuilder) -> DryRun {
        let resp = upload.send().await.expect("send");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("text");
        assert_eq!(status, 202, "a dry run is a job: {text}");
        let queued: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(queued["dry_run"], true, "{text}");
        assert_eq!(queued["status"], "queued", "{text}");
        let id = queued["id"].as_str().expect("id").to_owned();
        self.run_bulk_job(&id).await;
        let job: serde_json::Value = self
            .admin(Method::GET, &format!("/bulk-jobs/{id}"))
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        let resp = self
            .admin(Method::GET, &format!("/bulk-jobs/{id}/report"))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200, "report");
        let report = resp.text().await.expect("text");
        let mut counts = serde_json::Map::new();
        for k in ["total", "valid", "skipped", "failed"] {
            counts.insert(k.into(), 0.into());
        }
        let mut entries = Vec::new();
        for line in report.lines().skip(1) {
            let f = report_fields(line);
            let Ok(row) = f[0].parse::<u64>() else {
                continue; // the file error's line
            };
            for k in ["total", f[2].as_str()] {
                let n = counts.entry(k).or_insert(0.into());
                *n = (n.as_u64().unwrap_or(0) + 1).into();
            }
            let issues = if f[4].is_empty() {
                vec![]
            } else {
                vec![serde_json::json!({"column": f[3], "code": f[4], "reason": f[5]})]
            };
            entries.push(serde_json::json!({
                "row": row, "email": f[1], "outcome": f[2], "issues": issues,
            }));
        }
        let body = serde_json::json!({ "counts": counts, "entries": entries });
        DryRun { job, report, body }
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

/// A loopback proxy in front of DynamoDB Local that can fail requests the
/// way DynamoDB does when it is in trouble (500 `InternalServerError`), to
/// show what a failing store does to a flow.
pub struct DynamoFaults {
    pub url: String,
    mode: Arc<std::sync::atomic::AtomicU8>,
    _task: tokio::task::JoinHandle<()>,
}

/// What [`DynamoFaults`] lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StoreFault {
    None = 0,
    /// Every request fails.
    All = 1,
    /// Only transactions (user writes) fail.
    Transactions = 2,
}

impl DynamoFaults {
    pub async fn start() -> Self {
        let Ok(upstream) = std::env::var("DYNAMODB_ENDPOINT") else {
            panic!("DynamoDB Local is not running: run the tests with scripts/test.sh");
        };
        let mode = Arc::new(std::sync::atomic::AtomicU8::new(0));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let http = reqwest::Client::new();
        let state = (upstream, http, mode.clone());
        let app = axum::Router::new()
            .fallback(
                |axum::extract::State((upstream, http, mode)): axum::extract::State<(
                    String,
                    reqwest::Client,
                    Arc<std::sync::atomic::AtomicU8>,
                )>,
                 req: axum::extract::Request| async move {
                    use axum::response::IntoResponse;
                    let target = req
                        .headers()
                        .get("x-amz-target")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    let fail = match mode.load(std::sync::atomic::Ordering::SeqCst) {
                        1 => true,
                        2 => target.ends_with(".TransactWriteItems"),
                        _ => false,
                    };
                    if fail {
                        return (
                            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                            [("content-type", "application/x-amz-json-1.0")],
                            r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected by the test"}"#,
                        )
                            .into_response();
                    }
                    let (parts, body) = req.into_parts();
                    let bytes = axum::body::to_bytes(body, 16 * 1024 * 1024)
                        .await
                        .unwrap_or_default();
                    let mut forward = http.request(parts.method.clone(), format!("{upstream}{}", parts.uri));
                    for (k, v) in &parts.headers {
                        if k != "host" && k != "content-length" {
                            forward = forward.header(k.as_str(), v.as_bytes());
                        }
                    }
                    match forward.body(bytes).send().await {
                        Ok(resp) => {
                            let status = resp.status().as_u16();
                            let headers: Vec<(String, Vec<u8>)> = resp
                                .headers()
                                .iter()
                                .filter(|(k, _)| *k != "content-length" && *k != "transfer-encoding")
                                .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
                                .collect();
                            let body = resp.bytes().await.unwrap_or_default();
                            let mut out = axum::response::Response::new(axum::body::Body::from(body));
                            *out.status_mut() = axum::http::StatusCode::from_u16(status)
                                .unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
                            for (k, v) in headers {
                                if let (Ok(k), Ok(v)) = (
                                    axum::http::HeaderName::from_bytes(k.as_bytes()),
                                    axum::http::HeaderValue::from_bytes(&v),
                                ) {
                                    out.headers_mut().insert(k, v);
                                }
                            }
                            out
                        }
                        Err(_) => axum::http::StatusCode::BAD_GATEWAY.into_response(),
                    }
                },
            )
            .with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            mode,
            _task: task,
        }
    }

    pub fn set(&self, fault: StoreFault) {
        self.mode
            .store(fault as u8, std::sync::atomic::Ordering::SeqCst);
    }

    /// A fresh table's stores, every call going through this proxy.
    pub async fn stores(&self) -> Stores {
        let direct = peak_store_dynamodb::client_from_env().await;
        let table = format!("e2e-{}", ulid::Ulid::new());
        peak_store_dynamodb::create_table(&direct, &table)
            .await
            .expect("create table in DynamoDB Local");
        let sdk = peak_aws_env::sdk_config("DYNAMODB_ENDPOINT", None);
        let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
            .endpoint_url(&self.url)
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(config);
        Stores::from(peak_store_dynamodb::DynamoStore::new(client, table))
    }
}
