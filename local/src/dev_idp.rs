//! The development identity provider's Auth0 stand-in for user flows: it
//! "creates" logins (subject `dev|<user id>`), issues password-change
//! tickets, and serves the set-password page. When a password is set it
//! reports back exactly as Auth0 will (by webhook, later): the invited user
//! becomes active. It keeps no passwords — locally, tokens come from
//! `peak-local token`.

use axum::extract::{Form, Query, State};
use axum::response::{Html, IntoResponse, Response};
use http::StatusCode;
use peak_api::AppState;
use peak_domain::TenantId;
use peak_domain::identity::{
    IdentityProvider, IdpAccount, IdpError, IdpPage, IdpUserState, new_link_token,
};
use peak_domain::user::User;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use time::{Duration, OffsetDateTime};

const TICKET_TTL: Duration = Duration::hours(24);
const MIN_PASSWORD_CHARS: usize = 8;

#[derive(Clone)]
struct Ticket {
    tenant: TenantId,
    subject: String,
    first_name: String,
    expires_at: OffsetDateTime,
}

pub struct LocalIdentityProvider {
    base_url: String,
    tickets: Mutex<HashMap<String, Ticket>>,
    /// The logins it holds, by subject (in memory: a restart forgets them,
    /// and reconciliation or the next accept recreates them).
    accounts: Mutex<std::collections::BTreeMap<String, IdpAccount>>,
}

impl LocalIdentityProvider {
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            tickets: Mutex::new(HashMap::new()),
            accounts: Mutex::new(std::collections::BTreeMap::new()),
        }
    }

    fn take_ticket(&self, ticket: &str) -> Option<Ticket> {
        let mut tickets = self.tickets.lock().unwrap_or_else(|p| p.into_inner());
        let t = tickets.remove(ticket)?;
        (OffsetDateTime::now_utc() < t.expires_at).then_some(t)
    }

    fn peek_ticket(&self, ticket: &str) -> Option<Ticket> {
        let tickets = self.tickets.lock().unwrap_or_else(|p| p.into_inner());
        tickets
            .get(ticket)
            .filter(|t| OffsetDateTime::now_utc() < t.expires_at)
            .cloned()
    }

    /// The ticket id inside a link this provider issued.
    pub fn ticket_of(link: &str) -> Option<&str> {
        link.split("ticket=").nth(1)
    }

    /// Sets the password behind `ticket`, as the page's form does, and
    /// reports it to the user flows. Returns the subject.
    pub async fn set_password(
        &self,
        state: &AppState,
        ticket: &str,
        password: &str,
    ) -> Result<(TenantId, String), String> {
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(format!(
                "the password must be at least {MIN_PASSWORD_CHARS} characters"
            ));
        }
        let t = self
            .take_ticket(ticket)
            .ok_or_else(|| "this link is invalid or has expired".to_owned())?;
        let request_id = ulid::Ulid::new().to_string();
        peak_domain::users::password_was_set(&state.ctx(&request_id), &t.tenant, &t.subject)
            .await
            .map_err(|e| format!("could not activate the user: {e}"))?;
        Ok((t.tenant, t.subject))
    }
}

#[async_trait::async_trait]
impl IdentityProvider for LocalIdentityProvider {
    async fn ensure_user(&self, user: &User) -> Result<String, IdpError> {
        let subject = format!("dev|{}", user.id);
        let state = IdpUserState::of(user);
        let mut accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        accounts
            .entry(subject.clone())
            .or_insert_with(|| IdpAccount {
                subject: subject.clone(),
                email: state.email,
                email_verified: true,
                given_name: Some(state.given_name),
                family_name: Some(state.family_name),
                blocked: state.blocked,
                tenant: Some(user.tenant_id.as_str().to_owned()),
                user_id: Some(user.id.as_str().to_owned()),
            });
        Ok(subject)
    }

    async fn update_user(&self, subject: &str, state: &IdpUserState) -> Result<bool, IdpError> {
        let mut accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        let Some(a) = accounts.get_mut(subject) else {
            return Ok(false);
        };
        a.email = state.email.clone();
        a.given_name = Some(state.given_name.clone());
        a.family_name = Some(state.family_name.clone());
        a.blocked = state.blocked;
        Ok(true)
    }

    async fn delete_user(&self, subject: &str) -> Result<(), IdpError> {
        let mut accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        accounts.remove(subject);
        Ok(())
    }

    async fn get_user(&self, subject: &str) -> Result<Option<IdpAccount>, IdpError> {
        let accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        Ok(accounts.get(subject).cloned())
    }

    async fn list_users(&self, page: u32, per_page: u32) -> Result<IdpPage, IdpError> {
        let accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        let per_page = per_page.max(1) as usize;
        let start = page as usize * per_page;
        let items: Vec<IdpAccount> = accounts
            .values()
            .skip(start)
            .take(per_page)
            .cloned()
            .collect();
        let next = (start + per_page < accounts.len()).then_some(page + 1);
        Ok(IdpPage {
            accounts: items,
            next,
        })
    }

    async fn password_setup_link(&self, user: &User, subject: &str) -> Result<String, IdpError> {
        let (ticket, _) = new_link_token();
        let mut tickets = self.tickets.lock().unwrap_or_else(|p| p.into_inner());
        let now = OffsetDateTime::now_utc();
        tickets.retain(|_, t| t.expires_at > now);
        tickets.insert(
            ticket.clone(),
            Ticket {
                tenant: user.tenant_id.clone(),
                subject: subject.to_owned(),
                first_name: user.first_name.as_str().to_owned(),
                expires_at: now + TICKET_TTL,
            },
        );
        Ok(format!(
            "{}/dev-idp/set-password?ticket={ticket}",
            self.base_url.trim_end_matches('/')
        ))
    }
}

#[derive(Deserialize)]
pub struct TicketQuery {
    ticket: String,
}

#[derive(Deserialize)]
pub struct SetPasswordForm {
    ticket: String,
    password: String,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body style=\"font-family:sans-serif;max-width:32rem;margin:3rem auto\">\
         <p><small>peak-users development identity provider (stands in for Auth0)</small></p>\
         <h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    ))
}

pub type IdpState = (Arc<AppState>, Arc<LocalIdentityProvider>);

pub async fn set_password_page(
    State((_, idp)): State<IdpState>,
    Query(q): Query<TicketQuery>,
) -> Response {
    match idp.peek_ticket(&q.ticket) {
        Some(t) => page(
            "Set your password",
            &format!(
                "<p>Hello {name}, choose a password (at least {MIN_PASSWORD_CHARS} characters).</p>\
                 <form method=\"post\" action=\"/dev-idp/set-password\">\
                 <input type=\"hidden\" name=\"ticket\" value=\"{ticket}\">\
                 <input type=\"password\" name=\"password\" minlength=\"{MIN_PASSWORD_CHARS}\" required autofocus> \
                 <button type=\"submit\">Set password</button></form>",
                name = escape(&t.first_name),
                ticket = escape(&q.ticket),
            ),
        )
        .into_response(),
        None => (StatusCode::BAD_REQUEST, page("Link not valid", "<p>This link is invalid or has expired.</p>")).into_response(),
    }
}

pub async fn set_password(
    State((state, idp)): State<IdpState>,
    Form(form): Form<SetPasswordForm>,
) -> Response {
    match idp.set_password(&state, &form.ticket, &form.password).await {
        Ok((tenant, subject)) => page(
            "Password set",
            &format!(
                "<p>Your account is active. (Locally there is no login page; get a token with:)</p>\
                 <pre>cargo run -q -p peak-local -- token --tenant {} --sub '{}'</pre>",
                escape(tenant.as_str()),
                escape(&subject)
            ),
        )
        .into_response(),
        Err(why) => (
            StatusCode::BAD_REQUEST,
            page("Password not set", &format!("<p>{}</p>", escape(&why))),
        )
            .into_response(),
    }
}
