//! `/me`: the signed-in user's own record.

use super::json;
use super::users::user_response;
use crate::problem::Problem;
use crate::request::{if_match, json_body};
use crate::views::{MeView, UserView};
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use peak_domain::Actor;
use peak_domain::users::{self, Ctx, SelfPatch};

pub async fn me_get(ctx: &Ctx<'_>, actor: &Actor) -> Result<Response<Body>, Problem> {
    // Read now: the caller lookup reads neither the last sign-in nor an
    // admin's profile.
    let (user, permissions) = peak_domain::users::signed_in::me(ctx, actor).await?;
    let mut resp = json(
        StatusCode::OK,
        &MeView {
            user: UserView::from(&user),
            permissions: &permissions,
        },
    );
    resp.headers_mut()
        .insert(http::header::ETAG, crate::request::etag(user.version));
    Ok(resp)
}

pub async fn me_update(
    ctx: &Ctx<'_>,
    actor: &Actor,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let patch: SelfPatch = json_body(req)?;
    let user = users::edit_self(ctx, actor, if_match(req).as_version(), patch).await?;
    Ok(user_response(StatusCode::OK, &user))
}

pub async fn me_password_reset(ctx: &Ctx<'_>, actor: &Actor) -> Result<Response<Body>, Problem> {
    users::reset_password(ctx, actor, &actor.user.id).await?;
    Ok(json(
        StatusCode::ACCEPTED,
        &serde_json::json!({"status": "queued"}),
    ))
}

crate::dispatch::routes! {
    signed_in MeGet |c, a| me_get(&c.ctx(), &a).await;
    signed_in MeUpdate |c, a| me_update(&c.ctx(), &a, &c.req).await;
    signed_in MePasswordReset |c, a| me_password_reset(&c.ctx(), &a).await;
}
