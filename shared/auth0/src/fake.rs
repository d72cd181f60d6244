//! A stateful fake of the Auth0 routes [`Auth0Client`] calls, on a loopback
//! port, for tests (feature `fake`).
//!
//! ```no_run
//! # async fn demo() {
//! use peak_auth0::fake::{FakeAuth0, Fault};
//! let fake = FakeAuth0::start().await;
//! let client = fake.client(); // or Auth0Client::new(fake.config())
//! fake.fail_next(2, Fault::Status(503));
//! # }
//! ```
//!
//! It keeps users, access tokens and password-change tickets like Auth0
//! does, answers with Auth0's JSON shapes (errors as `{statusCode, error,
//! message, errorCode}`), requires a bearer token it issued on every
//! `/api/v2/` route, and logs every request it receives.

#![allow(
    clippy::result_large_err,
    reason = "handler helpers return the refusal response as their error; size does not matter in a test fake"
)]

use crate::{Auth0Client, Auth0Config};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A login as the fake holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeUser {
    /// `auth0|<hex>`; left empty for [`FakeAuth0::insert_user`] to mint one.
    pub user_id: String,
    pub connection: String,
    /// Stored lowercased, as Auth0 does.
    pub email: String,
    pub email_verified: bool,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub name: Option<String>,
    pub blocked: bool,
    pub app_metadata: Value,
    /// The person set a password of their own (through a ticket).
    pub password_set: bool,
    /// Verification emails Auth0 would have sent for this login.
    pub verification_emails_sent: u32,
}

impl FakeUser {
    /// A login in `connection` with no names, unverified, not blocked.
    pub fn new(connection: impl Into<String>, email: impl Into<String>) -> Self {
        Self {
            user_id: String::new(),
            connection: connection.into(),
            email: email.into(),
            email_verified: false,
            given_name: None,
            family_name: None,
            name: None,
            blocked: false,
            app_metadata: json!({}),
            password_set: false,
            verification_emails_sent: 0,
        }
    }

    /// As a login created by peak-users for `tenant`/`user_id`.
    pub fn with_tenant(mut self, tenant: &str, user_id: &str) -> Self {
        self.app_metadata = json!({ "tenant": tenant, "user_id": user_id });
        self
    }

    fn to_json(&self) -> Value {
        let (provider, id) = self
            .user_id
            .split_once('|')
            .unwrap_or(("auth0", &self.user_id));
        json!({
            "user_id": self.user_id,
            "email": self.email,
            "email_verified": self.email_verified,
            "given_name": self.given_name,
            "family_name": self.family_name,
            "name": self.name,
            "blocked": self.blocked,
            "app_metadata": self.app_metadata,
            "identities": [{
                "connection": self.connection,
                "provider": provider,
                "user_id": id,
                "isSocial": provider != "auth0",
            }],
        })
    }
}

/// What the next requests get instead of their normal answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// This status, with an Auth0-shaped error body.
    Status(u16),
    /// 429 with `Retry-After` and `x-ratelimit-reset`.
    RateLimit { retry_after_secs: u64 },
    /// The normal answer, after this long.
    Delay(Duration),
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeRequest {
    pub method: String,
    /// Without the query string.
    pub path: String,
    /// 0 while unanswered, or when the caller gave up before the answer.
    pub status: u16,
    /// When it arrived.
    pub at: Instant,
}

/// A password-change ticket the fake issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeTicket {
    pub user_id: String,
    pub client_id: String,
    pub ttl_sec: u64,
    pub mark_email_as_verified: bool,
    pub expires_at: Instant,
}

struct Shared {
    base_url: String,
    client_id: String,
    client_secret: String,
    audience: String,
    connection: String,
    portal_client_id: String,
    state: Mutex<FakeState>,
}

struct FakeState {
    /// In creation order (what `sort=created_at:1` returns).
    users: Vec<FakeUser>,
    tokens: HashMap<String, Instant>,
    token_ttl: Duration,
    tickets: HashMap<String, FakeTicket>,
    faults: VecDeque<Fault>,
    down: bool,
    log: Vec<FakeRequest>,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running fake. Stops when dropped (or on [`FakeAuth0::stop`]).
pub struct FakeAuth0 {
    /// `http://127.0.0.1:<port>`
    pub base_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub connection: String,
    pub portal_client_id: String,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for FakeAuth0 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeAuth0")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl FakeAuth0 {
    /// The database connection the fake's config names.
    pub const CONNECTION: &'static str = "Username-Password-Authentication";

    /// Binds 127.0.0.1 on a free port and serves until dropped.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port for the Auth0 fake");
        let addr = listener.local_addr().expect("the fake's address");
        let base_url = format!("http://{addr}");
        let shared = Arc::new(Shared {
            audience: format!("{base_url}/api/v2/"),
            base_url: base_url.clone(),
            client_id: format!("fake-m2m-{}", random_hex(8)),
            client_secret: format!("fake-secret-{}", random_hex(16)),
            connection: Self::CONNECTION.to_owned(),
            portal_client_id: format!("fake-portal-{}", random_hex(8)),
            state: Mutex::new(FakeState {
                users: Vec::new(),
                tokens: HashMap::new(),
                token_ttl: Duration::from_secs(86_400),
                tickets: HashMap::new(),
                faults: VecDeque::new(),
                down: false,
                log: Vec::new(),
            }),
        });
        let app = Router::new()
            .route("/oauth/token", post(token))
            .route("/api/v2/users-by-email", get(users_by_email))
            .route("/api/v2/users", get(list_users).post(create_user))
            .route(
                "/api/v2/users/{id}",
                get(get_user).patch(patch_user).delete(delete_user),
            )
            .route("/api/v2/tickets/password-change", post(create_ticket))
            .layer(middleware::from_fn_with_state(shared.clone(), gate))
            .with_state(shared.clone());
        let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = signal.await;
                })
                .await;
        });
        Self {
            base_url,
            client_id: shared.client_id.clone(),
            client_secret: shared.client_secret.clone(),
            connection: shared.connection.clone(),
            portal_client_id: shared.portal_client_id.clone(),
            shared,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// A config pointing at the fake (default deadlines; tests may shorten
    /// them).
    pub fn config(&self) -> Auth0Config {
        Auth0Config::new(
            &self.base_url,
            &self.client_id,
            &self.client_secret,
            &self.connection,
            &self.portal_client_id,
        )
    }

    /// A client for [`FakeAuth0::config`].
    pub fn client(&self) -> Auth0Client {
        Auth0Client::new(self.config())
    }

    /// Stops serving; waits (briefly) for requests in progress.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    /// The next `n` requests (any route) get `fault`.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let mut s = self.shared.state();
        s.faults.extend(std::iter::repeat_n(fault, n));
    }

    /// While down, every route answers 503.
    pub fn set_down(&self, down: bool) {
        self.shared.state().down = down;
    }

    /// Every token issued so far stops working (the client gets 401).
    pub fn expire_tokens(&self) {
        let now = Instant::now();
        for expires in self.shared.state().tokens.values_mut() {
            *expires = now;
        }
    }

    /// Lifetime (`expires_in`, whole seconds, at least 1) of tokens issued
    /// from now on.
    pub fn set_token_ttl(&self, ttl: Duration) {
        self.shared.state().token_ttl = ttl.max(Duration::from_secs(1));
    }

    /// The access tokens issued so far (to check they never leak).
    pub fn access_tokens(&self) -> Vec<String> {
        self.shared.state().tokens.keys().cloned().collect()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<FakeRequest> {
        self.shared.state().log.clone()
    }

    /// How many requests had this method and path (as sent: a user path is
    /// `/api/v2/users/auth0%7C…`).
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.shared
            .state()
            .log
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .count()
    }

    /// Token requests so far.
    pub fn token_requests(&self) -> usize {
        self.count("POST", "/oauth/token")
    }

    pub fn clear_requests(&self) {
        self.shared.state().log.clear();
    }

    /// The login in the fake's connection with this address (any case).
    pub fn user_by_email(&self, email: &str) -> Option<FakeUser> {
        let email = email.to_lowercase();
        self.shared
            .state()
            .users
            .iter()
            .find(|u| u.email == email && u.connection == self.connection)
            .cloned()
    }

    pub fn user(&self, id: &str) -> Option<FakeUser> {
        self.shared
            .state()
            .users
            .iter()
            .find(|u| u.user_id == id)
            .cloned()
    }

    /// All logins, every connection, oldest first.
    pub fn users(&self) -> Vec<FakeUser> {
        self.shared.state().users.clone()
    }

    /// Adds a login as if made in the dashboard (or by another app); mints
    /// `auth0|<hex>` when `user_id` is empty. Returns its id.
    pub fn insert_user(&self, mut user: FakeUser) -> String {
        if user.user_id.is_empty() {
            user.user_id = new_user_id();
        }
        user.email = user.email.to_lowercase();
        let id = user.user_id.clone();
        self.shared.state().users.push(user);
        id
    }

    /// Blocks or unblocks a login; false when there is none.
    pub fn set_blocked(&self, id: &str, blocked: bool) -> bool {
        let mut s = self.shared.state();
        match s.users.iter_mut().find(|u| u.user_id == id) {
            Some(u) => {
                u.blocked = blocked;
                true
            }
            None => false,
        }
    }

    /// Deletes a login (as from the dashboard); false when there is none.
    pub fn delete(&self, id: &str) -> bool {
        let mut s = self.shared.state();
        let before = s.users.len();
        s.users.retain(|u| u.user_id != id);
        s.tickets.retain(|_, t| t.user_id != id);
        s.users.len() != before
    }

    /// A ticket the fake issued, by its URL.
    pub fn ticket(&self, url: &str) -> Option<FakeTicket> {
        self.shared.state().tickets.get(url).cloned()
    }

    /// The person opened the ticket and set a password: the ticket is used
    /// up, the login has a password (and a verified address if the ticket
    /// said so). Returns the login's id; `None` for an unknown, used or
    /// expired ticket, or a deleted login.
    pub fn complete_ticket(&self, url: &str) -> Option<String> {
        let mut s = self.shared.state();
        let ticket = s.tickets.remove(url)?;
        if ticket.expires_at <= Instant::now() {
            return None;
        }
        let user = s.users.iter_mut().find(|u| u.user_id == ticket.user_id)?;
        user.password_set = true;
        if ticket.mark_email_as_verified {
            user.email_verified = true;
        }
        Some(user.user_id.clone())
    }
}

impl Drop for FakeAuth0 {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("OS randomness");
    hex::encode(buf)
}

fn new_user_id() -> String {
    format!("auth0|{}", random_hex(12))
}

fn error(status: u16, message: &str, code: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({
        "statusCode": status.as_u16(),
        "error": status.canonical_reason().unwrap_or("Error"),
        "message": message,
        "errorCode": code,
    });
    (status, axum::Json(body)).into_response()
}

fn invalid_body(message: &str) -> Response {
    error(400, message, "invalid_body")
}

fn not_found_user() -> Response {
    error(404, "The user does not exist.", "inexistent_user")
}

fn rate_limited(retry_after_secs: u64) -> Response {
    let reset = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        + retry_after_secs;
    let mut response = error(429, "Global limit has been reached", "too_many_requests");
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    headers.insert("x-ratelimit-limit", HeaderValue::from(50u64));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(0u64));
    headers.insert("x-ratelimit-reset", HeaderValue::from(reset));
    response
}

/// Logs the request, applies `down` and faults, checks the bearer token on
/// `/api/v2/`.
async fn gate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let (index, down, fault) = {
        let mut s = shared.state();
        s.log.push(FakeRequest {
            method: request.method().to_string(),
            path: path.clone(),
            status: 0,
            at: Instant::now(),
        });
        let down = s.down;
        let fault = if down { None } else { s.faults.pop_front() };
        (s.log.len() - 1, down, fault)
    };
    let response = if down {
        error(503, "The service is down (fake).", "service_unavailable")
    } else {
        match fault {
            Some(Fault::Status(status)) => error(status, "Injected fault (fake).", "fake_fault"),
            Some(Fault::RateLimit { retry_after_secs }) => rate_limited(retry_after_secs),
            Some(Fault::Delay(delay)) => {
                tokio::time::sleep(delay).await;
                authorized(&shared, &path, request, next).await
            }
            None => authorized(&shared, &path, request, next).await,
        }
    };
    if let Some(entry) = shared.state().log.get_mut(index) {
        entry.status = response.status().as_u16();
    }
    response
}

async fn authorized(shared: &Shared, path: &str, request: Request, next: Next) -> Response {
    if path.starts_with("/api/v2/") {
        let token = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned);
        let valid = token.is_some_and(|t| {
            shared
                .state()
                .tokens
                .get(&t)
                .is_some_and(|&expires| expires > Instant::now())
        });
        if !valid {
            return error(401, "Invalid token", "invalid_token");
        }
    }
    next.run(request).await
}

fn json_object(body: &Bytes) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(invalid_body(
            "Payload validation error: 'Expected type object'.",
        )),
    }
}

fn check_allowed(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), Response> {
    match body.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(invalid_body(&format!(
            "Payload validation error: 'Additional properties not allowed: {k}'."
        ))),
        None => Ok(()),
    }
}

fn opt_str(body: &Map<String, Value>, key: &str) -> Result<Option<String>, Response> {
    match body.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid_body(&format!(
            "Payload validation error: 'Expected type string' on property {key}."
        ))),
    }
}

fn opt_bool(body: &Map<String, Value>, key: &str) -> Result<Option<bool>, Response> {
    match body.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(invalid_body(&format!(
            "Payload validation error: 'Expected type boolean' on property {key}."
        ))),
    }
}

/// Auth0 quotes the value it refused in the message (one reason the client
/// never echoes messages).
fn check_email(email: &str) -> Result<(), Response> {
    let ok = email
        .split_once('@')
        .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.ends_with('.'));
    if ok {
        Ok(())
    } else {
        Err(invalid_body(&format!(
            "Payload validation error: 'Object didn't pass validation for format email: {email}'."
        )))
    }
}

async fn token(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let Ok(body) = json_object(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_request", "error_description": "Invalid body"})),
        )
            .into_response();
    };
    let field = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default();
    if field("grant_type") != "client_credentials" {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(json!({"error": "unauthorized_client", "error_description": "Grant type not allowed"})),
        )
            .into_response();
    }
    if field("client_id") != shared.client_id || field("client_secret") != shared.client_secret {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "access_denied", "error_description": "Unauthorized"})),
        )
            .into_response();
    }
    if field("audience") != shared.audience {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(json!({"error": "access_denied", "error_description": "Service not enabled within domain"})),
        )
            .into_response();
    }
    let access_token = random_hex(32);
    let mut s = shared.state();
    let ttl = s.token_ttl;
    s.tokens.insert(access_token.clone(), Instant::now() + ttl);
    axum::Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
        "scope": "read:users create:users update:users delete:users create:user_tickets",
    }))
    .into_response()
}

async fn users_by_email(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(email) = query.get("email") else {
        return error(
            400,
            "Query validation error: 'Missing required property: email'.",
            "invalid_query_string",
        );
    };
    // Case-sensitive, like Auth0's: addresses are stored lowercased.
    let found: Vec<Value> = shared
        .state()
        .users
        .iter()
        .filter(|u| &u.email == email)
        .map(FakeUser::to_json)
        .collect();
    axum::Json(Value::Array(found)).into_response()
}

async fn create_user(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match try_create_user(&shared, &body) {
        Ok(r) | Err(r) => r,
    }
}

fn try_create_user(shared: &Shared, body: &Bytes) -> Result<Response, Response> {
    let body = json_object(body)?;
    check_allowed(
        &body,
        &[
            "email",
            "phone_number",
            "user_metadata",
            "blocked",
            "email_verified",
            "phone_verified",
            "app_metadata",
            "given_name",
            "family_name",
            "name",
            "nickname",
            "picture",
            "user_id",
            "connection",
            "password",
            "verify_email",
            "username",
        ],
    )?;
    let connection = opt_str(&body, "connection")?.unwrap_or_default();
    if connection != shared.connection {
        return Err(error(
            400,
            "The connection does not exist.",
            "inexistent_connection",
        ));
    }
    let email = opt_str(&body, "email")?
        .ok_or_else(|| {
            invalid_body("Payload validation error: 'Missing required property: email'.")
        })?
        .to_lowercase();
    check_email(&email)?;
    let password = opt_str(&body, "password")?.unwrap_or_default();
    if password.len() < 8 {
        return Err(error(
            400,
            "PasswordStrengthError: Password is too weak",
            "invalid_password",
        ));
    }
    let email_verified = opt_bool(&body, "email_verified")?.unwrap_or(false);
    let verify_email = opt_bool(&body, "verify_email")?;
    let app_metadata = match body.get("app_metadata") {
        None => json!({}),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => {
            return Err(invalid_body(
                "Payload validation error: 'Expected type object' on property app_metadata.",
            ));
        }
    };
    let user = FakeUser {
        user_id: new_user_id(),
        connection,
        email,
        email_verified,
        given_name: opt_str(&body, "given_name")?,
        family_name: opt_str(&body, "family_name")?,
        name: opt_str(&body, "name")?,
        blocked: opt_bool(&body, "blocked")?.unwrap_or(false),
        app_metadata,
        password_set: false,
        verification_emails_sent: u32::from(!email_verified && verify_email != Some(false)),
    };
    let mut s = shared.state();
    if s.users
        .iter()
        .any(|u| u.email == user.email && u.connection == user.connection)
    {
        return Err(error(409, "The user already exists.", "auth0_idp_error"));
    }
    let json = user.to_json();
    s.users.push(user);
    Ok((StatusCode::CREATED, axum::Json(json)).into_response())
}

async fn get_user(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match shared.state().users.iter().find(|u| u.user_id == id) {
        Some(u) => axum::Json(u.to_json()).into_response(),
        None => not_found_user(),
    }
}

async fn patch_user(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    match try_patch_user(&shared, &id, &body) {
        Ok(r) | Err(r) => r,
    }
}

fn try_patch_user(shared: &Shared, id: &str, body: &Bytes) -> Result<Response, Response> {
    let body = json_object(body)?;
    check_allowed(
        &body,
        &[
            "blocked",
            "email_verified",
            "email",
            "phone_number",
            "phone_verified",
            "user_metadata",
            "app_metadata",
            "given_name",
            "family_name",
            "name",
            "nickname",
            "picture",
            "verify_email",
            "verify_phone_number",
            "password",
            "connection",
            "client_id",
            "username",
        ],
    )?;
    let email = opt_str(&body, "email")?.map(|e| e.to_lowercase());
    if let Some(email) = &email {
        check_email(email)?;
    }
    let email_verified = opt_bool(&body, "email_verified")?;
    let verify_email = opt_bool(&body, "verify_email")?;
    let blocked = opt_bool(&body, "blocked")?;
    let given_name = opt_str(&body, "given_name")?;
    let family_name = opt_str(&body, "family_name")?;
    let name = opt_str(&body, "name")?;
    let connection = opt_str(&body, "connection")?;
    let app_metadata = match body.get("app_metadata") {
        None => None,
        Some(Value::Object(m)) => Some(m.clone()),
        Some(_) => {
            return Err(invalid_body(
                "Payload validation error: 'Expected type object' on property app_metadata.",
            ));
        }
    };

    let mut s = shared.state();
    let Some(index) = s.users.iter().position(|u| u.user_id == id) else {
        return Err(not_found_user());
    };
    let user_connection = s.users[index].connection.clone();
    if connection.as_ref().is_some_and(|c| *c != user_connection) {
        return Err(error(
            400,
            "The user does not have an identity in this connection.",
            "invalid_body",
        ));
    }
    if let Some(email) = &email
        && s.users
            .iter()
            .any(|u| u.user_id != id && u.connection == user_connection && &u.email == email)
    {
        return Err(error(
            400,
            "The specified new email already exists",
            "auth0_idp_error",
        ));
    }
    let user = &mut s.users[index];
    if let Some(email) = email
        && email != user.email
    {
        user.email = email;
        user.email_verified = false;
        if email_verified != Some(true) && verify_email != Some(false) {
            user.verification_emails_sent += 1;
        }
    }
    if let Some(v) = email_verified {
        user.email_verified = v;
    }
    if let Some(b) = blocked {
        user.blocked = b;
    }
    if given_name.is_some() {
        user.given_name = given_name;
    }
    if family_name.is_some() {
        user.family_name = family_name;
    }
    if name.is_some() {
        user.name = name;
    }
    if let Some(patch) = app_metadata {
        // Auth0 merges app_metadata at the top level; null removes a key.
        let meta = user.app_metadata.as_object_mut();
        let mut merged = meta.cloned().unwrap_or_default();
        for (k, v) in patch {
            if v.is_null() {
                merged.remove(&k);
            } else {
                merged.insert(k, v);
            }
        }
        user.app_metadata = Value::Object(merged);
    }
    Ok(axum::Json(user.to_json()).into_response())
}

/// Auth0 answers 204 whether or not the login existed.
async fn delete_user(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let mut s = shared.state();
    s.users.retain(|u| u.user_id != id);
    s.tickets.retain(|_, t| t.user_id != id);
    StatusCode::NO_CONTENT.into_response()
}

async fn list_users(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let number = |k: &str, default: u64| -> Result<u64, Response> {
        match query.get(k) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                error(
                    400,
                    &format!("Query validation error: 'Expected type integer' on property {k}."),
                    "invalid_query_string",
                )
            }),
        }
    };
    let (page, per_page) = match (number("page", 0), number("per_page", 50)) {
        (Ok(p), Ok(pp)) => (p, pp),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    if per_page > 100 {
        return error(
            400,
            "Query validation error: 'Number is greater than maximum: 100' on property per_page.",
            "invalid_query_string",
        );
    }
    if page * per_page >= 1000 {
        return error(
            400,
            "You can only page through the first 1000 records.",
            "invalid_paging",
        );
    }
    // Only `identities.connection:"…"` is understood; anything else in `q`
    // is ignored.
    let connection = query.get("q").and_then(|q| {
        let rest = q.split_once("identities.connection:")?.1;
        let rest = rest.strip_prefix('"')?;
        Some(rest.split_once('"')?.0.replace("\\\"", "\""))
    });
    let s = shared.state();
    let matching: Vec<&FakeUser> = s
        .users
        .iter()
        .filter(|u| connection.as_ref().is_none_or(|c| *c == u.connection))
        .collect();
    let start = usize::try_from(page * per_page).unwrap_or(usize::MAX);
    let users: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(usize::try_from(per_page).unwrap_or(usize::MAX))
        .map(|u| u.to_json())
        .collect();
    if query.get("include_totals").is_some_and(|v| v == "true") {
        axum::Json(json!({
            "start": start,
            "limit": per_page,
            "length": users.len(),
            "total": matching.len(),
            "users": users,
        }))
        .into_response()
    } else {
        axum::Json(Value::Array(users)).into_response()
    }
}

async fn create_ticket(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match try_create_ticket(&shared, &body) {
        Ok(r) | Err(r) => r,
    }
}

fn try_create_ticket(shared: &Shared, body: &Bytes) -> Result<Response, Response> {
    let body = json_object(body)?;
    check_allowed(
        &body,
        &[
            "result_url",
            "user_id",
            "client_id",
            "organization_id",
            "connection_id",
            "email",
            "ttl_sec",
            "mark_email_as_verified",
            "includeEmailInRedirect",
        ],
    )?;
    let user_id = opt_str(&body, "user_id")?.ok_or_else(|| {
        invalid_body("Payload validation error: 'Missing required property: user_id'.")
    })?;
    let client_id = opt_str(&body, "client_id")?.unwrap_or_default();
    if client_id != shared.portal_client_id {
        return Err(error(404, "The client does not exist", "inexistent_client"));
    }
    let ttl_sec = match body.get("ttl_sec") {
        None => 432_000,
        Some(v) => v.as_u64().ok_or_else(|| {
            invalid_body("Payload validation error: 'Expected type integer' on property ttl_sec.")
        })?,
    };
    let mark_email_as_verified = opt_bool(&body, "mark_email_as_verified")?.unwrap_or(false);
    let mut s = shared.state();
    if !s.users.iter().any(|u| u.user_id == user_id) {
        return Err(not_found_user());
    }
    let url = format!("{}/lo/reset?ticket={}#", shared.base_url, random_hex(16));
    s.tickets.insert(
        url.clone(),
        FakeTicket {
            user_id,
            client_id,
            ttl_sec,
            mark_email_as_verified,
            expires_at: Instant::now() + Duration::from_secs(ttl_sec),
        },
    );
    Ok((StatusCode::CREATED, axum::Json(json!({ "ticket": url }))).into_response())
}
