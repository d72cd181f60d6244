//! The request pipeline every route goes through: match → authenticate →
//! handler (whose use case authorizes) → response, with one log line per
//! request.

use crate::auth::{Caller, authenticate};
use crate::dispatch::{Call, Handler};
use crate::problem::Problem;
use crate::request::{path, request_id};
use crate::routes::{Matched, ROUTES, Route, RouteSpec, match_route, spec};
use crate::state::AppState;
use http::HeaderValue;
use lambda_http::{Body, Request, Response};
use peak_domain::model::tenant::Tenant;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// The routes a process serves, each with its handler.
pub struct Served {
    specs: Vec<&'static RouteSpec>,
    handlers: Vec<Handler>,
}

impl Served {
    /// Every route (the local server, the tests, the benchmarks).
    pub fn all() -> &'static Served {
        static ALL: OnceLock<Served> = OnceLock::new();
        ALL.get_or_init(|| {
            Served::only(
                &ROUTES
                    .iter()
                    .map(|s| (s.route, crate::handlers::handler(s.route)))
                    .collect::<Vec<_>>(),
            )
        })
    }

    /// Only `routes` (one Lambda function); other paths are 404.
    pub fn only(routes: &[(Route, Handler)]) -> Served {
        Served {
            specs: routes.iter().map(|(r, _)| spec(*r)).collect(),
            handlers: routes.iter().map(|(_, h)| *h).collect(),
        }
    }

    /// The routes, in the order given.
    pub fn routes(&self) -> impl Iterator<Item = Route> + '_ {
        self.specs.iter().map(|s| s.route)
    }

    fn handler(&self, route: Route) -> Option<Handler> {
        let i = self.specs.iter().position(|s| s.route == route)?;
        Some(self.handlers[i])
    }
}

/// Serves every route (the local server).
pub async fn handle(state: &AppState, req: Request) -> Response<Body> {
    handle_routes(state, Served::all(), req).await
}

/// Serves the routes of `served`; other paths are 404.
pub async fn handle_routes(state: &AppState, served: &Served, req: Request) -> Response<Body> {
    let started = Instant::now();
    let request_id = request_id(&req);
    let method = req.method().clone();
    let path = path(&req);
    let mut tenant = None;
    let (route, result) = match match_route(&served.specs, &method, &path) {
        Matched::Found(spec, params) => {
            let handler = served
                .handler(spec.route)
                .unwrap_or(crate::dispatch::not_found);
            let result = match authenticate_for(state, spec, &req, &request_id).await {
                Ok(admitted) => {
                    let (caller, record) = match admitted {
                        Some((caller, record)) => (Some(caller), record),
                        None => (None, None),
                    };
                    let (actor, machine) = match caller {
                        Some(Caller::User(actor)) => (Some(actor), None),
                        Some(Caller::Machine(m)) => (None, Some(m)),
                        None => (None, None),
                    };
                    tenant = actor.as_ref().map(|a| a.user.tenant_id.to_string());
                    tenant = tenant.or(machine.as_ref().map(|m| m.tenant_id.to_string()));
                    let call =
                        Call::new(state, spec.route, params, actor, record, req, &request_id)
                            .with_machine(machine);
                    crate::idempotency::run(spec, handler, call).await
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
) -> Result<Option<(Caller, Option<Arc<Tenant>>)>, Problem> {
    if spec.authenticated {
        authenticate(state, req, request_id).await.map(Some)
    } else {
        Ok(None)
    }
}
