//! Stuck work, for the tenant's admins: failed emails and owed Auth0 work,
//! listed and retried (the use cases in `peak_domain::users::stuck_work`
//! refuse everyone else with 403).

use super::json;
use crate::problem::Problem;
use crate::request::page_request;
use crate::views::PageView;
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use peak_domain::Actor;
use peak_domain::users::{self, Ctx};

/// Refused before the query is read: a non-admin's malformed `limit` is
/// 403, not 422 (as the other admin lists).
fn admins_only(actor: &Actor, what: &'static str) -> Result<(), Problem> {
    if actor.user.role == peak_domain::Role::Admin {
        Ok(())
    } else {
        Err(peak_domain::Error::Forbidden(what).into())
    }
}

/// `GET /emails/failed?limit=&cursor=`
pub async fn failed_email_list(
    ctx: &Ctx<'_>,
    actor: &Actor,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    admins_only(actor, "see the tenant's failed emails")?;
    let page = page_request(req)?;
    let failed = users::list_failed_emails(ctx, actor, &page).await?;
    Ok(json(
        StatusCode::OK,
        &PageView {
            items: failed.items,
            next_cursor: failed.next_cursor,
        },
    ))
}

/// `POST /emails/failed/{id}/retry`: 202, the fresh email is queued.
pub async fn failed_email_retry(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: Option<&str>,
) -> Result<Response<Body>, Problem> {
    let id = id.unwrap_or_default();
    let retried = users::retry_failed_email(ctx, actor, id).await?;
    Ok(json(StatusCode::ACCEPTED, &retried))
}

/// `GET /identity-work?limit=&cursor=`
pub async fn identity_work_list(
    ctx: &Ctx<'_>,
    actor: &Actor,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    admins_only(actor, "see the tenant's identity-provider work")?;
    let page = page_request(req)?;
    let work = users::list_identity_work(ctx, actor, &page).await?;
    Ok(json(
        StatusCode::OK,
        &PageView {
            items: work.items,
            next_cursor: work.next_cursor,
        },
    ))
}

/// `POST /identity-work/{id}/retry` (`id`: the user's): 202, due now.
pub async fn identity_work_retry(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: Option<&str>,
) -> Result<Response<Body>, Problem> {
    // A path id that is not a user id names no work.
    admins_only(actor, "retry the tenant's identity-provider work")?;
    let Some(user) = id.and_then(peak_domain::model::user::UserId::parse) else {
        return Err(peak_domain::Error::NotFound("identity work").into());
    };
    let work = users::retry_identity_work(ctx, actor, &user).await?;
    Ok(json(StatusCode::ACCEPTED, &work))
}

crate::dispatch::routes! {
    signed_in FailedEmailList |c, a| failed_email_list(&c.ctx(), &a, &c.req).await;
    signed_in FailedEmailRetry |c, a| failed_email_retry(&c.ctx(), &a, c.id()).await;
    signed_in IdentityWorkList |c, a| identity_work_list(&c.ctx(), &a, &c.req).await;
    signed_in IdentityWorkRetry |c, a| identity_work_retry(&c.ctx(), &a, c.id()).await;
}
