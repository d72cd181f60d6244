//! A user's status: suspending, enabling again, and deleting.

use crate::audit::AuditEvent;
use crate::context::{Actor, Ctx};
use crate::error::Error;
use crate::model::user::{User, UserId, UserStatus};
use crate::outbox::EmailKind;
use crate::users::access::{authorized, check_version};
use crate::users::policy::UserAction;
use crate::users::recording::{bump, event, mail, write};
use serde_json::json;

/// Every check of a suspend or enable, nothing written: the user as they
/// are, and the status to set (`None`: they have it already, nothing to
/// do).
async fn plan_status(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &UserId,
    if_match: Option<u64>,
    action: UserAction,
) -> Result<(User, Option<(UserStatus, &'static str)>), Error> {
    let current = authorized(ctx, actor, action, id).await?;
    check_version(&current, if_match, false)?;
    let (from, to, name) = match action {
        UserAction::Suspend => (UserStatus::Active, UserStatus::Suspended, "user.suspended"),
        _ => (UserStatus::Suspended, UserStatus::Active, "user.enabled"),
    };
    if current.status == to {
        return Ok((current, None));
    }
    if current.status != from {
        return Err(Error::Conflict {
            code: "invalid_status",
            detail: format!(
                "a user who is {} cannot be {}",
                current.status.as_str(),
                if to == UserStatus::Suspended {
                    "suspended"
                } else {
                    "enabled"
                }
            ),
        });
    }
    Ok((current, Some((to, name))))
}

/// What a suspend (`suspend` true) or enable of the user would answer,
/// with nothing written (a bulk update's dry run).
pub async fn check_status(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &UserId,
    suspend: bool,
) -> Result<(), Error> {
    let action = if suspend {
        UserAction::Suspend
    } else {
        UserAction::Enable
    };
    plan_status(ctx, actor, id, None, action).await.map(|_| ())
}

async fn set_status(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &UserId,
    if_match: Option<u64>,
    action: UserAction,
) -> Result<User, Error> {
    let (current, planned) = plan_status(ctx, actor, id, if_match, action).await?;
    let Some((to, name)) = planned else {
        return Ok(current);
    };
    let mut next = bump(&current, ctx.now);
    next.status = to;
    let audit = [event(
        ctx,
        actor.user.id.as_str(),
        name,
        Some(&current),
        &next,
    )];
    let mut outbox = Vec::new();
    if to == UserStatus::Suspended && ctx.suspension_notice(&current.tenant_id) {
        let data = json!({
            "first_name": current.first_name.as_str(),
            "portal_url": ctx.settings.portal_url,
        });
        outbox.push(mail(
            ctx,
            &current,
            &current.email,
            EmailKind::SuspensionNotice,
            data,
        ));
    }
    write(ctx, Some(&current), Some(&next), &audit, &outbox).await?;
    Ok(next)
}

/// Active → suspended: refused by this API from this moment.
pub async fn suspend_user(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &UserId,
    if_match: Option<u64>,
) -> Result<User, Error> {
    set_status(ctx, actor, id, if_match, UserAction::Suspend).await
}

/// Suspended → active again.
pub async fn enable_user(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &UserId,
    if_match: Option<u64>,
) -> Result<User, Error> {
    set_status(ctx, actor, id, if_match, UserAction::Enable).await
}

/// Removes the user, their lookups, invitation and pending emails; the
/// audit trail keeps what happened without who they were.
pub async fn delete_user(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &UserId,
    if_match: Option<u64>,
) -> Result<(), Error> {
    let current = authorized(ctx, actor, UserAction::Delete, id).await?;
    check_version(&current, if_match, false)?;
    let audit = [AuditEvent::new(
        &current.tenant_id,
        actor.user.id.as_str(),
        "user.deleted",
        Some(&current.id),
        ctx.request_id,
        ctx.now,
    )];
    write(ctx, Some(&current), None, &audit, &[]).await
}
