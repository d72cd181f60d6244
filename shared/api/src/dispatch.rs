//! How a matched request reaches its handler: [`Call`], and the
//! [`routes!`] macro each handler module uses to declare one small function
//! per route, beside the handler it calls.
//!
//! The local server serves every route (`handlers::handler`, generated). A
//! Lambda binary names only its own route functions (see
//! `peak_functions::run`), so the linker leaves every other handler out of
//! it — and with them what only they use: the Excel reader, S3 presigning,
//! the OpenAPI generator. Each function is named exactly as its `Route`
//! variant, so a binary's pairs read `(Route::UserGet, handlers::UserGet)`
//! and cannot name the wrong handler without it showing
//! (functions/src/tests/template.rs checks).

use crate::problem::Problem;
use crate::routes::{PathParams, Route};
use crate::state::AppState;
use lambda_http::{Body, Request, Response};
use peak_domain::model::tenant::Tenant;
use peak_domain::{Actor, Ctx};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A handler's answer.
pub type Reply<'a> = Pin<Box<dyn Future<Output = Result<Response<Body>, Problem>> + Send + 'a>>;

/// A route's handler.
pub type Handler = for<'a> fn(Call<'a>) -> Reply<'a>;

/// One matched request, as a handler gets it.
pub struct Call<'a> {
    pub(crate) state: &'a AppState,
    pub(crate) route: Route,
    pub(crate) actor: Option<Actor>,
    /// The caller's tenant record as admitted for this request.
    tenant: Option<Arc<Tenant>>,
    pub(crate) req: Request,
    pub(crate) request_id: &'a str,
    id: Option<String>,
    pub(crate) token: String,
    /// A machine client (no user): only the accounts routes take one.
    pub(crate) machine: Option<peak_domain::accounts::MachineClient>,
}

impl<'a> Call<'a> {
    pub(crate) fn new(
        state: &'a AppState,
        route: Route,
        params: PathParams,
        actor: Option<Actor>,
        tenant: Option<Arc<Tenant>>,
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
            tenant,
            req,
            request_id,
            // `{number}` names an account as `{id}` names a user.
            id: param("id").or_else(|| param("number")),
            token: param("token").unwrap_or_default(),
            machine: None,
        }
    }

    pub(crate) fn with_machine(
        mut self,
        machine: Option<peak_domain::accounts::MachineClient>,
    ) -> Self {
        self.machine = machine;
        self
    }

    /// The same request, to run again (see `preconditions`).
    pub(crate) fn again(&self) -> Self {
        Call {
            state: self.state,
            route: self.route,
            actor: self.actor.clone(),
            tenant: self.tenant.clone(),
            req: self.req.clone(),
            request_id: self.request_id,
            id: self.id.clone(),
            token: self.token.clone(),
            machine: self.machine.clone(),
        }
    }

    /// The use-case context: this request's, carrying its admitted tenant.
    pub(crate) fn ctx(&self) -> Ctx<'a> {
        Ctx {
            tenant: self.tenant.clone(),
            ..self.state.ctx(self.request_id)
        }
    }

    pub(crate) fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The signed-in caller of an authenticated route. What they may do is
    /// decided once, by the use case the handler calls (users and profiles
    /// alike), not here. A machine client is refused here with its scope
    /// named (it may only call the accounts routes, which ask for it).
    pub(crate) fn signed_in(&mut self) -> Result<Actor, Problem> {
        let Some(actor) = self.actor.take() else {
            if let Some(machine) = &self.machine {
                crate::machine::admit(machine, self.route)?;
            }
            return Err(Problem::unauthenticated("this route needs an access token"));
        };
        Ok(actor)
    }

    /// A public route is never reached with a caller (the pipeline only
    /// authenticates routes that need it).
    pub(crate) fn public(&self) -> Result<(), Problem> {
        match self.actor {
            Some(_) => Err(Problem::route_not_found()),
            None => Ok(()),
        }
    }
}

/// For a route the process does not serve (unreachable: only served routes
/// match).
pub(crate) fn not_found(_: Call<'_>) -> Reply<'_> {
    Box::pin(async { Err(Problem::route_not_found()) })
}

/// Declares route handlers: `signed_in UserGet |c, a| users::user_get(…).await;`
/// defines `pub fn UserGet(call: Call) -> Reply`, which checks the caller
/// (a signed-in caller, or none on a public route) and runs the body. Each
/// is its own function, so a Lambda binary links only the one it names.
/// `handlers/table.rs` (generated) maps every `Route` to its function.
macro_rules! routes {
    ($( $kind:ident $route:ident |$c:ident $(, $a:ident)?| $body:expr ;)*) => {
        $( $crate::dispatch::routes!(@one $kind $route |$c $(, $a)?| $body); )*
    };
    (@one public $route:ident |$c:ident| $body:expr) => {
        #[doc = concat!("`Route::", stringify!($route), "` (public).")]
        #[allow(non_snake_case)]
        pub fn $route(call: $crate::dispatch::Call<'_>) -> $crate::dispatch::Reply<'_> {
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
        pub fn $route(mut call: $crate::dispatch::Call<'_>) -> $crate::dispatch::Reply<'_> {
            Box::pin(async move {
                let $a = call.signed_in()?;
                let $c = &call;
                $body
            })
        }
    };
}
pub(crate) use routes;
