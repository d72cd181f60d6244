//! Invitations: inviting one user (a bulk job invites row by row through
//! [`invite_with_id`]), resending and revoking, and the invitee's side —
//! opening the link and accepting it.

use crate::audit::FieldChange;
use crate::context::{Actor, Ctx};
use crate::error::Error;
use crate::identity::{IdentityProvider, IdpAccount, SetupLink, hash_link_token, new_link_token};
use crate::idp_work::IdpOp;
use crate::ids::{ProfileId, TenantId};
use crate::model::user::{AccountNumber, Invitation, InvitationState, User, UserId, UserStatus};
use crate::outbox::{EmailKind, OutboxEmail};
use crate::permissions::with_extension_groups;
use crate::ports::PageRequest;
use crate::role::Role;
use crate::users::access::{
    authorized, email_taken, ensure_reach, existing_profile, idp_err, store_err,
};
use crate::users::policy::{
    Holding, UserAction, authorize_invite, authorize_user, check_account_number, check_grant,
};
use crate::users::recording::{bump, event, mail, noted, rfc3339, spend_invitation, write};
use crate::users::wire::{InviteRequest, Invitee, customer_needs_account};
use serde_json::json;
use time::OffsetDateTime;

// ------------------------------------------------------------------ invite

/// Invites one user: stored as `invited` with an invitation link that
/// expires, and the invitation email queued in the same write. An address
/// already in the tenant is a conflict — unless its owner is an invited user
/// whose invitation expired or was revoked: then this is a fresh invite.
pub async fn invite(ctx: &Ctx<'_>, actor: &Actor, req: InviteRequest) -> Result<User, Error> {
    invite_with_id(ctx, actor, req, None)
        .await
        .map(|(user, _)| user)
}

/// Whether [`invite_with_id`] invited now or found its own earlier invite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invited {
    Now,
    /// The user with this id already exists for this address: invited by
    /// an earlier run of the same work (a bulk job resumed after a crash).
    Before,
}

/// [`invite`] with the new user's id chosen by the caller (a bulk job
/// derives it from the job and the row): if the address already belongs to
/// the user with that id, nothing is written and the answer is
/// [`Invited::Before`], so redoing the work never invites twice.
pub async fn invite_with_id(
    ctx: &Ctx<'_>,
    actor: &Actor,
    req: InviteRequest,
    id: Option<UserId>,
) -> Result<(User, Invited), Error> {
    let tenant = &actor.user.tenant_id;
    let Invitee {
        first_name,
        last_name,
        email,
        role,
        profile_id,
        extension_groups: groups,
        customer_accounts: accounts,
        account_number,
    } = (req, ctx.catalogue).try_into()?;
    customer_needs_account(role, &accounts)?;
    if account_number.is_some() {
        check_account_number(actor)?;
    }
    let profile_id = check_invite(ctx, actor, role, &profile_id, &accounts, &groups).await?;

    let existing = ctx
        .users
        .find_user_by_email(tenant, &email)
        .await
        .map_err(store_err)?;
    if let (Some(found), Some(wanted)) = (&existing, &id)
        && &found.id == wanted
    {
        return Ok((found.clone(), Invited::Before));
    }
    if let Some(found) = &existing {
        reinvitable(ctx, actor, found).await?;
    }
    let (token, invitation) = fresh_invitation(ctx, tenant);
    let user = User {
        tenant_id: tenant.clone(),
        id: existing
            .as_ref()
            .map(|u| u.id.clone())
            .or(id)
            .unwrap_or_else(UserId::generate),
        email,
        pending_email: None,
        first_name,
        last_name,
        account_number,
        customer_accounts: accounts,
        role,
        profile_id,
        extension_groups: groups,
        status: UserStatus::Invited,
        idp_subject: None,
        invitation: Some(invitation),
        version: existing.as_ref().map(|u| u.version + 1).unwrap_or(1),
        created_at: existing.as_ref().map(|u| u.created_at).unwrap_or(ctx.now),
        updated_at: ctx.now,
        last_login_at: None,
    };
    let action = if existing.is_some() {
        "user.reinvited"
    } else {
        "user.invited"
    };
    let audit = [event(
        ctx,
        actor.user.id.as_str(),
        action,
        existing.as_ref(),
        &user,
    )];
    let outbox = [invitation_mail(
        ctx,
        &actor.user,
        &user,
        &token,
        EmailKind::Invitation,
    )];
    spend_invitation(ctx, actor).await?;
    write(ctx, existing.as_ref(), Some(&user), &audit, &outbox).await?;
    Ok((user, Invited::Now))
}

/// May `actor` invite someone with this role, profile, accounts and
/// groups? The delegation rule, as [`invite`] applies it (a bulk dry run asks
/// the same), then the accounts: each must be in the directory and open
/// (422 naming each that is not; one batched read). Answers the profile's
/// id.
pub async fn check_invite(
    ctx: &Ctx<'_>,
    actor: &Actor,
    role: Role,
    profile: &str,
    accounts: &[AccountNumber],
    groups: &[String],
) -> Result<ProfileId, Error> {
    authorize_invite(actor)?;
    let (profile_id, settings) = existing_profile(ctx, &actor.user.tenant_id, profile).await?;
    let permissions = with_extension_groups(ctx.catalogue, role, &settings, groups);
    check_grant(
        ctx.catalogue,
        actor,
        &Holding {
            role,
            customer_accounts: accounts,
            extension_groups: groups,
            permissions: &permissions,
        },
    )?;
    // After the delegation rule, on purpose: a number outside a non-admin's
    // reach is refused as not theirs (403 `account_not_served`) before
    // anything is read, so the 422 below never tells them which numbers
    // exist elsewhere in the directory.
    crate::accounts::check_accounts_open(
        ctx.accounts,
        &actor.user.tenant_id,
        "customer_accounts",
        accounts,
    )
    .await?;
    Ok(profile_id)
}

/// How a bulk dry run reports an address that belongs to a user already:
/// `true` when inviting it would be refused as taken. A user the actor
/// cannot see is not revealed: that row reads as invitable (and the job
/// then reports it as taken, as a single invite answers 409).
pub async fn address_taken_for(ctx: &Ctx<'_>, actor: &Actor, existing: &User) -> bool {
    crate::users::policy::can_see(actor, existing)
        && reinvitable(ctx, actor, existing).await.is_err()
}

/// May the address of `existing` be invited afresh by `actor`? Only an
/// invited user whose invitation expired or was revoked — or, for an
/// admin, one who accepted but has not set a password yet — and only by an
/// actor who may resend that user's invitation. Anything else is the same
/// 409 `email_taken`, whether or not the actor can see the user.
async fn reinvitable(ctx: &Ctx<'_>, actor: &Actor, existing: &User) -> Result<(), Error> {
    let admin = actor.user.role == Role::Admin;
    let dead = existing.status == UserStatus::Invited
        && match &existing.invitation {
            None => true,
            Some(i) => match i.state {
                InvitationState::Pending => i.is_expired(ctx.now),
                InvitationState::Revoked => true,
                InvitationState::Accepted => admin,
            },
        };
    let may = dead
        && authorize_user(actor, UserAction::ResendInvitation, existing).is_ok()
        && ensure_reach(ctx, actor, UserAction::ResendInvitation, existing)
            .await
            .is_ok();
    if may { Ok(()) } else { Err(email_taken()) }
}

/// A new link (the old one stops working) with a fresh expiry.
pub async fn resend_invitation(ctx: &Ctx<'_>, actor: &Actor, id: &UserId) -> Result<User, Error> {
    resend_invitation_noting(ctx, actor, id, None).await
}

/// [`resend_invitation`], its audit event also carrying `note` (a retry of
/// a failed email names the email it replaces: see `stuck_work`).
pub(crate) async fn resend_invitation_noting(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &UserId,
    note: Option<FieldChange>,
) -> Result<User, Error> {
    let current = authorized(ctx, actor, UserAction::ResendInvitation, id).await?;
    if current.status != UserStatus::Invited {
        return Err(Error::Conflict {
            code: "not_invited",
            detail: "this user has already accepted their invitation".into(),
        });
    }
    let (token, invitation) = fresh_invitation(ctx, &current.tenant_id);
    let mut next = bump(&current, ctx.now);
    next.invitation = Some(invitation);
    next.idp_subject = current.idp_subject.clone();
    let audit = [noted(
        event(
            ctx,
            actor.user.id.as_str(),
            "invitation.resent",
            Some(&current),
            &next,
        ),
        note,
    )];
    let outbox = [invitation_mail(
        ctx,
        &actor.user,
        &next,
        &token,
        EmailKind::InvitationResent,
    )];
    spend_invitation(ctx, actor).await?;
    write(ctx, Some(&current), Some(&next), &audit, &outbox).await?;
    Ok(next)
}

/// The link stops working and says it was revoked. The invited user stays
/// (so their details are kept for a later resend) until deleted. An
/// invitation already accepted (the person has a login but has not set a
/// password yet) can be revoked too: the login it created is deleted (owed
/// work, see [`crate::idp_work::owed_work`]), so a password set on it later
/// activates nobody.
pub async fn revoke_invitation(ctx: &Ctx<'_>, actor: &Actor, id: &UserId) -> Result<User, Error> {
    let current = authorized(ctx, actor, UserAction::RevokeInvitation, id).await?;
    let revocable = current.invitation.as_ref().is_some_and(|i| {
        matches!(
            i.state,
            InvitationState::Pending | InvitationState::Accepted
        )
    });
    if current.status != UserStatus::Invited || !revocable {
        return Err(Error::Conflict {
            code: "no_pending_invitation",
            detail: "this user has no pending invitation to revoke".into(),
        });
    }
    let mut next = bump(&current, ctx.now);
    if let Some(inv) = next.invitation.as_mut() {
        inv.state = InvitationState::Revoked;
    }
    next.idp_subject = None;
    let audit = [event(
        ctx,
        actor.user.id.as_str(),
        "invitation.revoked",
        Some(&current),
        &next,
    )];
    write(ctx, Some(&current), Some(&next), &audit, &[]).await?;
    Ok(next)
}

/// Where an invitation link stands when someone opens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Usable: accepting it leads to the password page (also after an
    /// accept whose password was never set).
    Pending,
    /// Past its date: the invitee asks for a new one.
    Expired,
    /// Withdrawn by an administrator.
    Revoked,
    /// Accepted and the password set: the invitee signs in instead.
    Used,
}

impl LinkState {
    /// What accepting a link in this state answers: `None` when it works.
    pub fn refusal(self) -> Option<Error> {
        match self {
            LinkState::Pending => None,
            LinkState::Revoked => Some(Error::Gone {
                code: "invitation_revoked",
                detail: "this invitation was revoked; ask your administrator for a new one".into(),
            }),
            LinkState::Used => Some(Error::Gone {
                code: "invitation_used",
                detail: "this invitation was already used; sign in with your email and password"
                    .into(),
            }),
            LinkState::Expired => Some(Error::Gone {
                code: "invitation_expired",
                detail: "this invitation has expired; ask your administrator to send a new one"
                    .into(),
            }),
        }
    }
}

/// What an invitation link shows before anyone acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationView {
    pub tenant: TenantId,
    pub state: LinkState,
    pub first_name: String,
    pub masked_email: String,
    pub expires_at: OffsetDateTime,
    /// Who sent the invitation (the newest invite or resend), while they
    /// are an active user of the tenant; `None` otherwise, and for a used
    /// link (nobody needs to be asked for anything).
    pub inviter_name: Option<String>,
}

fn link_state(user: &User, inv: &Invitation, now: OffsetDateTime) -> LinkState {
    match inv.state {
        InvitationState::Revoked => LinkState::Revoked,
        InvitationState::Accepted if user.status != UserStatus::Invited => LinkState::Used,
        // An accepted link (password not set yet) expires with its
        // invitation too.
        _ if inv.is_expired(now) => LinkState::Expired,
        _ => LinkState::Pending,
    }
}

/// The user whose current invitation link this is (a replaced link finds
/// nobody).
async fn invitation_holder(ctx: &Ctx<'_>, token: &str) -> Result<Option<User>, Error> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let user = ctx
        .users
        .find_user_by_invitation(&hash_link_token(token))
        .await
        .map_err(store_err)?;
    Ok(user.filter(|u| u.invitation.is_some()))
}

/// The invited user behind a live link, and the context admitted to their
/// tenant (its own settings and portal apply from here on).
async fn invitation_user<'a>(ctx: &Ctx<'a>, token: &str) -> Result<(User, Ctx<'a>), Error> {
    let user = invitation_holder(ctx, token)
        .await?
        .ok_or_else(invitation_not_found)?;
    // A closed tenant's invitations cannot be accepted.
    let admitted = ctx.admitted(&user.tenant_id).await?;
    let state = user
        .invitation
        .as_ref()
        .map_or(LinkState::Pending, |inv| link_state(&user, inv, ctx.now));
    match state.refusal() {
        Some(e) => Err(e),
        None => Ok((user, admitted)),
    }
}

/// Unknown, or replaced by a newer link: the same answer for both.
pub fn invitation_not_found() -> Error {
    Error::NotFound("invitation")
}

/// The name of who sent the user's invitation, from the audit trail (the
/// newest invite, re-invite or resend), if they are still an active user.
/// Best effort: a failed lookup shows no name rather than no page.
async fn inviter_name(ctx: &Ctx<'_>, user: &User) -> Option<String> {
    let events = ctx
        .users
        .list_audit(&user.tenant_id, Some(&user.id), &PageRequest::first(25))
        .await
        .ok()?;
    let actor = events
        .items
        .iter()
        .find(|e| {
            matches!(
                e.action.as_str(),
                "user.invited" | "user.reinvited" | "invitation.resent"
            )
        })
        .and_then(|e| UserId::parse(&e.actor))?;
    let inviter = ctx.users.get_user(&user.tenant_id, &actor).await.ok()??;
    (inviter.status == UserStatus::Active).then(|| inviter.full_name())
}

/// Opening the link: reads only, so a mail scanner following it consumes
/// nothing. `None`: no such link (never issued, or replaced by a newer
/// one) — one answer for both, so it reveals nothing.
pub async fn view_invitation(ctx: &Ctx<'_>, token: &str) -> Result<Option<InvitationView>, Error> {
    let Some(user) = invitation_holder(ctx, token).await? else {
        return Ok(None);
    };
    let Some(inv) = user.invitation.as_ref() else {
        return Ok(None);
    };
    // A closed tenant's link offers nothing to accept.
    ctx.admitted(&user.tenant_id).await?;
    let state = link_state(&user, inv, ctx.now);
    let inviter_name = match state {
        LinkState::Used => None,
        _ => inviter_name(ctx, &user).await,
    };
    Ok(Some(InvitationView {
        tenant: user.tenant_id.clone(),
        state,
        first_name: user.first_name.as_str().to_owned(),
        masked_email: user.email.masked(),
        expires_at: inv.expires_at,
        inviter_name,
    }))
}

/// Accepting (an explicit POST): creates or finds the login at the identity
/// provider — the first time the provider hears of this person — and
/// returns where they set their password. Accepting again before the
/// password is set gives a fresh link. The link works no longer than the
/// invitation, and returns the person to their portal's sign-in.
pub async fn accept_invitation(
    ctx: &Ctx<'_>,
    idp: &dyn IdentityProvider,
    token: &str,
) -> Result<String, Error> {
    let (current, admitted) = invitation_user(ctx, token).await?;
    let ctx = &admitted;
    let subject = match &current.idp_subject {
        Some(s) => s.clone(),
        None => login_for(ctx, idp, &current).await?,
    };
    let mut next = bump(&current, ctx.now);
    next.idp_subject = Some(subject.clone());
    if let Some(inv) = next.invitation.as_mut() {
        inv.state = InvitationState::Accepted;
        inv.accepted_at.get_or_insert(ctx.now);
    }
    if next != bump(&current, ctx.now) || current.idp_subject.is_none() {
        let audit = [event(
            ctx,
            "anonymous:invitee",
            "invitation.accepted",
            Some(&current),
            &next,
        )];
        write(ctx, Some(&current), Some(&next), &audit, &[]).await?;
    }
    let valid_for = next
        .invitation
        .as_ref()
        .map(|i| i.expires_at - ctx.now)
        .filter(|d| d.is_positive());
    idp.password_setup_link(
        &next,
        &subject,
        &SetupLink {
            portal_url: ctx.portal_url(&next.tenant_id),
            valid_for,
        },
    )
    .await
    .map_err(idp_err)
}

/// The invitee's login: a new one, or the one their address has.
///
/// Created first, looked up only when the address has a login already
/// (`create_login` answers `None`, Auth0's 409): an accept costs 2 Auth0
/// calls (create, ticket) instead of 3 (find, create, ticket), and the
/// Management API's rate limit is per Auth0 tenant (see the README's
/// "Auth0 rate limits"). An existing login is handled as before:
///
/// A login that names an earlier user record of this tenant (the person was
/// deleted and invited again) is relinked to this one, unless that login is
/// still about to be deleted (its delete is owed: relinking it would lose
/// this user's login with it; the person tries again once the delete is
/// done), or the earlier user still exists and holds it (an email change
/// not yet pushed to the provider: it is theirs).
async fn login_for(
    ctx: &Ctx<'_>,
    idp: &dyn IdentityProvider,
    user: &User,
) -> Result<String, Error> {
    // Twice: a login that exists but is not visible to the lookup yet, or
    // that was deleted between our create and our lookup, is settled the
    // second time round.
    for _ in 0..2 {
        if let Some(subject) = idp.create_login(user).await.map_err(idp_err)? {
            return Ok(subject);
        }
        let Some(login) = idp.find_login(user).await.map_err(idp_err)? else {
            continue;
        };
        if delete_owed(ctx, user, &login).await? {
            return Err(Error::Unavailable(
                "the previous login of this address is still being removed; try again in a minute"
                    .into(),
            ));
        }
        if login.user_id.as_deref() == Some(user.id.as_str()) {
            return Ok(login.subject);
        }
        if let Some(owner) = login.user_id.as_deref().and_then(UserId::parse)
            && let Some(other) = ctx
                .users
                .get_user(&user.tenant_id, &owner)
                .await
                .map_err(store_err)?
            && other.idp_subject.as_deref() == Some(login.subject.as_str())
        {
            return Err(Error::Conflict {
                code: "login_in_use",
                detail: "this address's login still belongs to another user of this portal".into(),
            });
        }
        if idp
            .relink_login(&login.subject, user)
            .await
            .map_err(idp_err)?
        {
            return Ok(login.subject);
        }
    }
    Err(Error::Unavailable(
        "the login for this address is not visible yet; try again".into(),
    ))
}

/// Whether `login` has a delete owed (by the user it names).
async fn delete_owed(ctx: &Ctx<'_>, user: &User, login: &IdpAccount) -> Result<bool, Error> {
    let Some(owner) = login.user_id.as_deref().and_then(UserId::parse) else {
        return Ok(false);
    };
    let record = ctx
        .users
        .idp_work_of(&user.tenant_id, &owner)
        .await
        .map_err(store_err)?;
    Ok(record
        .is_some_and(|r| !r.done && r.work.op == IdpOp::Delete && r.work.subject == login.subject))
}

fn invitation_mail(
    ctx: &Ctx<'_>,
    inviter: &User,
    user: &User,
    token: &str,
    kind: EmailKind,
) -> OutboxEmail {
    let expires = user
        .invitation
        .as_ref()
        .map(|i| rfc3339(i.expires_at))
        .unwrap_or_default();
    mail(
        ctx,
        user,
        &user.email,
        kind,
        json!({
            "first_name": user.first_name.as_str(),
            "inviter_name": inviter.full_name(),
            "tenant": user.tenant_id.as_str(),
            "link": format!("{}/{token}", ctx.settings.invitation_url.trim_end_matches('/')),
            "expires_at": expires,
            "portal_url": ctx.settings.portal_url,
        }),
    )
}

fn fresh_invitation(ctx: &Ctx<'_>, tenant: &TenantId) -> (String, Invitation) {
    let (token, token_hash) = new_link_token();
    (
        token,
        Invitation {
            token_hash,
            state: InvitationState::Pending,
            expires_at: ctx.now + ctx.invitation_ttl(tenant),
            sent_at: ctx.now,
            accepted_at: None,
        },
    )
}
