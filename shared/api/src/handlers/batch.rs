//! `POST /users/batch`: many user changes in one request. Each operation is
//! answered as its single route would answer it — same use case (which
//! validates and authorizes), same status and problem document, same retry
//! of a version conflict when no `if_match` was given (`preconditions`) —
//! in the request's order. Operations are independent: each is its own
//! atomic write, so one refused or failed item undoes nothing else. They
//! run as a bounded number of parallel round trips (`users::plan`: items
//! on different users at once, [`BATCH_CONCURRENCY`] at a time; items on
//! one user in request order), and each answer still lands in its place.
//!
//! The overall answer is 200 with the results, not 207 Multi-Status: 207 is
//! WebDAV's, with an XML body clients and the OpenAPI document would have to
//! special-case; a 200 whose body carries a status per item is what the
//! document (and the fuzzer reading it) can describe exactly, and what the
//! idempotency layer saves and replays (it keeps successful answers). A
//! body that does not match the schema (an unknown `op`, a field a route
//! does not take) or that holds no operation or more than
//! [`MAX_BATCH_OPERATIONS`] is refused whole, 422 naming the field or the
//! limit, and nothing runs.

use super::json;
use crate::handlers::users::user_id;
use crate::problem::Problem;
use crate::request::{IfMatch, json_body, parse_if_match};
use crate::views::{BatchResultView, BatchView, UserView};
use futures_util::stream::{self, StreamExt};
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use peak_domain::model::user::UserId;
use peak_domain::users::{self, Applied, BatchOperation, BatchRequest, Ctx};
#[cfg(doc)]
use peak_domain::users::{BATCH_CONCURRENCY, MAX_BATCH_OPERATIONS};
use peak_domain::{Actor, Role};

pub async fn user_batch(
    ctx: &Ctx<'_>,
    actor: Actor,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let input: BatchRequest = json_body(req)?;
    users::check_batch_size(input.operations.len())?;
    let ops = &input.operations;
    let request_id = ctx.request_id;
    let (tenant, caller) = (actor.user.tenant_id.clone(), actor.user.id.clone());
    // Items on different users at once, those on one user (or on what
    // users share) in request order; see `users::plan`.
    let plan = users::plan(ops, caller.as_str(), actor.user.role == Role::Admin);
    // Who acts, as each single request would find them: a change to the
    // caller's own record (possible only where the policy allows it) ends
    // a segment of the plan and is seen by the segments after it, as the
    // next request's authentication would see it.
    let mut acting: Result<Actor, Problem> = Ok(actor);
    let mut answers: Vec<Option<Result<Applied, Problem>>> = ops.iter().map(|_| None).collect();
    for segment in plan {
        let last = segment.iter().flatten().copied().max();
        match &acting {
            Ok(actor) => {
                let done: Vec<Vec<(usize, Result<Applied, Problem>)>> = stream::iter(segment)
                    .map(|chain| async move {
                        let mut out = Vec::with_capacity(chain.len());
                        for i in chain {
                            out.push((i, run_one(ctx, actor, &ops[i]).await));
                        }
                        out
                    })
                    .buffer_unordered(users::BATCH_CONCURRENCY)
                    .collect()
                    .await;
                for (i, answer) in done.into_iter().flatten() {
                    answers[i] = Some(answer);
                }
            }
            Err(refused) => {
                for i in segment.into_iter().flatten() {
                    answers[i] = Some(Err(refused.clone()));
                }
            }
        }
        if let Some(last) = last
            && acting.is_ok()
            && matches!(answers[last], Some(Ok(_)))
            && UserId::parse(ops[last].id()).as_ref() == Some(&caller)
        {
            acting = users::actor_for_user(ctx, &tenant, &caller)
                .await
                .map_err(Problem::from);
        }
    }
    let mut results = Vec::with_capacity(ops.len());
    for (index, (op, answer)) in ops.iter().zip(answers).enumerate() {
        let answer = answer.expect("the plan runs every operation once");
        if let Err(p) = &answer
            && let Some(internal) = &p.internal
        {
            tracing::error!(request_id, index, error = %internal, "batch operation failed");
        }
        results.push(result_view(op.id(), answer, request_id));
    }
    Ok(json(StatusCode::OK, &BatchView { results }))
}

/// One operation, parsed as its single route parses its path and
/// `If-Match`, through the same use case and the same stale-version retry.
async fn run_one(ctx: &Ctx<'_>, actor: &Actor, op: &BatchOperation) -> Result<Applied, Problem> {
    let id = user_id(Some(op.id()))?;
    let if_match = parse_if_match(op.if_match());
    crate::preconditions::retrying(if_match != IfMatch::Absent, || async {
        users::apply(ctx, actor, &id, if_match.as_version(), op)
            .await
            .map_err(Problem::from)
    })
    .await
}

fn result_view(id: &str, answer: Result<Applied, Problem>, request_id: &str) -> BatchResultView {
    let (status, etag, body) = match answer {
        Ok(Applied::User(user)) => (
            StatusCode::OK,
            Some(format!("\"{}\"", user.version)),
            serde_json::to_value(UserView::from(&*user)).ok(),
        ),
        Ok(Applied::Deleted) => (StatusCode::NO_CONTENT, None, None),
        Ok(Applied::ResetQueued) => (
            StatusCode::ACCEPTED,
            None,
            Some(serde_json::json!({"status": "queued"})),
        ),
        Err(p) => (p.status, None, Some(p.document(request_id))),
    };
    BatchResultView {
        id: id.to_owned(),
        status: status.as_u16(),
        etag,
        body,
    }
}

crate::dispatch::routes! {
    signed_in UserBatch |c, a| user_batch(&c.ctx(), a, &c.req).await;
}
