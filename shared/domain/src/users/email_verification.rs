//! Confirming a new login email through the link sent to it.

use crate::context::Ctx;
use crate::error::Error;
use crate::identity::hash_link_token;
use crate::ids::TenantId;
use crate::model::user::{PendingEmail, User, UserId};
use crate::users::access::store_err;
use crate::users::recording::{bump, event, write};
use time::OffsetDateTime;

/// Where an email-change link stands when someone opens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationState {
    Pending,
    Expired,
}

/// What an email-change link shows before anyone confirms it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailVerificationView {
    pub tenant: TenantId,
    pub state: VerificationState,
    pub first_name: String,
    /// The address that becomes the login email, masked.
    pub new_email_masked: String,
    pub expires_at: OffsetDateTime,
}

impl VerificationState {
    /// What confirming answers in this state: `None` when it works.
    pub fn refusal(self) -> Option<Error> {
        match self {
            VerificationState::Pending => None,
            VerificationState::Expired => Some(Error::Gone {
                code: "verification_expired",
                detail: "this link has expired; change your email again to get a new one".into(),
            }),
        }
    }
}

/// The tenant an email-change link names (the token carries it in the
/// clear, so naming it reveals nothing the link does not).
pub fn email_verification_tenant(token: &str) -> Option<TenantId> {
    TenantId::parse(token.split('.').next()?)
}

fn verification_used() -> Error {
    Error::Gone {
        code: "verification_used",
        detail: "this link was already used or replaced".into(),
    }
}

/// The user and the pending change this link confirms, whatever its expiry.
async fn verification_target(ctx: &Ctx<'_>, token: &str) -> Result<(User, PendingEmail), Error> {
    let mut parts = token.splitn(3, '.');
    let (Some(t), Some(u), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Error::NotFound("email verification"));
    };
    let (Some(tenant), Some(id)) = (TenantId::parse(t), UserId::parse(u)) else {
        return Err(Error::NotFound("email verification"));
    };
    let current = ctx
        .users
        .get_user(&tenant, &id)
        .await
        .map_err(store_err)?
        .ok_or(Error::NotFound("email verification"))?;
    let Some(pending) = current.pending_email.clone() else {
        return Err(verification_used());
    };
    if !constant_time_eq(
        pending.token_hash.as_bytes(),
        hash_link_token(token.rsplit('.').next().unwrap_or("")).as_bytes(),
    ) {
        return Err(verification_used());
    }
    // A working link of a closed tenant confirms nothing.
    ctx.admitted(&current.tenant_id).await?;
    Ok((current, pending))
}

fn verification_state(pending: &PendingEmail, now: OffsetDateTime) -> VerificationState {
    if now >= pending.expires_at {
        VerificationState::Expired
    } else {
        VerificationState::Pending
    }
}

/// Opening the link sent to a new address: reads only (mail scanners
/// follow links). A link that is unknown, used or replaced is an error, as
/// confirming it would be; an expired one is shown as expired.
pub async fn view_email_verification(
    ctx: &Ctx<'_>,
    token: &str,
) -> Result<EmailVerificationView, Error> {
    let (user, pending) = verification_target(ctx, token).await?;
    Ok(EmailVerificationView {
        tenant: user.tenant_id.clone(),
        state: verification_state(&pending, ctx.now),
        first_name: user.first_name.as_str().to_owned(),
        new_email_masked: pending.email.masked(),
        expires_at: pending.expires_at,
    })
}

/// Following the link sent to a new address makes it the login email.
pub async fn verify_email(ctx: &Ctx<'_>, token: &str) -> Result<User, Error> {
    let (current, pending) = verification_target(ctx, token).await?;
    if let Some(refused) = verification_state(&pending, ctx.now).refusal() {
        return Err(refused);
    }
    let mut next = bump(&current, ctx.now);
    next.email = pending.email;
    next.pending_email = None;
    let audit = [event(
        ctx,
        current.id.as_str(),
        "user.email_verified",
        Some(&current),
        &next,
    )];
    write(ctx, Some(&current), Some(&next), &audit, &[]).await?;
    Ok(next)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
