//! Password resets: asked for a user (by themselves or an admin), and the
//! login page's signed-out "forgot password".

use crate::context::{Actor, Ctx};
use crate::error::Error;
use crate::identity::sha256_hex;
use crate::model::user::{User, UserId, UserStatus};
use crate::outbox::{EmailKind, OutboxEmail};
use crate::users::access::{authorized, store_err};
use crate::users::policy::UserAction;
use crate::users::recording::{event, mail, write};
use crate::users::wire::ResetRequest;
use serde_json::json;

fn reset_mail(ctx: &Ctx<'_>, user: &User, initiated_by: &str) -> OutboxEmail {
    mail(
        ctx,
        user,
        &user.email,
        EmailKind::PasswordReset,
        json!({
            "first_name": user.first_name.as_str(),
            "initiated_by": initiated_by,
            "portal_url": ctx.settings.portal_url,
        }),
    )
}

/// Queues a password-reset email; the mailer gets the password-change link
/// from the identity provider when it sends.
pub async fn reset_password(ctx: &Ctx<'_>, actor: &Actor, id: &UserId) -> Result<(), Error> {
    let current = authorized(ctx, actor, UserAction::ResetPassword, id).await?;
    if current.status != UserStatus::Active || current.idp_subject.is_none() {
        return Err(Error::Conflict {
            code: "invalid_status",
            detail: "only an active user can reset their password; an invited user sets it from the invitation (resend it)".into(),
        });
    }
    let initiated_by = if actor.user.id == current.id {
        "self"
    } else {
        "admin"
    };
    // Written with the user unchanged (same version): asking for a reset is
    // not an edit, and must not make anyone's If-Match stale.
    let audit = [event(
        ctx,
        actor.user.id.as_str(),
        "user.password_reset_requested",
        Some(&current),
        &current,
    )];
    write(
        ctx,
        Some(&current),
        Some(&current),
        &audit,
        &[reset_mail(ctx, &current, initiated_by)],
    )
    .await
}

/// The login page's "forgot password": the same answer whether or not the
/// address exists; rate-limited per address (hashed) per hour.
pub async fn request_password_reset(
    ctx: &Ctx<'_>,
    tenant_raw: &str,
    email_raw: &str,
) -> Result<(), Error> {
    let ResetRequest { tenant, email } = (tenant_raw, email_raw).try_into()?;
    let bucket = format!(
        "reset:{}",
        sha256_hex(&format!("{}|{}", tenant, email.normalized()))
    );
    let allowed = ctx
        .users
        .take_rate_limit(&bucket, ctx.now, 3600, ctx.settings.reset_requests_per_hour)
        .await
        .map_err(store_err)?;
    if !allowed {
        return Err(Error::TooManyRequests {
            retry_after_secs: 3600 - (ctx.now.unix_timestamp().rem_euclid(3600)) as u64,
        });
    }
    let Some(user) = ctx
        .users
        .find_user_by_email(&tenant, &email)
        .await
        .map_err(store_err)?
    else {
        return Ok(());
    };
    if user.status != UserStatus::Active || user.idp_subject.is_none() {
        return Ok(());
    }
    // The user is written unchanged (same version): a stranger asking for a
    // reset must not make an admin's If-Match stale.
    let audit = [event(
        ctx,
        "anonymous",
        "user.password_reset_requested",
        Some(&user),
        &user,
    )];
    match write(
        ctx,
        Some(&user),
        Some(&user),
        &audit,
        &[reset_mail(ctx, &user, "self")],
    )
    .await
    {
        // A concurrent change: the answer is the same either way.
        Ok(()) | Err(Error::PreconditionFailed(_)) => Ok(()),
        Err(e) => Err(e),
    }
}
