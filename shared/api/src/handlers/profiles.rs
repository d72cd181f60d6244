//! `/profiles`: the profile use cases, which authorize the caller before
//! they read a body.

use super::{empty, json};
use crate::problem::Problem;
use crate::request::{etag, if_match, json_body, page_request};
use crate::views::{PageView, ProfileSummary, profile_view};
use http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use peak_domain::model::profile::Profile;
use peak_domain::profiles;
use peak_domain::{Actor, Ctx};

fn with_etag(mut resp: Response<Body>, p: &Profile) -> Response<Body> {
    resp.headers_mut().insert(header::ETAG, etag(p.version));
    resp
}

pub async fn profile_list(
    ctx: &Ctx<'_>,
    actor: &Actor,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let result = profiles::list_profiles(ctx, actor, || page_request(req)).await?;
    let view = PageView {
        items: result.items.iter().map(ProfileSummary::from).collect(),
        next_cursor: result.next_cursor,
    };
    Ok(json(StatusCode::OK, &view))
}

pub async fn profile_create(
    ctx: &Ctx<'_>,
    actor: &Actor,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let p = profiles::create_profile(ctx, actor, || json_body(req)).await?;
    let mut resp = with_etag(
        json(StatusCode::CREATED, &profile_view(ctx.catalogue, &p)),
        &p,
    );
    if let Ok(loc) = HeaderValue::from_str(&format!("/profiles/{}", p.id)) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}

pub async fn profile_get(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: Option<&str>,
) -> Result<Response<Body>, Problem> {
    let p = profiles::get_profile(ctx, actor, id.unwrap_or_default()).await?;
    Ok(with_etag(
        json(StatusCode::OK, &profile_view(ctx.catalogue, &p)),
        &p,
    ))
}

pub async fn profile_update(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: Option<&str>,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let p = profiles::update_profile(
        ctx,
        actor,
        id.unwrap_or_default(),
        if_match(req).as_version(),
        || json_body(req),
    )
    .await?;
    Ok(with_etag(
        json(StatusCode::OK, &profile_view(ctx.catalogue, &p)),
        &p,
    ))
}

pub async fn profile_delete(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: Option<&str>,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    profiles::delete_profile(
        ctx,
        actor,
        id.unwrap_or_default(),
        if_match(req).as_version(),
    )
    .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

crate::dispatch::routes! {
    signed_in ProfileList |c, a| profile_list(&c.ctx(), &a, &c.req).await;
    signed_in ProfileCreate |c, a| profile_create(&c.ctx(), &a, &c.req).await;
    signed_in ProfileGet |c, a| profile_get(&c.ctx(), &a, c.id()).await;
    signed_in ProfileUpdate |c, a| profile_update(&c.ctx(), &a, c.id(), &c.req).await;
    signed_in ProfileDelete |c, a| profile_delete(&c.ctx(), &a, c.id(), &c.req).await;
}
