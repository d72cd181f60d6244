//! The route table: one row per operation, naming the Lambda function that
//! serves it in AWS. The local server serves all of them; `infra/template.yaml`
//! must declare the same set (a test compares them).

use http::Method;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    GetCatalogue,
    ListProfiles,
    CreateProfile,
    GetProfile,
    UpdateProfile,
    DeleteProfile,
}

#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub route: Route,
    pub method: Method,
    /// API Gateway syntax: `{name}` is a path parameter.
    pub path: &'static str,
    /// The Lambda binary (in `functions/`) that serves it.
    pub function: &'static str,
    /// False only for public routes (none yet).
    pub authenticated: bool,
}

pub const ROUTES: &[RouteSpec] = &[
    RouteSpec {
        route: Route::GetCatalogue,
        method: Method::GET,
        path: "/profile-catalogue",
        function: "profile-catalogue",
        authenticated: true,
    },
    RouteSpec {
        route: Route::ListProfiles,
        method: Method::GET,
        path: "/profiles",
        function: "profile-list",
        authenticated: true,
    },
    RouteSpec {
        route: Route::CreateProfile,
        method: Method::POST,
        path: "/profiles",
        function: "profile-create",
        authenticated: true,
    },
    RouteSpec {
        route: Route::GetProfile,
        method: Method::GET,
        path: "/profiles/{id}",
        function: "profile-get",
        authenticated: true,
    },
    RouteSpec {
        route: Route::UpdateProfile,
        method: Method::PATCH,
        path: "/profiles/{id}",
        function: "profile-update",
        authenticated: true,
    },
    RouteSpec {
        route: Route::DeleteProfile,
        method: Method::DELETE,
        path: "/profiles/{id}",
        function: "profile-delete",
        authenticated: true,
    },
];

/// Path parameters captured by a match, in template order.
pub type PathParams = Vec<(&'static str, String)>;

pub enum Matched {
    Found(&'static RouteSpec, PathParams),
    /// The path exists but not with this method.
    MethodNotAllowed(Vec<Method>),
    NotFound,
}

/// Finds the route for `method` and `path` among `routes`.
pub fn match_route(routes: &[&'static RouteSpec], method: &Method, path: &str) -> Matched {
    let mut allowed = Vec::new();
    for spec in routes {
        if let Some(params) = match_path(spec.path, path) {
            if spec.method == *method {
                return Matched::Found(spec, params);
            }
            allowed.push(spec.method.clone());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<&'static RouteSpec> {
        ROUTES.iter().collect()
    }

    #[test]
    fn matches_params_methods_and_trailing_slashes() {
        match match_route(&all(), &Method::GET, "/profiles/01ABC/") {
            Matched::Found(s, p) => {
                assert_eq!(s.route, Route::GetProfile);
                assert_eq!(p, vec![("id", "01ABC".to_owned())]);
            }
            _ => panic!("no match"),
        }
        assert!(matches!(
            match_route(&all(), &Method::PUT, "/profiles/x"),
            Matched::MethodNotAllowed(m) if m.len() == 3
        ));
        assert!(matches!(
            match_route(&all(), &Method::GET, "/profiles/x/y"),
            Matched::NotFound
        ));
        assert!(matches!(
            match_route(&all(), &Method::GET, "/profiles//"),
            Matched::NotFound
        ));
    }

    #[test]
    fn every_route_is_unique_and_every_function_serves_one_route() {
        let mut seen = std::collections::HashSet::new();
        for s in ROUTES {
            assert!(
                seen.insert((s.method.clone(), s.path)),
                "{} {}",
                s.method,
                s.path
            );
            assert_eq!(spec(s.route).function, s.function);
        }
    }
}
