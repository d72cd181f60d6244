//! `Idempotency-Key` on POSTs that create: the first request claims the key
//! (a conditional write), a retry gets the first response back, and nothing
//! is created twice. Keys are per caller and last 24 hours.

use crate::dispatch::{Call, Handler};
use crate::problem::Problem;
use crate::routes::RouteSpec;
use http::{HeaderName, HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use peak_domain::identity::sha256_hex;
use peak_domain::ports::{IdempotencyClaim, SavedResponse};

const TTL_SECS: u64 = 24 * 3600;
/// Headers worth replaying.
const KEPT: [&str; 3] = ["content-type", "location", "etag"];

pub(crate) async fn run(
    spec: &RouteSpec,
    handler: Handler,
    call: Call<'_>,
) -> Result<Response<Body>, Problem> {
    let state = call.state;
    let key = call
        .req
        .headers()
        .get("idempotency-key")
        .map(|v| v.to_str().map(str::to_owned));
    let (Some(caller), true, Some(key)) = (call.actor.as_ref(), spec.idempotent, key) else {
        return handler(call).await;
    };
    let key = match key {
        Ok(k) if !k.is_empty() && k.len() <= 200 && k.bytes().all(|b| b.is_ascii_graphic()) => k,
        _ => {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 200 visible ASCII characters",
            ));
        }
    };
    let tenant = caller.user.tenant_id.clone();
    let scoped = format!("{}:{key}", caller.user.id);
    let body: &[u8] = match call.req.body() {
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => b"",
    };
    let fingerprint = sha256_hex(&format!(
        "{} {}\n{}",
        call.req.method(),
        call.req.uri().path(),
        String::from_utf8_lossy(body)
    ));
    let now = time::OffsetDateTime::now_utc();
    let claim = state
        .users
        .claim_idempotency_key(&tenant, &scoped, &fingerprint, now, TTL_SECS)
        .await
        .map_err(|e| Problem::from(peak_domain::Error::from_store(e, "idempotency key")))?;
    match claim {
        IdempotencyClaim::Claimed => {}
        IdempotencyClaim::InProgress => {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "idempotency_in_progress",
                "a request with this Idempotency-Key is still being processed; retry shortly",
            ));
        }
        IdempotencyClaim::Mismatch => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request; use a new key",
            ));
        }
        IdempotencyClaim::Completed(saved) => return Ok(replay(saved)),
    }
    let result = handler(call).await;
    match &result {
        Ok(resp) if resp.status().is_success() => {
            let saved = SavedResponse {
                status: resp.status().as_u16(),
                headers: KEPT
                    .iter()
                    .filter_map(|h| {
                        let v = resp.headers().get(*h)?.to_str().ok()?;
                        Some(((*h).to_owned(), v.to_owned()))
                    })
                    .collect(),
                body: match resp.body() {
                    Body::Text(t) => t.clone(),
                    _ => String::new(),
                },
            };
            if let Err(e) = state
                .users
                .complete_idempotency_key(&tenant, &scoped, &saved)
                .await
            {
                tracing::warn!(error = %e, "could not save the idempotent response");
            }
        }
        // Nothing was created: let the client retry with the same key.
        _ => {
            if let Err(e) = state.users.release_idempotency_key(&tenant, &scoped).await {
                tracing::warn!(error = %e, "could not release an idempotency key");
            }
        }
    }
    result
}

fn replay(saved: SavedResponse) -> Response<Body> {
    let mut resp = Response::new(Body::Text(saved.body));
    *resp.status_mut() = StatusCode::from_u16(saved.status).unwrap_or(StatusCode::OK);
    for (name, value) in saved.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::from_str(&value)) {
            resp.headers_mut().insert(n, v);
        }
    }
    resp.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    resp
}
