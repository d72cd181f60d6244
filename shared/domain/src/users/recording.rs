//! What a change of a user writes: the next version, its audit event with
//! the field-by-field changes, its emails, all in one atomic store write —
//! and the hourly budgets that limit the mail a change may send.

use crate::audit::{AuditEvent, FieldChange};
use crate::context::{Actor, Budget, Ctx};
use crate::error::Error;
use crate::model::user::{Email, User};
use crate::outbox::{EmailKind, OutboxEmail};
use crate::ports::UserWrite;
use crate::role::Role;
use crate::users::access::store_err;
use time::OffsetDateTime;

/// Spends one of `kind` from the actor's and the tenant's hourly budgets;
/// 429 with the seconds until the window turns when either is used up.
pub(crate) async fn spend(
    ctx: &Ctx<'_>,
    kind: &str,
    actor: &User,
    budget: Budget,
) -> Result<(), Error> {
    const HOUR: u64 = 3600;
    let tenant = actor.tenant_id.as_str();
    for (bucket, max) in [
        (format!("{kind}:{tenant}:{}", actor.id), budget.per_actor),
        (format!("{kind}:{tenant}"), budget.per_tenant),
    ] {
        let allowed = ctx
            .users
            .take_rate_limit(&bucket, ctx.now, HOUR, max)
            .await
            .map_err(store_err)?;
        if !allowed {
            return Err(Error::TooManyRequests {
                retry_after_secs: HOUR - ctx.now.unix_timestamp().rem_euclid(HOUR as i64) as u64,
            });
        }
    }
    Ok(())
}

pub(crate) async fn spend_invitation(ctx: &Ctx<'_>, actor: &Actor) -> Result<(), Error> {
    if actor.user.role == Role::Admin {
        return Ok(());
    }
    spend(
        ctx,
        "invitations",
        &actor.user,
        ctx.settings.delegated_invitations_per_hour,
    )
    .await
}

fn list(v: &[impl AsRef<str>]) -> String {
    v.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(",")
}

/// Field-by-field changes from `before` to `after`.
pub fn changes(before: Option<&User>, after: Option<&User>) -> Vec<FieldChange> {
    fn fields(u: &User) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("email", Some(u.email.as_str().to_owned())),
            (
                "pending_email",
                u.pending_email
                    .as_ref()
                    .map(|p| p.email.as_str().to_owned()),
            ),
            ("first_name", Some(u.first_name.as_str().to_owned())),
            ("last_name", Some(u.last_name.as_str().to_owned())),
            (
                "account_number",
                u.account_number.as_ref().map(|a| a.as_str().to_owned()),
            ),
            (
                "customer_accounts",
                Some(list(
                    &u.customer_accounts
                        .iter()
                        .map(|a| a.as_str())
                        .collect::<Vec<_>>(),
                )),
            ),
            ("role", Some(u.role.as_str().to_owned())),
            ("profile_id", Some(u.profile_id.as_str().to_owned())),
            ("extension_groups", Some(list(&u.extension_groups))),
            ("status", Some(u.status.as_str().to_owned())),
        ]
    }
    let b = before.map(fields);
    let a = after.map(fields);
    let names = b
        .as_ref()
        .or(a.as_ref())
        .map(|f| f.iter().map(|(n, _)| *n).collect::<Vec<_>>())
        .unwrap_or_default();
    names
        .into_iter()
        .enumerate()
        .filter_map(|(i, field)| {
            let before = b.as_ref().and_then(|f| f[i].1.clone());
            let after = a.as_ref().and_then(|f| f[i].1.clone());
            (before != after).then(|| FieldChange {
                field: field.to_owned(),
                before,
                after,
            })
        })
        .collect()
}

/// The audit event for a change of `before` into `after` (same user).
pub(crate) fn event(
    ctx: &Ctx<'_>,
    actor: &str,
    action: &str,
    before: Option<&User>,
    after: &User,
) -> AuditEvent {
    AuditEvent::new(
        &after.tenant_id,
        actor,
        action,
        Some(&after.id),
        ctx.request_id,
        ctx.now,
    )
    .with_changes(changes(before, Some(after)))
}

pub(crate) fn mail(
    ctx: &Ctx<'_>,
    user: &User,
    to: &Email,
    kind: EmailKind,
    data: serde_json::Value,
) -> OutboxEmail {
    OutboxEmail {
        tenant_id: user.tenant_id.clone(),
        id: crate::ids::monotonic_ulid().to_string(),
        kind,
        to: to.clone(),
        user_id: user.id.clone(),
        data,
        created_at: ctx.now,
    }
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub(crate) async fn write(
    ctx: &Ctx<'_>,
    previous: Option<&User>,
    next: Option<&User>,
    audit: &[AuditEvent],
    outbox: &[OutboxEmail],
) -> Result<(), Error> {
    ctx.users
        .write_user(UserWrite {
            previous,
            next,
            audit,
            outbox,
        })
        .await
        .map_err(store_err)
}

pub(crate) fn bump(u: &User, now: OffsetDateTime) -> User {
    let mut n = u.clone();
    n.version += 1;
    n.updated_at = now;
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ProfileId, TenantId};
    use crate::model::user::{PersonName, UserId, UserStatus};

    #[test]
    fn changes_list_only_what_moved() {
        let now = OffsetDateTime::now_utc();
        let t = TenantId::parse("t").unwrap();
        let u = User {
            tenant_id: t,
            id: UserId::generate(),
            email: Email::parse("a@example.com").unwrap(),
            pending_email: None,
            first_name: PersonName::parse("f", "Ada").unwrap(),
            last_name: PersonName::parse("l", "Lovelace").unwrap(),
            account_number: None,
            customer_accounts: vec![],
            role: Role::Admin,
            profile_id: ProfileId::generate(),
            extension_groups: vec![],
            status: UserStatus::Active,
            idp_subject: None,
            invitation: None,
            version: 1,
            created_at: now,
            updated_at: now,
            last_login_at: None,
        };
        let mut v = u.clone();
        v.status = UserStatus::Suspended;
        assert_eq!(
            changes(Some(&u), Some(&v)),
            vec![FieldChange {
                field: "status".into(),
                before: Some("active".into()),
                after: Some("suspended".into())
            }]
        );
        assert_eq!(
            changes(None, Some(&u)).len(),
            8,
            "a creation lists every field with a value"
        );
    }
}
