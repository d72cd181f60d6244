//! The fake's routes and the gate every request passes (log, faults, rate
//! limit, token and scope, rate-limit headers).

use super::{FakeState, FakeTicket, FakeUser, Fault, Job, Shared, app_metadata_violation};
use super::{new_user_id, random_hex};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Requests allowed per second when a test sets no limit (what the
/// `x-ratelimit-limit` header says).
const NOMINAL_LIMIT: u32 = 50;
/// Auth0's search shows at most this many results of one query.
const SEARCH_RESULT_LIMIT: u64 = 1_000;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/oauth/token", post(token))
        .route("/api/v2/users-by-email", get(users_by_email))
        .route("/api/v2/users", get(search_users).post(create_user))
        .route(
            "/api/v2/users/{id}",
            get(get_user).patch(patch_user).delete(delete_user),
        )
        .route("/api/v2/users/{id}/sessions", delete(delete_sessions))
        .route(
            "/api/v2/users/{id}/refresh-tokens",
            delete(delete_refresh_tokens),
        )
        .route("/api/v2/user-blocks/{id}", delete(delete_user_blocks))
        .route("/api/v2/tickets/password-change", post(create_ticket))
        .route("/api/v2/jobs/users-exports", post(create_export))
        .route("/api/v2/jobs/{id}", get(get_job))
        .route("/fake-exports/{file}", get(export_file))
        .layer(middleware::from_fn_with_state(shared.clone(), gate))
        .with_state(shared)
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(super) fn error(status: u16, message: &str, code: &str) -> Response {
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

/// The scope a route needs (Auth0's Management API scopes).
fn required_scope(method: &str, path: &str) -> Option<&'static str> {
    let rest = path.strip_prefix("/api/v2/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    Some(match (method, parts.as_slice()) {
        ("GET", ["users-by-email"] | ["users"] | ["users", _]) => "read:users",
        ("POST", ["users"]) => "create:users",
        ("PATCH", ["users", _]) => "update:users",
        ("DELETE", ["users", _]) => "delete:users",
        ("DELETE", ["users", _, "sessions"]) => "delete:sessions",
        ("DELETE", ["users", _, "refresh-tokens"]) => "delete:refresh_tokens",
        ("DELETE", ["user-blocks", _]) => "update:users",
        ("POST", ["tickets", "password-change"]) => "create:user_tickets",
        ("POST", ["jobs", "users-exports"]) | ("GET", ["jobs", _]) => "read:users",
        _ => return None,
    })
}

/// Logs the request, applies `down`, faults and the rate limit, checks the
/// bearer token and its scope on `/api/v2/`, and puts the rate-limit
/// headers on every answer.
async fn gate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 4 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let method = parts.method.to_string();
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let now_secs = unix_secs();
    let (index, down, fault, limited, remaining) = {
        let mut s = shared.state();
        s.log.push(FakeRequest {
            method: method.clone(),
            path: path.clone(),
            query,
            body: serde_json::from_slice(&bytes).ok(),
            status: 0,
            at: Instant::now(),
        });
        let down = s.down;
        let fault = if down { None } else { s.faults.pop_front() };
        if s.window.0 != now_secs {
            s.window = (now_secs, 0);
        }
        s.window.1 += 1;
        let limit = s.rate_limit.unwrap_or(NOMINAL_LIMIT);
        let limited = s.rate_limit.is_some_and(|l| s.window.1 > l);
        let remaining = limit.saturating_sub(s.window.1);
        (s.log.len() - 1, down, fault, limited, remaining)
    };
    let request = Request::from_parts(parts, axum::body::Body::from(bytes));
    let mut response = if down {
        error(503, "The service is down (fake).", "service_unavailable")
    } else if limited {
        rate_limited(None)
    } else {
        match fault {
            Some(Fault::Status(status)) => error(status, "Injected fault (fake).", "fake_fault"),
            Some(Fault::RateLimit { reset_in_secs }) => {
                let mut r = rate_limited(None);
                set_reset(&mut r, now_secs + reset_in_secs);
                r
            }
            Some(Fault::RateLimitRetryAfter { retry_after_secs }) => {
                let mut r = rate_limited(Some(retry_after_secs));
                set_reset(&mut r, now_secs + retry_after_secs);
                r
            }
            Some(Fault::Delay(delay)) => {
                tokio::time::sleep(delay).await;
                authorized(&shared, &method, &path, request, next).await
            }
            None => authorized(&shared, &method, &path, request, next).await,
        }
    };
    let headers = response.headers_mut();
    let limit = shared.state().rate_limit.unwrap_or(NOMINAL_LIMIT);
    headers.insert("x-ratelimit-limit", HeaderValue::from(limit));
    if !headers.contains_key("x-ratelimit-remaining") {
        headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    }
    if !headers.contains_key("x-ratelimit-reset") {
        headers.insert("x-ratelimit-reset", HeaderValue::from(now_secs + 1));
    }
    if let Some(entry) = shared.state().log.get_mut(index) {
        entry.status = response.status().as_u16();
    }
    response
}

use super::FakeRequest;

fn rate_limited(retry_after_secs: Option<u64>) -> Response {
    let mut response = error(429, "Global limit has been reached", "too_many_requests");
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-remaining", HeaderValue::from(0u64));
    if let Some(secs) = retry_after_secs {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

fn set_reset(response: &mut Response, at: u64) {
    response
        .headers_mut()
        .insert("x-ratelimit-reset", HeaderValue::from(at));
}

async fn authorized(
    shared: &Shared,
    method: &str,
    path: &str,
    request: Request,
    next: Next,
) -> Response {
    if path.starts_with("/api/v2/") {
        let token = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned);
        let scopes = token.and_then(|t| {
            shared
                .state()
                .tokens
                .get(&t)
                .filter(|(expires, _)| *expires > Instant::now())
                .map(|(_, scopes)| scopes.clone())
        });
        let Some(scopes) = scopes else {
            return error(401, "Invalid token", "invalid_token");
        };
        if let Some(scope) = required_scope(method, path)
            && !scopes.contains(scope)
        {
            return error(
                403,
                &format!("Insufficient scope, expected any of: {scope}"),
                "insufficient_scope",
            );
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

fn opt_app_metadata(body: &Map<String, Value>) -> Result<Option<Map<String, Value>>, Response> {
    match body.get("app_metadata") {
        None => Ok(None),
        Some(Value::Object(m)) => match app_metadata_violation(m) {
            Some(why) => Err(invalid_body(&format!("Payload validation error: {why}."))),
            None => Ok(Some(m.clone())),
        },
        Some(_) => Err(invalid_body(
            "Payload validation error: 'Expected type object' on property app_metadata.",
        )),
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
    let scopes = s.granted.clone();
    let mut scope: Vec<&str> = scopes.iter().map(String::as_str).collect();
    scope.sort_unstable();
    let scope = scope.join(" ");
    s.tokens
        .insert(access_token.clone(), (Instant::now() + ttl, scopes));
    axum::Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
        "scope": scope,
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
    // The definition of this body allows no other properties.
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
    let app_metadata = opt_app_metadata(&body)?.map_or(json!({}), Value::Object);
    let user = FakeUser {
        user_id: new_user_id(),
        connection,
        email,
        email_verified,
        given_name: opt_str(&body, "given_name")?,
        family_name: opt_str(&body, "family_name")?,
        name: opt_str(&body, "name")?,
        blocked: opt_bool(&body, "blocked")?.unwrap_or(false),
        brute_force_blocked: false,
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
    let id = user.user_id.clone();
    s.users.push(user);
    s.index(&id);
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

/// Properties the update definition does not name are ignored (it allows
/// additional properties); the ones it names are checked.
fn try_patch_user(shared: &Shared, id: &str, body: &Bytes) -> Result<Response, Response> {
    let body = json_object(body)?;
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
    let app_metadata = opt_app_metadata(&body)?;

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
        let mut merged = user.app_metadata.as_object().cloned().unwrap_or_default();
        for (k, v) in patch {
            if v.is_null() {
                merged.remove(&k);
            } else {
                merged.insert(k, v);
            }
        }
        user.app_metadata = Value::Object(merged);
    }
    let json = user.to_json();
    s.index(id);
    Ok(axum::Json(json).into_response())
}

/// Auth0 answers 204 whether or not the login existed.
async fn delete_user(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let mut s = shared.state();
    s.users.retain(|u| u.user_id != id);
    s.tickets.retain(|_, t| t.user_id != id);
    s.index(&id);
    StatusCode::NO_CONTENT.into_response()
}

/// Session revocation is asynchronous at Auth0 (202); the fake ends them at
/// once.
async fn delete_sessions(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    shared.state().sessions.retain(|_, u| *u != id);
    StatusCode::ACCEPTED.into_response()
}

async fn delete_refresh_tokens(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Response {
    shared.state().refresh_tokens.retain(|_, u| *u != id);
    StatusCode::ACCEPTED.into_response()
}

/// Lifts the brute-force block (by user id here; Auth0 also takes an
/// identifier at `/user-blocks?identifier=`).
async fn delete_user_blocks(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let mut s = shared.state();
    match s.users.iter_mut().find(|u| u.user_id == id) {
        Some(u) => {
            u.brute_force_blocked = false;
            StatusCode::NO_CONTENT.into_response()
        }
        None => not_found_user(),
    }
}

/// What search sees of one user now: the newest snapshot whose lag has
/// passed.
fn visible(s: &FakeState, id: &str, now: Instant) -> Option<FakeUser> {
    s.index
        .get(id)?
        .iter()
        .rev()
        .find(|(at, _)| *at <= now)
        .and_then(|(_, u)| u.clone())
}

/// A `q` term (`field:"value"` or `field:value`) on one user.
fn term_matches(u: &FakeUser, field: &str, value: &str) -> Option<bool> {
    let meta = |k: &str| u.app_metadata.get(k).and_then(Value::as_str) == Some(value);
    Some(match field {
        "identities.connection" => u.connection == value,
        "email" => u.email == value.to_lowercase(),
        "user_id" => u.user_id == value,
        "blocked" => u.blocked.to_string() == value,
        "app_metadata.tenant" => meta("tenant"),
        "app_metadata.peak_user_id" => meta("peak_user_id"),
        _ => return None,
    })
}

fn parse_q(q: &str) -> Result<Vec<(String, String)>, Response> {
    q.split(" AND ")
        .map(|term| {
            let (field, value) = term.trim().split_once(':').ok_or_else(|| {
                error(
                    400,
                    "Query validation error: bad q.",
                    "invalid_query_string",
                )
            })?;
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value)
                .replace("\\\"", "\"");
            Ok((field.trim().to_owned(), value))
        })
        .collect()
}

async fn search_users(
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
    if page * per_page >= SEARCH_RESULT_LIMIT {
        return error(
            400,
            "You can only page through the first 1000 records.",
            "invalid_paging",
        );
    }
    let terms = match query.get("q").map(|q| parse_q(q)).transpose() {
        Ok(t) => t.unwrap_or_default(),
        Err(r) => return r,
    };
    let s = shared.state();
    let now = Instant::now();
    let mut matching = Vec::new();
    for id in s.index.keys() {
        let Some(u) = visible(&s, id, now) else {
            continue;
        };
        let mut keep = true;
        for (field, value) in &terms {
            match term_matches(&u, field, value) {
                Some(m) => keep &= m,
                None => {
                    return error(
                        400,
                        &format!("The fake does not search on {field}."),
                        "invalid_query_string",
                    );
                }
            }
        }
        if keep {
            matching.push(u);
        }
    }
    let created = |u: &FakeUser| s.created.get(&u.user_id).copied().unwrap_or(0);
    let sort = query
        .get("sort")
        .map(String::as_str)
        .unwrap_or("created_at:1");
    let Some((field, order)) = sort.split_once(':') else {
        return error(
            400,
            "Query validation error: bad sort.",
            "invalid_query_string",
        );
    };
    match field {
        "created_at" => matching.sort_by_key(|u| created(u)),
        "email" => matching.sort_by(|a, b| a.email.cmp(&b.email)),
        "user_id" => matching.sort_by(|a, b| a.user_id.cmp(&b.user_id)),
        _ => {
            return error(
                400,
                &format!("The fake does not sort on {field}."),
                "invalid_query_string",
            );
        }
    }
    if order == "-1" {
        matching.reverse();
    }
    let total = matching.len();
    let start = usize::try_from(page * per_page).unwrap_or(usize::MAX);
    let users: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(usize::try_from(per_page).unwrap_or(usize::MAX))
        .map(FakeUser::to_json)
        .collect();
    if query.get("include_totals").is_some_and(|v| v == "true") {
        axum::Json(json!({
            "start": start,
            "limit": per_page,
            "length": users.len(),
            "total": total,
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
            "identity",
        ],
    )?;
    let user_id = opt_str(&body, "user_id")?.ok_or_else(|| {
        invalid_body("Payload validation error: 'Missing required property: user_id'.")
    })?;
    let client_id = opt_str(&body, "client_id")?;
    let result_url = opt_str(&body, "result_url")?;
    if client_id.is_some() && result_url.is_some() {
        return Err(invalid_body(
            "Payload validation error: result_url cannot be specified when using client_id.",
        ));
    }
    let ttl_sec = match body.get("ttl_sec") {
        None => 0,
        Some(v) => v.as_u64().ok_or_else(|| {
            invalid_body("Payload validation error: 'Expected type integer' on property ttl_sec.")
        })?,
    };
    // 0 (or absent) is the default lifetime, not "expired".
    let ttl_sec = if ttl_sec == 0 {
        super::FakeAuth0::DEFAULT_TICKET_TTL_SECS
    } else {
        ttl_sec
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
            result_url,
            ttl_sec,
            mark_email_as_verified,
            expires_at: Instant::now() + Duration::from_secs(ttl_sec),
        },
    );
    Ok((StatusCode::CREATED, axum::Json(json!({ "ticket": url }))).into_response())
}

async fn create_export(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match try_create_export(&shared, &body) {
        Ok(r) | Err(r) => r,
    }
}

fn try_create_export(shared: &Shared, body: &Bytes) -> Result<Response, Response> {
    let body = json_object(body)?;
    check_allowed(&body, &["connection_id", "format", "limit", "fields"])?;
    let format = opt_str(&body, "format")?.unwrap_or_else(|| "csv".into());
    if format != "json" {
        return Err(error(501, "The fake exports JSON only.", "not_implemented"));
    }
    let connection = opt_str(&body, "connection_id")?;
    let limit = match body.get("limit") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|l| *l >= 1)
                .and_then(|l| usize::try_from(l).ok())
                .ok_or_else(|| invalid_body("Payload validation error: limit."))?,
        ),
    };
    let mut fields = Vec::new();
    for f in body
        .get("fields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        let name = f
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid_body("Payload validation error: fields[].name."))?;
        let export_as = f.get("export_as").and_then(Value::as_str).unwrap_or(name);
        fields.push((name.to_owned(), export_as.to_owned()));
    }
    let id = format!("job_{}", random_hex(8));
    let mut s = shared.state();
    let users = s.users.clone();
    let polls_left = s.export_polls;
    s.jobs.insert(
        id.clone(),
        Job {
            polls_left,
            fields,
            connection,
            limit,
            users,
        },
    );
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({
            "status": "pending",
            "type": "users_export",
            "id": id,
            "format": "json",
        })),
    )
        .into_response())
}

async fn get_job(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let mut s = shared.state();
    let Some(job) = s.jobs.get_mut(&id) else {
        return error(404, "The job does not exist.", "inexistent_job");
    };
    if job.polls_left > 0 {
        job.polls_left -= 1;
        return axum::Json(json!({
            "status": "processing", "type": "users_export", "id": id, "format": "json",
        }))
        .into_response();
    }
    axum::Json(json!({
        "status": "completed",
        "type": "users_export",
        "id": id,
        "format": "json",
        "location": format!("{}/fake-exports/{id}.json.gz", shared.base_url),
    }))
    .into_response()
}

/// A field of an export (`email`, `app_metadata.tenant`,
/// `identities[0].connection`).
fn export_value(json: &Value, name: &str) -> Value {
    let mut at = json;
    for part in name.split('.') {
        let (key, index) = match part.split_once('[') {
            Some((k, i)) => (k, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        at = match at.get(key) {
            Some(v) => v,
            None => return Value::Null,
        };
        if let Some(i) = index {
            at = match at.get(i) {
                Some(v) => v,
                None => return Value::Null,
            };
        }
    }
    at.clone()
}

/// The export file: gzipped, one JSON object per line (no token needed:
/// Auth0's location is a presigned URL).
async fn export_file(State(shared): State<Arc<Shared>>, Path(file): Path<String>) -> Response {
    let id = file.trim_end_matches(".json.gz");
    let s = shared.state();
    let Some(job) = s.jobs.get(id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let users = job
        .users
        .iter()
        .filter(|u| match job.connection.as_deref() {
            None => true,
            Some(id) => id == super::FakeAuth0::CONNECTION_ID && u.connection == shared.connection,
        })
        .take(job.limit.unwrap_or(usize::MAX));
    for u in users {
        let json = u.to_json();
        let mut line = Map::new();
        for (name, export_as) in &job.fields {
            let v = export_value(&json, name);
            if !v.is_null() {
                line.insert(export_as.clone(), v);
            }
        }
        let _ = writeln!(gz, "{}", Value::Object(line));
    }
    match gz.finish() {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/gzip")], bytes).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
