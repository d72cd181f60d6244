//! `Idempotency-Key` on POSTs that create: the first request claims the key
//! (a conditional write), a retry gets the first response back, and nothing
//! is created twice. Keys are per caller and last 24 hours.
//!
//! A key answers only the request it was first used for: the fingerprint
//! covers the method, the path, the query string (`?dry_run=true` is another
//! request), the caller and the body's raw bytes. While the first request
//! runs, the key is held by a lease of [`LEASE_SECS`]; a request that dies
//! without completing or releasing it (a crashed or timed-out Lambda) leaves
//! a key that frees itself when the lease ends, not after the 24 hours.

use crate::dispatch::{Call, Handler};
use crate::problem::Problem;
use crate::routes::RouteSpec;
use http::{HeaderName, HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use peak_domain::ports::{IdempotencyClaim, SavedResponse};
use sha2::{Digest, Sha256};

const TTL_SECS: u64 = 24 * 3600;
/// How long an unfinished request holds its key. It must outlast the
/// longest run of a function serving a creating route (the template's
/// `Timeout`, checked by `functions/src/tests/template.rs`), so a live
/// request is never overtaken by its retry.
pub const LEASE_SECS: u64 = 60;
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
        return crate::preconditions::run(handler, call).await;
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
    let fingerprint = fingerprint(&call.req, &scoped);
    let now = time::OffsetDateTime::now_utc();
    let claim = state
        .users
        .claim_idempotency_key(&tenant, &scoped, &fingerprint, now, LEASE_SECS, TTL_SECS)
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
    let result = crate::preconditions::run(handler, call).await;
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

/// What makes two requests "the same request": method, path, query string,
/// caller (the scoped key names them) and the body's bytes, each
/// length-prefixed so no two different requests hash alike by shifting bytes
/// from one part to the next.
fn fingerprint(req: &lambda_http::Request, scoped_key: &str) -> String {
    let body: &[u8] = match req.body() {
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => b"",
    };
    let path = crate::request::path(req);
    let parts: [&[u8]; 5] = [
        req.method().as_str().as_bytes(),
        path.as_bytes(),
        req.uri().query().unwrap_or("").as_bytes(),
        scoped_key.as_bytes(),
        body,
    ];
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hex::encode(hash.finalize())
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

#[cfg(test)]
mod tests {
    use super::fingerprint;
    use lambda_http::{Body, Request};

    fn req(method: &str, uri: &str, body: Body) -> Request {
        http::Request::builder()
            .method(method)
            .uri(uri)
            .body(body)
            .expect("request")
    }

    #[test]
    fn every_part_of_the_request_counts() {
        let base = fingerprint(
            &req("POST", "/bulk-invites", Body::Binary(vec![0xff, 0x00])),
            "u1:k",
        );
        let variants = [
            // Bytes that lossy UTF-8 would read alike (both U+FFFD).
            (
                req("POST", "/bulk-invites", Body::Binary(vec![0xfe, 0x00])),
                "u1:k",
            ),
            (
                req(
                    "POST",
                    "/bulk-invites?dry_run=true",
                    Body::Binary(vec![0xff, 0x00]),
                ),
                "u1:k",
            ),
            (
                req("PUT", "/bulk-invites", Body::Binary(vec![0xff, 0x00])),
                "u1:k",
            ),
            (
                req("POST", "/users", Body::Binary(vec![0xff, 0x00])),
                "u1:k",
            ),
            (
                req("POST", "/bulk-invites", Body::Binary(vec![0xff, 0x00])),
                "u2:k",
            ),
        ];
        for (other, key) in &variants {
            assert_ne!(fingerprint(other, key), base, "{other:?} {key}");
        }
        // The same bytes, whether API Gateway sent them as text or base64.
        assert_eq!(
            fingerprint(&req("POST", "/p", Body::Text("{}".into())), "u1:k"),
            fingerprint(&req("POST", "/p", Body::Binary(b"{}".to_vec())), "u1:k"),
        );
    }
}
