//! Who is calling: the tenant admission and the caller's user, read in one
//! go through [`CallerStore`], and their effective permissions.
//!
//! What one request costs (DynamoDB round trips): an admin 1 (the tenant
//! record and the subject item, one `BatchGetItem`), a customer 2 (then
//! their profile), a sales rep or partner 3 (their profile and, at the same
//! time, every served account's subtree, all at once: its path by key, then
//! one `begins_with` Query per 100 descendants — so a rep serving one
//! account makes 4 calls, one serving n accounts 2 + 2n, in 3 round trips
//! while each subtree is under 100). Nothing is cached across
//! requests: a suspension, a deletion, a closed tenant, a profile edit and
//! an account moved under (or away from) a rep's account all apply to the
//! very next request.
//!
//! Why the reach is read here, once, and not where a rule needs it: the
//! policy stays pure (it asks [`Actor::serves`]), every route a rep calls
//! (lists, gets, invites, edits, batches, bulk rows) sees the same reach,
//! and a batch of 100 operations pays for it once.

use crate::TenantId;
use crate::context::{Actor, Ctx, tenant_closed};
use crate::error::Error;
use crate::model::tenant::TenantStatus;
use crate::model::user::{User, UserStatus};
use crate::permissions::{EffectivePermissions, with_extension_groups};
use crate::ports::CallerStore;
use crate::role::Role;
use crate::users::access::profile_settings;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

/// The caller behind a verified token (`tenant`, `subject`): the request's
/// context admitted to the tenant (403 `tenant_closed` if it is not open;
/// its record carried for this request only), and the actor, who must be a
/// user of the tenant (403 `unknown_user`) and active (403
/// `user_suspended`, `user_not_active`). The role is the record's, never a
/// claim.
///
/// An admin's profile is not read: every authorization rule lets an admin
/// through before it looks at permissions, so an admin's `permissions` are
/// left empty (a rule that did look would refuse, not allow); what shows
/// them (`/me`, [`me`]) reads them.
pub async fn signed_in<'a>(
    ctx: &Ctx<'a>,
    callers: &dyn CallerStore,
    tenant: &TenantId,
    subject: &str,
) -> Result<(Ctx<'a>, Actor), Error> {
    let records = callers
        .caller(tenant, subject)
        .await
        .map_err(|e| Error::from_store(e, "user"))?;
    // Closed tenants are refused before anything is said about their users.
    if let Some(t) = &records.tenant
        && t.status != TenantStatus::Active
    {
        return Err(tenant_closed());
    }
    let ctx = Ctx {
        tenant: records.tenant.map(Arc::new),
        ..ctx.clone()
    };
    let user = records
        .user
        .filter(|u| &u.tenant_id == tenant && u.idp_subject.as_deref() == Some(subject))
        .ok_or_else(|| Error::AccessDenied {
            code: "unknown_user",
            detail: "your sign-in is valid but you are not a user of this portal".into(),
        })?;
    ensure_active(&user)?;
    if user.role == Role::Admin {
        let permissions = EffectivePermissions {
            role: Role::Admin,
            settings: Default::default(),
        };
        return Ok((ctx, Actor::new(user, permissions)));
    }
    let actor = loaded_actor(&ctx, user).await?;
    Ok((ctx, actor))
}

/// A non-admin's permissions and reach, read at the same time.
pub(crate) async fn loaded_actor(ctx: &Ctx<'_>, user: User) -> Result<Actor, Error> {
    let (permissions, reach) = join(
        permissions_of(ctx, &user),
        crate::accounts::reach_of(ctx.accounts, &user),
    )
    .await;
    let mut actor = Actor::new(user, permissions?);
    actor.reach = reach?;
    Ok(actor)
}

/// `/me`: the actor's own record as stored now (with the last sign-in,
/// which the caller lookup does not read) and their effective permissions
/// (an admin's too): two reads, at once.
pub async fn me(ctx: &Ctx<'_>, actor: &Actor) -> Result<(User, EffectivePermissions), Error> {
    let me = &actor.user;
    let (user, settings) = join(
        ctx.users.get_user(&me.tenant_id, &me.id),
        profile_settings(ctx, &me.tenant_id, &me.profile_id),
    )
    .await;
    let user = user
        .map_err(|e| Error::from_store(e, "user"))?
        .ok_or(Error::NotFound("user"))?;
    // The profile read above is the one the actor held; if it moved in
    // between, read the one the user holds now.
    let settings = if user.profile_id == me.profile_id {
        settings?
    } else {
        profile_settings(ctx, &user.tenant_id, &user.profile_id).await?
    };
    let permissions =
        with_extension_groups(ctx.catalogue, user.role, &settings, &user.extension_groups);
    Ok((user, permissions))
}

/// A user may act only while active.
pub(crate) fn ensure_active(user: &User) -> Result<(), Error> {
    match user.status {
        UserStatus::Active => Ok(()),
        UserStatus::Suspended => Err(Error::AccessDenied {
            code: "user_suspended",
            detail: "your access to this portal is suspended; contact your administrator".into(),
        }),
        UserStatus::Invited => Err(Error::AccessDenied {
            code: "user_not_active",
            detail: "finish setting your password from your invitation first".into(),
        }),
    }
}

/// What `user` may do: their profile (read now) raised by their groups.
async fn permissions_of(ctx: &Ctx<'_>, user: &User) -> Result<EffectivePermissions, Error> {
    let settings = profile_settings(ctx, &user.tenant_id, &user.profile_id).await?;
    Ok(with_extension_groups(
        ctx.catalogue,
        user.role,
        &settings,
        &user.extension_groups,
    ))
}

/// Both futures, polled together (the domain links no async runtime).
pub(crate) async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut out_a, mut out_b) = (None, None);
    poll_fn(|cx| {
        if out_a.is_none()
            && let Poll::Ready(v) = a.as_mut().poll(cx)
        {
            out_a = Some(v);
        }
        if out_b.is_none()
            && let Poll::Ready(v) = b.as_mut().poll(cx)
        {
            out_b = Some(v);
        }
        if out_a.is_some() && out_b.is_some() {
            Poll::Ready((out_a.take().unwrap(), out_b.take().unwrap()))
        } else {
            Poll::Pending
        }
    })
    .await
}
