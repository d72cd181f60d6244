//! Routes without a token: invitation links, email verification links and
//! the signed-out password reset. Opening a link (GET) never consumes it;
//! only an explicit POST acts.

use super::json;
use super::users::user_response;
use crate::app::AppState;
use crate::problem::Problem;
use crate::request::json_body;
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use peak_domain::users::{self, Ctx};
use serde::Deserialize;

pub async fn view_invitation(ctx: &Ctx<'_>, token: &str) -> Result<Response<Body>, Problem> {
    let v = users::view_invitation(ctx, token).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "state": "pending",
            "tenant": v.tenant.as_str(),
            "first_name": v.first_name,
            "email": v.masked_email,
            "expires_at": v.expires_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "accept": "POST this URL + /accept to continue to setting your password",
        }),
    ))
}

pub async fn accept_invitation(
    ctx: &Ctx<'_>,
    state: &AppState,
    token: &str,
) -> Result<Response<Body>, Problem> {
    let url = users::accept_invitation(ctx, state.idp.as_ref(), token).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "password_setup_url": url }),
    ))
}

pub fn view_email_verification(token: &str) -> Result<Response<Body>, Problem> {
    if token.is_empty() {
        return Err(Problem::route_not_found());
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "confirm": "POST this URL to make the new address your login email" }),
    ))
}

pub async fn confirm_email(ctx: &Ctx<'_>, token: &str) -> Result<Response<Body>, Problem> {
    let user = users::verify_email(ctx, token).await?;
    Ok(user_response(StatusCode::OK, &user))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetRequest {
    tenant: String,
    email: String,
}

/// Always the same 202 (and, padded, about the same time) whether or not
/// the address belongs to a user, so the answer reveals nothing.
pub async fn request_password_reset(
    ctx: &Ctx<'_>,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    const FLOOR: std::time::Duration = std::time::Duration::from_millis(250);
    let started = std::time::Instant::now();
    let input: ResetRequest = json_body(req)?;
    let result = users::request_password_reset(ctx, &input.tenant, &input.email).await;
    if let Some(rest) = FLOOR.checked_sub(started.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    result?;
    Ok(json(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "status": "if this address belongs to a user, a reset link is on its way" }),
    ))
}
