//! 412 `stale_version` answers only a precondition the client sent.
//!
//! A use case reads the user (or profile), changes it and writes it back
//! only if its version has not moved; a concurrent change in between makes
//! the write fail as stale. With `If-Match` that is the client's own
//! precondition failing: 412, fetch again. Without it the client asked for
//! no version at all, so the request simply runs again on the fresh state,
//! a few times, and answers 409 `conflict` if it keeps losing.
//!
//! Re-running the whole handler is safe because a stale write changes
//! nothing (the user, its audit events and its emails are one write) and
//! what handlers do before it is a read, an idempotent identity-provider
//! call (accepting finds the login it created) or a rate-limit count. The
//! Auth0 webhook is left out: it records its delivery id before applying
//! the event, so a second run would read its own delivery as a replay.

use crate::dispatch::{Call, Handler};
use crate::problem::Problem;
use crate::request::{IfMatch, if_match};
use crate::routes::Route;
use http::StatusCode;
use lambda_http::{Body, Response};

/// Runs of a request without `If-Match` before it answers 409.
const ATTEMPTS: usize = 4;
const STALE: &str = "stale_version";

pub(crate) async fn run(handler: Handler, call: Call<'_>) -> Result<Response<Body>, Problem> {
    let conditional = if_match(&call.req) != IfMatch::Absent;
    // Reads never write; a bulk upload creates a job (never stale) from a
    // body of up to 10 MB not worth copying; a batch retries each of its
    // operations on its own (`handlers/batch.rs`), never the whole batch.
    let never_stale = call.req.method().is_safe()
        || matches!(call.route, Route::BulkInviteCreate | Route::UserBatch);
    if conditional || never_stale || call.route == Route::Auth0Webhook {
        return handler(call).await;
    }
    retrying(false, || handler(call.again())).await
}

/// Runs `attempt` once when the client named a version (`conditional`: a
/// stale write is their 412); otherwise again on `stale_version`, up to
/// [`ATTEMPTS`] runs, then 409 `conflict`.
pub(crate) async fn retrying<T, F, Fut>(conditional: bool, mut attempt: F) -> Result<T, Problem>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Problem>>,
{
    if conditional {
        return attempt().await;
    }
    for _ in 1..ATTEMPTS {
        match attempt().await {
            Err(p) if p.code == STALE => {}
            answer => return answer,
        }
    }
    match attempt().await {
        Err(p) if p.code == STALE => Err(Problem::new(
            StatusCode::CONFLICT,
            "conflict",
            "the resource kept changing while this request ran; try again",
        )),
        answer => answer,
    }
}
