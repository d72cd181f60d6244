use super::{empty, json};
use crate::problem::Problem;
use crate::request::{etag, if_match, json_body, page_request};
use crate::state::AppState;
use crate::views::{PageView, ProfileSummary, profile_view};
use http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use peak_domain::Caller;
use peak_domain::ids::ProfileId;
use peak_domain::profile::{NewProfile, Profile, ProfilePatch};
use peak_domain::profiles;
use time::OffsetDateTime;

/// A path id that is not a ULID cannot name any profile.
fn profile_id(raw: Option<&str>) -> Result<ProfileId, Problem> {
    raw.and_then(ProfileId::parse)
        .ok_or_else(|| Problem::from(peak_domain::Error::NotFound("profile")))
}

fn with_etag(mut resp: Response<Body>, p: &Profile) -> Response<Body> {
    resp.headers_mut().insert(header::ETAG, etag(p.version));
    resp
}

pub async fn profile_list(
    state: &AppState,
    caller: &Caller,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let page = page_request(req)?;
    let result = profiles::list_profiles(state.profiles.as_ref(), caller, &page).await?;
    let view = PageView {
        items: result.items.iter().map(ProfileSummary::from).collect(),
        next_cursor: result.next_cursor,
    };
    Ok(json(StatusCode::OK, &view))
}

pub async fn profile_create(
    state: &AppState,
    caller: &Caller,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let input: NewProfile = json_body(req)?;
    let p = profiles::create_profile(
        state.profiles.as_ref(),
        state.catalogue,
        caller,
        input,
        OffsetDateTime::now_utc(),
    )
    .await?;
    let mut resp = with_etag(
        json(StatusCode::CREATED, &profile_view(state.catalogue, &p)),
        &p,
    );
    if let Ok(loc) = HeaderValue::from_str(&format!("/profiles/{}", p.id)) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}

pub async fn profile_get(
    state: &AppState,
    caller: &Caller,
    id: Option<&str>,
) -> Result<Response<Body>, Problem> {
    let id = profile_id(id)?;
    let p = profiles::get_profile(state.profiles.as_ref(), caller, &id).await?;
    Ok(with_etag(
        json(StatusCode::OK, &profile_view(state.catalogue, &p)),
        &p,
    ))
}

pub async fn profile_update(
    state: &AppState,
    caller: &Caller,
    id: Option<&str>,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let id = profile_id(id)?;
    let patch: ProfilePatch = json_body(req)?;
    let p = profiles::update_profile(
        state.profiles.as_ref(),
        state.catalogue,
        caller,
        &id,
        if_match(req).as_version(),
        &patch,
        OffsetDateTime::now_utc(),
    )
    .await?;
    Ok(with_etag(
        json(StatusCode::OK, &profile_view(state.catalogue, &p)),
        &p,
    ))
}

pub async fn profile_delete(
    state: &AppState,
    caller: &Caller,
    id: Option<&str>,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let id = profile_id(id)?;
    profiles::delete_profile(
        state.profiles.as_ref(),
        caller,
        &id,
        if_match(req).as_version(),
    )
    .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

crate::dispatch::routes! {
    signed_in ProfileList |c, a| profile_list(c.state, &a.caller, &c.req).await;
    signed_in ProfileCreate |c, a| profile_create(c.state, &a.caller, &c.req).await;
    signed_in ProfileGet |c, a| profile_get(c.state, &a.caller, c.id()).await;
    signed_in ProfileUpdate |c, a| profile_update(c.state, &a.caller, c.id(), &c.req).await;
    signed_in ProfileDelete |c, a| profile_delete(c.state, &a.caller, c.id(), &c.req).await;
}
