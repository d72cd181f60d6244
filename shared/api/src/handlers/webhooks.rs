//! `POST /webhooks/auth0`: what Auth0 tells us, from two channels.
//!
//! - Our Auth0 Actions sign in the Standard Webhooks scheme (a
//!   `webhook-signature` header): checked against `AUTH0_WEBHOOK_SECRETS`
//!   (several during a rotation), 5-minute tolerance. A delivery id seen
//!   before is a replay: 400, nothing changes.
//! - Auth0 Event Streams send CloudEvents with a bearer token
//!   (`AUTH0_EVENT_STREAM_TOKENS`). Event Streams deliver at least once, so
//!   a repeated id is acknowledged (200) and ignored.
//!
//! Each event is applied at most once (its id is recorded with a
//! conditional write and a 3-day expiry, and forgotten again if applying
//! fails, so the sender's retry applies it). Unsigned, wrongly signed,
//! stale, oversized or malformed deliveries get 400/401/413 and change
//! nothing. Answers never echo the delivery.

use super::json;
use crate::problem::Problem;
use crate::state::AppState;
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use peak_domain::TenantId;
use peak_domain::users::{self, Ctx, IdpEventOutcome};
use peak_webhooks::{IdpEvent, WebhookError, verify_action_delivery, verify_event_stream_delivery};

/// How long an applied delivery id is remembered.
const DEDUPE_TTL_SECS: u64 = 3 * 86_400;

fn refused(e: &WebhookError) -> Problem {
    let status = match e {
        WebhookError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        WebhookError::TooOld
        | WebhookError::TooNew
        | WebhookError::NoValidSignature
        | WebhookError::InvalidToken => StatusCode::UNAUTHORIZED,
        _ => StatusCode::BAD_REQUEST,
    };
    tracing::warn!(code = e.code(), "webhook delivery refused");
    Problem::new(status, e.code(), e.to_string())
}

fn outcome(status: &str) -> Response<Body> {
    json(StatusCode::OK, &serde_json::json!({ "status": status }))
}

pub async fn auth0_webhook(
    ctx: &Ctx<'_>,
    state: &AppState,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let answer = receive(ctx, state, req).await;
    match &answer {
        Ok(_) => peak_metrics::count(peak_metrics::Metric::WebhookDeliveriesApplied, 1),
        Err(p) if p.status.is_client_error() => {
            peak_metrics::count(peak_metrics::Metric::WebhookDeliveriesRejected, 1)
        }
        Err(_) => {}
    }
    answer
}

async fn receive(
    ctx: &Ctx<'_>,
    state: &AppState,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let Some(config) = state.webhooks.as_deref() else {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "webhooks_not_configured",
            "identity-provider webhooks are not configured on this deployment",
        ));
    };
    let body: &[u8] = match req.body() {
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        Body::Empty => b"",
        _ => b"",
    };
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let signed = req.headers().contains_key(peak_webhooks::HEADER_SIGNATURE);
    let verified = if signed {
        let Some(secrets) = &config.action_secrets else {
            return Err(refused(&WebhookError::NoValidSignature));
        };
        verify_action_delivery(secrets, header, body, ctx.now).map(|(_, e)| e)
    } else if let Some(auth) = header("authorization") {
        if config.event_stream_tokens.is_empty() {
            return Err(refused(&WebhookError::InvalidToken));
        }
        verify_event_stream_delivery(&config.event_stream_tokens, Some(&auth), body)
    } else {
        return Err(Problem::unauthenticated(
            "sign the delivery (Standard Webhooks) or send the Event Stream's bearer token",
        ));
    };
    let event = match verified {
        Ok(event) => event,
        // Authentic, of a type we do not act on: acknowledge, so Auth0 does
        // not disable the stream for failing deliveries.
        Err(WebhookError::UnsupportedType) => return Ok(outcome("ignored")),
        Err(e) => return Err(refused(&e)),
    };
    let id = format!(
        "{}:{}",
        if signed { "action" } else { "stream" },
        event.event_id()
    );
    let fresh = state
        .users
        .claim_event(&id, ctx.now, DEDUPE_TTL_SECS)
        .await
        .map_err(|e| Problem::from(peak_domain::Error::from_store(e, "webhook delivery")))?;
    if !fresh {
        tracing::info!(event = event.kind(), "webhook delivery seen before");
        if signed {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "replayed",
                "this delivery was received before",
            ));
        }
        return Ok(outcome("duplicate"));
    }
    match apply(ctx, state, &event).await {
        Ok(result) => {
            tracing::info!(event = event.kind(), result, "webhook delivery applied");
            Ok(outcome(result))
        }
        Err(problem) => {
            // Not applied: let the sender's retry in.
            if let Err(e) = state.users.release_event(&id).await {
                tracing::warn!(error = %e, "could not forget a failed webhook delivery");
            }
            Err(problem)
        }
    }
}

fn label(outcome: IdpEventOutcome) -> &'static str {
    match outcome {
        IdpEventOutcome::Applied => "applied",
        IdpEventOutcome::NoChange => "no_change",
        IdpEventOutcome::Stale => "stale",
    }
}

/// The tenant an event is about: the one it names, else (Post Change
/// Password carries none) the one recorded on the login at the provider.
async fn tenant_of(
    state: &AppState,
    named: Option<&str>,
    subject: &str,
) -> Result<Option<TenantId>, Problem> {
    if let Some(t) = named {
        return Ok(TenantId::parse(t));
    }
    let account = state.idp.get_user(subject).await.map_err(|e| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "identity_provider_unavailable",
            format!("cannot look up the login's tenant: {e}"),
        )
    })?;
    Ok(account
        .and_then(|a| a.tenant)
        .as_deref()
        .and_then(TenantId::parse))
}

async fn apply(ctx: &Ctx<'_>, state: &AppState, event: &IdpEvent) -> Result<&'static str, Problem> {
    let subject = &event.meta().subject;
    match event {
        IdpEvent::PasswordChanged { tenant, .. } => {
            let Some(tenant) = tenant_of(state, tenant.as_deref(), subject).await? else {
                return Ok("not_ours");
            };
            let user = users::password_was_set(ctx, &tenant, subject).await?;
            Ok(if user.is_some() {
                "applied"
            } else {
                "not_ours"
            })
        }
        IdpEvent::UserUpdated { user, meta } if user.blocked => {
            let Some(tenant) = user.tenant.as_deref().and_then(TenantId::parse) else {
                return Ok("not_ours");
            };
            Ok(label(
                users::login_blocked(ctx, &tenant, subject, meta.occurred_at).await?,
            ))
        }
        IdpEvent::UserDeleted { user, .. } => {
            let Some(tenant) = user.tenant.as_deref().and_then(TenantId::parse) else {
                return Ok("not_ours");
            };
            Ok(label(users::login_deleted(ctx, &tenant, subject).await?))
        }
        IdpEvent::LoggedIn { tenant, meta } => {
            let Some(tenant) = tenant_of(state, tenant.as_deref(), subject).await? else {
                return Ok("not_ours");
            };
            Ok(label(
                users::login_recorded(ctx, &tenant, subject, meta.occurred_at).await?,
            ))
        }
        // Our store is the source of truth for names, emails and enabling;
        // emails change here only after our own verification.
        IdpEvent::UserCreated { .. }
        | IdpEvent::UserUpdated { .. }
        | IdpEvent::EmailVerified { .. } => Ok("ignored"),
    }
}

crate::dispatch::routes! {
    public Auth0Webhook |c| auth0_webhook(&c.ctx(), c.state, &c.req).await;
}
