//! The development identity provider's Auth0 stand-in for user flows: it
//! "creates" logins (subject `dev|<user id>`), issues password-change
//! tickets, and serves the set-password page. When a password is set it
//! reports back exactly as Auth0 does (by webhook): the invited user
//! becomes active; then, as an Auth0 ticket's result URL does, it sends the
//! person to the tenant's portal — locally the sign-in page of
//! [`crate::dev_portal`], which checks the password against what this
//! provider stored (a salted PBKDF2 hash, never the password).
//!
//! Its logins live in memory, and in a file of the data folder when the
//! local run gives it one (`dev-idp-logins.json`), so they survive a
//! restart as Auth0's would.

use askama::Template;
use axum::extract::{Form, Query, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use peak_api::AppState;
use peak_domain::TenantId;
use peak_domain::identity::{
    IdentityProvider, IdpAccount, IdpError, IdpUserState, SetupLink, StepOutcome, new_link_token,
};
use peak_domain::model::user::User;
use peak_domain::users::identity_events::{EventCtx, IdpEventOutcome};
use ring::pbkdf2;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use time::{Duration, OffsetDateTime};

const TICKET_TTL: Duration = Duration::hours(24);
pub const MIN_PASSWORD_CHARS: usize = 8;
/// PBKDF2-HMAC-SHA256 rounds: a development stand-in, so fewer than a
/// production store would use (the tests run unoptimized builds).
const PBKDF2_ROUNDS: NonZeroU32 = NonZeroU32::new(10_000).expect("non-zero");
const LOGINS_FILE: &str = "dev-idp-logins.json";

#[derive(Clone)]
struct Ticket {
    tenant: TenantId,
    subject: String,
    first_name: String,
    expires_at: OffsetDateTime,
}

/// One login as this provider keeps it (and writes it to its file).
#[derive(Clone, Serialize, Deserialize)]
struct Login {
    subject: String,
    email: String,
    given_name: Option<String>,
    family_name: Option<String>,
    blocked: bool,
    tenant: Option<String>,
    user_id: Option<String>,
    /// `salt:hash` (hex), PBKDF2-HMAC-SHA256; `None` until a password is set.
    password: Option<String>,
}

impl Login {
    fn account(&self) -> IdpAccount {
        IdpAccount {
            subject: self.subject.clone(),
            email: self.email.clone(),
            email_verified: true,
            given_name: self.given_name.clone(),
            family_name: self.family_name.clone(),
            blocked: self.blocked,
            tenant: self.tenant.clone(),
            user_id: self.user_id.clone(),
            // Only our own pushes block a login here.
            pushed_blocked: Some(self.blocked),
        }
    }

    fn from_user(subject: &str, user: &User) -> Self {
        let state = IdpUserState::of(user);
        Login {
            subject: subject.to_owned(),
            email: state.email,
            given_name: Some(state.given_name),
            family_name: Some(state.family_name),
            blocked: state.blocked,
            tenant: Some(user.tenant_id.as_str().to_owned()),
            user_id: Some(user.id.as_str().to_owned()),
            password: None,
        }
    }
}

fn hash_password(password: &str) -> String {
    let (salt, _) = new_link_token();
    let mut out = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        PBKDF2_ROUNDS,
        salt.as_bytes(),
        password.as_bytes(),
        &mut out,
    );
    format!("{salt}:{}", hex::encode(out))
}

fn password_matches(stored: &str, password: &str) -> bool {
    let Some((salt, hash)) = stored.split_once(':') else {
        return false;
    };
    let Ok(hash) = hex::decode(hash) else {
        return false;
    };
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        PBKDF2_ROUNDS,
        salt.as_bytes(),
        password.as_bytes(),
        &hash,
    )
    .is_ok()
}

pub struct LocalIdentityProvider {
    base_url: String,
    tickets: Mutex<HashMap<String, Ticket>>,
    /// The logins it holds, by subject.
    logins: Mutex<BTreeMap<String, Login>>,
    /// Where the logins are kept across restarts (`None`: memory only).
    file: Option<PathBuf>,
}

impl LocalIdentityProvider {
    /// Logins in memory only (the tests).
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            tickets: Mutex::new(HashMap::new()),
            logins: Mutex::new(BTreeMap::new()),
            file: None,
        }
    }

    /// Logins kept in `data_dir/dev-idp-logins.json` as well (the local
    /// run), read back from it now.
    pub fn with_data_dir(
        base_url: impl Into<String>,
        data_dir: &std::path::Path,
    ) -> Result<Self, String> {
        let path = data_dir.join(LOGINS_FILE);
        let logins: Vec<Login> = match std::fs::read_to_string(&path) {
            Ok(text) => {
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let idp = Self {
            file: Some(path),
            ..Self::new(base_url)
        };
        *idp.lock_logins() = logins.into_iter().map(|l| (l.subject.clone(), l)).collect();
        Ok(idp)
    }

    fn lock_logins(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Login>> {
        self.logins.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the logins to the file, if there is one (under the lock, so
    /// writes never interleave).
    fn save(&self, logins: &BTreeMap<String, Login>) {
        let Some(path) = &self.file else { return };
        let all: Vec<&Login> = logins.values().collect();
        let written = serde_json::to_vec_pretty(&all)
            .map_err(|e| e.to_string())
            .and_then(|json| {
                let tmp = path.with_extension("json.tmp");
                std::fs::write(&tmp, json)
                    .and_then(|()| std::fs::rename(&tmp, path))
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), error = %e, "could not keep the dev logins");
        }
    }

    /// The login whose email (any case) and password these are, if it may
    /// sign in (not blocked): its tenant and subject.
    pub fn check_password(&self, email: &str, password: &str) -> Option<(TenantId, String)> {
        let logins = self.lock_logins();
        logins
            .values()
            .filter(|l| l.email.eq_ignore_ascii_case(email.trim()) && !l.blocked)
            .find(|l| {
                l.password
                    .as_deref()
                    .is_some_and(|p| password_matches(p, password))
            })
            .and_then(|l| Some((TenantId::parse(l.tenant.as_deref()?)?, l.subject.clone())))
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
    /// reports it to the user flows. Returns the tenant and subject.
    pub async fn set_password(
        &self,
        state: &AppState,
        ticket: &str,
        password: &str,
    ) -> Result<(TenantId, String), String> {
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(format!(
                "Choose a password of at least {MIN_PASSWORD_CHARS} characters."
            ));
        }
        let t = self
            .take_ticket(ticket)
            .ok_or_else(|| "This link is invalid or has expired.".to_owned())?;
        let request_id = ulid::Ulid::new().to_string();
        let ctx = state.ctx(&request_id);
        // A login this provider never created (a seeded user resetting
        // their password) is made from the user record, as Auth0 holds
        // every user's login.
        let user = ctx
            .users
            .find_user_by_subject(&t.tenant, &t.subject)
            .await
            .map_err(|e| format!("could not read the user: {e}"))?;
        {
            let mut logins = self.lock_logins();
            let login = match (logins.get_mut(&t.subject), &user) {
                (Some(l), _) => l,
                (None, Some(u)) => logins
                    .entry(t.subject.clone())
                    .or_insert_with(|| Login::from_user(&t.subject, u)),
                (None, None) => return Err("This account no longer exists.".to_owned()),
            };
            login.password = Some(hash_password(password));
            self.save(&logins);
        }
        let outcome = peak_domain::users::identity_events::password_was_set(
            &EventCtx::from(&ctx),
            &t.tenant,
            &t.subject,
            ctx.now,
        )
        .await
        .map_err(|e| format!("could not activate the user: {e}"))?;
        if outcome == IdpEventOutcome::Refused {
            return Err("This invitation was revoked or has expired.".to_owned());
        }
        Ok((t.tenant, t.subject))
    }
}

#[async_trait::async_trait]
impl IdentityProvider for LocalIdentityProvider {
    async fn find_login(&self, user: &User) -> Result<Option<IdpAccount>, IdpError> {
        let subject = format!("dev|{}", user.id);
        Ok(self
            .lock_logins()
            .get(&subject)
            .filter(|l| l.email.eq_ignore_ascii_case(user.email.as_str()))
            .map(Login::account))
    }

    async fn create_login(&self, user: &User) -> Result<Option<String>, IdpError> {
        let subject = format!("dev|{}", user.id);
        let mut logins = self.lock_logins();
        if !logins.contains_key(&subject) {
            logins.insert(subject.clone(), Login::from_user(&subject, user));
            self.save(&logins);
        }
        Ok(Some(subject))
    }

    async fn relink_login(&self, subject: &str, user: &User) -> Result<bool, IdpError> {
        let mut logins = self.lock_logins();
        let Some(l) = logins.get_mut(subject) else {
            return Ok(false);
        };
        l.user_id = Some(user.id.as_str().to_owned());
        self.save(&logins);
        Ok(true)
    }

    /// No sessions or refresh tokens here: tokens come from the local
    /// sign-in or `peak-local token`, and this API refuses a suspended user
    /// whatever the token.
    async fn revoke_sessions(&self, _: &str) -> Result<StepOutcome, IdpError> {
        Ok(StepOutcome::Done)
    }

    async fn revoke_refresh_tokens(&self, _: &str) -> Result<StepOutcome, IdpError> {
        Ok(StepOutcome::Done)
    }

    async fn clear_login_block(&self, _: &str) -> Result<StepOutcome, IdpError> {
        Ok(StepOutcome::Done)
    }

    async fn update_user(&self, subject: &str, state: &IdpUserState) -> Result<bool, IdpError> {
        let mut logins = self.lock_logins();
        let Some(l) = logins.get_mut(subject) else {
            return Ok(false);
        };
        l.email = state.email.clone();
        l.given_name = Some(state.given_name.clone());
        l.family_name = Some(state.family_name.clone());
        l.blocked = state.blocked;
        self.save(&logins);
        Ok(true)
    }

    async fn delete_user(&self, subject: &str) -> Result<(), IdpError> {
        let mut logins = self.lock_logins();
        if logins.remove(subject).is_some() {
            self.save(&logins);
        }
        Ok(())
    }

    async fn get_user(&self, subject: &str) -> Result<Option<IdpAccount>, IdpError> {
        Ok(self.lock_logins().get(subject).map(Login::account))
    }

    async fn password_setup_link(
        &self,
        user: &User,
        subject: &str,
        _link: &SetupLink<'_>,
    ) -> Result<String, IdpError> {
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

pub type IdpState = (Arc<AppState>, Arc<LocalIdentityProvider>);

#[derive(Template)]
#[template(path = "dev_idp_set_password.html")]
struct SetPasswordPage<'a> {
    f: &'a peak_pages::Frame,
    first_name: &'a str,
    ticket: &'a str,
    min_chars: usize,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "dev_message.html")]
struct MessagePage<'a> {
    f: &'a peak_pages::Frame,
    message: &'a str,
}

/// Which identity provider page this is, beside the brand.
const NOTE: &str = "Development identity provider: stands in for Auth0's password page";

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

fn set_password_form(
    state: &AppState,
    t: &Ticket,
    ticket: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let f = frame(state, Some(&t.tenant), "Choose your password");
    respond(peak_pages::Page::new(
        status,
        &f,
        &SetPasswordPage {
            f: &f,
            first_name: &t.first_name,
            ticket,
            min_chars: MIN_PASSWORD_CHARS,
            error,
        },
    ))
}

fn link_not_valid(state: &AppState) -> Response {
    let f = frame(state, None, "This link is not valid");
    respond(peak_pages::Page::new(
        StatusCode::BAD_REQUEST,
        &f,
        &MessagePage {
            f: &f,
            message: "This password link is invalid, was already used, or has expired. \
                      Ask for a new one: accept your invitation again, or use \
                      \"forgot password\" on the sign-in page.",
        },
    ))
}

pub async fn set_password_page(
    State((state, idp)): State<IdpState>,
    Query(q): Query<TicketQuery>,
) -> Response {
    match idp.peek_ticket(&q.ticket) {
        Some(t) => set_password_form(&state, &t, &q.ticket, None, StatusCode::OK),
        None => link_not_valid(&state),
    }
}

/// Sets the password, then sends the person on to their tenant's portal
/// (`303 See Other`), as an Auth0 ticket's result URL does.
pub async fn set_password(
    State((state, idp)): State<IdpState>,
    Form(form): Form<SetPasswordForm>,
) -> Response {
    let Some(ticket) = idp.peek_ticket(&form.ticket) else {
        return link_not_valid(&state);
    };
    match idp.set_password(&state, &form.ticket, &form.password).await {
        Ok((tenant, _)) => {
            let portal = &state.brands.for_tenant(&tenant).portal_url;
            respond(peak_pages::see_other(
                state.brands.for_tenant(&tenant),
                portal,
                "Continue to sign in",
            ))
        }
        Err(why) => set_password_form(
            &state,
            &ticket,
            &form.ticket,
            Some(&why),
            StatusCode::BAD_REQUEST,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(subject: &str, email: &str, password: Option<&str>) -> Login {
        Login {
            subject: subject.into(),
            email: email.into(),
            given_name: Some("Ada".into()),
            family_name: Some("Lovelace".into()),
            blocked: false,
            tenant: Some("demo".into()),
            user_id: None,
            password: password.map(hash_password),
        }
    }

    #[test]
    fn passwords_are_checked_against_salted_hashes_kept_across_restarts() {
        let dir = std::env::temp_dir().join(format!("dev-idp-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).unwrap();
        let idp = LocalIdentityProvider::with_data_dir("http://x", &dir).unwrap();
        {
            let mut logins = idp.lock_logins();
            logins.insert(
                "dev|a".into(),
                login("dev|a", "Ada@Example.com", Some("correct horse")),
            );
            logins.insert("dev|b".into(), login("dev|b", "bob@example.com", None));
            idp.save(&logins);
        }
        let file = std::fs::read_to_string(dir.join(LOGINS_FILE)).unwrap();
        assert!(
            !file.contains("correct horse"),
            "the password itself is never kept"
        );

        let again = LocalIdentityProvider::with_data_dir("http://x", &dir).unwrap();
        let demo = TenantId::parse("demo").unwrap();
        assert_eq!(
            again.check_password("ada@example.com", "correct horse"),
            Some((demo, "dev|a".to_owned()))
        );
        assert_eq!(
            again.check_password("ada@example.com", "correct horsE"),
            None
        );
        assert_eq!(
            again.check_password("bob@example.com", ""),
            None,
            "no password set"
        );
        again.lock_logins().get_mut("dev|a").unwrap().blocked = true;
        assert_eq!(
            again.check_password("ada@example.com", "correct horse"),
            None,
            "a blocked login cannot sign in"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
