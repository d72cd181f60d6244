//! The request pipeline every route goes through: match → authenticate →
//! authorize → handler → response, with one log line per request.

use crate::auth::authenticate;
use crate::handlers;
use crate::problem::Problem;
use crate::request::{path, request_id};
use crate::routes::{Matched, PathParams, ROUTES, Route, RouteSpec, match_route};
use http::HeaderValue;
use lambda_http::{Body, Request, Response};
use peak_auth::JwtVerifier;
use peak_domain::Caller;
use peak_domain::catalogue::Catalogue;
use peak_domain::policy::{Action, authorize};
use peak_domain::ports::ProfileStore;
use std::sync::Arc;
use std::time::Instant;

/// Everything a handler needs, built once at cold start.
#[derive(Clone)]
pub struct AppState {
    pub profiles: Arc<dyn ProfileStore>,
    pub verifier: Arc<JwtVerifier>,
    pub catalogue: &'static Catalogue,
}

/// Serves every route (the local server).
pub async fn handle(state: &AppState, req: Request) -> Response<Body> {
    let all: Vec<&'static RouteSpec> = ROUTES.iter().collect();
    handle_routes(state, &all, req).await
}

/// Serves only `routes` (one Lambda function); other paths are 404.
pub async fn handle_routes(
    state: &AppState,
    routes: &[&'static RouteSpec],
    req: Request,
) -> Response<Body> {
    let started = Instant::now();
    let request_id = request_id(&req);
    let method = req.method().clone();
    let path = path(&req);
    let mut tenant = None;
    let (route, result) = match match_route(routes, &method, &path) {
        Matched::Found(spec, params) => {
            let result = match authenticate_for(state, spec, &req).await {
                Ok(caller) => {
                    tenant = caller.as_ref().map(|c| c.tenant_id.to_string());
                    dispatch(state, spec, params, caller, req).await
                }
                Err(p) => Err(p),
            };
            (spec.path, result)
        }
        Matched::MethodNotAllowed(allowed) => {
            let allow = allowed
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            ("-", Err(Problem::method_not_allowed(allow)))
        }
        Matched::NotFound => ("-", Err(Problem::route_not_found())),
    };
    let mut response = match result {
        Ok(r) => r,
        Err(problem) => {
            if let Some(internal) = &problem.internal {
                tracing::error!(request_id, route, error = %internal, "request failed");
            }
            problem.into_response(&request_id)
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    tracing::info!(
        request_id,
        method = %method,
        route,
        status = response.status().as_u16(),
        tenant = tenant.as_deref().unwrap_or("-"),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

async fn authenticate_for(
    state: &AppState,
    spec: &RouteSpec,
    req: &Request,
) -> Result<Option<Caller>, Problem> {
    if spec.authenticated {
        authenticate(&state.verifier, req).await.map(Some)
    } else {
        Ok(None)
    }
}

/// The policy action each route needs; checked before the body is read.
fn action(route: Route) -> Action {
    match route {
        Route::GetCatalogue => Action::ViewCatalogue,
        Route::ListProfiles => Action::ListProfiles,
        Route::CreateProfile => Action::CreateProfile,
        Route::GetProfile => Action::ViewProfile,
        Route::UpdateProfile => Action::EditProfile,
        Route::DeleteProfile => Action::DeleteProfile,
    }
}

async fn dispatch(
    state: &AppState,
    spec: &RouteSpec,
    params: PathParams,
    caller: Option<Caller>,
    req: Request,
) -> Result<Response<Body>, Problem> {
    let Some(caller) = caller else {
        // Every route so far is authenticated; a public one would be handled
        // above this line.
        return Err(Problem::unauthenticated("this route needs an access token"));
    };
    authorize(&caller, action(spec.route))?;
    let id = params
        .iter()
        .find(|(n, _)| *n == "id")
        .map(|(_, v)| v.as_str());
    match spec.route {
        Route::GetCatalogue => handlers::catalogue::get(state),
        Route::ListProfiles => handlers::profiles::list(state, &caller, &req).await,
        Route::CreateProfile => handlers::profiles::create(state, &caller, &req).await,
        Route::GetProfile => handlers::profiles::get(state, &caller, id).await,
        Route::UpdateProfile => handlers::profiles::update(state, &caller, id, &req).await,
        Route::DeleteProfile => handlers::profiles::delete(state, &caller, id, &req).await,
    }
}
