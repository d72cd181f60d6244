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
use peak_domain::identity::IdentityProvider;
use peak_domain::policy::{Action, authorize};
use peak_domain::ports::{ProfileStore, UserStore};
use peak_domain::user_policy::Actor;
use peak_domain::users::{Ctx, UserSettings};
use std::sync::Arc;
use std::time::Instant;

/// Everything a handler needs, built once at cold start.
#[derive(Clone)]
pub struct AppState {
    pub profiles: Arc<dyn ProfileStore>,
    pub users: Arc<dyn UserStore>,
    pub idp: Arc<dyn IdentityProvider>,
    pub verifier: Arc<JwtVerifier>,
    pub catalogue: &'static Catalogue,
    pub settings: Arc<UserSettings>,
    /// How identity-provider webhooks are authenticated; `None`: the
    /// webhook route answers 503 (not configured).
    pub webhooks: Option<Arc<crate::handlers::webhooks::WebhookConfig>>,
    /// Bulk-invite jobs and their reports.
    pub jobs: Arc<dyn peak_domain::ports::JobStore>,
    /// Uploaded files (S3 in AWS, a folder locally).
    pub files: Arc<dyn peak_domain::ports::FileStore>,
}

impl AppState {
    /// The use-case context for one request.
    pub fn ctx<'a>(&'a self, request_id: &'a str) -> Ctx<'a> {
        Ctx {
            users: self.users.as_ref(),
            profiles: self.profiles.as_ref(),
            catalogue: self.catalogue,
            settings: &self.settings,
            now: time::OffsetDateTime::now_utc(),
            request_id,
        }
    }
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
            let result = match authenticate_for(state, spec, &req, &request_id).await {
                Ok(actor) => {
                    tenant = actor.as_ref().map(|a| a.user.tenant_id.to_string());
                    crate::idempotency::run(state, spec, params, actor, req, &request_id).await
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
    // The first request a process serves is a cold start (in Lambda: the
    // invocation that paid for init).
    static FIRST_REQUEST: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);
    let cold_start = FIRST_REQUEST.swap(false, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(
        request_id,
        cold_start,
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
    request_id: &str,
) -> Result<Option<Actor>, Problem> {
    if spec.authenticated {
        authenticate(state, req, request_id).await.map(Some)
    } else {
        Ok(None)
    }
}

/// The profile policy action a route needs, checked before the body is read
/// (user routes are decided by the user policy inside their use cases).
fn profile_action(route: Route) -> Option<Action> {
    Some(match route {
        Route::GetCatalogue => Action::ViewCatalogue,
        Route::ListProfiles => Action::ListProfiles,
        Route::CreateProfile => Action::CreateProfile,
        Route::GetProfile => Action::ViewProfile,
        Route::UpdateProfile => Action::EditProfile,
        Route::DeleteProfile => Action::DeleteProfile,
        _ => return None,
    })
}

pub(crate) async fn dispatch(
    state: &AppState,
    spec: &RouteSpec,
    params: PathParams,
    actor: Option<Actor>,
    req: Request,
    request_id: &str,
) -> Result<Response<Body>, Problem> {
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    };
    let id = param("id");
    let id = id.as_deref();
    let ctx = state.ctx(request_id);
    let Some(actor) = actor else {
        let token = param("token").unwrap_or_default();
        return match spec.route {
            Route::ViewInvitation => handlers::public::view_invitation(&ctx, &token).await,
            Route::AcceptInvitation => {
                handlers::public::accept_invitation(&ctx, state, &token).await
            }
            Route::ViewEmailVerification => handlers::public::view_email_verification(&token),
            Route::ConfirmEmailVerification => handlers::public::confirm_email(&ctx, &token).await,
            Route::OpenApi => Ok(handlers::json(
                http::StatusCode::OK,
                &crate::openapi::document(),
            )),
            Route::RequestPasswordReset => {
                handlers::public::request_password_reset(&ctx, &req).await
            }
            Route::Auth0Webhook => handlers::webhooks::auth0(&ctx, state, &req).await,
            _ => Err(Problem::unauthenticated("this route needs an access token")),
        };
    };
    let caller = Caller {
        tenant_id: actor.user.tenant_id.clone(),
        subject: actor.user.idp_subject.clone().unwrap_or_default(),
        role: actor.user.role,
    };
    if let Some(action) = profile_action(spec.route) {
        authorize(&caller, action)?;
    }
    use handlers::{me, profiles, users};
    match spec.route {
        Route::GetCatalogue => handlers::catalogue::get(state),
        Route::ListProfiles => profiles::list(state, &caller, &req).await,
        Route::CreateProfile => profiles::create(state, &caller, &req).await,
        Route::GetProfile => profiles::get(state, &caller, id).await,
        Route::UpdateProfile => profiles::update(state, &caller, id, &req).await,
        Route::DeleteProfile => profiles::delete(state, &caller, id, &req).await,
        Route::ListUsers => users::list(&ctx, &actor, &req).await,
        Route::InviteUser => users::invite(&ctx, &actor, &req).await,
        Route::GetUser => users::get(&ctx, &actor, id).await,
        Route::UpdateUser => users::update(&ctx, &actor, id, &req).await,
        Route::DeleteUser => users::delete(&ctx, &actor, id, &req).await,
        Route::SuspendUser => users::suspend(&ctx, &actor, id, &req).await,
        Route::EnableUser => users::enable(&ctx, &actor, id, &req).await,
        Route::ResetUserPassword => users::reset_password(&ctx, &actor, id).await,
        Route::ResendInvitation => users::resend(&ctx, &actor, id).await,
        Route::RevokeInvitation => users::revoke(&ctx, &actor, id).await,
        Route::UserAudit => users::audit(&ctx, &actor, id, &req).await,
        Route::TenantAudit => users::tenant_audit(&ctx, &actor, &req).await,
        Route::GetMe => me::get(&ctx, &actor).await,
        Route::UpdateMe => me::update(&ctx, &actor, &req).await,
        Route::ResetMyPassword => me::reset_password(&ctx, &actor).await,
        Route::BulkInviteTemplate => Ok(handlers::bulk::template()),
        Route::CreateBulkUpload => handlers::bulk::upload_url(state, &actor).await,
        Route::CreateBulkInvite => handlers::bulk::create(&ctx, state, &actor, &req).await,
        Route::GetBulkInvite => handlers::bulk::get(state, &actor, id).await,
        Route::BulkInviteReport => handlers::bulk::report(state, &actor, id).await,
        Route::ViewInvitation
        | Route::AcceptInvitation
        | Route::ViewEmailVerification
        | Route::ConfirmEmailVerification
        | Route::RequestPasswordReset
        | Route::Auth0Webhook
        | Route::OpenApi => Err(Problem::route_not_found()),
    }
}
