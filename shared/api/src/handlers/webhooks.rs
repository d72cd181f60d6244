//! `POST /webhooks/auth0`: what Auth0 tells us, from two channels.
//!
//! - Our Auth0 Actions sign in the Standard Webhooks scheme (a
//!   `webhook-signature` header): checked against `AUTH0_WEBHOOK_SECRETS`
//!   (several during a rotation), 5-minute tolerance.
//! - Auth0 Event Streams send CloudEvents with a bearer token
//!   (`AUTH0_EVENT_STREAM_TOKENS`).
//!
//! This handler verifies a delivery and turns it into what we keep of it;
//! the identity-events use case (`peak_domain::users::identity_events::
//! receive_delivery`) records it (one conditional write keyed by its id)
//! and applies it from that record: at once (holding it with a short
//! lease), or by the sweeper if applying fails or this function dies. The
//! answers:
//! - 200 `{status: <outcome>}`: recorded and applied now;
//! - 202 `{status: "accepted"}`: recorded, applying failed for now (the
//!   sweeper retries; the sender need not);
//! - 200 `{status: "duplicate"}` / 202 `{status: "in_progress"}`: the same
//!   id was recorded before and is applied / still owed (a sender's retry,
//!   a replay, or Event Streams' at-least-once delivery): nothing changes;
//! - 503 when the delivery cannot be recorded: never a 4xx, which Auth0
//!   would not retry.
//!
//! Unsigned, wrongly signed, stale, oversized or malformed deliveries get
//! 400/401/413 and change nothing. Answers never echo the delivery.

use super::json;
use crate::problem::Problem;
use crate::state::AppState;
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use peak_domain::Ctx;
use peak_domain::model::delivery::{IdpDelivery, IdpEventKind};
use peak_domain::users::identity_events::{EventCtx, Received, receive_delivery};
use peak_webhooks::{IdpEvent, WebhookError, verify_action_delivery, verify_event_stream_delivery};

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

fn outcome(status: StatusCode, label: &str) -> Response<Body> {
    json(status, &serde_json::json!({ "status": label }))
}

/// What we keep of an event: only what applying needs (no email, no
/// name). `None`: nothing to apply (we act on blocks, not unblocks, and
/// our store is the source of names and emails).
fn delivery_of(event: &IdpEvent, channel: &str) -> Option<IdpDelivery> {
    let meta = event.meta();
    let (kind, pushed_blocked) = match event {
        IdpEvent::PasswordChanged { .. } => (IdpEventKind::PasswordSet, None),
        IdpEvent::LoggedIn { .. } => (IdpEventKind::LoggedIn, None),
        IdpEvent::UserUpdated { user, .. } if user.blocked => {
            (IdpEventKind::LoginBlocked, user.pushed_blocked)
        }
        IdpEvent::UserDeleted { .. } => (IdpEventKind::LoginDeleted, None),
        IdpEvent::UserCreated { .. }
        | IdpEvent::UserUpdated { .. }
        | IdpEvent::EmailVerified { .. } => return None,
    };
    Some(IdpDelivery {
        id: format!("{channel}:{}", meta.event_id),
        kind,
        subject: meta.subject.clone(),
        tenant: event.tenant().map(str::to_owned),
        occurred_at: meta.occurred_at,
        pushed_blocked,
    })
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
        Err(WebhookError::UnsupportedType) => return Ok(outcome(StatusCode::OK, "ignored")),
        Err(e) => return Err(refused(&e)),
    };
    let Some(delivery) = delivery_of(&event, if signed { "action" } else { "stream" }) else {
        return Ok(outcome(StatusCode::OK, "ignored"));
    };
    let received = receive_delivery(&EventCtx::from(ctx), state.idp.as_ref(), &delivery)
        .await
        .map_err(|e| {
            // Not recorded: the sender must try again (5xx, never 4xx).
            tracing::warn!(event = event.kind(), error = %e, "webhook delivery not recorded");
            Problem::from(peak_domain::Error::Unavailable(
                "the delivery could not be recorded; retry".into(),
            ))
        })?;
    Ok(match received {
        Received::Applied(result) => {
            tracing::info!(
                event = event.kind(),
                result = result.as_str(),
                "webhook delivery applied"
            );
            outcome(StatusCode::OK, result.as_str())
        }
        Received::Duplicate => {
            tracing::info!(event = event.kind(), "webhook delivery seen before");
            outcome(StatusCode::OK, "duplicate")
        }
        Received::InProgress => {
            tracing::info!(
                event = event.kind(),
                "webhook delivery seen before, still owed"
            );
            outcome(StatusCode::ACCEPTED, "in_progress")
        }
        Received::Deferred { error } => {
            tracing::warn!(
                event = event.kind(), error = %error,
                "webhook delivery recorded, not applied yet; the sweeper retries it"
            );
            outcome(StatusCode::ACCEPTED, "accepted")
        }
    })
}

crate::dispatch::routes! {
    public Auth0Webhook |c| auth0_webhook(&c.ctx(), c.state, &c.req).await;
}
