//! Routes without a token: invitation links, email verification links and
//! the signed-out password reset. Opening a link (GET) never consumes it;
//! only an explicit POST acts. The link routes answer a browser with a page
//! (peak-pages) and an API client with JSON, from the same use cases.

use super::json;
use super::users::user_response;
use crate::problem::Problem;
use crate::request::{json_body, wants_html};
use crate::state::AppState;
use crate::views::PasswordResetRequest;
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use peak_domain::Error;
use peak_domain::TenantId;
use peak_domain::users::{self, Ctx};
use peak_email::Brand;
use peak_pages::Page;
use std::borrow::Cow;

/// A page as the response.
fn page(p: Page) -> Response<Body> {
    let (parts, html) = p.into_response().into_parts();
    Response::from_parts(parts, Body::Text(html))
}

/// The tenant's brand: the deployment's (`EMAIL_BRANDS`) under the
/// tenant's own record where it has one (name, portal URL), so a page
/// looks like the email that led to it. Best effort: a failed read shows
/// the deployment's brand rather than no page.
async fn brand<'a>(state: &'a AppState, tenant: Option<&TenantId>) -> Cow<'a, Brand> {
    let Some(t) = tenant else {
        return Cow::Borrowed(state.brands.default_brand());
    };
    let base = state.brands.for_tenant(t);
    match state.tenants.get_tenant(t).await {
        Ok(Some(record)) => Cow::Owned(base.under(&record)),
        _ => Cow::Borrowed(base),
    }
}

/// A failure shown as a page: 5xx says "try again" (and its internal text
/// goes to the log, as the pipeline does for problems); anything else is a
/// link that does not work.
fn failure_page(brand: &Brand, err: Error, request_id: &str) -> Response<Body> {
    if is_tenant_closed(&err) {
        return page(peak_pages::portal_closed(brand));
    }
    let problem = Problem::from(err);
    if let Some(internal) = &problem.internal {
        tracing::error!(request_id, error = %internal, "page failed");
    }
    if problem.status.is_server_error() {
        page(peak_pages::trouble(brand, problem.status, request_id))
    } else {
        page(peak_pages::link_not_valid(brand))
    }
}

fn is_tenant_closed(err: &Error) -> bool {
    matches!(
        err,
        Error::AccessDenied {
            code: "tenant_closed",
            ..
        }
    )
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The invitation link's page in whatever state it is in.
async fn invitation_page(
    ctx: &Ctx<'_>,
    state: &AppState,
    token: &str,
    request_id: &str,
) -> Response<Body> {
    match users::view_invitation(ctx, token).await {
        Ok(Some(v)) => {
            let accept_url = format!(
                "{}/{token}/accept",
                ctx.settings.invitation_url.trim_end_matches('/')
            );
            page(peak_pages::invitation(
                &*brand(state, Some(&v.tenant)).await,
                &v,
                &accept_url,
            ))
        }
        Ok(None) => page(peak_pages::link_not_valid(&*brand(state, None).await)),
        Err(e) => failure_page(&*brand(state, None).await, e, request_id),
    }
}

/// Opening an invitation link: a page for a browser, JSON for an API
/// client; neither changes anything.
pub async fn invitation_view(
    ctx: &Ctx<'_>,
    state: &AppState,
    req: &Request,
    token: &str,
    request_id: &str,
) -> Result<Response<Body>, Problem> {
    if wants_html(req) {
        return Ok(invitation_page(ctx, state, token, request_id).await);
    }
    let v = users::view_invitation(ctx, token)
        .await?
        .ok_or_else(users::invitation_not_found)?;
    if let Some(refused) = v.state.refusal() {
        return Err(refused.into());
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "state": "pending",
            "tenant": v.tenant.as_str(),
            "first_name": v.first_name,
            "email": v.masked_email,
            "inviter_name": v.inviter_name,
            "expires_at": rfc3339(v.expires_at),
            "accept": "POST this URL + /accept to continue to setting your password",
        }),
    ))
}

/// Accepting: the identity provider's password page, as `303 See Other`
/// to a browser's form post and as JSON to an API client. A form post that
/// cannot be accepted shows the link's page as it now stands.
pub async fn invitation_accept(
    ctx: &Ctx<'_>,
    state: &AppState,
    req: &Request,
    token: &str,
    request_id: &str,
) -> Result<Response<Body>, Problem> {
    let accepted = users::accept_invitation(ctx, state.idp.as_ref(), token).await;
    if accepted.is_ok() {
        peak_metrics::count(peak_metrics::Metric::InvitationsAccepted, 1);
    }
    if !wants_html(req) {
        let url = accepted?;
        return Ok(json(
            StatusCode::OK,
            &serde_json::json!({ "password_setup_url": url }),
        ));
    }
    Ok(match accepted {
        Ok(url) => page(peak_pages::see_other(
            &*brand(state, None).await,
            &url,
            "Continue to set your password",
        )),
        Err(e @ (Error::Unavailable(_) | Error::Internal(_))) => {
            failure_page(&*brand(state, None).await, e, request_id)
        }
        Err(_) => invitation_page(ctx, state, token, request_id).await,
    })
}

/// The email-change link's page in whatever state it is in: unknown, used
/// and replaced links are one page.
async fn email_verification_page(
    ctx: &Ctx<'_>,
    state: &AppState,
    token: &str,
    request_id: &str,
) -> Response<Body> {
    let brand = &*brand(state, users::email_verification_tenant(token).as_ref()).await;
    match users::view_email_verification(ctx, token).await {
        Ok(v) => {
            let confirm_url = format!(
                "{}/{token}",
                ctx.settings.email_verification_url.trim_end_matches('/')
            );
            page(peak_pages::email_verification(brand, &v, &confirm_url))
        }
        Err(Error::NotFound(_) | Error::Gone { .. }) => page(peak_pages::link_not_valid(brand)),
        Err(e) => failure_page(brand, e, request_id),
    }
}

/// Opening the link sent to a new address: a page (one button) or JSON;
/// a link that cannot be confirmed says so, as confirming it would.
pub async fn email_verification_view(
    ctx: &Ctx<'_>,
    state: &AppState,
    req: &Request,
    token: &str,
    request_id: &str,
) -> Result<Response<Body>, Problem> {
    if wants_html(req) {
        return Ok(email_verification_page(ctx, state, token, request_id).await);
    }
    let v = users::view_email_verification(ctx, token).await?;
    if let Some(refused) = v.state.refusal() {
        return Err(refused.into());
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "state": "pending",
            "email": v.new_email_masked,
            "expires_at": rfc3339(v.expires_at),
            "confirm": "POST this URL to make the new address your login email",
        }),
    ))
}

/// Confirming: the user as JSON to an API client; to a browser's form
/// post, a page saying it is done, with the way to sign in.
pub async fn email_verification_confirm(
    ctx: &Ctx<'_>,
    state: &AppState,
    req: &Request,
    token: &str,
    request_id: &str,
) -> Result<Response<Body>, Problem> {
    let verified = users::verify_email(ctx, token).await;
    if !wants_html(req) {
        return Ok(user_response(StatusCode::OK, &verified?));
    }
    Ok(match verified {
        Ok(user) => page(peak_pages::email_verified(
            &*brand(state, Some(&user.tenant_id)).await,
            &user.email.masked(),
        )),
        Err(e @ (Error::Unavailable(_) | Error::Internal(_))) => {
            let tenant = users::email_verification_tenant(token);
            failure_page(&*brand(state, tenant.as_ref()).await, e, request_id)
        }
        Err(_) => email_verification_page(ctx, state, token, request_id).await,
    })
}

/// Always the same 202 (and, padded, about the same time) whether or not
/// the address belongs to a user, so the answer reveals nothing.
pub async fn password_reset_request(
    ctx: &Ctx<'_>,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    const FLOOR: std::time::Duration = std::time::Duration::from_millis(250);
    let started = std::time::Instant::now();
    let input: PasswordResetRequest = json_body(req)?;
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

crate::dispatch::routes! {
    public InvitationView |c| invitation_view(&c.ctx(), c.state, &c.req, &c.token, c.request_id).await;
    public InvitationAccept |c| invitation_accept(&c.ctx(), c.state, &c.req, &c.token, c.request_id).await;
    public EmailVerificationView |c| email_verification_view(&c.ctx(), c.state, &c.req, &c.token, c.request_id).await;
    public EmailVerificationConfirm |c| email_verification_confirm(&c.ctx(), c.state, &c.req, &c.token, c.request_id).await;
    public PasswordResetRequest |c| password_reset_request(&c.ctx(), &c.req).await;
    public Openapi |_c| Ok(super::json_text(http::StatusCode::OK, crate::openapi::SERVED));
}
