//! Profile use cases: authorize, then read the body and validate, then
//! one store call (two for an edit: read, then conditional write). They
//! take the same [`Ctx`] and [`Actor`] as the user use cases.
//!
//! A body is handed over unread (`body`: a closure that parses it): the
//! policy decides before anything the caller sent is looked at, so a
//! caller who may not act gets 403 whatever they sent.

pub mod policy;

use crate::catalogue::Catalogue;
use crate::context::{Actor, Ctx};
use crate::error::Error;
use crate::ids::{ProfileId, TenantId};
use crate::model::profile::{
    NewProfile, Profile, ProfileName, ProfilePatch, ProfileSettings, parse_description,
};
use crate::ports::{Page, PageRequest, ProfileStore, StoreError};
use policy::{ProfileAction, authorize};
use time::OffsetDateTime;

const PROFILE: &str = "profile";

/// The settings catalogue: what a frontend needs to draw the profile
/// editor. Everyone signed in may read it.
pub fn catalogue(ctx: &Ctx<'_>, actor: &Actor) -> Result<&'static Catalogue, Error> {
    authorize(actor, ProfileAction::ViewCatalogue)?;
    Ok(ctx.catalogue)
}

pub async fn create_profile<E: From<Error>>(
    ctx: &Ctx<'_>,
    actor: &Actor,
    body: impl FnOnce() -> Result<NewProfile, E>,
) -> Result<Profile, E> {
    authorize(actor, ProfileAction::CreateProfile)?;
    let input = body()?;
    Ok(insert_new(
        ctx.profiles,
        ctx.catalogue,
        &actor.user.tenant_id,
        input,
        ctx.now,
    )
    .await?)
}

/// A new profile of `tenant`, every setting at its default, whoever asks
/// (the caller is authorized already: an admin, or the operator creating a
/// tenant's `Standard` profile).
pub(crate) async fn insert_new(
    store: &dyn ProfileStore,
    catalogue: &Catalogue,
    tenant: &TenantId,
    input: NewProfile,
    now: OffsetDateTime,
) -> Result<Profile, Error> {
    let mut errors = Vec::new();
    let name = ProfileName::parse(&input.name)
        .map_err(|e| errors.push(e))
        .ok();
    let description = parse_description(input.description.as_deref())
        .map_err(|e| errors.push(e))
        .ok();
    let (Some(name), Some(description)) = (name, description) else {
        return Err(Error::Validation(errors));
    };
    let profile = Profile {
        tenant_id: tenant.clone(),
        id: ProfileId::generate(),
        name,
        description,
        settings: ProfileSettings::defaults(catalogue),
        version: 1,
        holder_count: 0,
        created_at: now,
        updated_at: now,
    };
    match store.insert_profile(&profile).await {
        Ok(()) => Ok(profile),
        Err(StoreError::NameTaken) => Err(name_taken(&profile.name)),
        Err(e) => Err(Error::from_store(e, PROFILE)),
    }
}

/// `page` is read once the caller may list (like a body: a non-admin's
/// malformed query is refused as forbidden, not as invalid).
pub async fn list_profiles<E: From<Error>>(
    ctx: &Ctx<'_>,
    actor: &Actor,
    page: impl FnOnce() -> Result<PageRequest, E>,
) -> Result<Page<Profile>, E> {
    authorize(actor, ProfileAction::ListProfiles)?;
    let page = page()?;
    Ok(ctx
        .profiles
        .list_profiles(&actor.user.tenant_id, &page)
        .await
        .map_err(|e| Error::from_store(e, PROFILE))?)
}

/// `id` as it came (a path segment): one that is not a profile id names no
/// profile (404), once the caller may look at all.
pub async fn get_profile(ctx: &Ctx<'_>, actor: &Actor, id: &str) -> Result<Profile, Error> {
    authorize(actor, ProfileAction::ViewProfile)?;
    let id = profile_id(id)?;
    ctx.profiles
        .get_profile(&actor.user.tenant_id, &id)
        .await
        .map_err(|e| Error::from_store(e, PROFILE))?
        .ok_or(Error::NotFound(PROFILE))
}

/// Applies `patch` if `if_match` is the current version. A stale version is
/// refused (never merged) and nothing changes.
pub async fn update_profile<E: From<Error>>(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &str,
    if_match: Option<u64>,
    body: impl FnOnce() -> Result<ProfilePatch, E>,
) -> Result<Profile, E> {
    authorize(actor, ProfileAction::EditProfile)?;
    let id = &profile_id(id)?;
    let patch = body()?;
    let store = ctx.profiles;
    let expected = if_match.ok_or(Error::PreconditionRequired(PROFILE))?;
    let current = store
        .get_profile(&actor.user.tenant_id, id)
        .await
        .map_err(|e| Error::from_store(e, PROFILE))?
        .ok_or(Error::NotFound(PROFILE))?;
    if current.version != expected {
        return Err(Error::PreconditionFailed(PROFILE).into());
    }
    let updated = current.patched(ctx.catalogue, &patch, ctx.now)?;
    match store.update_profile(&current, &updated).await {
        Ok(()) => Ok(updated),
        Err(StoreError::NameTaken) => Err(name_taken(&updated.name).into()),
        Err(e) => Err(Error::from_store(e, PROFILE).into()),
    }
}

/// Deletes a profile no user holds. `if_match` is optional here: a delete
/// without it removes whatever version is current.
pub async fn delete_profile(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &str,
    if_match: Option<u64>,
) -> Result<(), Error> {
    authorize(actor, ProfileAction::DeleteProfile)?;
    let id = &profile_id(id)?;
    match ctx
        .profiles
        .delete_profile(&actor.user.tenant_id, id, if_match)
        .await
    {
        Ok(()) => Ok(()),
        Err(StoreError::InUse { holders }) => Err(Error::Conflict {
            code: "profile_in_use",
            detail: format!(
                "{holders} user(s) still hold this profile; assign them another profile first"
            ),
        }),
        Err(e) => Err(Error::from_store(e, PROFILE)),
    }
}

/// A path id that is not a ULID cannot name any profile.
fn profile_id(raw: &str) -> Result<ProfileId, Error> {
    ProfileId::parse(raw).ok_or(Error::NotFound(PROFILE))
}

fn name_taken(name: &ProfileName) -> Error {
    Error::Conflict {
        code: "profile_name_taken",
        detail: format!("a profile named \"{}\" already exists", name.as_str()),
    }
}
