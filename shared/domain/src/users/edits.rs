//! Editing a user (`PATCH /users/{id}`) and oneself (`PATCH /me`),
//! including the start of an email change.

use crate::context::{Actor, Ctx};
use crate::error::Error;
use crate::identity::new_link_token;
use crate::model::user::{Email, PendingEmail, User, UserId};
use crate::outbox::{EmailKind, OutboxEmail};
use crate::permissions::with_extension_groups;
use crate::role::Role;
use crate::users::access::{
    authorized, check_version, email_taken, existing_profile, load, profile_settings, store_err,
};
use crate::users::policy::{
    Holding, UserAction, check_account_number, check_email_change, check_grant,
};
use crate::users::recording::{bump, event, mail, noted, spend, write};
use crate::users::wire::{SelfPatch, UserEdit, UserPatch, customer_needs_account};
use serde_json::json;

/// Starts an email change: the new address must be confirmed through the
/// link sent to it; the old address is told. Same address in another case
/// is just a correction and applies at once.
fn change_email(
    ctx: &Ctx<'_>,
    current: &User,
    next: &mut User,
    new: Email,
    outbox: &mut Vec<OutboxEmail>,
) {
    if new.normalized() == current.email.normalized() {
        next.email = new;
        return;
    }
    let (random, token_hash) = new_link_token();
    // The token names its user so that verification needs no extra index.
    let token = format!("{}.{}.{}", current.tenant_id, current.id, random);
    next.pending_email = Some(PendingEmail {
        email: new.clone(),
        token_hash,
        expires_at: ctx.now + ctx.settings.email_change_ttl,
    });
    let link = format!(
        "{}/{token}",
        ctx.settings.email_verification_url.trim_end_matches('/')
    );
    outbox.push(mail(
        ctx,
        current,
        &new,
        EmailKind::EmailChangeVerification,
        json!({
            "first_name": current.first_name.as_str(),
            "link": link,
            "portal_url": ctx.settings.portal_url,
        }),
    ));
    outbox.push(mail(
        ctx,
        current,
        &current.email,
        EmailKind::EmailChangeNotice,
        json!({
            "first_name": current.first_name.as_str(),
            "new_email_masked": new.masked(),
            "portal_url": ctx.settings.portal_url,
        }),
    ));
}

/// A fresh verification link for the user's pending email change (the old
/// link stops working: only the newest token's hash is kept), with the same
/// expiry rule as a new change; only the verification mail is sent again.
/// Used to retry a verification email that failed for good
/// (`stuck_work`); `note` goes into the audit event. 409 `no_email_change`
/// when no change waits (confirmed or replaced meanwhile).
pub(crate) async fn resend_email_verification_noting(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &UserId,
    note: Option<crate::audit::FieldChange>,
) -> Result<User, Error> {
    let current = authorized(ctx, actor, UserAction::Edit, id).await?;
    let Some(pending) = current.pending_email.clone() else {
        return Err(Error::Conflict {
            code: "no_email_change",
            detail: "this user has no email change waiting for confirmation".into(),
        });
    };
    let mut next = bump(&current, ctx.now);
    let mut outbox = Vec::new();
    change_email(ctx, &current, &mut next, pending.email, &mut outbox);
    // Only the verification: the old address was told already.
    outbox.retain(|m| m.kind == EmailKind::EmailChangeVerification);
    let audit = [noted(
        event(
            ctx,
            actor.user.id.as_str(),
            "user.email_verification_resent",
            Some(&current),
            &next,
        ),
        note,
    )];
    write(ctx, Some(&current), Some(&next), &audit, &outbox).await?;
    Ok(next)
}

/// Edits a user; `If-Match` is required and a stale version is refused.
pub async fn edit_user(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &UserId,
    if_match: Option<u64>,
    patch: UserPatch,
) -> Result<User, Error> {
    let tenant = &actor.user.tenant_id;
    let current = authorized(ctx, actor, UserAction::Edit, id).await?;
    check_version(&current, if_match, true)?;

    let edit: UserEdit = (patch, ctx.catalogue).try_into()?;
    let mut next = bump(&current, ctx.now);
    if let Some(first_name) = edit.first_name {
        next.first_name = first_name;
    }
    if let Some(last_name) = edit.last_name {
        next.last_name = last_name;
    }
    let email = edit.email;
    if let Some(account_number) = edit.account_number {
        next.account_number = account_number;
    }
    if let Some(accounts) = edit.customer_accounts {
        next.customer_accounts = accounts;
    }
    if let Some(role) = edit.role {
        next.role = role;
    }
    if let Some(groups) = edit.extension_groups {
        next.extension_groups = groups;
    }
    let new_profile = match &edit.profile_id {
        Some(p) => Some(existing_profile(ctx, tenant, p).await?),
        None => None,
    };
    customer_needs_account(next.role, &next.customer_accounts)?;
    if actor.user.id == current.id && next.role != current.role {
        return Err(Error::Conflict {
            code: "cannot_act_on_self",
            detail: "you cannot change your own role; ask another admin".into(),
        });
    }
    if next.account_number != current.account_number {
        check_account_number(actor)?;
    }
    if let Some(e) = &email
        && e.as_str() != current.email.as_str()
    {
        check_email_change(actor, &current)?;
    }
    let admin = actor.user.role == Role::Admin;
    let settings = match new_profile {
        Some((id, settings)) => {
            next.profile_id = id;
            Some(settings)
        }
        None if !admin => Some(profile_settings(ctx, tenant, &next.profile_id).await?),
        None => None,
    };
    if let (Some(settings), false) = (settings, admin) {
        let permissions =
            with_extension_groups(ctx.catalogue, next.role, &settings, &next.extension_groups);
        check_grant(ctx.catalogue, actor, &Holding::of(&next, &permissions))?;
    }
    // Only accounts being added must be open (a user keeps an account
    // closed since; removing one is always allowed), and only after the
    // delegation rule, so a number outside a non-admin's reach is "not
    // yours" before its existence is looked up.
    crate::accounts::check_added_accounts_open(
        ctx.accounts,
        tenant,
        "customer_accounts",
        &next.customer_accounts,
        &current.customer_accounts,
    )
    .await?;
    let mut outbox = Vec::new();
    if let Some(e) = email {
        if e.normalized() != current.email.normalized()
            && let Some(owner) = ctx
                .users
                .find_user_by_email(tenant, &e)
                .await
                .map_err(store_err)?
            && owner.id != current.id
        {
            return Err(email_taken());
        }
        if e.normalized() != current.email.normalized() {
            spend(
                ctx,
                "email-changes",
                &actor.user,
                ctx.settings.email_changes_per_hour,
            )
            .await?;
        }
        change_email(ctx, &current, &mut next, e, &mut outbox);
    }
    let audit = [event(
        ctx,
        actor.user.id.as_str(),
        "user.updated",
        Some(&current),
        &next,
    )];
    write(ctx, Some(&current), Some(&next), &audit, &outbox).await?;
    Ok(next)
}

/// `PATCH /me`: first and last name, and the login email (verified).
pub async fn edit_self(
    ctx: &Ctx<'_>,
    actor: &Actor,
    if_match: Option<u64>,
    patch: SelfPatch,
) -> Result<User, Error> {
    let as_user_patch = UserPatch::from(patch);
    let current = load(ctx, &actor.user.tenant_id, &actor.user.id).await?;
    check_version(&current, if_match, true)?;
    // Changing one's own names and email needs no permission beyond being
    // signed in: edit as if with full rights, over these three fields only.
    let elevated = Actor {
        user: User {
            role: Role::Admin,
            ..actor.user.clone()
        },
        permissions: actor.permissions.clone(),
        reach: actor.reach.clone(),
    };
    edit_user(ctx, &elevated, &current.id, if_match, as_user_patch)
        .await
        .map_err(|e| match e {
            Error::Conflict {
                code: "cannot_act_on_self",
                ..
            } => Error::Forbidden("change your own role"),
            other => other,
        })
}
