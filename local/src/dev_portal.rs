//! The local run's stand-in for the customer portal, as the development
//! identity provider stands in for Auth0: a sign-in page (email and
//! password, checked against what that provider stored) that signs the
//! person in with one of its tokens and shows who they are — the API's own
//! `GET /me` and `GET /profile-catalogue`, called through the same request
//! pipeline as any client, their effective permissions laid out as the
//! catalogue's seven tabs. It closes the loop of a link in an email on one
//! machine; the pages say that they are a stand-in.
//!
//! The token is kept in an `HttpOnly`, `SameSite=Strict` cookie scoped to
//! these pages, never handed to script.

use crate::identity_provider::LocalIdentityProvider;
use askama::Template;
use axum::extract::{Form, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use lambda_http::Body;
use peak_api::AppState;
use peak_auth::DevIdentityProvider;
use peak_domain::TenantId;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

pub type PortalState = (
    Arc<AppState>,
    Arc<LocalIdentityProvider>,
    Arc<DevIdentityProvider>,
);

/// Where the stand-in lives: the local brand's portal URL is this path.
pub const PATH: &str = "/dev-portal";
const COOKIE: &str = "peak_dev_portal";
const NOTE: &str = "Local stand-in for the customer portal";
/// How long a sign-in lasts.
const SESSION: std::time::Duration = std::time::Duration::from_secs(3600);

#[derive(Deserialize)]
pub struct SignInForm {
    email: String,
    password: String,
}

#[derive(Template)]
#[template(path = "dev_portal_sign_in.html")]
struct SignInPage<'a> {
    f: &'a peak_pages::Frame,
    email: &'a str,
    error: Option<&'a str>,
}

/// What the "who you are" page shows, read from the API's answers.
struct Me {
    name: String,
    email: String,
    role: String,
    accounts: Vec<String>,
    tabs: Vec<MeTab>,
}

struct MeTab {
    id: String,
    label: String,
    /// (setting, the user's option) in catalogue order.
    rows: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "dev_portal_me.html")]
struct MePage<'a> {
    f: &'a peak_pages::Frame,
    me: &'a Me,
}

#[derive(Template)]
#[template(path = "dev_message.html")]
struct MessagePage<'a> {
    f: &'a peak_pages::Frame,
    message: &'a str,
}

fn frame(state: &AppState, tenant: Option<&TenantId>, title: &str) -> peak_pages::Frame {
    let brand = match tenant {
        Some(t) => state.brands.for_tenant(t),
        None => state.brands.default_brand(),
    };
    peak_pages::Frame::new(brand, title).with_note(NOTE)
}

fn respond(page: peak_pages::Page) -> Response {
    page.into_response().into_response()
}

fn sign_in_form(
    state: &AppState,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let f = frame(state, None, "Sign in");
    respond(peak_pages::Page::new(
        status,
        &f,
        &SignInPage {
            f: &f,
            email,
            error,
        },
    ))
}

fn see_other(location: &str, cookie: Option<String>) -> Response {
    let mut resp = (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location.to_owned())],
    )
        .into_response();
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn session_cookie(value: &str, max_age: u64) -> String {
    format!("{COOKIE}={value}; Path={PATH}; Max-Age={max_age}; HttpOnly; SameSite=Strict")
}

/// `tenant:token` from the cookie.
fn session(headers: &HeaderMap) -> Option<(TenantId, String)> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let value = cookies
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)?
        .1;
    let (tenant, token) = value.split_once(':')?;
    Some((TenantId::parse(tenant)?, token.to_owned()))
}

/// `GET /dev-portal`: the sign-in form.
pub async fn sign_in_page(State((state, _, _)): State<PortalState>) -> Response {
    sign_in_form(&state, "", None, StatusCode::OK)
}

/// `POST /dev-portal`: checks the password with the development identity
/// provider; signed in, the person goes on to who they are.
pub async fn sign_in(
    State((state, logins, tokens)): State<PortalState>,
    Form(form): Form<SignInForm>,
) -> Response {
    let Some((tenant, subject)) = logins.check_password(&form.email, &form.password) else {
        return sign_in_form(
            &state,
            &form.email,
            Some("That email address and password do not match an account that may sign in."),
            StatusCode::UNAUTHORIZED,
        );
    };
    // The role claim is informational: the API reads the user's record.
    match tokens.token_for(&subject, tenant.as_str(), "user", SESSION) {
        Ok(token) => see_other(
            &format!("{PATH}/me"),
            Some(session_cookie(
                &format!("{tenant}:{token}"),
                SESSION.as_secs(),
            )),
        ),
        Err(e) => {
            tracing::error!(error = %e, "could not sign a development token");
            sign_in_form(
                &state,
                &form.email,
                Some("Signing in failed on our side; try again."),
                StatusCode::INTERNAL_SERVER_ERROR,
            )
        }
    }
}

/// `POST /dev-portal/sign-out`.
pub async fn sign_out() -> Response {
    see_other(PATH, Some(session_cookie("", 0)))
}

/// `GET` of an API route with the person's token, through the same
/// pipeline as every client: (status, JSON body).
async fn api_get(state: &AppState, path: &str, token: &str) -> (StatusCode, Value) {
    let req = http::Request::builder()
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::ACCEPT, "application/json")
        .body(Body::Empty);
    let Ok(req) = req else {
        return (StatusCode::INTERNAL_SERVER_ERROR, Value::Null);
    };
    let resp = peak_api::handle(state, req).await;
    let status = resp.status();
    let body = match resp.into_body() {
        Body::Text(t) => serde_json::from_str(&t).unwrap_or(Value::Null),
        Body::Binary(b) => serde_json::from_slice(&b).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (status, body)
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn role_label(role: &str) -> String {
    match role {
        "admin" => "Administrator",
        "sales_rep" => "Account Executive (sales rep)",
        "partner" => "Partner Account Executive",
        "customer" => "Customer",
        other => other,
    }
    .to_owned()
}

/// The person's effective permissions as the catalogue's tabs: each
/// setting with the label of the option they have, or a note that it does
/// not apply to their role.
fn me_from(me: &Value, catalogue: &Value) -> Me {
    let chosen = &me["permissions"]["settings"];
    let tabs = catalogue["tabs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|tab| MeTab {
            id: text(&tab["id"]),
            label: text(&tab["label"]),
            rows: tab["settings"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    let value = match chosen[text(&s["id"])].as_str() {
                        Some(option) => s["options"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .find(|o| o["id"] == option)
                            .map(|o| text(&o["label"]))
                            .unwrap_or_else(|| option.to_owned()),
                        None => "Does not apply to your role".to_owned(),
                    };
                    (text(&s["label"]), value)
                })
                .collect(),
        })
        .collect();
    Me {
        name: format!("{} {}", text(&me["first_name"]), text(&me["last_name"])),
        email: text(&me["email"]),
        role: role_label(me["role"].as_str().unwrap_or_default()),
        accounts: me["customer_accounts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect(),
        tabs,
    }
}

/// `GET /dev-portal/me`: who the signed-in person is, from `GET /me`.
pub async fn me_page(State((state, _, _)): State<PortalState>, headers: HeaderMap) -> Response {
    let Some((tenant, token)) = session(&headers) else {
        return see_other(PATH, None);
    };
    let (status, me) = api_get(&state, "/me", &token).await;
    if !status.is_success() {
        // Suspended, deleted, or the sign-in ran out: the API's reason.
        let f = frame(&state, Some(&tenant), "You cannot use the portal");
        let detail = me["detail"]
            .as_str()
            .unwrap_or("Your sign-in is no longer valid; sign in again.");
        let mut resp = respond(peak_pages::Page::new(
            StatusCode::FORBIDDEN,
            &f,
            &MessagePage {
                f: &f,
                message: detail,
            },
        ));
        if let Ok(c) = HeaderValue::from_str(&session_cookie("", 0)) {
            resp.headers_mut().insert(header::SET_COOKIE, c);
        }
        return resp;
    }
    let (_, catalogue) = api_get(&state, "/profile-catalogue", &token).await;
    let me = me_from(&me, &catalogue);
    let f = frame(&state, Some(&tenant), &format!("Signed in as {}", me.name));
    respond(peak_pages::Page::new(
        StatusCode::OK,
        &f,
        &MePage { f: &f, me: &me },
    ))
}
