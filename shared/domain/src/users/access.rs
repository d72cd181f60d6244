//! Which user, for what: loading a user for an action (visible to the
//! actor, changeable by them, within their reach), a held profile's
//! settings, the version a change expects, and the errors the user use
//! cases share.

use crate::context::{Actor, Ctx};
use crate::error::Error;
use crate::identity::IdpError;
use crate::ids::{ProfileId, TenantId};
use crate::model::profile::ProfileSettings;
use crate::model::user::{User, UserId};
use crate::permissions::{EffectivePermissions, with_extension_groups};
use crate::ports::StoreError;
use crate::role::Role;
use crate::users::policy::{Holding, UserAction, authorize_user, check_reach};

pub(crate) const USER: &str = "user";

pub(crate) fn store_err(e: StoreError) -> Error {
    Error::from_store(e, USER)
}

/// A held profile's settings.
pub(crate) async fn profile_settings(
    ctx: &Ctx<'_>,
    tenant: &TenantId,
    id: &ProfileId,
) -> Result<ProfileSettings, Error> {
    match ctx.profiles.get_profile(tenant, id).await {
        Ok(Some(p)) => Ok(p.settings),
        // A profile cannot be deleted while held, so this is a race with a
        // brand-new store; fall back to defaults rather than lock the user out.
        Ok(None) => Ok(ProfileSettings::defaults(ctx.catalogue)),
        Err(e) => Err(Error::from_store(e, "profile")),
    }
}

/// What `user` may do: their profile raised by their extension groups.
pub(crate) async fn permissions_of(
    ctx: &Ctx<'_>,
    user: &User,
) -> Result<EffectivePermissions, Error> {
    let settings = profile_settings(ctx, &user.tenant_id, &user.profile_id).await?;
    Ok(with_extension_groups(
        ctx.catalogue,
        user.role,
        &settings,
        &user.extension_groups,
    ))
}

/// The user `id`, loaded for `action` by `actor`: visible to them,
/// changeable by them, and (the delegation rule) holding no more than they
/// do.
pub(crate) async fn authorized(
    ctx: &Ctx<'_>,
    actor: &Actor,
    action: UserAction,
    id: &UserId,
) -> Result<User, Error> {
    let user = load(ctx, &actor.user.tenant_id, id).await?;
    authorize_user(actor, action, &user)?;
    ensure_reach(ctx, actor, action, &user).await?;
    Ok(user)
}

pub(crate) async fn ensure_reach(
    ctx: &Ctx<'_>,
    actor: &Actor,
    action: UserAction,
    user: &User,
) -> Result<(), Error> {
    if action == UserAction::View || actor.user.role == Role::Admin || actor.user.id == user.id {
        return Ok(());
    }
    let permissions = permissions_of(ctx, user).await?;
    check_reach(ctx.catalogue, actor, &Holding::of(user, &permissions))
}

pub(crate) fn idp_err(e: IdpError) -> Error {
    match e {
        IdpError::Unavailable(m) | IdpError::Throttled(m) => Error::Unavailable(m),
        IdpError::Rejected(m) => Error::Internal(format!("identity provider rejected: {m}")),
    }
}

pub(crate) async fn load(ctx: &Ctx<'_>, tenant: &TenantId, id: &UserId) -> Result<User, Error> {
    ctx.users
        .get_user(tenant, id)
        .await
        .map_err(store_err)?
        .ok_or(Error::NotFound(USER))
}

pub(crate) fn check_version(
    current: &User,
    if_match: Option<u64>,
    required: bool,
) -> Result<(), Error> {
    match if_match {
        None if required => Err(Error::PreconditionRequired(USER)),
        Some(v) if v != current.version => Err(Error::PreconditionFailed(USER)),
        _ => Ok(()),
    }
}

pub(crate) fn email_taken() -> Error {
    Error::Conflict {
        code: "email_taken",
        detail: "a user with this email address already exists in this tenant".into(),
    }
}

/// The profile named by `raw`, with its settings.
pub(crate) async fn existing_profile(
    ctx: &Ctx<'_>,
    tenant: &TenantId,
    raw: &str,
) -> Result<(ProfileId, ProfileSettings), Error> {
    let id = ProfileId::parse(raw.trim())
        .ok_or_else(|| Error::invalid("profile_id", "no such profile"))?;
    match ctx.profiles.get_profile(tenant, &id).await {
        Ok(Some(p)) => Ok((id, p.settings)),
        Ok(None) => Err(Error::invalid("profile_id", "no such profile")),
        Err(e) => Err(Error::from_store(e, "profile")),
    }
}
