//! Password-change tickets.

use super::{check_allowed, invalid_body, json_object, not_found_user, opt_bool, opt_str};
use crate::fake::{FakeAuth0, FakeTicket, Shared, random_hex};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) async fn create_ticket(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
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
        FakeAuth0::DEFAULT_TICKET_TTL_SECS
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
