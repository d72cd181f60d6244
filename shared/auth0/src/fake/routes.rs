//! The fake's routes and the gate every request passes (log, faults, rate
//! limit, token and scope, rate-limit headers), the token endpoint, and the
//! body checks every route shares. The routes live by resource in the
//! modules below.

mod jobs;
mod search;
mod sessions;
mod tickets;
mod users;

use super::{FakeRequest, Fault, Shared, app_metadata_violation, random_hex};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Requests allowed per second when a test sets no limit (what the
/// `x-ratelimit-limit` header says).
const NOMINAL_LIMIT: u32 = 50;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/oauth/token", post(token))
        .route("/api/v2/users-by-email", get(users::users_by_email))
        .route(
            "/api/v2/users",
            get(search::search_users).post(users::create_user),
        )
        .route(
            "/api/v2/users/{id}",
            get(users::get_user)
                .patch(users::patch_user)
                .delete(users::delete_user),
        )
        .route(
            "/api/v2/users/{id}/sessions",
            delete(sessions::delete_sessions),
        )
        .route(
            "/api/v2/users/{id}/refresh-tokens",
            delete(sessions::delete_refresh_tokens),
        )
        .route(
            "/api/v2/user-blocks/{id}",
            delete(sessions::delete_user_blocks),
        )
        .route(
            "/api/v2/tickets/password-change",
            post(tickets::create_ticket),
        )
        .route("/api/v2/jobs/users-exports", post(jobs::create_export))
        .route("/api/v2/jobs/{id}", get(jobs::get_job))
        .route("/fake-exports/{file}", get(jobs::export_file))
        .layer(middleware::from_fn_with_state(shared.clone(), gate))
        .with_state(shared)
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
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
    let now_ms = unix_millis();
    let now_secs = now_ms / 1000;
    let (index, down, fault, limited, remaining) = {
        let mut s = shared.state();
        s.log.push(FakeRequest {
            method: method.clone(),
            path: path.clone(),
            query,
            body: serde_json::from_slice(&bytes).ok(),
            status: 0,
            at: Instant::now(),
            unix_ms: now_ms,
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
