//! [`UserStore`] for [`SqliteStore`]: users with their lookups (email,
//! identity-provider subject, invitation hash), account memberships, the
//! profile holder counts, the audit trail, the email outbox, idempotency keys
//! and rate limits.
//!
//! A user is one row of `users`; its customer accounts are also rows of
//! `user_accounts` (the account filter). Every user write is one `BEGIN
//! IMMEDIATE` transaction that checks, then writes the user, its
//! memberships, the holder counts, its audit events and outbox emails: all of
//! it or nothing.
//!
//! Lists use keyset pagination over an index that serves both the filter
//! and the order, so a page costs the same wherever it starts; see
//! [`plan_user_list`].

use super::{SqliteStore, db_error, format_time, is_unique_violation, parse_time, to_i64, to_u64};
use async_trait::async_trait;
use peak_domain::audit::AuditEvent;
use peak_domain::cursor;
use peak_domain::idp_events::{IdpDelivery, Recorded};
use peak_domain::idp_work::{IdpWork, IdpWorkItem};
use peak_domain::ids::{ProfileId, TenantId};
use peak_domain::outbox::{FailedEmail, OutboxClaim, OutboxEmail, failure_reason};
use peak_domain::ports::{
    IdempotencyClaim, Page, PageRequest, SavedResponse, StoreError, UserStore, UserWrite,
};
use peak_domain::role::Role;
use peak_domain::user::{
    AccountNumber, Email, Invitation, InvitationState, PendingEmail, PersonName, User, UserId,
    UserQuery, UserStatus,
};
use rusqlite::types::Value;
use rusqlite::{
    Connection, OptionalExtension, ToSql, Transaction, TransactionBehavior, params,
    params_from_iter,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use time::OffsetDateTime;

/// Cursor list names. The two user orders get different names, so a cursor
/// of one order is refused by the other.
const USERS_LIST: &str = "users";
const USERS_BY_EMAIL_LIST: &str = "users:email";
/// The tenant's audit trail; one user's is `audit:<user id>`.
const AUDIT_LIST: &str = "audit";

/// Idempotency key states.
const CLAIMED: &str = "claimed";
const COMPLETED: &str = "completed";

/// The columns of `users`, in the order [`UserRow::read`] reads them and
/// [`UserRow::named_params`] binds them. The last sign-in is not among
/// them: it lives in `user_logins`, which no user write touches.
const USER_COLUMNS: [&str; 25] = [
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
fn user_columns(alias: &str) -> String {
    let outer = if alias.is_empty() { "users." } else { alias };
    let mut columns: Vec<String> = USER_COLUMNS.iter().map(|c| format!("{alias}{c}")).collect();
    columns.push(format!(
        "(SELECT l.last_login_ms FROM user_logins l
          WHERE l.tenant_id = {outer}tenant_id AND l.user_id = {outer}id)"
    ));
    columns.join(", ")
}

fn insert_user_sql() -> String {
    let names = USER_COLUMNS.join(", ");
    let values = USER_COLUMNS
        .iter()
        .map(|c| format!(":{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("INSERT INTO users ({names}) VALUES ({values})")
}

/// Rewrites every column but the key, if the version is still `:expected`.
fn update_user_sql() -> String {
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

fn invitation_state_str(s: InvitationState) -> &'static str {
    match s {
        InvitationState::Pending => "pending",
        InvitationState::Accepted => "accepted",
        InvitationState::Revoked => "revoked",
    }
}

fn parse_invitation_state(raw: &str) -> Option<InvitationState> {
    [
        InvitationState::Pending,
        InvitationState::Accepted,
        InvitationState::Revoked,
    ]
    .into_iter()
    .find(|s| invitation_state_str(*s) == raw)
}

fn to_json<T: Serialize + ?Sized>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Backend(format!("cannot encode {what}: {e}")))
}

fn from_json<T: for<'de> Deserialize<'de>>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Backend(format!("stored {what} is not valid: {e}")))
}

fn opt_time(t: Option<OffsetDateTime>, what: &str) -> Result<Option<String>, StoreError> {
    t.map(|t| format_time(t, what)).transpose()
}

fn parse_opt_time(text: Option<&str>, what: &str) -> Result<Option<OffsetDateTime>, StoreError> {
    text.map(|t| parse_time(t, what)).transpose()
}

/// A user's columns as bound to a statement.
struct UserRow {
    tenant_id: String,
    id: String,
    email: String,
    email_norm: String,
    pending_email: Option<String>,
    pending_email_hash: Option<String>,
    pending_email_expires_at: Option<String>,
    first_name: String,
    last_name: String,
    name_key: String,
    account_number: Option<String>,
    /// JSON array.
    customer_accounts: String,
    role: String,
    profile_id: String,
    /// JSON array.
    extension_groups: String,
    status: String,
    idp_subject: Option<String>,
    invitation_hash: Option<String>,
    invitation_state: Option<String>,
    invitation_expires_at: Option<String>,
    invitation_sent_at: Option<String>,
    invitation_accepted_at: Option<String>,
    version: i64,
    created_at: String,
    updated_at: String,
    last_login_ms: Option<i64>,
}

impl UserRow {
    fn from_user(u: &User) -> Result<Self, StoreError> {
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
    fn named_params(&self) -> [(&'static str, &dyn ToSql); 25] {
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
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
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

    fn into_user(self) -> Result<User, StoreError> {
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

/// One audit event as stored.
struct AuditRow {
    id: String,
    target_user: Option<String>,
    body: String,
}

/// One outbox email as stored.
struct OutboxRow {
    id: String,
    body: String,
}

/// A [`UserWrite`] turned into owned rows, checked for consistency.
struct WritePlan {
    tenant: String,
    user_id: String,
    /// The version `previous` had; `None` creates.
    expected: Option<i64>,
    /// The user after the write and its customer accounts (deduplicated);
    /// `None` deletes.
    next: Option<(UserRow, Vec<String>)>,
    audit: Vec<AuditRow>,
    outbox: Vec<OutboxRow>,
    /// The work the change owes the identity provider.
    idp: Option<peak_domain::idp_work::IdpWork>,
}

impl WritePlan {
    fn new(write: &UserWrite<'_>) -> Result<Self, StoreError> {
        let (tenant, user_id) = match (write.previous, write.next) {
            (Some(p), Some(n)) => {
                if p.tenant_id != n.tenant_id || p.id != n.id {
                    return Err(StoreError::Backend(
                        "a user write cannot change a user's tenant or id".to_owned(),
                    ));
                }
                (&n.tenant_id, &n.id)
            }
            (Some(u), None) | (None, Some(u)) => (&u.tenant_id, &u.id),
            (None, None) => {
                return Err(StoreError::Backend(
                    "a user write needs a previous or a next user".to_owned(),
                ));
            }
        };
        let foreign = |what: &str| {
            StoreError::Backend(format!(
                "a write to a user of tenant {tenant} cannot hold {what} of another tenant"
            ))
        };
        let audit = write
            .audit
            .iter()
            .map(|e| {
                if e.tenant_id != *tenant {
                    return Err(foreign("an audit event"));
                }
                Ok(AuditRow {
                    id: e.id.clone(),
                    target_user: e.target_user.as_ref().map(|u| u.as_str().to_owned()),
                    body: to_json(e, "audit event")?,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let outbox = write
            .outbox
            .iter()
            .map(|m| {
                if m.tenant_id != *tenant {
                    return Err(foreign("an email"));
                }
                Ok(OutboxRow {
                    id: m.id.clone(),
                    body: to_json(m, "outbox email")?,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let next = write
            .next
            .map(|u| {
                let accounts: BTreeSet<String> = u
                    .customer_accounts
                    .iter()
                    .map(|a| a.as_str().to_owned())
                    .collect();
                Ok::<_, StoreError>((UserRow::from_user(u)?, accounts.into_iter().collect()))
            })
            .transpose()?;
        Ok(Self {
            tenant: tenant.as_str().to_owned(),
            user_id: user_id.as_str().to_owned(),
            expected: write
                .previous
                .map(|p| to_i64(p.version, "version"))
                .transpose()?,
            next,
            audit,
            outbox,
            idp: peak_domain::idp_work::owed_work(write.previous, write.next),
        })
    }
}

/// What a write needs to know of the stored user.
struct StoredUser {
    version: i64,
    profile_id: String,
    accounts: Vec<String>,
}

fn stored_user(tx: &Connection, tenant: &str, id: &str) -> Result<Option<StoredUser>, StoreError> {
    let row: Option<(i64, String, String)> = tx
        .query_row(
            "SELECT version, profile_id, customer_accounts FROM users
             WHERE tenant_id = ?1 AND id = ?2",
            params![tenant, id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()
        .map_err(db_error)?;
    row.map(|(version, profile_id, accounts)| {
        Ok(StoredUser {
            version,
            profile_id,
            accounts: from_json(&accounts, "customer accounts")?,
        })
    })
    .transpose()
}

/// Maps a failed user insert or update. The checks before it make these
/// unreachable in practice; they keep the answer right if one is missed.
fn user_write_error(e: rusqlite::Error) -> StoreError {
    let constraint =
        |code| matches!(&e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == code);
    if is_unique_violation(&e) || constraint(rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY) {
        let message = e.to_string();
        if message.contains("users.email_norm") {
            return StoreError::EmailTaken;
        }
        if message.contains("users.idp_subject") {
            return StoreError::Backend(
                "the identity-provider subject is linked to another user of the tenant".to_owned(),
            );
        }
        if message.contains("users.invitation_hash") {
            return StoreError::Backend("the invitation token hash is already in use".to_owned());
        }
        if message.contains("users.id") {
            return StoreError::AlreadyExists;
        }
    }
    if constraint(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) {
        return StoreError::ProfileMissing;
    }
    db_error(e)
}

/// Applies `plan` inside `tx`; the caller commits.
fn apply_write(tx: &Transaction<'_>, plan: &WritePlan) -> Result<(), StoreError> {
    let (tenant, user_id) = (plan.tenant.as_str(), plan.user_id.as_str());
    let stored = stored_user(tx, tenant, user_id)?;
    match (plan.expected, &stored) {
        (None, Some(_)) => return Err(StoreError::AlreadyExists),
        (Some(_), None) => return Err(StoreError::NotFound),
        (Some(expected), Some(s)) if s.version != expected => {
            return Err(StoreError::VersionMismatch);
        }
        _ => {}
    }

    if let Some((row, _)) = &plan.next {
        let taken = tx
            .query_row(
                "SELECT 1 FROM users WHERE tenant_id = ?1 AND email_norm = ?2 AND id <> ?3",
                params![tenant, row.email_norm, user_id],
                |_| Ok(()),
            )
            .optional()
            .map_err(db_error)?;
        if taken.is_some() {
            return Err(StoreError::EmailTaken);
        }
    }

    // Holder counts: +1 on the profile taken up, -1 on the one let go.
    let old_profile = stored.as_ref().map(|s| s.profile_id.as_str());
    let new_profile = plan.next.as_ref().map(|(row, _)| row.profile_id.as_str());
    if old_profile != new_profile {
        if let Some(profile) = new_profile {
            let changed = tx
                .execute(
                    "UPDATE profiles SET holder_count = holder_count + 1
                     WHERE tenant_id = ?1 AND id = ?2",
                    params![tenant, profile],
                )
                .map_err(db_error)?;
            if changed == 0 {
                return Err(StoreError::ProfileMissing);
            }
        }
        if let Some(profile) = old_profile {
            // Clamped like change_profile_holders; a profile gone meanwhile
            // has nothing to decrement.
            tx.execute(
                "UPDATE profiles SET holder_count = MAX(0, holder_count - 1)
                 WHERE tenant_id = ?1 AND id = ?2",
                params![tenant, profile],
            )
            .map_err(db_error)?;
        }
    }

    // Memberships are rewritten whole: a rename moves them in the name order.
    if let Some(s) = &stored {
        let mut delete = tx
            .prepare_cached(
                "DELETE FROM user_accounts WHERE tenant_id = ?1 AND account = ?2 AND user_id = ?3",
            )
            .map_err(db_error)?;
        for account in &s.accounts {
            delete
                .execute(params![tenant, account, user_id])
                .map_err(db_error)?;
        }
    }

    match &plan.next {
        None => {
            remove_personal_data(tx, tenant, user_id)?;
            tx.execute(
                "DELETE FROM users WHERE tenant_id = ?1 AND id = ?2",
                params![tenant, user_id],
            )
            .map_err(db_error)?;
            tx.execute(
                "DELETE FROM user_logins WHERE tenant_id = ?1 AND user_id = ?2",
                params![tenant, user_id],
            )
            .map_err(db_error)?;
        }
        Some((row, accounts)) => {
            let named = row.named_params();
            match stored {
                Some(s) => {
                    let mut bound: Vec<(&str, &dyn ToSql)> = named.to_vec();
                    bound.push((":expected", &s.version));
                    let changed = tx
                        .execute(&update_user_sql(), bound.as_slice())
                        .map_err(user_write_error)?;
                    if changed != 1 {
                        return Err(StoreError::VersionMismatch);
                    }
                }
                None => {
                    tx.execute(&insert_user_sql(), named.as_slice())
                        .map_err(user_write_error)?;
                }
            }
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO user_accounts (tenant_id, account, name_key, user_id)
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(db_error)?;
            for account in accounts {
                insert
                    .execute(params![tenant, account, row.name_key, user_id])
                    .map_err(db_error)?;
            }
        }
    }

    let mut insert_audit = tx
        .prepare_cached(
            "INSERT INTO audit_events (tenant_id, id, target_user, body) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(db_error)?;
    for event in &plan.audit {
        insert_audit
            .execute(params![tenant, event.id, event.target_user, event.body])
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Backend(format!("audit event {} is already stored", event.id))
                } else {
                    db_error(e)
                }
            })?;
    }
    let mut insert_outbox = tx
        .prepare_cached("INSERT INTO outbox (tenant_id, id, body) VALUES (?1, ?2, ?3)")
        .map_err(db_error)?;
    for mail in &plan.outbox {
        insert_outbox
            .execute(params![tenant, mail.id, mail.body])
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Backend(format!("outbox email {} is already stored", mail.id))
                } else {
                    db_error(e)
                }
            })?;
    }
    if let Some(work) = &plan.idp {
        crate::idp_work::upsert(tx, work)?;
    }
    Ok(())
}

/// Rewrites the user's past audit events without personal values.
fn remove_personal_data(
    tx: &Transaction<'_>,
    tenant: &str,
    user_id: &str,
) -> Result<(), StoreError> {
    let rows = {
        let mut stmt = tx
            .prepare_cached(
                "SELECT seq, body FROM audit_events INDEXED BY audit_events_by_user
                 WHERE tenant_id = ?1 AND target_user = ?2",
            )
            .map_err(db_error)?;
        stmt.query_map(params![tenant, user_id], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(db_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_error)?
    };
    let mut update = tx
        .prepare_cached("UPDATE audit_events SET body = ?2 WHERE seq = ?1")
        .map_err(db_error)?;
    for (seq, body) in rows {
        let event: AuditEvent = from_json(&body, "audit event")?;
        let clean = event.without_personal_data();
        if clean != event {
            update
                .execute(params![seq, to_json(&clean, "audit event")?])
                .map_err(db_error)?;
        }
    }
    Ok(())
}

pub(super) fn get_user_where(
    conn: &Connection,
    condition: &str,
    args: &[&dyn ToSql],
) -> Result<Option<User>, StoreError> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {} FROM users WHERE {condition}",
            user_columns("")
        ))
        .map_err(db_error)?
        .query_row(args, UserRow::read)
        .optional()
        .map_err(db_error)?;
    row.map(UserRow::into_user).transpose()
}

/// The index a user list is driven by: it serves the order and the most
/// selective filter (the others are checked on the rows it yields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Driver {
    /// `users_by_email`: email order, `email_prefix` as a range.
    Email,
    /// `user_accounts_by_name`, joined to `users`.
    Account,
    /// `users_by_profile`.
    Profile,
    /// `users_by_role`.
    Role,
    /// `users_by_status`.
    Status,
    /// `users_by_name`.
    Name,
}

impl Driver {
    fn of(q: &UserQuery) -> Self {
        if q.email_prefix.is_some() {
            Driver::Email
        } else if q.account.is_some() {
            Driver::Account
        } else if q.profile.is_some() {
            Driver::Profile
        } else if q.role.is_some() {
            Driver::Role
        } else if q.status.is_some() {
            Driver::Status
        } else {
            Driver::Name
        }
    }
}

/// The smallest string greater than every string starting with `prefix`,
/// or `None` when there is none (then the range has no upper end). Text
/// compares as UTF-8 bytes, which is code point order.
fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match u32::from(last) + 1 {
            0xD800 => Some('\u{E000}'),
            n => char::from_u32(n),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Bound parameters of a statement built piece by piece.
#[derive(Default)]
struct Args(Vec<Value>);

impl Args {
    /// Adds `value` and returns its placeholder.
    fn push(&mut self, value: impl Into<Value>) -> String {
        self.0.push(value.into());
        format!("?{}", self.0.len())
    }
}

/// Adds "`column` starts with `prefix`" as an index-friendly range; without
/// its lower end unless `lower` (when another condition gives it).
fn push_prefix(
    conditions: &mut Vec<String>,
    args: &mut Args,
    column: &str,
    prefix: &str,
    lower: bool,
) {
    if prefix.is_empty() {
        return;
    }
    if lower {
        conditions.push(format!("{column} >= {}", args.push(prefix.to_owned())));
    }
    if let Some(upper) = prefix_upper_bound(prefix) {
        conditions.push(format!("{column} < {}", args.push(upper)));
    }
}

/// The statement for one page of users: the [`Driver`] index gives the
/// tenant, the driving filter and the order; the keyset `(key, id) > after`
/// resumes after the last item; `fetch` rows at most.
fn plan_user_list(
    tenant: &str,
    q: &UserQuery,
    after: Option<&(String, String)>,
    fetch: i64,
) -> (String, Vec<Value>) {
    let driver = Driver::of(q);
    let mut args = Args::default();
    let mut conditions = Vec::new();
    let tenant = args.push(tenant.to_owned());
    let users_by = |index: &str| format!("users AS u INDEXED BY {index}");
    let (from, key, id) = match driver {
        Driver::Account => {
            conditions.push(format!("a.tenant_id = {tenant}"));
            if let Some(account) = &q.account {
                let account = args.push(account.as_str().to_owned());
                conditions.push(format!("a.account = {account}"));
            }
            conditions.push("u.tenant_id = a.tenant_id AND u.id = a.user_id".to_owned());
            // CROSS JOIN keeps the memberships as the outer loop, in order.
            (
                "user_accounts AS a INDEXED BY user_accounts_by_name CROSS JOIN users AS u"
                    .to_owned(),
                "a.name_key",
                "a.user_id",
            )
        }
        Driver::Email => {
            conditions.push(format!("u.tenant_id = {tenant}"));
            (users_by("users_by_email"), "u.email_norm", "u.id")
        }
        Driver::Profile => {
            conditions.push(format!("u.tenant_id = {tenant}"));
            (users_by("users_by_profile"), "u.name_key", "u.id")
        }
        Driver::Role => {
            conditions.push(format!("u.tenant_id = {tenant}"));
            (users_by("users_by_role"), "u.name_key", "u.id")
        }
        Driver::Status => {
            conditions.push(format!("u.tenant_id = {tenant}"));
            (users_by("users_by_status"), "u.name_key", "u.id")
        }
        Driver::Name => {
            conditions.push(format!("u.tenant_id = {tenant}"));
            (users_by("users_by_name"), "u.name_key", "u.id")
        }
    };
    if let Some(profile) = &q.profile {
        let p = args.push(profile.as_str().to_owned());
        conditions.push(format!("u.profile_id = {p}"));
    }
    if let Some(role) = q.role {
        let r = args.push(role.as_str().to_owned());
        conditions.push(format!("u.role = {r}"));
    }
    if let Some(status) = q.status {
        let s = args.push(status.as_str().to_owned());
        conditions.push(format!("u.status = {s}"));
    }
    if driver != Driver::Account
        && let Some(account) = &q.account
    {
        let a = args.push(account.as_str().to_owned());
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM user_accounts AS m
                     WHERE m.tenant_id = u.tenant_id AND m.account = {a} AND m.user_id = u.id)"
        ));
    }
    // The prefix on the driving index's key, and the other one (the name
    // prefix in email order) as a plain filter.
    let (key_prefix, other_prefix) = if driver == Driver::Email {
        (&q.email_prefix, &q.name_prefix)
    } else {
        (&q.name_prefix, &None)
    };
    if let Some(prefix) = other_prefix {
        push_prefix(
            &mut conditions,
            &mut args,
            "u.name_key",
            &prefix.to_lowercase(),
            true,
        );
    }
    let key_prefix = key_prefix
        .as_deref()
        .map(str::to_lowercase)
        .filter(|p| !p.is_empty());
    // One lower bound on the key, so the index search starts right there:
    // the keyset when it is past the prefix's start, else the prefix (every
    // key in the prefix range is then past the keyset).
    let keyset = after.filter(|(after_key, _)| {
        key_prefix
            .as_deref()
            .is_none_or(|p| after_key.as_str() >= p)
    });
    if let Some(prefix) = &key_prefix {
        push_prefix(&mut conditions, &mut args, key, prefix, keyset.is_none());
    }
    if let Some((after_key, after_id)) = keyset {
        let k = args.push(after_key.clone());
        let i = args.push(after_id.clone());
        conditions.push(format!("({key}, {id}) > ({k}, {i})"));
    }
    let limit = args.push(fetch);
    let sql = format!(
        "SELECT {} FROM {from} WHERE {} ORDER BY {key}, {id} LIMIT {limit}",
        user_columns("u."),
        conditions.join(" AND ")
    );
    (sql, args.0)
}

/// `limit` clamped into `1..=MAX_LIMIT`, and one more to fetch (to tell
/// whether there is a next page).
fn page_size(page: &PageRequest) -> (usize, i64) {
    let limit = page.limit.clamp(1, PageRequest::MAX_LIMIT);
    (limit as usize, i64::from(limit) + 1)
}

/// Unix time in milliseconds, saturating.
pub(crate) fn unix_millis(t: OffsetDateTime) -> i64 {
    let ms = t.unix_timestamp_nanos().div_euclid(1_000_000);
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

/// A Unix time in milliseconds as a time.
pub(crate) fn from_unix_millis(ms: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| StoreError::Backend(format!("stored time {ms} ms is out of range: {e}")))
}

/// Whether the tenant has an outbox email with this id (in any state).
fn outbox_exists(conn: &Connection, tenant: &str, id: &str) -> Result<bool, StoreError> {
    conn.query_row(
        "SELECT 1 FROM outbox WHERE tenant_id = ?1 AND id = ?2",
        params![tenant, id],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
    .map_err(db_error)
}

/// A [`SavedResponse`] as stored.
#[derive(Serialize, Deserialize)]
struct StoredResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

#[async_trait]
impl UserStore for SqliteStore {
    /// Checks, in this order: the id (`AlreadyExists` on create) or the
    /// version (`NotFound`, `VersionMismatch`), the email (`EmailTaken`),
    /// the new profile (`ProfileMissing`). Audit events and emails must
    /// belong to the user's tenant. Deleting also rewrites the user's past
    /// audit events with [`AuditEvent::without_personal_data`].
    async fn write_user(&self, write: UserWrite<'_>) -> Result<(), StoreError> {
        let plan = WritePlan::new(&write)?;
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            // On error `tx` is dropped, which rolls everything back.
            apply_write(&tx, &plan)?;
            tx.commit().map_err(db_error)
        })
        .await
    }

    async fn get_user(&self, tenant: &TenantId, id: &UserId) -> Result<Option<User>, StoreError> {
        let tenant = tenant.as_str().to_owned();
        let id = id.as_str().to_owned();
        self.run(move |conn| get_user_where(conn, "tenant_id = ?1 AND id = ?2", &[&tenant, &id]))
            .await
    }

    async fn find_user_by_email(
        &self,
        tenant: &TenantId,
        email: &Email,
    ) -> Result<Option<User>, StoreError> {
        let tenant = tenant.as_str().to_owned();
        let email = email.normalized();
        self.run(move |conn| {
            get_user_where(
                conn,
                "tenant_id = ?1 AND email_norm = ?2",
                &[&tenant, &email],
            )
        })
        .await
    }

    async fn find_user_by_subject(
        &self,
        tenant: &TenantId,
        subject: &str,
    ) -> Result<Option<User>, StoreError> {
        let tenant = tenant.as_str().to_owned();
        let subject = subject.to_owned();
        self.run(move |conn| {
            get_user_where(
                conn,
                "tenant_id = ?1 AND idp_subject = ?2",
                &[&tenant, &subject],
            )
        })
        .await
    }

    /// Whatever the invitation's state: the caller decides what a used or
    /// expired invitation means.
    async fn find_user_by_invitation(&self, token_hash: &str) -> Result<Option<User>, StoreError> {
        let token_hash = token_hash.to_owned();
        self.run(move |conn| get_user_where(conn, "invitation_hash = ?1", &[&token_hash]))
            .await
    }

    /// The cursor holds the last item's sort key and id; a cursor of the
    /// name order is refused by the email order and the other way round. A
    /// `limit` outside `1..=PageRequest::MAX_LIMIT` is clamped into it.
    async fn list_users(
        &self,
        tenant: &TenantId,
        query: &UserQuery,
        page: &PageRequest,
    ) -> Result<Page<User>, StoreError> {
        let by_email = query.email_prefix.is_some();
        let list = if by_email {
            USERS_BY_EMAIL_LIST
        } else {
            USERS_LIST
        };
        let after = match &page.cursor {
            Some(raw) => {
                let key = cursor::decode(tenant, list, raw)?;
                Some(
                    serde_json::from_str::<(String, String)>(&key)
                        .map_err(|_| StoreError::InvalidCursor)?,
                )
            }
            None => None,
        };
        let (limit, fetch) = page_size(page);
        let (sql, args) = plan_user_list(tenant.as_str(), query, after.as_ref(), fetch);
        let tenant = tenant.clone();
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached(&sql).map_err(db_error)?;
            let mut rows = stmt
                .query_map(params_from_iter(args.iter()), UserRow::read)
                .map_err(db_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_error)?;
            let more = rows.len() > limit;
            rows.truncate(limit);
            let next_cursor = match rows.last() {
                Some(last) if more => {
                    let key = if by_email {
                        &last.email_norm
                    } else {
                        &last.name_key
                    };
                    let after = to_json(&(key, &last.id), "cursor")?;
                    Some(cursor::encode(&tenant, list, &after))
                }
                _ => None,
            };
            let items = rows
                .into_iter()
                .map(UserRow::into_user)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Page { items, next_cursor })
        })
        .await
    }

    /// Newest written first (write order, which ULID ids cannot give within
    /// one millisecond). A `limit` outside `1..=PageRequest::MAX_LIMIT` is
    /// clamped into it.
    async fn list_audit(
        &self,
        tenant: &TenantId,
        user: Option<&UserId>,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>, StoreError> {
        let list = match user {
            Some(u) => format!("{AUDIT_LIST}:{}", u.as_str()),
            None => AUDIT_LIST.to_owned(),
        };
        let before = match &page.cursor {
            Some(raw) => cursor::decode(tenant, &list, raw)?
                .parse::<i64>()
                .map_err(|_| StoreError::InvalidCursor)?,
            None => i64::MAX,
        };
        let (limit, fetch) = page_size(page);
        let tenant = tenant.clone();
        let user = user.map(|u| u.as_str().to_owned());
        self.run(move |conn| {
            let read =
                |row: &rusqlite::Row<'_>| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?));
            let mut rows = match &user {
                Some(user) => conn
                    .prepare_cached(
                        "SELECT seq, body FROM audit_events INDEXED BY audit_events_by_user
                         WHERE tenant_id = ?1 AND target_user = ?2 AND seq < ?3
                         ORDER BY seq DESC LIMIT ?4",
                    )
                    .map_err(db_error)?
                    .query_map(params![tenant.as_str(), user, before, fetch], read)
                    .map_err(db_error)?
                    .collect::<Result<Vec<_>, _>>(),
                None => conn
                    .prepare_cached(
                        "SELECT seq, body FROM audit_events INDEXED BY audit_events_by_tenant
                         WHERE tenant_id = ?1 AND seq < ?2
                         ORDER BY seq DESC LIMIT ?3",
                    )
                    .map_err(db_error)?
                    .query_map(params![tenant.as_str(), before, fetch], read)
                    .map_err(db_error)?
                    .collect::<Result<Vec<_>, _>>(),
            }
            .map_err(db_error)?;
            let more = rows.len() > limit;
            rows.truncate(limit);
            let next_cursor = match rows.last() {
                Some((seq, _)) if more => Some(cursor::encode(&tenant, &list, &seq.to_string())),
                _ => None,
            };
            let items = rows
                .iter()
                .map(|(_, body)| from_json(body, "audit event"))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Page { items, next_cursor })
        })
        .await
    }

    async fn pending_outbox(
        &self,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<OutboxEmail>, StoreError> {
        let now = unix_millis(now);
        self.run(move |conn| {
            let bodies = conn
                .prepare_cached(
                    "SELECT body FROM outbox INDEXED BY outbox_due
                     WHERE sent_at IS NULL AND failed_at IS NULL AND due_ms <= ?1
                     ORDER BY due_ms, seq LIMIT ?2",
                )
                .map_err(db_error)?
                .query_map(params![now, i64::from(limit)], |row| {
                    row.get::<_, Option<String>>(0)
                })
                .map_err(db_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_error)?;
            bodies
                .into_iter()
                .map(|body| {
                    let body = body.ok_or_else(|| {
                        StoreError::Backend("a pending outbox email has no body".to_owned())
                    })?;
                    from_json(&body, "outbox email")
                })
                .collect()
        })
        .await
    }

    /// One `BEGIN IMMEDIATE` transaction: the conditional update, or the
    /// read that tells why not.
    async fn claim_outbox(
        &self,
        tenant: &TenantId,
        id: &str,
        now: OffsetDateTime,
        lease_secs: u64,
    ) -> Result<OutboxClaim, StoreError> {
        let tenant = tenant.as_str().to_owned();
        let id = id.to_owned();
        let now_ms = unix_millis(now);
        let until = now_ms.saturating_add(
            i64::try_from(lease_secs)
                .unwrap_or(i64::MAX)
                .saturating_mul(1000),
        );
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            let claimed: Option<(Option<String>, i64)> = tx
                .query_row(
                    "UPDATE outbox SET due_ms = ?4
                     WHERE tenant_id = ?1 AND id = ?2
                       AND sent_at IS NULL AND failed_at IS NULL AND due_ms <= ?3
                     RETURNING body, attempts",
                    params![tenant, id, now_ms, until],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(db_error)?;
            let claim = match claimed {
                Some((body, attempts)) => {
                    let body = body.ok_or_else(|| {
                        StoreError::Backend("a pending outbox email has no body".to_owned())
                    })?;
                    OutboxClaim::Claimed {
                        email: from_json(&body, "outbox email")?,
                        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    }
                }
                None => {
                    let state: Option<(Option<String>, Option<String>, i64)> = tx
                        .query_row(
                            "SELECT sent_at, failed_at, due_ms FROM outbox
                             WHERE tenant_id = ?1 AND id = ?2",
                            params![tenant, id],
                            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                        )
                        .optional()
                        .map_err(db_error)?;
                    match state {
                        None | Some((None, Some(_), _)) => OutboxClaim::Gone,
                        Some((Some(_), _, _)) => OutboxClaim::AlreadySent,
                        Some((None, None, due_ms)) => OutboxClaim::Busy {
                            until: from_unix_millis(due_ms)?,
                        },
                    }
                }
            };
            tx.commit().map_err(db_error)?;
            Ok(claim)
        })
        .await
    }

    /// Also drops the stored email (its links may hold one-time tokens),
    /// keeping only the record that it was sent.
    async fn complete_outbox(
        &self,
        tenant: &TenantId,
        id: &str,
        message_id: &str,
    ) -> Result<(), StoreError> {
        let tenant = tenant.as_str().to_owned();
        let id = id.to_owned();
        let message_id = message_id.to_owned();
        let sent_at = format_time(OffsetDateTime::now_utc(), "sent_at")?;
        self.run(move |conn| {
            // One statement: the first completion wins and keeps its id.
            let changed = conn
                .execute(
                    "UPDATE outbox SET sent_at = ?3, body = NULL, message_id = ?4,
                            failed_at = NULL, failure = NULL
                     WHERE tenant_id = ?1 AND id = ?2 AND sent_at IS NULL",
                    params![tenant, id, sent_at, message_id],
                )
                .map_err(db_error)?;
            if changed == 0 && !outbox_exists(conn, &tenant, &id)? {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    async fn fail_outbox(
        &self,
        tenant: &TenantId,
        id: &str,
        reason: &str,
        permanent: bool,
        retry_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let tenant = tenant.as_str().to_owned();
        let id = id.to_owned();
        let reason = failure_reason(reason);
        let retry_ms = unix_millis(retry_at);
        let failed_at = format_time(OffsetDateTime::now_utc(), "failed_at")?;
        self.run(move |conn| {
            let changed = if permanent {
                conn.execute(
                    "UPDATE outbox SET failed_at = ?3, failure = ?4, attempts = attempts + 1,
                            body = json_set(body, '$.data', NULL)
                     WHERE tenant_id = ?1 AND id = ?2 AND sent_at IS NULL AND failed_at IS NULL",
                    params![tenant, id, failed_at, reason],
                )
            } else {
                conn.execute(
                    "UPDATE outbox SET due_ms = ?3, last_error = ?4, attempts = attempts + 1
                     WHERE tenant_id = ?1 AND id = ?2 AND sent_at IS NULL AND failed_at IS NULL",
                    params![tenant, id, retry_ms, reason],
                )
            }
            .map_err(db_error)?;
            if changed == 0 && !outbox_exists(conn, &tenant, &id)? {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    async fn failed_outbox(&self, limit: u32) -> Result<Vec<FailedEmail>, StoreError> {
        self.run(move |conn| {
            let rows = conn
                .prepare_cached(
                    "SELECT body, failure, attempts, failed_at FROM outbox INDEXED BY outbox_failed
                     WHERE failed_at IS NOT NULL ORDER BY seq DESC LIMIT ?1",
                )
                .map_err(db_error)?
                .query_map(params![i64::from(limit)], |row| {
                    Ok((
                        row.get::<_, Option<String>>(0)?,
                        row.get::<_, Option<String>>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, String>(3)?,
                    ))
                })
                .map_err(db_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_error)?;
            rows.into_iter()
                .map(|(body, failure, attempts, failed_at)| {
                    let body = body.ok_or_else(|| {
                        StoreError::Backend("a failed outbox email has no body".to_owned())
                    })?;
                    Ok(FailedEmail {
                        email: from_json(&body, "outbox email")?,
                        reason: failure.unwrap_or_default(),
                        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                        failed_at: parse_time(&failed_at, "failed_at")?,
                    })
                })
                .collect()
        })
        .await
    }

    /// A key expires `ttl_secs` after it was claimed (by the caller's
    /// `now`); claiming also forgets the tenant's expired keys. A claim
    /// whose lease has passed is taken over in place.
    async fn claim_idempotency_key(
        &self,
        tenant: &TenantId,
        key: &str,
        fingerprint: &str,
        now: OffsetDateTime,
        lease_secs: u64,
        ttl_secs: u64,
    ) -> Result<IdempotencyClaim, StoreError> {
        let tenant = tenant.as_str().to_owned();
        let key = key.to_owned();
        let fingerprint = fingerprint.to_owned();
        let now = unix_millis(now);
        let after = |secs: u64| {
            now.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000))
        };
        let (lease_expires_at, expires_at) = (after(lease_secs), after(ttl_secs));
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            tx.execute(
                "DELETE FROM idempotency_keys WHERE tenant_id = ?1 AND expires_at <= ?2",
                params![tenant, now],
            )
            .map_err(db_error)?;
            tx.execute(
                "DELETE FROM idempotency_keys
                 WHERE tenant_id = ?1 AND idempotency_key = ?2
                   AND state = ?3 AND lease_expires_at <= ?4",
                params![tenant, key, CLAIMED, now],
            )
            .map_err(db_error)?;
            let held: Option<(String, String, Option<String>)> = tx
                .query_row(
                    "SELECT fingerprint, state, response FROM idempotency_keys
                     WHERE tenant_id = ?1 AND idempotency_key = ?2",
                    params![tenant, key],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()
                .map_err(db_error)?;
            let claim = match held {
                None => {
                    tx.execute(
                        "INSERT INTO idempotency_keys
                             (tenant_id, idempotency_key, fingerprint, state,
                              lease_expires_at, expires_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![
                            tenant,
                            key,
                            fingerprint,
                            CLAIMED,
                            lease_expires_at,
                            expires_at
                        ],
                    )
                    .map_err(db_error)?;
                    IdempotencyClaim::Claimed
                }
                Some((held, _, _)) if held != fingerprint => IdempotencyClaim::Mismatch,
                Some((_, state, Some(response))) if state == COMPLETED => {
                    let r: StoredResponse = from_json(&response, "saved response")?;
                    IdempotencyClaim::Completed(SavedResponse {
                        status: r.status,
                        headers: r.headers,
                        body: r.body,
                    })
                }
                Some(_) => IdempotencyClaim::InProgress,
            };
            tx.commit().map_err(db_error)?;
            Ok(claim)
        })
        .await
    }

    /// `NotFound` if the key is not claimed (never claimed, released,
    /// expired or completed already).
    async fn complete_idempotency_key(
        &self,
        tenant: &TenantId,
        key: &str,
        response: &SavedResponse,
    ) -> Result<(), StoreError> {
        let tenant = tenant.as_str().to_owned();
        let key = key.to_owned();
        let response = to_json(
            &StoredResponse {
                status: response.status,
                headers: response.headers.clone(),
                body: response.body.clone(),
            },
            "saved response",
        )?;
        self.run(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE idempotency_keys SET state = ?3, response = ?4
                     WHERE tenant_id = ?1 AND idempotency_key = ?2 AND state = ?5",
                    params![tenant, key, COMPLETED, response, CLAIMED],
                )
                .map_err(db_error)?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    /// A completed key is kept (its response still replays).
    async fn release_idempotency_key(
        &self,
        tenant: &TenantId,
        key: &str,
    ) -> Result<(), StoreError> {
        let tenant = tenant.as_str().to_owned();
        let key = key.to_owned();
        self.run(move |conn| {
            conn.execute(
                "DELETE FROM idempotency_keys
                 WHERE tenant_id = ?1 AND idempotency_key = ?2 AND state = ?3",
                params![tenant, key, CLAIMED],
            )
            .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    /// Windows start at multiples of `window_secs` since the Unix epoch (a
    /// zero window counts as one second). Counting also forgets the
    /// bucket's earlier windows.
    async fn pending_idp_work(
        &self,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<IdpWorkItem>, StoreError> {
        let now = unix_millis(now);
        self.run(move |conn| crate::idp_work::pending(conn, limit, now))
            .await
    }

    async fn claim_idp_work(
        &self,
        tenant: &TenantId,
        user: &UserId,
        now: OffsetDateTime,
        lease_secs: u64,
    ) -> Result<Option<IdpWorkItem>, StoreError> {
        let (tenant, user) = (tenant.as_str().to_owned(), user.as_str().to_owned());
        let now = unix_millis(now);
        let until = now.saturating_add(to_i64(lease_secs, "lease")?.saturating_mul(1000));
        self.run(move |conn| crate::idp_work::claim(conn, &tenant, &user, now, until))
            .await
    }

    async fn complete_idp_work(
        &self,
        work: &IdpWork,
        notes: &[String],
    ) -> Result<bool, StoreError> {
        let work = work.clone();
        let notes = to_json(notes, "notes")?;
        self.run(move |conn| crate::idp_work::complete(conn, &work, &notes))
            .await
    }

    async fn fail_idp_work(
        &self,
        work: &IdpWork,
        reason: &str,
        retry_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let work = work.clone();
        let reason = failure_reason(reason);
        let retry_at = unix_millis(retry_at);
        self.run(move |conn| crate::idp_work::fail(conn, &work, &reason, retry_at))
            .await
    }

    async fn list_idp_work(&self, limit: u32) -> Result<Vec<IdpWorkItem>, StoreError> {
        self.run(move |conn| crate::idp_work::list(conn, limit))
            .await
    }

    async fn idp_work_of(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Option<IdpWorkItem>, StoreError> {
        let (tenant, user) = (tenant.clone(), user.clone());
        self.run(move |conn| crate::idp_work::of(conn, &tenant, &user))
            .await
    }

    async fn record_login(
        &self,
        tenant: &TenantId,
        user: &UserId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let (tenant, user) = (tenant.as_str().to_owned(), user.as_str().to_owned());
        let at = unix_millis(at);
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            let exists = tx
                .query_row(
                    "SELECT 1 FROM users WHERE tenant_id = ?1 AND id = ?2",
                    params![tenant, user],
                    |_| Ok(()),
                )
                .optional()
                .map_err(db_error)?
                .is_some();
            if !exists {
                return Ok(false);
            }
            let changed = tx
                .execute(
                    "INSERT INTO user_logins (tenant_id, user_id, last_login_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT (tenant_id, user_id) DO UPDATE
                     SET last_login_ms = excluded.last_login_ms
                     WHERE excluded.last_login_ms > user_logins.last_login_ms",
                    params![tenant, user, at],
                )
                .map_err(db_error)?;
            tx.commit().map_err(db_error)?;
            Ok(changed > 0)
        })
        .await
    }

    async fn record_delivery(
        &self,
        delivery: &IdpDelivery,
        now: OffsetDateTime,
        ttl_secs: u64,
    ) -> Result<Recorded, StoreError> {
        let delivery = delivery.clone();
        let now = unix_millis(now);
        let expires = now.saturating_add(to_i64(ttl_secs, "ttl")?.saturating_mul(1000));
        self.run(move |conn| crate::deliveries::record(conn, &delivery, now, expires))
            .await
    }

    async fn claim_delivery(
        &self,
        id: &str,
        now: OffsetDateTime,
        lease_secs: u64,
    ) -> Result<Option<(IdpDelivery, u32)>, StoreError> {
        let id = id.to_owned();
        let now = unix_millis(now);
        let until = now.saturating_add(to_i64(lease_secs, "lease")?.saturating_mul(1000));
        self.run(move |conn| crate::deliveries::claim(conn, &id, now, until))
            .await
    }

    async fn complete_delivery(&self, id: &str, outcome: &str) -> Result<(), StoreError> {
        let (id, outcome) = (id.to_owned(), outcome.to_owned());
        self.run(move |conn| crate::deliveries::complete(conn, &id, &outcome))
            .await
    }

    async fn fail_delivery(
        &self,
        id: &str,
        reason: &str,
        retry_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let (id, reason) = (id.to_owned(), failure_reason(reason));
        let retry_at = unix_millis(retry_at);
        self.run(move |conn| crate::deliveries::fail(conn, &id, &reason, retry_at))
            .await
    }

    async fn pending_deliveries(
        &self,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<IdpDelivery>, StoreError> {
        let now = unix_millis(now);
        self.run(move |conn| crate::deliveries::pending(conn, limit, now))
            .await
    }

    async fn take_rate_limit(
        &self,
        bucket: &str,
        now: OffsetDateTime,
        window_secs: u64,
        max: u32,
    ) -> Result<bool, StoreError> {
        if max == 0 {
            return Ok(false);
        }
        let window = i64::try_from(window_secs.max(1)).unwrap_or(i64::MAX);
        let window_start = now
            .unix_timestamp()
            .div_euclid(window)
            .saturating_mul(window);
        let bucket = bucket.to_owned();
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            tx.execute(
                "DELETE FROM rate_limits WHERE bucket = ?1 AND window_start < ?2",
                params![bucket, window_start],
            )
            .map_err(db_error)?;
            let counted = tx
                .execute(
                    "INSERT INTO rate_limits (bucket, window_start, hits) VALUES (?1, ?2, 1)
                     ON CONFLICT (bucket, window_start) DO UPDATE SET hits = hits + 1
                     WHERE hits < ?3",
                    params![bucket, window_start, i64::from(max)],
                )
                .map_err(db_error)?;
            tx.commit().map_err(db_error)?;
            Ok(counted > 0)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate;

    #[test]
    fn prefix_upper_bounds_cover_exactly_the_prefixed_strings() {
        assert_eq!(prefix_upper_bound("lo").as_deref(), Some("lp"));
        assert_eq!(prefix_upper_bound("a@").as_deref(), Some("aA"));
        assert_eq!(prefix_upper_bound("z\u{10FFFF}").as_deref(), Some("{"));
        assert_eq!(prefix_upper_bound("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
        assert_eq!(prefix_upper_bound(""), None);
        let upper = prefix_upper_bound("lö").unwrap();
        for inside in ["lö", "lövé", "lö\u{10FFFF}"] {
            assert!(inside >= "lö" && inside < upper.as_str(), "{inside}");
        }
        for outside in ["lp", "lo\u{10FFFF}", "l", "m"] {
            assert!(!(outside >= "lö" && outside < upper.as_str()), "{outside}");
        }
    }

    fn all_queries() -> Vec<UserQuery> {
        let account = AccountNumber::parse("a", "ACME").unwrap();
        let profile = ProfileId::generate();
        let mut out = Vec::new();
        for mask in 0..64u32 {
            let on = |bit: u32| mask & (1 << bit) != 0;
            out.push(UserQuery {
                status: on(0).then_some(UserStatus::Active),
                role: on(1).then_some(Role::Customer),
                profile: on(2).then(|| profile.clone()),
                account: on(3).then(|| account.clone()),
                name_prefix: on(4).then(|| "lo".to_owned()),
                email_prefix: on(5).then(|| "a".to_owned()),
            });
        }
        out
    }

    /// Every combination of filters is served by an index search in list
    /// order: no table scan, no sort.
    #[test]
    fn every_user_list_is_an_index_search_without_a_sort() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let after = ("lovelace ada".to_owned(), UserId::generate().to_string());
        for q in all_queries() {
            for cursor in [None, Some(&after)] {
                let (sql, args) = plan_user_list("t1", &q, cursor, 3);
                let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
                let plan: Vec<String> = stmt
                    .query_map(params_from_iter(args.iter()), |r| r.get::<_, String>(3))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                let text = plan.join("\n");
                assert!(!text.contains("TEMP B-TREE"), "{q:?}: sorts\n{text}");
                assert!(
                    plan.iter().all(|line| !line.starts_with("SCAN")),
                    "{q:?}: scans\n{text}"
                );
                let driver = plan.first().unwrap();
                let expected = match Driver::of(&q) {
                    Driver::Email => "users_by_email",
                    Driver::Account => "user_accounts_by_name",
                    Driver::Profile => "users_by_profile",
                    Driver::Role => "users_by_role",
                    Driver::Status => "users_by_status",
                    Driver::Name => "users_by_name",
                };
                assert!(driver.contains(expected), "{q:?}: {text}");
                assert!(
                    driver.contains("tenant_id=?"),
                    "{q:?}: not a tenant search\n{text}"
                );
                if cursor.is_some() {
                    assert!(
                        driver.contains(")>(?,?)"),
                        "{q:?}: the search does not start at the cursor\n{text}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_cursor_before_the_prefix_gives_way_to_the_prefix() {
        let q = UserQuery {
            name_prefix: Some("T".to_owned()),
            ..Default::default()
        };
        let id = UserId::generate().to_string();
        let (sql, args) = plan_user_list("t1", &q, Some(&("a".to_owned(), id.clone())), 3);
        assert!(
            sql.contains("u.name_key >= ?2 AND u.name_key < ?3"),
            "{sql}"
        );
        assert!(!sql.contains(")>("), "{sql}");
        assert_eq!(args[1], Value::Text("t".to_owned()));
        assert_eq!(args[2], Value::Text("u".to_owned()));
        let (sql, _) = plan_user_list("t1", &q, Some(&("tz".to_owned(), id)), 3);
        assert!(!sql.contains("u.name_key >= "), "{sql}");
        assert!(sql.contains("u.name_key < ?2"), "{sql}");
        assert!(sql.contains("(u.name_key, u.id) > (?3, ?4)"), "{sql}");
    }

    #[test]
    fn audit_and_outbox_lists_search_their_indexes() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        for sql in [
            "SELECT seq, body FROM audit_events INDEXED BY audit_events_by_user
             WHERE tenant_id = 't' AND target_user = 'u' AND seq < 5 ORDER BY seq DESC LIMIT 3",
            "SELECT seq, body FROM audit_events INDEXED BY audit_events_by_tenant
             WHERE tenant_id = 't' AND seq < 5 ORDER BY seq DESC LIMIT 3",
            "SELECT body FROM outbox INDEXED BY outbox_due
             WHERE sent_at IS NULL AND failed_at IS NULL AND due_ms <= 5
             ORDER BY due_ms, seq LIMIT 3",
            "SELECT body, failure, attempts, failed_at FROM outbox INDEXED BY outbox_failed
             WHERE failed_at IS NOT NULL ORDER BY seq DESC LIMIT 3",
        ] {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let plan: Vec<String> = stmt
                .query_map([], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let text = plan.join("\n");
            assert!(!text.contains("TEMP B-TREE"), "{sql}: {text}");
            assert!(
                text.contains("USING INDEX") || text.contains("COVERING INDEX"),
                "{sql}: {text}"
            );
        }
    }
}
