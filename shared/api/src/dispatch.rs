//! Which handler runs for a matched route: one small function per route.
//!
//! The local server serves every route through [`handler`]. A Lambda binary
//! names only its own route functions (see `peak_functions::run`), so the
//! linker leaves every other handler out of it — and with them what only
//! they use: the Excel reader, S3 presigning, the OpenAPI generator. Each
//! function is named exactly as its `Route` variant, so a binary's pairs
//! read `(Route::UserGet, dispatch::UserGet)` and cannot name the wrong
//! handler without it showing (functions/src/tests/template.rs checks).

use crate::handlers::{self, me, profiles, users};
use crate::problem::Problem;
use crate::routes::{PathParams, Route};
use crate::state::AppState;
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
        Route::ProfileCatalogue => Action::ViewCatalogue,
        Route::ProfileList => Action::ListProfiles,
        Route::ProfileCreate => Action::CreateProfile,
        Route::ProfileGet => Action::ViewProfile,
        Route::ProfileUpdate => Action::EditProfile,
        Route::ProfileDelete => Action::DeleteProfile,
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
    public InvitationView |c| handlers::public::invitation_view(&c.ctx(), c.state, &c.req, &c.token, c.request_id).await;
    public InvitationAccept |c| handlers::public::invitation_accept(&c.ctx(), c.state, &c.req, &c.token, c.request_id).await;
    public EmailVerificationView |c| handlers::public::email_verification_view(&c.ctx(), c.state, &c.req, &c.token, c.request_id).await;
    public EmailVerificationConfirm |c| handlers::public::email_verification_confirm(&c.ctx(), c.state, &c.req, &c.token, c.request_id).await;
    public PasswordResetRequest |c| handlers::public::password_reset_request(&c.ctx(), &c.req).await;
    public Auth0Webhook |c| handlers::webhooks::auth0_webhook(&c.ctx(), c.state, &c.req).await;
    public Openapi |_c| Ok(handlers::json(http::StatusCode::OK, &crate::openapi::document()));
    signed_in ProfileCatalogue |c, _a| handlers::catalogue::profile_catalogue(c.state);
    signed_in ProfileList |c, a| profiles::profile_list(c.state, &a.caller, &c.req).await;
    signed_in ProfileCreate |c, a| profiles::profile_create(c.state, &a.caller, &c.req).await;
    signed_in ProfileGet |c, a| profiles::profile_get(c.state, &a.caller, c.id()).await;
    signed_in ProfileUpdate |c, a| profiles::profile_update(c.state, &a.caller, c.id(), &c.req).await;
    signed_in ProfileDelete |c, a| profiles::profile_delete(c.state, &a.caller, c.id(), &c.req).await;
    signed_in UserList |c, a| users::user_list(&c.ctx(), &a.actor, &c.req).await;
    signed_in UserInvite |c, a| users::user_invite(&c.ctx(), &a.actor, &c.req).await;
    signed_in UserGet |c, a| users::user_get(&c.ctx(), &a.actor, c.id()).await;
    signed_in UserUpdate |c, a| users::user_update(&c.ctx(), &a.actor, c.id(), &c.req).await;
    signed_in UserDelete |c, a| users::user_delete(&c.ctx(), &a.actor, c.id(), &c.req).await;
    signed_in UserSuspend |c, a| users::user_suspend(&c.ctx(), &a.actor, c.id(), &c.req).await;
    signed_in UserEnable |c, a| users::user_enable(&c.ctx(), &a.actor, c.id(), &c.req).await;
    signed_in UserPasswordReset |c, a| users::user_password_reset(&c.ctx(), &a.actor, c.id()).await;
    signed_in InvitationResend |c, a| users::invitation_resend(&c.ctx(), &a.actor, c.id()).await;
    signed_in InvitationRevoke |c, a| users::invitation_revoke(&c.ctx(), &a.actor, c.id()).await;
    signed_in UserAudit |c, a| users::user_audit(&c.ctx(), &a.actor, c.id(), &c.req).await;
    signed_in TenantAudit |c, a| users::tenant_audit(&c.ctx(), &a.actor, &c.req).await;
    signed_in SettingsGet |c, a| handlers::settings::settings_get(c.state, &a.actor).await;
    signed_in SettingsUpdate |c, a| handlers::settings::settings_update(c.state, &a.actor, &c.req, c.request_id).await;
    signed_in MeGet |c, a| me::me_get(&c.ctx(), &a.actor).await;
    signed_in MeUpdate |c, a| me::me_update(&c.ctx(), &a.actor, &c.req).await;
    signed_in MePasswordReset |c, a| me::me_password_reset(&c.ctx(), &a.actor).await;
    signed_in BulkInviteTemplate |_c, _a| Ok(handlers::bulk::bulk_invite_template());
    signed_in BulkInviteUpload |c, a| handlers::bulk::bulk_invite_upload(c.state, &a.actor).await;
    signed_in BulkInviteCreate |c, a| handlers::bulk::bulk_invite_create(&c.ctx(), c.state, &a.actor, &c.req).await;
    signed_in BulkInviteGet |c, a| handlers::bulk::bulk_invite_get(c.state, &a.actor, c.id()).await;
    signed_in BulkInviteReport |c, a| handlers::bulk::bulk_invite_report(c.state, &a.actor, c.id()).await;
}
