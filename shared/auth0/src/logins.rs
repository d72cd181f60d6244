//! [`IdentityProvider`] over the Management API: logins, password-change
//! tickets, state pushes, session and refresh-token revocation, and the
//! brute-force block.
//!
//! What we record on a login's `app_metadata` (none of Auth0's reserved
//! names, see [`RESERVED_APP_METADATA_KEYS`]):
//! - `tenant`: our tenant (the Post Login Action puts it into the token);
//! - `peak_user_id`: our user id (logins made before this name existed
//!   carry it as `user_id`, which Auth0 reserves: read, never written);
//! - `peak_blocked`: the blocked state of our own last push, so an Event
//!   Streams `user.updated` of a block we made is not taken for a dashboard
//!   block.

use crate::call::Call;
use crate::client::{Auth0Client, encode_segment, parse, random_password, rejected, user_path};
use async_trait::async_trait;
use http::{Method, StatusCode};
use peak_domain::identity::{
    IdentityProvider, IdpAccount, IdpError, IdpUserState, SetupLink, StepOutcome,
};
use peak_domain::model::user::User;
use serde::Deserialize;
use serde_json::{Value, json};

/// `app_metadata` names Auth0 reserves ("Metadata Field Names and Data
/// Types": app_metadata must not contain them; the Management API's own
/// definition listed them as the reserved properties of `app_metadata`).
/// Our client never writes one; the fake refuses them as Auth0 does.
pub const RESERVED_APP_METADATA_KEYS: &[&str] = &[
    "__tenant",
    "_id",
    "blocked",
    "clientID",
    "created_at",
    "email",
    "email_verified",
    "globalClientID",
    "global_client_id",
    "identities",
    "lastIP",
    "lastLogin",
    "loginsCount",
    "metadata",
    "multifactor",
    "multifactor_last_modified",
    "updated_at",
    "user_id",
];

/// Our metadata keys on a login.
pub(crate) const META_TENANT: &str = "tenant";
pub(crate) const META_USER_ID: &str = "peak_user_id";
/// Where logins created before `peak_user_id` keep our user id (reserved by
/// Auth0: only ever read).
pub(crate) const META_LEGACY_USER_ID: &str = "user_id";
pub(crate) const META_PUSHED_BLOCKED: &str = "peak_blocked";

/// A user as the Management API shows it (the fields we read).
#[derive(Deserialize)]
pub(crate) struct Auth0User {
    pub user_id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: bool,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub family_name: Option<String>,
    #[serde(default)]
    pub blocked: bool,
    #[serde(default)]
    pub app_metadata: Value,
    #[serde(default)]
    pub identities: Vec<Identity>,
}

#[derive(Deserialize)]
pub(crate) struct Identity {
    #[serde(default)]
    pub connection: String,
}

impl Auth0User {
    fn meta(&self, key: &str) -> Option<&str> {
        self.app_metadata.get(key).and_then(Value::as_str)
    }

    pub(crate) fn into_account(self) -> IdpAccount {
        IdpAccount {
            tenant: self.meta(META_TENANT).map(str::to_owned),
            user_id: self
                .meta(META_USER_ID)
                .or_else(|| self.meta(META_LEGACY_USER_ID))
                .map(str::to_owned),
            pushed_blocked: self
                .app_metadata
                .get(META_PUSHED_BLOCKED)
                .and_then(Value::as_bool),
            subject: self.user_id,
            email: self.email.unwrap_or_default(),
            email_verified: self.email_verified,
            given_name: self.given_name,
            family_name: self.family_name,
            blocked: self.blocked,
        }
    }
}

/// A password-change ticket as created (the field we read).
#[derive(Deserialize)]
pub(crate) struct Ticket {
    pub ticket: String,
}

/// A step Auth0 offers only on some plans (or with a scope we may not have
/// been granted): 403 means "not here", not "retry".
fn plan_step(op: &str, answer: &crate::client::Answer) -> Result<StepOutcome, IdpError> {
    match answer.status {
        s if s.is_success() => Ok(StepOutcome::Done),
        // The login is gone: nothing of it is left to revoke.
        StatusCode::NOT_FOUND => Ok(StepOutcome::Done),
        StatusCode::FORBIDDEN => match rejected(op, answer) {
            IdpError::Rejected(why) => Ok(StepOutcome::Unsupported(why)),
            other => Err(other),
        },
        _ => Err(rejected(op, answer)),
    }
}

#[async_trait]
impl IdentityProvider for Auth0Client {
    async fn find_login(&self, user: &User) -> Result<Option<IdpAccount>, IdpError> {
        let call = Call::new(
            "find_login",
            Method::GET,
            "/api/v2/users-by-email",
            "/api/v2/users-by-email".into(),
        )
        // Auth0 stores addresses lowercased and matches this one exactly.
        .query(vec![("email", user.email.normalized())]);
        let answer = self.api(call).await?;
        if answer.status != StatusCode::OK {
            return Err(rejected("find_login", &answer));
        }
        let found: Vec<Auth0User> = parse("find_login", &answer)?;
        let connection = &self.config().connection;
        let mut ours = found
            .into_iter()
            .filter(|u| u.identities.iter().any(|i| &i.connection == connection))
            .map(Auth0User::into_account);
        let Some(login) = ours.next() else {
            return Ok(None);
        };
        match login.tenant.as_deref() {
            Some(t) if t == user.tenant_id.as_str() => Ok(Some(login)),
            Some(_) => Err(IdpError::Rejected(
                "Auth0 find_login: this address already has a login for another tenant".into(),
            )),
            None => Err(IdpError::Rejected(
                "Auth0 find_login: this address already has a login that peak-users did not create"
                    .into(),
            )),
        }
    }

    async fn create_login(&self, user: &User) -> Result<Option<String>, IdpError> {
        let given = user.first_name.as_str();
        let family = user.last_name.as_str();
        let call = Call::new(
            "create_login",
            Method::POST,
            "/api/v2/users",
            "/api/v2/users".into(),
        )
        .json(json!({
            "connection": self.config().connection,
            "email": user.email.as_str(),
            // The person proved the address by opening our invitation link.
            "email_verified": true,
            "verify_email": false,
            "given_name": given,
            "family_name": family,
            "name": format!("{given} {family}"),
            "password": random_password()?,
            "app_metadata": {
                META_TENANT: user.tenant_id.as_str(),
                META_USER_ID: user.id.as_str(),
                META_PUSHED_BLOCKED: false,
            },
        }));
        let answer = self.api(call).await?;
        match answer.status {
            StatusCode::CREATED | StatusCode::OK => {
                let created: Auth0User = parse("create_login", &answer)?;
                tracing::info!(op = "create_login", "created an Auth0 login");
                Ok(Some(created.user_id))
            }
            // Created concurrently (another attempt of the same work).
            StatusCode::CONFLICT => Ok(None),
            _ => Err(rejected("create_login", &answer)),
        }
    }

    async fn relink_login(&self, subject: &str, user: &User) -> Result<bool, IdpError> {
        let call = Call::new(
            "relink_login",
            Method::PATCH,
            "/api/v2/users/{id}",
            user_path(subject),
        )
        .json(json!({ "app_metadata": { META_USER_ID: user.id.as_str() } }));
        let answer = self.api(call).await?;
        match answer.status {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(rejected("relink_login", &answer)),
        }
    }

    /// A password-change ticket that returns the person to their portal's
    /// sign-in (`result_url`: the tenant's portal URL and
    /// [`Auth0Config::ticket_return_path`](crate::Auth0Config)). Auth0's
    /// `client_id` would send them to one application's default login route
    /// instead — one route for every tenant — and the two exclude each other.
    async fn password_setup_link(
        &self,
        _user: &User,
        subject: &str,
        link: &SetupLink<'_>,
    ) -> Result<String, IdpError> {
        let config = self.config();
        // Never longer than what asked for it (an invitation's remaining
        // lifetime), never 0 (which Auth0 reads as its 5-day default).
        let ttl = link
            .valid_for
            .and_then(|d| u64::try_from(d.whole_seconds()).ok())
            .map_or(config.ticket_ttl_secs, |left| {
                left.min(config.ticket_ttl_secs)
            })
            .max(1);
        let result_url = format!(
            "{}{}",
            link.portal_url.trim_end_matches('/'),
            config.ticket_return_path
        );
        let call = Call::new(
            "password_setup_link",
            Method::POST,
            "/api/v2/tickets/password-change",
            "/api/v2/tickets/password-change".into(),
        )
        .json(json!({
            "user_id": subject,
            "result_url": result_url,
            "ttl_sec": ttl,
            "mark_email_as_verified": true,
        }));
        let answer = self.api(call).await?;
        if !answer.status.is_success() {
            return Err(rejected("password_setup_link", &answer));
        }
        Ok(parse::<Ticket>("password_setup_link", &answer)?.ticket)
    }

    async fn update_user(&self, subject: &str, state: &IdpUserState) -> Result<bool, IdpError> {
        let call = Call::new(
            "update_user",
            Method::PATCH,
            "/api/v2/users/{id}",
            user_path(subject),
        )
        .json(json!({
            "connection": self.config().connection,
            "email": state.email,
            // Our own flow verified the new address before it reaches here.
            "email_verified": true,
            "verify_email": false,
            "given_name": state.given_name,
            "family_name": state.family_name,
            "name": format!("{} {}", state.given_name, state.family_name),
            "blocked": state.blocked,
            // Merged into app_metadata: marks this block (or unblock) as ours.
            "app_metadata": { META_PUSHED_BLOCKED: state.blocked },
        }));
        let answer = self.api(call).await?;
        match answer.status {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(rejected("update_user", &answer)),
        }
    }

    async fn delete_user(&self, subject: &str) -> Result<(), IdpError> {
        let call = Call::new(
            "delete_user",
            Method::DELETE,
            "/api/v2/users/{id}",
            user_path(subject),
        );
        let answer = self.api(call).await?;
        if answer.status.is_success() || answer.status == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(rejected("delete_user", &answer))
        }
    }

    async fn get_user(&self, subject: &str) -> Result<Option<IdpAccount>, IdpError> {
        let call = Call::new(
            "get_user",
            Method::GET,
            "/api/v2/users/{id}",
            user_path(subject),
        );
        let answer = self.api(call).await?;
        match answer.status {
            StatusCode::OK => Ok(Some(
                parse::<Auth0User>("get_user", &answer)?.into_account(),
            )),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(rejected("get_user", &answer)),
        }
    }

    /// `DELETE /api/v2/users/{id}/sessions` (scope `delete:sessions`;
    /// Enterprise plans).
    async fn revoke_sessions(&self, subject: &str) -> Result<StepOutcome, IdpError> {
        let call = Call::new(
            "revoke_sessions",
            Method::DELETE,
            "/api/v2/users/{id}/sessions",
            format!("{}/sessions", user_path(subject)),
        );
        let answer = self.api(call).await?;
        plan_step("revoke_sessions", &answer)
    }

    /// `DELETE /api/v2/users/{id}/refresh-tokens` (scope
    /// `delete:refresh_tokens`; Enterprise plans).
    async fn revoke_refresh_tokens(&self, subject: &str) -> Result<StepOutcome, IdpError> {
        let call = Call::new(
            "revoke_refresh_tokens",
            Method::DELETE,
            "/api/v2/users/{id}/refresh-tokens",
            format!("{}/refresh-tokens", user_path(subject)),
        );
        let answer = self.api(call).await?;
        plan_step("revoke_refresh_tokens", &answer)
    }

    /// `DELETE /api/v2/user-blocks/{id}` (scope `update:users`; every plan).
    async fn clear_login_block(&self, subject: &str) -> Result<StepOutcome, IdpError> {
        let call = Call::new(
            "clear_login_block",
            Method::DELETE,
            "/api/v2/user-blocks/{id}",
            format!("/api/v2/user-blocks/{}", encode_segment(subject)),
        );
        let answer = self.api(call).await?;
        plan_step("clear_login_block", &answer)
    }
}
