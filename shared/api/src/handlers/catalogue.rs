use super::json;
use crate::problem::Problem;
use http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use peak_domain::profiles;
use peak_domain::{Actor, Ctx};

/// The seven tabs with every setting, its options, default and roles: what a
/// frontend needs to draw the profile editor.
pub fn profile_catalogue(ctx: &Ctx<'_>, actor: &Actor) -> Result<Response<Body>, Problem> {
    let mut resp = json(StatusCode::OK, profiles::catalogue(ctx, actor)?);
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    Ok(resp)
}

crate::dispatch::routes! {
    signed_in ProfileCatalogue |c, a| profile_catalogue(&c.ctx(), &a);
}
