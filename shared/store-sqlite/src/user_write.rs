//! A user write as one `BEGIN IMMEDIATE` transaction: check, then write the
//! user, its memberships, the holder counts, its audit events, outbox emails
//! and owed identity-provider work.

use crate::sql::{db_error, from_json, is_unique_violation, to_i64, to_json};
use crate::user_row::{UserRow, insert_user_sql, update_user_sql};
use peak_domain::audit::AuditEvent;
use peak_domain::ports::{StoreError, UserWrite};
use rusqlite::{Connection, OptionalExtension, ToSql, Transaction, params};
use std::collections::BTreeSet;

/// One audit event as stored.
pub(crate) struct AuditRow {
    pub(crate) id: String,
    pub(crate) target_user: Option<String>,
    pub(crate) body: String,
}

/// One outbox email as stored.
pub(crate) struct OutboxRow {
    pub(crate) id: String,
    pub(crate) body: String,
}

/// A [`UserWrite`] turned into owned rows, checked for consistency.
pub(crate) struct WritePlan {
    pub(crate) tenant: String,
    pub(crate) user_id: String,
    /// The version `previous` had; `None` creates.
    pub(crate) expected: Option<i64>,
    /// The user after the write and its customer accounts (deduplicated);
    /// `None` deletes.
    pub(crate) next: Option<(UserRow, Vec<String>)>,
    pub(crate) audit: Vec<AuditRow>,
    pub(crate) outbox: Vec<OutboxRow>,
    /// The work the change owes the identity provider.
    pub(crate) idp: Option<peak_domain::idp_work::IdpWork>,
}

impl WritePlan {
    pub(crate) fn new(write: &UserWrite<'_>) -> Result<Self, StoreError> {
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
pub(crate) struct StoredUser {
    pub(crate) version: i64,
    pub(crate) profile_id: String,
    pub(crate) accounts: Vec<String>,
}

pub(crate) fn stored_user(
    tx: &Connection,
    tenant: &str,
    id: &str,
) -> Result<Option<StoredUser>, StoreError> {
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
pub(crate) fn user_write_error(e: rusqlite::Error) -> StoreError {
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
pub(crate) fn apply_write(tx: &Transaction<'_>, plan: &WritePlan) -> Result<(), StoreError> {
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
pub(crate) fn remove_personal_data(
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
