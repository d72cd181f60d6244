//! Routing: which operation a request is for. The operations themselves
//! (and every fact about them) are `operations::OPERATIONS`; the local
//! server serves all of them, a Lambda binary only its own.

use crate::operations::OPERATIONS;
use crate::operations::Op;
pub use crate::operations::Route;
use crate::spec::Method;

/// What the router needs of an operation (copied out of
/// `operations::OPERATIONS` at compile time, so a Lambda binary links only
/// this, not the documentation and samples).
#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    pub route: Route,
    pub method: Method,
    /// API Gateway syntax: `{name}` is a path parameter.
    pub path: &'static str,
    /// The Lambda binary (in `functions/`) that serves it.
    pub function: &'static str,
    /// False only for public routes (invitation links, email verification,
    /// the signed-out password reset, the webhook, the document).
    pub authenticated: bool,
    /// A POST that creates: honours `Idempotency-Key`.
    pub idempotent: bool,
}

const fn project<const N: usize>(ops: &[Op]) -> [RouteSpec; N] {
    let mut out = [RouteSpec {
        route: Route::Openapi,
        method: Method::Get,
        path: "",
        function: "",
        authenticated: false,
        idempotent: false,
    }; N];
    let mut i = 0;
    while i < N {
        let op = &ops[i];
        out[i] = RouteSpec {
            route: op.route,
            method: op.method,
            path: op.path,
            function: op.function,
            authenticated: op.authenticated(),
            idempotent: op.idempotent,
        };
        i += 1;
    }
    out
}

/// Every route, in the order of `OPERATIONS`.
pub const ROUTES: &[RouteSpec] = &project::<{ OPERATIONS.len() }>(OPERATIONS);

/// Path parameters captured by a match, in template order.
pub type PathParams = Vec<(&'static str, String)>;

pub enum Matched {
    Found(&'static RouteSpec, PathParams),
    /// The path exists but not with this method.
    MethodNotAllowed(Vec<http::Method>),
    NotFound,
}

/// Finds the route for `method` and `path` among `routes`.
pub fn match_route(routes: &[&'static RouteSpec], method: &http::Method, path: &str) -> Matched {
    let mut allowed = Vec::new();
    for spec in routes {
        if let Some(params) = match_path(spec.path, path) {
            if spec.method == *method {
                return Matched::Found(spec, params);
            }
            allowed.push(spec.method.as_http());
        }
    }
    if allowed.is_empty() {
        Matched::NotFound
    } else {
        Matched::MethodNotAllowed(allowed)
    }
}

fn match_path(template: &'static str, path: &str) -> Option<PathParams> {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let mut want = template.split('/');
    let mut got = path.split('/');
    let mut params = Vec::new();
    loop {
        match (want.next(), got.next()) {
            (None, None) => return Some(params),
            (Some(w), Some(g)) => {
                if let Some(name) = w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                    if g.is_empty() {
                        return None;
                    }
                    params.push((name, g.to_owned()));
                } else if w != g {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

pub fn spec(route: Route) -> &'static RouteSpec {
    ROUTES
        .iter()
        .find(|s| s.route == route)
        .unwrap_or(&ROUTES[0])
}

/// Every route of one function, for its Lambda binary.
pub fn function_routes(function: &str) -> Vec<Route> {
    ROUTES
        .iter()
        .filter(|r| r.function == function)
        .map(|r| r.route)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<&'static RouteSpec> {
        ROUTES.iter().collect()
    }

    #[test]
    fn matches_params_methods_and_trailing_slashes() {
        match match_route(&all(), &http::Method::GET, "/profiles/01ABC/") {
            Matched::Found(s, p) => {
                assert_eq!(s.route, Route::ProfileGet);
                assert_eq!(p, vec![("id", "01ABC".to_owned())]);
            }
            _ => panic!("no match"),
        }
        assert!(matches!(
            match_route(&all(), &http::Method::PUT, "/profiles/x"),
            Matched::MethodNotAllowed(m) if m.len() == 3
        ));
        assert!(matches!(
            match_route(&all(), &http::Method::POST, "/users/01ABC/suspend"),
            Matched::Found(s, _) if s.route == Route::UserSuspend
        ));
        assert!(matches!(
            match_route(&all(), &http::Method::GET, "/profiles/x/y"),
            Matched::NotFound
        ));
        assert!(matches!(
            match_route(&all(), &http::Method::GET, "/profiles//"),
            Matched::NotFound
        ));
    }

    /// One naming scheme: `Route::UserUpdate` is served by the function
    /// (binary, template resource, event file) `user-update`.
    #[test]
    fn every_function_is_named_after_its_route() {
        for r in ROUTES {
            let mut kebab = String::new();
            for (i, c) in format!("{:?}", r.route).chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    kebab.push('-');
                }
                kebab.push(c.to_ascii_lowercase());
            }
            assert_eq!(r.function, kebab, "{:?}", r.route);
        }
    }

    #[test]
    fn every_function_serves_exactly_one_route() {
        for r in ROUTES {
            assert_eq!(function_routes(r.function), [r.route], "{}", r.function);
        }
    }

    #[test]
    fn only_link_signed_out_and_webhook_routes_are_public() {
        let public: Vec<_> = ROUTES
            .iter()
            .filter(|r| !r.authenticated)
            .map(|r| r.path)
            .collect();
        assert_eq!(
            public,
            [
                "/invitations/{token}",
                "/invitations/{token}/accept",
                "/email-verifications/{token}",
                "/email-verifications/{token}",
                "/password-resets",
                "/webhooks/auth0",
                "/openapi.json"
            ]
        );
    }

    #[test]
    fn every_route_is_unique_and_every_function_serves_one_route() {
        let mut seen = std::collections::HashSet::new();
        for s in ROUTES {
            assert!(seen.insert((s.method, s.path)), "{} {}", s.method, s.path);
            assert_eq!(spec(s.route).function, s.function);
        }
    }
}
