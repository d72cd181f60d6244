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
//! It behaves as Auth0 documents the routes, where a test could tell:
//! - users, access tokens (with scopes; a route needs its scope), password
//!   change tickets (`client_id` optional, exclusive with `result_url`;
//!   `ttl_sec: 0` is the 5-day default), sessions, refresh tokens,
//!   brute-force blocks (`user-blocks`) and users-export jobs (a gzipped
//!   NDJSON file at a presigned-like location);
//! - `app_metadata` refuses Auth0's reserved names
//!   ([`RESERVED_APP_METADATA_KEYS`]) and names with `.` or `$`; `PATCH`
//!   ignores properties it does not know (the definition allows them);
//! - user search (`GET /api/v2/users`) is eventually consistent (a
//!   configurable lag), understands `q` (`field:"value"` terms joined by
//!   `AND`) and `sort`, and stops at 1,000 results;
//! - every answer carries `x-ratelimit-limit`, `-remaining` and `-reset`;
//!   a 429 carries only those (the global limit's documented headers) unless
//!   a test asks for `Retry-After`;
//! - errors are `{statusCode, error, message, errorCode}`.
//!
//! It logs every request it receives (method, path, query, JSON body), so
//! tests can check what was sent, and the conformance check can hold every
//! request against Auth0's published definition.

#![allow(
    clippy::result_large_err,
    reason = "handler helpers return the refusal response as their error; size does not matter in a test fake"
)]

mod routes;

use crate::{Auth0Client, Auth0Config, RESERVED_APP_METADATA_KEYS};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// Blocked by brute-force protection (too many failed sign-ins): a
    /// `user-blocks` entry, which `blocked: false` does not lift.
    pub brute_force_blocked: bool,
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
            brute_force_blocked: false,
            app_metadata: json!({}),
            password_set: false,
            verification_emails_sent: 0,
        }
    }

    /// As a login created by peak-users for `tenant`/`user_id`.
    pub fn with_tenant(mut self, tenant: &str, user_id: &str) -> Self {
        self.app_metadata = json!({ "tenant": tenant, "peak_user_id": user_id });
        self
    }

    pub(crate) fn to_json(&self) -> Value {
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
    /// 429 of the global rate limit: only `x-ratelimit-*`, the limit's reset
    /// this many seconds ahead (what Auth0 documents).
    RateLimit { reset_in_secs: u64 },
    /// 429 that also carries `Retry-After`.
    RateLimitRetryAfter { retry_after_secs: u64 },
    /// The normal answer, after this long.
    Delay(Duration),
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeRequest {
    pub method: String,
    /// Without the query string.
    pub path: String,
    /// The query's parameters, decoded, in order.
    pub query: Vec<(String, String)>,
    /// The body, when it was JSON.
    pub body: Option<Value>,
    /// 0 while unanswered, or when the caller gave up before the answer.
    pub status: u16,
    /// When it arrived.
    pub at: Instant,
    /// When it arrived, in Unix milliseconds (the second Auth0's rate limit
    /// counts it in: `unix_ms / 1000`).
    pub unix_ms: u64,
}

/// A password-change ticket the fake issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeTicket {
    pub user_id: String,
    pub client_id: Option<String>,
    pub result_url: Option<String>,
    pub ttl_sec: u64,
    pub mark_email_as_verified: bool,
    pub expires_at: Instant,
}

/// The scopes a token of the fake carries unless a test takes one away:
/// the ones the README tells operators to grant.
pub const GRANTED_SCOPES: &[&str] = &[
    "read:users",
    "create:users",
    "update:users",
    "delete:users",
    "create:user_tickets",
    "delete:sessions",
    "delete:refresh_tokens",
];

pub(crate) struct Shared {
    pub base_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub audience: String,
    pub connection: String,
    pub state: Mutex<FakeState>,
}

pub(crate) struct Job {
    pub polls_left: u32,
    pub fields: Vec<(String, String)>,
    pub connection: Option<String>,
    pub limit: Option<usize>,
    pub users: Vec<FakeUser>,
}

pub(crate) struct FakeState {
    /// In creation order (what `sort=created_at:1` returns).
    pub users: Vec<FakeUser>,
    /// What search sees: per user, snapshots (`None` = deleted) with the
    /// time each becomes visible.
    pub index: HashMap<String, Vec<(Instant, Option<FakeUser>)>>,
    pub search_lag: Duration,
    /// Creation order of every user ever created (search's `created_at`).
    pub created: HashMap<String, u64>,
    pub next_created: u64,
    /// token → (expiry, scopes)
    pub tokens: HashMap<String, (Instant, HashSet<String>)>,
    pub token_ttl: Duration,
    pub granted: HashSet<String>,
    pub tickets: HashMap<String, FakeTicket>,
    /// session id → user id
    pub sessions: HashMap<String, String>,
    /// refresh token id → user id
    pub refresh_tokens: HashMap<String, String>,
    pub jobs: HashMap<String, Job>,
    pub export_polls: u32,
    pub faults: VecDeque<Fault>,
    pub down: bool,
    /// Requests allowed per second (`None`: no limit).
    pub rate_limit: Option<u32>,
    pub window: (u64, u32),
    pub log: Vec<FakeRequest>,
}

impl FakeState {
    /// Records a change for search to see after the lag.
    pub fn index(&mut self, id: &str) {
        let snapshot = self.users.iter().find(|u| u.user_id == id).cloned();
        if snapshot.is_some() && !self.created.contains_key(id) {
            self.next_created += 1;
            self.created.insert(id.to_owned(), self.next_created);
        }
        let visible = Instant::now() + self.search_lag;
        self.index
            .entry(id.to_owned())
            .or_default()
            .push((visible, snapshot));
    }
}

impl Shared {
    pub fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
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
    /// Its id (what an export job's `connection_id` names).
    pub const CONNECTION_ID: &'static str = "con_FakeConnection1A";
    /// What `ttl_sec` absent or 0 means (Auth0: 5 days).
    pub const DEFAULT_TICKET_TTL_SECS: u64 = 432_000;

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
            state: Mutex::new(FakeState {
                users: Vec::new(),
                index: HashMap::new(),
                search_lag: Duration::ZERO,
                created: HashMap::new(),
                next_created: 0,
                tokens: HashMap::new(),
                token_ttl: Duration::from_secs(86_400),
                granted: GRANTED_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
                tickets: HashMap::new(),
                sessions: HashMap::new(),
                refresh_tokens: HashMap::new(),
                jobs: HashMap::new(),
                export_polls: 1,
                faults: VecDeque::new(),
                down: false,
                rate_limit: None,
                window: (0, 0),
                log: Vec::new(),
            }),
        });
        let app = routes::router(shared.clone());
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
            shared,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// A config pointing at the fake (default deadlines; tests may shorten
    /// them), polling export jobs quickly.
    pub fn config(&self) -> Auth0Config {
        let mut config = Auth0Config::new(
            &self.base_url,
            &self.client_id,
            &self.client_secret,
            &self.connection,
        );
        config.export_poll = Duration::from_millis(50);
        config
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

    /// At most `per_second` requests per second; more get 429 with only the
    /// `x-ratelimit-*` headers (`None`: no limit).
    pub fn set_rate_limit(&self, per_second: Option<u32>) {
        self.shared.state().rate_limit = per_second;
    }

    /// How long a change takes to show in user search.
    pub fn set_search_lag(&self, lag: Duration) {
        self.shared.state().search_lag = lag;
    }

    /// How many polls an export job answers `processing` before it is
    /// `completed` (default 1).
    pub fn set_export_polls(&self, polls: u32) {
        self.shared.state().export_polls = polls;
    }

    /// Tokens issued from now on lack `scope` (as for a tenant whose plan
    /// lacks the feature, or an application not granted it): its routes
    /// answer 403 `insufficient_scope`.
    pub fn withhold_scope(&self, scope: &str) {
        self.shared.state().granted.remove(scope);
    }

    /// Every token issued so far stops working (the client gets 401).
    pub fn expire_tokens(&self) {
        let now = Instant::now();
        for (expires, _) in self.shared.state().tokens.values_mut() {
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
    /// `auth0|<hex>` when `user_id` is empty. Returns its id. Its
    /// `app_metadata` is taken as given (a login made before a name was
    /// reserved may carry it).
    pub fn insert_user(&self, mut user: FakeUser) -> String {
        if user.user_id.is_empty() {
            user.user_id = new_user_id();
        }
        user.email = user.email.to_lowercase();
        let id = user.user_id.clone();
        let mut s = self.shared.state();
        s.users.push(user);
        s.index(&id);
        id
    }

    /// Blocks or unblocks a login (as from the dashboard); false when there
    /// is none.
    pub fn set_blocked(&self, id: &str, blocked: bool) -> bool {
        let mut s = self.shared.state();
        let Some(u) = s.users.iter_mut().find(|u| u.user_id == id) else {
            return false;
        };
        u.blocked = blocked;
        s.index(id);
        true
    }

    /// Replaces a login's `app_metadata` (as an operator or another
    /// application might); false when there is no such login.
    pub fn set_app_metadata(&self, id: &str, app_metadata: Value) -> bool {
        let mut s = self.shared.state();
        let Some(u) = s.users.iter_mut().find(|u| u.user_id == id) else {
            return false;
        };
        u.app_metadata = app_metadata;
        s.index(id);
        true
    }

    /// Brute-force protection blocks the login (too many failed sign-ins).
    pub fn set_brute_force_blocked(&self, id: &str, blocked: bool) -> bool {
        let mut s = self.shared.state();
        match s.users.iter_mut().find(|u| u.user_id == id) {
            Some(u) => {
                u.brute_force_blocked = blocked;
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
        s.index(id);
        s.users.len() != before
    }

    /// The person signs in somewhere: a session and a refresh token.
    pub fn sign_in(&self, id: &str) {
        let mut s = self.shared.state();
        s.sessions
            .insert(format!("sess_{}", random_hex(8)), id.to_owned());
        s.refresh_tokens
            .insert(format!("rt_{}", random_hex(8)), id.to_owned());
    }

    /// The login's live sessions.
    pub fn sessions(&self, id: &str) -> usize {
        self.shared
            .state()
            .sessions
            .values()
            .filter(|u| *u == id)
            .count()
    }

    /// The login's live refresh tokens.
    pub fn refresh_tokens(&self, id: &str) -> usize {
        self.shared
            .state()
            .refresh_tokens
            .values()
            .filter(|u| *u == id)
            .count()
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

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("OS randomness");
    hex::encode(buf)
}

pub(crate) fn new_user_id() -> String {
    format!("auth0|{}", random_hex(12))
}

/// Why `app_metadata` would be refused: a reserved name, or a name with
/// `.` or `$` (Auth0's metadata rules).
pub fn app_metadata_violation(meta: &serde_json::Map<String, Value>) -> Option<String> {
    meta.keys().find_map(|k| {
        if RESERVED_APP_METADATA_KEYS.contains(&k.as_str()) {
            Some(format!("app_metadata.{k} is a reserved property name"))
        } else if k.contains('.') || k.contains('$') {
            Some(format!("app_metadata.{k}: names must not contain . or $"))
        } else {
            None
        }
    })
}
