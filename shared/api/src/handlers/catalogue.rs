use super::json;
use crate::problem::Problem;
use crate::state::AppState;
use http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};

/// The seven tabs with every setting, its options, default and roles: what a
/// frontend needs to draw the profile editor.
pub fn profile_catalogue(state: &AppState) -> Result<Response<Body>, Problem> {
    let mut resp = json(StatusCode::OK, state.catalogue);
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    Ok(resp)
}

crate::dispatch::routes! {
    signed_in ProfileCatalogue |c, _a| profile_catalogue(c.state);
}
