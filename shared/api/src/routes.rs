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
    ListUsers,
    InviteUser,
    GetUser,
    UpdateUser,
    DeleteUser,
    SuspendUser,
    EnableUser,
    ResetUserPassword,
    ResendInvitation,
    RevokeInvitation,
    UserAudit,
    TenantAudit,
    GetSettings,
    UpdateSettings,
    GetMe,
    UpdateMe,
    ResetMyPassword,
    ViewInvitation,
    AcceptInvitation,
    ViewEmailVerification,
    ConfirmEmailVerification,
    RequestPasswordReset,
    BulkInviteTemplate,
    CreateBulkUpload,
    CreateBulkInvite,
    GetBulkInvite,
    BulkInviteReport,
    Auth0Webhook,
    OpenApi,
}

#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub route: Route,
    pub method: Method,
    /// API Gateway syntax: `{name}` is a path parameter.
    pub path: &'static str,
    /// The Lambda binary (in `functions/`) that serves it.
    pub function: &'static str,
    /// False only for public routes (invitation links, email verification,
    /// the signed-out password reset).
    pub authenticated: bool,
    /// A POST that creates: honours `Idempotency-Key`.
    pub idempotent: bool,
}

const fn route(
    route: Route,
    method: Method,
    path: &'static str,
    function: &'static str,
) -> RouteSpec {
    RouteSpec {
        route,
        method,
        path,
        function,
        authenticated: true,
        idempotent: false,
    }
}

const fn public(mut spec: RouteSpec) -> RouteSpec {
    spec.authenticated = false;
    spec
}

const fn creates(mut spec: RouteSpec) -> RouteSpec {
    spec.idempotent = true;
    spec
}

pub const ROUTES: &[RouteSpec] = &[
    route(
        Route::GetCatalogue,
        Method::GET,
        "/profile-catalogue",
        "profile-catalogue",
    ),
    route(
        Route::ListProfiles,
        Method::GET,
        "/profiles",
        "profile-list",
    ),
    creates(route(
        Route::CreateProfile,
        Method::POST,
        "/profiles",
        "profile-create",
    )),
    route(
        Route::GetProfile,
        Method::GET,
        "/profiles/{id}",
        "profile-get",
    ),
    route(
        Route::UpdateProfile,
        Method::PATCH,
        "/profiles/{id}",
        "profile-update",
    ),
    route(
        Route::DeleteProfile,
        Method::DELETE,
        "/profiles/{id}",
        "profile-delete",
    ),
    route(Route::ListUsers, Method::GET, "/users", "user-list"),
    creates(route(
        Route::InviteUser,
        Method::POST,
        "/users",
        "user-invite",
    )),
    route(Route::GetUser, Method::GET, "/users/{id}", "user-get"),
    route(
        Route::UpdateUser,
        Method::PATCH,
        "/users/{id}",
        "user-update",
    ),
    route(
        Route::DeleteUser,
        Method::DELETE,
        "/users/{id}",
        "user-delete",
    ),
    route(
        Route::SuspendUser,
        Method::POST,
        "/users/{id}/suspend",
        "user-suspend",
    ),
    route(
        Route::EnableUser,
        Method::POST,
        "/users/{id}/enable",
        "user-enable",
    ),
    route(
        Route::ResetUserPassword,
        Method::POST,
        "/users/{id}/password-reset",
        "user-password-reset",
    ),
    route(
        Route::ResendInvitation,
        Method::POST,
        "/users/{id}/invitation/resend",
        "invitation-resend",
    ),
    route(
        Route::RevokeInvitation,
        Method::POST,
        "/users/{id}/invitation/revoke",
        "invitation-revoke",
    ),
    route(
        Route::UserAudit,
        Method::GET,
        "/users/{id}/audit",
        "user-audit",
    ),
    route(Route::TenantAudit, Method::GET, "/audit", "tenant-audit"),
    route(Route::GetSettings, Method::GET, "/settings", "settings-get"),
    route(
        Route::UpdateSettings,
        Method::PATCH,
        "/settings",
        "settings-update",
    ),
    route(Route::GetMe, Method::GET, "/me", "me-get"),
    route(Route::UpdateMe, Method::PATCH, "/me", "me-update"),
    route(
        Route::ResetMyPassword,
        Method::POST,
        "/me/password-reset",
        "me-password-reset",
    ),
    public(route(
        Route::ViewInvitation,
        Method::GET,
        "/invitations/{token}",
        "invitation-view",
    )),
    public(route(
        Route::AcceptInvitation,
        Method::POST,
        "/invitations/{token}/accept",
        "invitation-accept",
    )),
    public(route(
        Route::ViewEmailVerification,
        Method::GET,
        "/email-verifications/{token}",
        "email-verification-view",
    )),
    public(route(
        Route::ConfirmEmailVerification,
        Method::POST,
        "/email-verifications/{token}",
        "email-verification-confirm",
    )),
    public(route(
        Route::RequestPasswordReset,
        Method::POST,
        "/password-resets",
        "password-reset-request",
    )),
    route(
        Route::BulkInviteTemplate,
        Method::GET,
        "/bulk-invites/template",
        "bulk-invite-template",
    ),
    route(
        Route::CreateBulkUpload,
        Method::POST,
        "/bulk-invites/uploads",
        "bulk-invite-upload",
    ),
    creates(route(
        Route::CreateBulkInvite,
        Method::POST,
        "/bulk-invites",
        "bulk-invite-create",
    )),
    route(
        Route::GetBulkInvite,
        Method::GET,
        "/bulk-invites/{id}",
        "bulk-invite-get",
    ),
    route(
        Route::BulkInviteReport,
        Method::GET,
        "/bulk-invites/{id}/report",
        "bulk-invite-report",
    ),
    // Authenticated by its own signature or bearer token, not a user's JWT.
    public(route(
        Route::Auth0Webhook,
        Method::POST,
        "/webhooks/auth0",
        "auth0-webhook",
    )),
    public(route(
        Route::OpenApi,
        Method::GET,
        "/openapi.json",
        "openapi",
    )),
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
            match_route(&all(), &Method::POST, "/users/01ABC/suspend"),
            Matched::Found(s, _) if s.route == Route::SuspendUser
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
