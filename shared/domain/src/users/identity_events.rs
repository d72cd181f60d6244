//! Applying what the identity provider tells us (Auth0 Actions and Event
//! Streams), kept durably before it is applied.
//!
//! A verified delivery is first recorded ([`receive_delivery`]: one
//! conditional write keyed by its id, in the delivery log), and only then
//! answered 2xx; it is applied from the record, by whoever claims it (a
//! short lease): the webhook right away, or the sweeper after a failure or
//! a crash ([`process_delivery`]). So an outage of ours after the record is
//! written loses nothing, a retry of the sender while the first attempt is
//! still applying finds the record and changes nothing, and each delivery
//! is applied at most once.
//!
//! The use cases here are what applying means: [`password_was_set`],
//! [`login_blocked`], [`login_recorded`], [`login_deleted`].

use crate::audit::AuditEvent;
use crate::context::Ctx;
use crate::error::Error;
use crate::identity::IdentityProvider;
use crate::idp_work::retry_delay;
use crate::ids::TenantId;
use crate::model::delivery::{
    DELIVERY_LEASE_SECS, DELIVERY_RETENTION_SECS, IdpDelivery, IdpEventKind, Recorded,
};
use crate::model::user::{InvitationState, User, UserStatus};
use crate::ports::{IdpEventStore, StoreError, UserWrite};
use crate::users::recording::{bump, changes};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdpEventOutcome {
    Applied,
    /// Not ours (no such user here), or nothing to change.
    NoChange,
    /// Older than our latest change of the user: our state stands (and
    /// reconciliation pushes it back to the provider).
    Stale,
    /// Our own push, read back: nothing to do.
    OwnChange,
    /// A password set on a login whose invitation is no longer live
    /// (revoked or expired): the user stays invited.
    Refused,
}

impl IdpEventOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            IdpEventOutcome::Applied => "applied",
            IdpEventOutcome::NoChange => "no_change",
            IdpEventOutcome::Stale => "stale",
            IdpEventOutcome::OwnChange => "own_change",
            IdpEventOutcome::Refused => "refused",
        }
    }
}

/// What the identity-event use cases work with: the part of [`Ctx`] they
/// need (no caller, no profiles or tenants), so the sweeper, which has only
/// the user store, runs them as the webhook does.
pub struct EventCtx<'a> {
    pub users: &'a dyn IdpEventStore,
    pub now: OffsetDateTime,
    pub request_id: &'a str,
}

impl<'a> From<&Ctx<'a>> for EventCtx<'a> {
    fn from(ctx: &Ctx<'a>) -> Self {
        EventCtx {
            users: ctx.users,
            now: ctx.now,
            request_id: ctx.request_id,
        }
    }
}

fn store_err(e: StoreError) -> Error {
    Error::from_store(e, "user")
}

const ACTOR: &str = "system:identity-provider";

async fn write(
    ctx: &EventCtx<'_>,
    previous: &User,
    next: Option<&User>,
    action: &str,
) -> Result<(), Error> {
    let mut event = AuditEvent::new(
        &previous.tenant_id,
        ACTOR,
        action,
        Some(&previous.id),
        ctx.request_id,
        ctx.now,
    );
    if let Some(next) = next {
        event = event.with_changes(changes(Some(previous), Some(next)));
    }
    ctx.users
        .write_user(UserWrite {
            previous: Some(previous),
            next,
            audit: &[event],
            outbox: &[],
        })
        .await
        .map_err(store_err)
}

async fn by_subject(
    ctx: &EventCtx<'_>,
    tenant: &TenantId,
    subject: &str,
) -> Result<Option<User>, Error> {
    ctx.users
        .find_user_by_subject(tenant, subject)
        .await
        .map_err(store_err)
}

/// The identity provider reports that the user set their password at `at`:
/// an invited user becomes active — only while the invitation that gave
/// them the login is live (accepted, not revoked, not expired at `at`).
/// Idempotent.
pub async fn password_was_set(
    ctx: &EventCtx<'_>,
    tenant: &TenantId,
    subject: &str,
    at: OffsetDateTime,
) -> Result<IdpEventOutcome, Error> {
    let Some(current) = by_subject(ctx, tenant, subject).await? else {
        return Ok(IdpEventOutcome::NoChange);
    };
    if current.status != UserStatus::Invited {
        return Ok(IdpEventOutcome::NoChange);
    }
    let live = current
        .invitation
        .as_ref()
        .is_some_and(|i| i.state == InvitationState::Accepted && at < i.expires_at);
    if !live {
        return Ok(IdpEventOutcome::Refused);
    }
    let mut next = bump(&current, ctx.now);
    next.status = UserStatus::Active;
    write(ctx, &current, Some(&next), "user.activated").await?;
    Ok(IdpEventOutcome::Applied)
}

/// The login was blocked at the provider (an operator in the dashboard):
/// an active user is suspended here too, unless we changed the user after
/// the block happened, or the block is our own push read back. Unblocking
/// there does not enable anyone here: enabling is a portal decision (the
/// next sync blocks the login again).
pub async fn login_blocked(
    ctx: &EventCtx<'_>,
    tenant: &TenantId,
    subject: &str,
    occurred_at: OffsetDateTime,
    pushed_blocked: Option<bool>,
) -> Result<IdpEventOutcome, Error> {
    if pushed_blocked == Some(true) {
        return Ok(IdpEventOutcome::OwnChange);
    }
    let Some(current) = by_subject(ctx, tenant, subject).await? else {
        return Ok(IdpEventOutcome::NoChange);
    };
    if occurred_at < current.updated_at {
        return Ok(IdpEventOutcome::Stale);
    }
    if current.status != UserStatus::Active {
        return Ok(IdpEventOutcome::NoChange);
    }
    let mut next = bump(&current, ctx.now);
    next.status = UserStatus::Suspended;
    write(ctx, &current, Some(&next), "user.suspended").await?;
    Ok(IdpEventOutcome::Applied)
}

/// The identity provider reports a sign-in (Post Login): recorded on the
/// user as their last sign-in, unless a later one is recorded already.
pub async fn login_recorded(
    ctx: &EventCtx<'_>,
    tenant: &TenantId,
    subject: &str,
    at: OffsetDateTime,
) -> Result<IdpEventOutcome, Error> {
    let Some(user) = by_subject(ctx, tenant, subject).await? else {
        return Ok(IdpEventOutcome::NoChange);
    };
    let recorded = ctx
        .users
        .record_login(tenant, &user.id, at)
        .await
        .map_err(store_err)?;
    Ok(if recorded {
        IdpEventOutcome::Applied
    } else {
        IdpEventOutcome::Stale
    })
}

/// The login was deleted at the provider: the user can never sign in with
/// it again, so the user is deleted here too (the audit trail keeps that
/// it happened, without who). A user linked to another login is left.
pub async fn login_deleted(
    ctx: &EventCtx<'_>,
    tenant: &TenantId,
    subject: &str,
) -> Result<IdpEventOutcome, Error> {
    let Some(current) = by_subject(ctx, tenant, subject).await? else {
        return Ok(IdpEventOutcome::NoChange);
    };
    write(ctx, &current, None, "user.deleted").await?;
    Ok(IdpEventOutcome::Applied)
}

/// The tenant a delivery is about: the one it names, else (Post Change
/// Password carries none) the one recorded on the login at the provider.
async fn tenant_of(
    idp: &dyn IdentityProvider,
    delivery: &IdpDelivery,
) -> Result<Option<TenantId>, Error> {
    if let Some(t) = &delivery.tenant {
        return Ok(TenantId::parse(t));
    }
    let account = idp
        .get_user(&delivery.subject)
        .await
        .map_err(|e| Error::Unavailable(format!("cannot look up the login's tenant: {e}")))?;
    Ok(account
        .and_then(|a| a.tenant)
        .as_deref()
        .and_then(TenantId::parse))
}

/// Applies one recorded delivery.
pub async fn apply_delivery(
    ctx: &EventCtx<'_>,
    idp: &dyn IdentityProvider,
    d: &IdpDelivery,
) -> Result<IdpEventOutcome, Error> {
    let Some(tenant) = tenant_of(idp, d).await? else {
        return Ok(IdpEventOutcome::NoChange);
    };
    match d.kind {
        IdpEventKind::PasswordSet => {
            password_was_set(ctx, &tenant, &d.subject, d.occurred_at).await
        }
        IdpEventKind::LoginBlocked => {
            login_blocked(ctx, &tenant, &d.subject, d.occurred_at, d.pushed_blocked).await
        }
        IdpEventKind::LoginDeleted => login_deleted(ctx, &tenant, &d.subject).await,
        IdpEventKind::LoggedIn => login_recorded(ctx, &tenant, &d.subject, d.occurred_at).await,
    }
}

/// What [`process_delivery`] did with a recorded delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// Applied (with this outcome) and marked done.
    Done(IdpEventOutcome),
    /// Someone else holds it, it waits for its retry time, or it is done.
    NotDue,
    /// Applying failed; kept, due again after a backoff.
    Failed { attempts: u32, error: String },
}

/// Takes a recorded delivery (a lease of [`DELIVERY_LEASE_SECS`]), applies
/// it and marks it done; a failure is recorded with a backoff and the
/// delivery stays owed. Only a store failure is an `Err`. (The domain does
/// not log: callers log the returned outcome.)
pub async fn process_delivery(
    ctx: &EventCtx<'_>,
    idp: &dyn IdentityProvider,
    id: &str,
) -> Result<Processed, StoreError> {
    let Some((delivery, attempts)) = ctx
        .users
        .claim_delivery(id, ctx.now, DELIVERY_LEASE_SECS)
        .await?
    else {
        return Ok(Processed::NotDue);
    };
    match apply_delivery(ctx, idp, &delivery).await {
        Ok(outcome) => {
            ctx.users
                .complete_delivery(&delivery.id, outcome.as_str())
                .await?;
            Ok(Processed::Done(outcome))
        }
        Err(e) => {
            let error = e.to_string();
            let retry_at = ctx.now + retry_delay(attempts);
            ctx.users
                .fail_delivery(&delivery.id, &error, retry_at)
                .await?;
            Ok(Processed::Failed {
                attempts: attempts + 1,
                error,
            })
        }
    }
}

/// What receiving a verified delivery did: the webhook's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Recorded and applied now, with this outcome.
    Applied(IdpEventOutcome),
    /// Recorded before and already applied (a sender's retry, a replay, or
    /// Event Streams' at-least-once delivery): nothing changes.
    Duplicate,
    /// Recorded before and still owed, or held by someone else right now:
    /// it will be applied without the sender's help.
    InProgress,
    /// Recorded now; applying failed for now (`error`), and the sweeper
    /// retries it.
    Deferred { error: String },
}

/// Receives one verified delivery: records it (one conditional write keyed
/// by its id; an `Err` means it is not recorded and the sender must try
/// again), then applies it at once unless it was seen before. Everything
/// after the record is owed work: a failure there is [`Received::Deferred`],
/// never an error, because the sweeper finishes it.
pub async fn receive_delivery(
    ctx: &EventCtx<'_>,
    idp: &dyn IdentityProvider,
    delivery: &IdpDelivery,
) -> Result<Received, StoreError> {
    match ctx
        .users
        .record_delivery(delivery, ctx.now, DELIVERY_RETENTION_SECS)
        .await?
    {
        Recorded::New => {}
        Recorded::Done => return Ok(Received::Duplicate),
        Recorded::Owed => return Ok(Received::InProgress),
    }
    Ok(match process_delivery(ctx, idp, &delivery.id).await {
        Ok(Processed::Done(outcome)) => Received::Applied(outcome),
        Ok(Processed::NotDue) => Received::InProgress,
        Ok(Processed::Failed { error, .. }) => Received::Deferred { error },
        Err(e) => Received::Deferred {
            error: format!("store failed while applying: {e}"),
        },
    })
}
