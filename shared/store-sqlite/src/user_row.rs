//! A user as a row of `users`: the columns and their mapping.

use crate::sql::{
    format_time, from_json, from_unix_millis, parse_time, to_i64, to_json, to_u64, unix_millis,
};
use peak_domain::ids::{ProfileId, TenantId};
use peak_domain::model::user::{
    AccountNumber, Email, Invitation, InvitationState, PendingEmail, PersonName, User, UserId,
    UserStatus,
};
use peak_domain::ports::StoreError;
use peak_domain::role::Role;
use rusqlite::ToSql;
use time::OffsetDateTime;

/// The columns of `users`, in the order [`UserRow::read`] reads them and
/// [`UserRow::named_params`] binds them. The last sign-in is not among
/// them: it lives in `user_logins`, which no user write touches.
pub(crate) const USER_COLUMNS: [&str; 25] = [
    "tenant_id",
    "id",
    "email",
    "email_norm",
    "pending_email",
    "pending_email_hash",
    "pending_email_expires_at",
    "first_name",
    "last_name",
    "name_key",
    "account_number",
    "customer_accounts",
    "role",
    "profile_id",
    "extension_groups",
    "status",
    "idp_subject",
    "invitation_hash",
    "invitation_state",
    "invitation_expires_at",
    "invitation_sent_at",
    "invitation_accepted_at",
    "version",
    "created_at",
    "updated_at",
];

/// The select list of [`USER_COLUMNS`], each prefixed with `alias`, and
/// the user's last sign-in from `user_logins`.
pub(crate) fn user_columns(alias: &str) -> String {
    let outer = if alias.is_empty() { "users." } else { alias };
    let mut columns: Vec<String> = USER_COLUMNS.iter().map(|c| format!("{alias}{c}")).collect();
    columns.push(format!(
        "(SELECT l.last_login_ms FROM user_logins l
          WHERE l.tenant_id = {outer}tenant_id AND l.user_id = {outer}id)"
    ));
    columns.join(", ")
}

pub(crate) fn insert_user_sql() -> String {
    let names = USER_COLUMNS.join(", ");
    let values = USER_COLUMNS
        .iter()
        .map(|c| format!(":{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("INSERT INTO users ({names}) VALUES ({values})")
}

/// Rewrites every column but the key, if the version is still `:expected`.
pub(crate) fn update_user_sql() -> String {
    let set = USER_COLUMNS
        .iter()
        .filter(|c| !matches!(**c, "tenant_id" | "id"))
        .map(|c| format!("{c} = :{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "UPDATE users SET {set}
         WHERE tenant_id = :tenant_id AND id = :id AND version = :expected"
    )
}

pub(crate) fn invitation_state_str(s: InvitationState) -> &'static str {
    match s {
        InvitationState::Pending => "pending",
        InvitationState::Accepted => "accepted",
        InvitationState::Revoked => "revoked",
    }
}

pub(crate) fn parse_invitation_state(raw: &str) -> Option<InvitationState> {
    [
        InvitationState::Pending,
        InvitationState::Accepted,
        InvitationState::Revoked,
    ]
    .into_iter()
    .find(|s| invitation_state_str(*s) == raw)
}

pub(crate) fn opt_time(
    t: Option<OffsetDateTime>,
    what: &str,
) -> Result<Option<String>, StoreError> {
    t.map(|t| format_time(t, what)).transpose()
}

pub(crate) fn parse_opt_time(
    text: Option<&str>,
    what: &str,
) -> Result<Option<OffsetDateTime>, StoreError> {
    text.map(|t| parse_time(t, what)).transpose()
}

/// A user's columns as bound to a statement.
pub(crate) struct UserRow {
    pub(crate) tenant_id: String,
    pub(crate) id: String,
    pub(crate) email: String,
    pub(crate) email_norm: String,
    pub(crate) pending_email: Option<String>,
    pub(crate) pending_email_hash: Option<String>,
    pub(crate) pending_email_expires_at: Option<String>,
    pub(crate) first_name: String,
    pub(crate) last_name: String,
    pub(crate) name_key: String,
    pub(crate) account_number: Option<String>,
    /// JSON array.
    pub(crate) customer_accounts: String,
    pub(crate) role: String,
    pub(crate) profile_id: String,
    /// JSON array.
    pub(crate) extension_groups: String,
    pub(crate) status: String,
    pub(crate) idp_subject: Option<String>,
    pub(crate) invitation_hash: Option<String>,
    pub(crate) invitation_state: Option<String>,
    pub(crate) invitation_expires_at: Option<String>,
    pub(crate) invitation_sent_at: Option<String>,
    pub(crate) invitation_accepted_at: Option<String>,
    pub(crate) version: i64,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
    pub(crate) last_login_ms: Option<i64>,
}

impl UserRow {
    pub(crate) fn from_user(u: &User) -> Result<Self, StoreError> {
        let pending = u.pending_email.as_ref();
        let invitation = u.invitation.as_ref();
        Ok(Self {
            tenant_id: u.tenant_id.as_str().to_owned(),
            id: u.id.as_str().to_owned(),
            email: u.email.as_str().to_owned(),
            email_norm: u.email.normalized(),
            pending_email: pending.map(|p| p.email.as_str().to_owned()),
            pending_email_hash: pending.map(|p| p.token_hash.clone()),
            pending_email_expires_at: opt_time(
                pending.map(|p| p.expires_at),
                "pending email expiry",
            )?,
            first_name: u.first_name.as_str().to_owned(),
            last_name: u.last_name.as_str().to_owned(),
            name_key: u.name_key(),
            account_number: u.account_number.as_ref().map(|a| a.as_str().to_owned()),
            customer_accounts: to_json(&u.customer_accounts, "customer accounts")?,
            role: u.role.as_str().to_owned(),
            profile_id: u.profile_id.as_str().to_owned(),
            extension_groups: to_json(&u.extension_groups, "extension groups")?,
            status: u.status.as_str().to_owned(),
            idp_subject: u.idp_subject.clone(),
            invitation_hash: invitation.map(|i| i.token_hash.clone()),
            invitation_state: invitation.map(|i| invitation_state_str(i.state).to_owned()),
            invitation_expires_at: opt_time(invitation.map(|i| i.expires_at), "invitation expiry")?,
            invitation_sent_at: opt_time(invitation.map(|i| i.sent_at), "invitation sent_at")?,
            invitation_accepted_at: opt_time(
                invitation.and_then(|i| i.accepted_at),
                "invitation accepted_at",
            )?,
            version: to_i64(u.version, "version")?,
            created_at: format_time(u.created_at, "created_at")?,
            updated_at: format_time(u.updated_at, "updated_at")?,
            last_login_ms: u.last_login_at.map(unix_millis),
        })
    }

    /// Every column as a named parameter (`:column`), in [`USER_COLUMNS`]
    /// order.
    pub(crate) fn named_params(&self) -> [(&'static str, &dyn ToSql); 25] {
        [
            (":tenant_id", &self.tenant_id),
            (":id", &self.id),
            (":email", &self.email),
            (":email_norm", &self.email_norm),
            (":pending_email", &self.pending_email),
            (":pending_email_hash", &self.pending_email_hash),
            (":pending_email_expires_at", &self.pending_email_expires_at),
            (":first_name", &self.first_name),
            (":last_name", &self.last_name),
            (":name_key", &self.name_key),
            (":account_number", &self.account_number),
            (":customer_accounts", &self.customer_accounts),
            (":role", &self.role),
            (":profile_id", &self.profile_id),
            (":extension_groups", &self.extension_groups),
            (":status", &self.status),
            (":idp_subject", &self.idp_subject),
            (":invitation_hash", &self.invitation_hash),
            (":invitation_state", &self.invitation_state),
            (":invitation_expires_at", &self.invitation_expires_at),
            (":invitation_sent_at", &self.invitation_sent_at),
            (":invitation_accepted_at", &self.invitation_accepted_at),
            (":version", &self.version),
            (":created_at", &self.created_at),
            (":updated_at", &self.updated_at),
        ]
    }

    /// Reads the columns of [`user_columns`], in that order.
    pub(crate) fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            tenant_id: row.get(0)?,
            id: row.get(1)?,
            email: row.get(2)?,
            email_norm: row.get(3)?,
            pending_email: row.get(4)?,
            pending_email_hash: row.get(5)?,
            pending_email_expires_at: row.get(6)?,
            first_name: row.get(7)?,
            last_name: row.get(8)?,
            name_key: row.get(9)?,
            account_number: row.get(10)?,
            customer_accounts: row.get(11)?,
            role: row.get(12)?,
            profile_id: row.get(13)?,
            extension_groups: row.get(14)?,
            status: row.get(15)?,
            idp_subject: row.get(16)?,
            invitation_hash: row.get(17)?,
            invitation_state: row.get(18)?,
            invitation_expires_at: row.get(19)?,
            invitation_sent_at: row.get(20)?,
            invitation_accepted_at: row.get(21)?,
            version: row.get(22)?,
            created_at: row.get(23)?,
            updated_at: row.get(24)?,
            last_login_ms: row.get(25)?,
        })
    }

    pub(crate) fn into_user(self) -> Result<User, StoreError> {
        // Error texts name the user and the column, never the (personal)
        // value.
        let id_text = self.id.clone();
        let bad = move |what: &str| {
            StoreError::Backend(format!("stored {what} of user {id_text:?} is invalid"))
        };
        let tenant_id = TenantId::parse(&self.tenant_id).ok_or_else(|| bad("tenant id"))?;
        let id = UserId::parse(&self.id).ok_or_else(|| bad("id"))?;
        let email = Email::from_stored(&self.email).map_err(|_| bad("email"))?;
        let pending_email = match (
            self.pending_email,
            self.pending_email_hash,
            self.pending_email_expires_at,
        ) {
            (None, None, None) => None,
            (Some(email), Some(token_hash), Some(expires_at)) => Some(PendingEmail {
                email: Email::from_stored(&email).map_err(|_| bad("pending email"))?,
                token_hash,
                expires_at: parse_time(&expires_at, "pending email expiry")?,
            }),
            _ => return Err(bad("pending email")),
        };
        let invitation = match (
            self.invitation_hash,
            self.invitation_state,
            self.invitation_expires_at,
            self.invitation_sent_at,
        ) {
            (None, None, None, None) => None,
            (Some(token_hash), Some(state), Some(expires_at), Some(sent_at)) => Some(Invitation {
                token_hash,
                state: parse_invitation_state(&state).ok_or_else(|| bad("invitation state"))?,
                expires_at: parse_time(&expires_at, "invitation expiry")?,
                sent_at: parse_time(&sent_at, "invitation sent_at")?,
                accepted_at: parse_opt_time(
                    self.invitation_accepted_at.as_deref(),
                    "invitation accepted_at",
                )?,
            }),
            _ => return Err(bad("invitation")),
        };
        Ok(User {
            tenant_id,
            id,
            email,
            pending_email,
            first_name: PersonName::parse("first_name", &self.first_name)
                .map_err(|_| bad("first name"))?,
            last_name: PersonName::parse("last_name", &self.last_name)
                .map_err(|_| bad("last name"))?,
            account_number: self
                .account_number
                .map(|a| AccountNumber::parse("account_number", &a))
                .transpose()
                .map_err(|_| bad("account number"))?,
            customer_accounts: from_json(&self.customer_accounts, "customer accounts")?,
            role: Role::parse(&self.role).ok_or_else(|| bad("role"))?,
            profile_id: ProfileId::parse(&self.profile_id).ok_or_else(|| bad("profile id"))?,
            extension_groups: from_json(&self.extension_groups, "extension groups")?,
            status: UserStatus::parse(&self.status).ok_or_else(|| bad("status"))?,
            idp_subject: self.idp_subject,
            invitation,
            version: to_u64(self.version, "version")?,
            created_at: parse_time(&self.created_at, "created_at")?,
            updated_at: parse_time(&self.updated_at, "updated_at")?,
            last_login_at: self.last_login_ms.map(from_unix_millis).transpose()?,
        })
    }
}
