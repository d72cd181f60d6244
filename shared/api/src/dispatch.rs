//! Which handler runs for a matched route: one small function per route.
//!
//! The local server serves every route through [`handler`]. A Lambda binary
//! names only its own route functions (see `peak_functions::run`), so the
//! linker leaves every other handler out of it — and with them what only
//! they use: the Excel reader, S3 presigning, the OpenAPI generator. Each
//! function is named exactly as its `Route` variant, so a binary's pairs
//! read `(Route::GetUser, dispatch::GetUser)` and cannot name the wrong
//! handler without it showing (functions/src/tests/template.rs checks).

use crate::app::AppState;
use crate::handlers::{self, me, profiles, users};
use crate::problem::Problem;
use crate::routes::{PathParams, Route};
use lambda_http::{Body, Request, Response};
use peak_domain::Caller;
use peak_domain::policy::{Action, authorize};
use peak_domain::user_policy::Actor;
use peak_domain::users::Ctx;
use std::future::Future;
use std::pin::Pin;

/// A handler's answer.
pub type Reply<'a> = Pin<Box<dyn Future<Output = Result<Response<Body>, Problem>> + Send + 'a>>;

/// A route's handler.
pub type Handler = for<'a> fn(Call<'a>) -> Reply<'a>;

/// One matched request, as a handler gets it.
pub struct Call<'a> {
    pub(crate) state: &'a AppState,
    pub(crate) route: Route,
    pub(crate) actor: Option<Actor>,
    pub(crate) req: Request,
    pub(crate) request_id: &'a str,
    id: Option<String>,
    token: String,
}

impl<'a> Call<'a> {
    pub(crate) fn new(
        state: &'a AppState,
        route: Route,
        params: PathParams,
        actor: Option<Actor>,
        req: Request,
        request_id: &'a str,
    ) -> Self {
        let param = |name: &str| {
            params
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        };
        Call {
            state,
            route,
            actor,
            req,
            request_id,
            id: param("id"),
            token: param("token").unwrap_or_default(),
        }
    }

    /// The same request, to run again (see `preconditions`).
    pub(crate) fn again(&self) -> Self {
        Call {
            state: self.state,
            route: self.route,
            actor: self.actor.clone(),
            req: self.req.clone(),
            request_id: self.request_id,
            id: self.id.clone(),
            token: self.token.clone(),
        }
    }

    fn ctx(&self) -> Ctx<'a> {
        self.state.ctx(self.request_id)
    }

    fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The signed-in caller of an authenticated route, with the profile
    /// policy checked before any body is read (user routes are decided by
    /// the user policy inside their use cases).
    fn signed_in(&mut self) -> Result<SignedIn, Problem> {
        let Some(actor) = self.actor.take() else {
            return Err(Problem::unauthenticated("this route needs an access token"));
        };
        let caller = Caller {
            tenant_id: actor.user.tenant_id.clone(),
            subject: actor.user.idp_subject.clone().unwrap_or_default(),
            role: actor.user.role,
        };
        if let Some(action) = profile_action(self.route) {
            authorize(&caller, action)?;
        }
        Ok(SignedIn { actor, caller })
    }

    /// A public route is never reached with a caller (the pipeline only
    /// authenticates routes that need it).
    fn public(&self) -> Result<(), Problem> {
        match self.actor {
            Some(_) => Err(Problem::route_not_found()),
            None => Ok(()),
        }
    }
}

struct SignedIn {
    actor: Actor,
    caller: Caller,
}

/// The profile policy action a route needs.
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

/// For a route the process does not serve (unreachable: only served routes
/// match).
pub(crate) fn not_found(_: Call<'_>) -> Reply<'_> {
    Box::pin(async { Err(Problem::route_not_found()) })
}

macro_rules! routes {
    ($( $kind:ident $route:ident |$c:ident $(, $a:ident)?| $body:expr ;)*) => {
        $( routes!(@one $kind $route |$c $(, $a)?| $body); )*

        /// The handler of `route` (the local server serves them all).
        pub fn handler(route: Route) -> Handler {
            match route {
                $( Route::$route => $route, )*
            }
        }
    };
    (@one public $route:ident |$c:ident| $body:expr) => {
        #[doc = concat!("`Route::", stringify!($route), "` (public).")]
        #[allow(non_snake_case)]
        pub fn $route(call: Call<'_>) -> Reply<'_> {
            Box::pin(async move {
                call.public()?;
                let $c = &call;
                $body
            })
        }
    };
    (@one signed_in $route:ident |$c:ident, $a:ident| $body:expr) => {
        #[doc = concat!("`Route::", stringify!($route), "` (signed in).")]
        #[allow(non_snake_case)]
        pub fn $route(mut call: Call<'_>) -> Reply<'_> {
            Box::pin(async move {
                let $a = call.signed_in()?;
                let $c = &call;
                $body
            })
        }
    };
}

routes! {
    public ViewInvitation |c| handlers::public::view_invitation(&c.ctx(), c.state, &c.req, &c.token, c.request_id).await;
    public AcceptInvitation |c| handlers::public::accept_invitation(&c.ctx(), c.state, &c.req, &c.token, c.request_id).await;
    public ViewEmailVerification |c| handlers::public::view_email_verification(&c.ctx(), c.state, &c.req, &c.token, c.request_id).await;
    public ConfirmEmailVerification |c| handlers::public::confirm_email(&c.ctx(), c.state, &c.req, &c.token, c.request_id).await;
    public RequestPasswordReset |c| handlers::public::request_password_reset(&c.ctx(), &c.req).await;
    public Auth0Webhook |c| handlers::webhooks::auth0(&c.ctx(), c.state, &c.req).await;
    public OpenApi |_c| Ok(handlers::json(http::StatusCode::OK, &crate::openapi::document()));
    signed_in GetCatalogue |c, _a| handlers::catalogue::get(c.state);
    signed_in ListProfiles |c, a| profiles::list(c.state, &a.caller, &c.req).await;
    signed_in CreateProfile |c, a| profiles::create(c.state, &a.caller, &c.req).await;
    signed_in GetProfile |c, a| profiles::get(c.state, &a.caller, c.id()).await;
    signed_in UpdateProfile |c, a| profiles::update(c.state, &a.caller, c.id(), &c.req).await;
    signed_in DeleteProfile |c, a| profiles::delete(c.state, &a.caller, c.id(), &c.req).await;
    signed_in ListUsers |c, a| users::list(&c.ctx(), &a.actor, &c.req).await;
    signed_in InviteUser |c, a| users::invite(&c.ctx(), &a.actor, &c.req).await;
    signed_in GetUser |c, a| users::get(&c.ctx(), &a.actor, c.id()).await;
    signed_in UpdateUser |c, a| users::update(&c.ctx(), &a.actor, c.id(), &c.req).await;
    signed_in DeleteUser |c, a| users::delete(&c.ctx(), &a.actor, c.id(), &c.req).await;
    signed_in SuspendUser |c, a| users::suspend(&c.ctx(), &a.actor, c.id(), &c.req).await;
    signed_in EnableUser |c, a| users::enable(&c.ctx(), &a.actor, c.id(), &c.req).await;
    signed_in ResetUserPassword |c, a| users::reset_password(&c.ctx(), &a.actor, c.id()).await;
    signed_in ResendInvitation |c, a| users::resend(&c.ctx(), &a.actor, c.id()).await;
    signed_in RevokeInvitation |c, a| users::revoke(&c.ctx(), &a.actor, c.id()).await;
    signed_in UserAudit |c, a| users::audit(&c.ctx(), &a.actor, c.id(), &c.req).await;
    signed_in TenantAudit |c, a| users::tenant_audit(&c.ctx(), &a.actor, &c.req).await;
    signed_in GetSettings |c, a| handlers::settings::get(c.state, &a.actor).await;
    signed_in UpdateSettings |c, a| handlers::settings::update(c.state, &a.actor, &c.req, c.request_id).await;
    signed_in GetMe |c, a| me::get(&c.ctx(), &a.actor).await;
    signed_in UpdateMe |c, a| me::update(&c.ctx(), &a.actor, &c.req).await;
    signed_in ResetMyPassword |c, a| me::reset_password(&c.ctx(), &a.actor).await;
    signed_in BulkInviteTemplate |_c, _a| Ok(handlers::bulk::template());
    signed_in CreateBulkUpload |c, a| handlers::bulk::upload_url(c.state, &a.actor).await;
    signed_in CreateBulkInvite |c, a| handlers::bulk::create(&c.ctx(), c.state, &a.actor, &c.req).await;
    signed_in GetBulkInvite |c, a| handlers::bulk::get(c.state, &a.actor, c.id()).await;
    signed_in BulkInviteReport |c, a| handlers::bulk::report(c.state, &a.actor, c.id()).await;
}
