//! Stuck work, as a tenant's admins see it: emails the mailer gave up on
//! (`GET /emails/failed`, retried one by one), and work owed to the
//! identity provider (`GET /identity-work`, made due now).
//!
//! Admins only: these name recipients and the provider's errors. Every read
//! goes through a per-tenant store key, never another tenant's items.
//!
//! A retry of an email that carried a link is the resend that exists for
//! it (invitation resend, password reset, a fresh email verification): a
//! new token, the old link stops working, the same checks and audit event,
//! which also names the failed email it replaces. This is the one group
//! that calls others (one way: nothing calls it).

use crate::audit::FieldChange;
use crate::context::{Actor, Ctx};
use crate::error::Error;
use crate::idp_work::{IdpWorkItem, STUCK_AFTER_ATTEMPTS};
use crate::model::user::{User, UserId, UserStatus};
use crate::outbox::{EmailKind, FailedEmail};
use crate::ports::{Page, PageRequest};
use crate::role::Role;
use crate::users::access::store_err;
use crate::users::edits::resend_email_verification_noting;
use crate::users::invitations::resend_invitation_noting;
use crate::users::passwords::reset_password_noting;
use crate::users::recording::{event, mail, noted, rfc3339, write};
use serde::Serialize;
use serde_json::json;

const FAILED_EMAIL: &str = "failed email";
const IDENTITY_WORK: &str = "identity work";

fn admin_only(actor: &Actor, what: &'static str) -> Result<(), Error> {
    if actor.user.role == Role::Admin {
        Ok(())
    } else {
        Err(Error::Forbidden(what))
    }
}

/// A failed email as listed (`GET /emails/failed`): its content (links may
/// hold one-time tokens) was dropped when it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct FailedEmailView {
    pub id: String,
    /// `invitation`, `invitation_resent`, `email_change_verification`,
    /// `email_change_notice`, `password_reset` or `suspension_notice`.
    pub kind: &'static str,
    pub user_id: String,
    pub recipient: String,
    /// The mailer's last error (no personal data).
    pub reason: String,
    /// Every attempt, the last one included.
    pub attempts: u32,
    /// RFC 3339.
    pub failed_at: String,
}

impl From<&FailedEmail> for FailedEmailView {
    fn from(f: &FailedEmail) -> Self {
        Self {
            id: f.email.id.clone(),
            kind: f.email.kind.as_str(),
            user_id: f.email.user_id.as_str().to_owned(),
            recipient: f.email.to.as_str().to_owned(),
            reason: f.reason.clone(),
            attempts: f.attempts,
            failed_at: rfc3339(f.failed_at),
        }
    }
}

/// A page of the tenant's failed emails, newest first.
pub async fn list_failed_emails(
    ctx: &Ctx<'_>,
    actor: &Actor,
    page: &PageRequest,
) -> Result<Page<FailedEmailView>, Error> {
    admin_only(actor, "see the tenant's failed emails")?;
    let failed = ctx
        .users
        .failed_outbox_of(&actor.user.tenant_id, page)
        .await
        .map_err(store_err)?;
    Ok(Page {
        items: failed.items.iter().map(FailedEmailView::from).collect(),
        next_cursor: failed.next_cursor,
    })
}

/// What a retry queued (`POST /emails/failed/{id}/retry`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RetriedEmail {
    /// The failed email, now off the list.
    pub id: String,
    pub kind: &'static str,
    pub user_id: String,
    /// Always `queued`: the mailer sends it like any new email.
    pub status: &'static str,
}

fn refuse(code: &'static str, detail: impl Into<String>) -> Error {
    Error::Conflict {
        code,
        detail: detail.into(),
    }
}

/// Re-queues a failed email in its user's current state: emails with a
/// link go through their resend (a fresh link; the old one stops working),
/// notices are written again. Refused, changing nothing, when it no longer
/// applies: 409 `user_gone` (the user was deleted), `not_invited` (the
/// invitation was accepted), `invalid_status` (a reset for a user who is
/// not active, a suspension notice for one no longer suspended),
/// `no_email_change` (the email change was confirmed or dropped).
pub async fn retry_failed_email(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &str,
) -> Result<RetriedEmail, Error> {
    admin_only(actor, "retry the tenant's failed emails")?;
    let tenant = &actor.user.tenant_id;
    let failed = ctx
        .users
        .failed_email(tenant, id)
        .await
        .map_err(store_err)?
        .ok_or(Error::NotFound(FAILED_EMAIL))?;
    let user_id = failed.email.user_id.clone();
    let Some(user) = ctx
        .users
        .get_user(tenant, &user_id)
        .await
        .map_err(store_err)?
    else {
        return Err(refuse(
            "user_gone",
            "the user this email was for has been deleted; nothing to send",
        ));
    };
    let note = Some(FieldChange {
        field: "retried_email".into(),
        before: Some(failed.email.id.clone()),
        after: None,
    });
    match failed.email.kind {
        EmailKind::Invitation | EmailKind::InvitationResent => {
            resend_invitation_noting(ctx, actor, &user_id, note).await?;
        }
        EmailKind::PasswordReset => reset_password_noting(ctx, actor, &user_id, note).await?,
        EmailKind::EmailChangeVerification => {
            resend_email_verification_noting(ctx, actor, &user_id, note).await?;
        }
        EmailKind::EmailChangeNotice | EmailKind::SuspensionNotice => {
            resend_notice(ctx, actor, &user, failed.email.kind, note).await?;
        }
    }
    // The fresh email is queued; only then does the failed one leave the
    // list. Should this step fail, the entry stays listed and a second
    // retry sends yet another fresh link (the previous one stops working),
    // never two live ones.
    ctx.users
        .retire_failed_outbox(tenant, &failed.email.id)
        .await
        .map_err(store_err)?;
    Ok(RetriedEmail {
        id: failed.email.id,
        kind: failed.email.kind.as_str(),
        user_id: user_id.as_str().to_owned(),
        status: "queued",
    })
}

/// A notice (no link) written again from the user's current state, with
/// the user unchanged (same version, as a password reset): telling someone
/// is not an edit.
async fn resend_notice(
    ctx: &Ctx<'_>,
    actor: &Actor,
    user: &User,
    kind: EmailKind,
    note: Option<FieldChange>,
) -> Result<(), Error> {
    let portal_url = ctx.portal_url(&user.tenant_id).to_owned();
    let (to, data) = match kind {
        EmailKind::SuspensionNotice => {
            if user.status != UserStatus::Suspended {
                return Err(refuse(
                    "invalid_status",
                    format!(
                        "the user is {} now, no longer suspended",
                        user.status.as_str()
                    ),
                ));
            }
            (
                user.email.clone(),
                json!({"first_name": user.first_name.as_str(), "portal_url": portal_url}),
            )
        }
        _ => {
            let Some(pending) = &user.pending_email else {
                return Err(refuse(
                    "no_email_change",
                    "this user has no email change waiting for confirmation",
                ));
            };
            (
                user.email.clone(),
                json!({
                    "first_name": user.first_name.as_str(),
                    "new_email_masked": pending.email.masked(),
                    "portal_url": portal_url,
                }),
            )
        }
    };
    let audit = [noted(
        event(
            ctx,
            actor.user.id.as_str(),
            "email.resent",
            Some(user),
            user,
        ),
        note,
    )];
    write(
        ctx,
        Some(user),
        Some(user),
        &audit,
        &[mail(ctx, user, &to, kind, data)],
    )
    .await
}

/// A user's owed identity-provider work as listed (`GET /identity-work`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct IdentityWorkView {
    /// The work's id: there is at most one record per user, so it is the
    /// user's id (`POST /identity-work/{id}/retry`).
    pub id: String,
    pub user_id: String,
    /// `sync` (push the user's state) or `delete` (the login goes).
    pub operation: &'static str,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Why the last attempt failed (no personal data).
    pub last_error: Option<String>,
    /// Not before (RFC 3339): the end of its backoff, or now when due (the
    /// worker or the sweeper's next pass runs it).
    pub next_attempt: String,
    /// Past the alarm threshold (the attempts the deployment's alarm counts).
    pub stuck: bool,
}

impl IdentityWorkView {
    /// As of `now`: work due at once (stored due time 0, or past) is shown
    /// as due `now`.
    pub fn of(w: &IdpWorkItem, now: time::OffsetDateTime) -> Self {
        Self {
            id: w.work.user_id.as_str().to_owned(),
            user_id: w.work.user_id.as_str().to_owned(),
            operation: w.work.op.as_str(),
            attempts: w.attempts,
            last_error: w.last_error.clone(),
            next_attempt: rfc3339(w.due_at.max(now)),
            stuck: w.attempts >= STUCK_AFTER_ATTEMPTS,
        }
    }
}

/// A page of the tenant's owed identity-provider work (not done), by user.
pub async fn list_identity_work(
    ctx: &Ctx<'_>,
    actor: &Actor,
    page: &PageRequest,
) -> Result<Page<IdentityWorkView>, Error> {
    admin_only(actor, "see the tenant's identity-provider work")?;
    let work = ctx
        .users
        .idp_work_of_tenant(&actor.user.tenant_id, page)
        .await
        .map_err(store_err)?;
    Ok(Page {
        items: work
            .items
            .iter()
            .map(|w| IdentityWorkView::of(w, ctx.now))
            .collect(),
        next_cursor: work.next_cursor,
    })
}

/// Makes a user's owed work due now (its backoff dropped, attempts kept):
/// the worker or sweeper runs it on its next pass. Audited. 404 when the
/// user owes nothing.
pub async fn retry_identity_work(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &UserId,
) -> Result<IdentityWorkView, Error> {
    admin_only(actor, "retry the tenant's identity-provider work")?;
    let tenant = &actor.user.tenant_id;
    let audit = crate::audit::AuditEvent::new(
        tenant,
        actor.user.id.as_str(),
        "identity_work.retried",
        Some(id),
        ctx.request_id,
        ctx.now,
    );
    let item = ctx
        .users
        .retry_idp_work_now(tenant, id, &audit)
        .await
        .map_err(store_err)?
        .ok_or(Error::NotFound(IDENTITY_WORK))?;
    Ok(IdentityWorkView::of(&item, ctx.now))
}
