//! Profile use cases: authorize, validate, then one store call (two for an
//! edit: read, then conditional write).

use crate::catalogue::Catalogue;
use crate::error::Error;
use crate::ids::ProfileId;
use crate::policy::{Action, Caller, authorize};
use crate::ports::{Page, PageRequest, ProfileStore, StoreError};
use crate::profile::{
    NewProfile, Profile, ProfileName, ProfilePatch, ProfileSettings, parse_description,
};
use time::OffsetDateTime;

const PROFILE: &str = "profile";

pub async fn create_profile(
    store: &dyn ProfileStore,
    catalogue: &Catalogue,
    caller: &Caller,
    input: NewProfile,
    now: OffsetDateTime,
) -> Result<Profile, Error> {
    authorize(caller, Action::CreateProfile)?;
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
        tenant_id: caller.tenant_id.clone(),
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

pub async fn list_profiles(
    store: &dyn ProfileStore,
    caller: &Caller,
    page: &PageRequest,
) -> Result<Page<Profile>, Error> {
    authorize(caller, Action::ListProfiles)?;
    store
        .list_profiles(&caller.tenant_id, page)
        .await
        .map_err(|e| Error::from_store(e, PROFILE))
}

pub async fn get_profile(
    store: &dyn ProfileStore,
    caller: &Caller,
    id: &ProfileId,
) -> Result<Profile, Error> {
    authorize(caller, Action::ViewProfile)?;
    store
        .get_profile(&caller.tenant_id, id)
        .await
        .map_err(|e| Error::from_store(e, PROFILE))?
        .ok_or(Error::NotFound(PROFILE))
}

/// Applies `patch` if `if_match` is the current version. A stale version is
/// refused (never merged) and nothing changes.
pub async fn update_profile(
    store: &dyn ProfileStore,
    catalogue: &Catalogue,
    caller: &Caller,
    id: &ProfileId,
    if_match: Option<u64>,
    patch: &ProfilePatch,
    now: OffsetDateTime,
) -> Result<Profile, Error> {
    authorize(caller, Action::EditProfile)?;
    let expected = if_match.ok_or(Error::PreconditionRequired(PROFILE))?;
    let current = store
        .get_profile(&caller.tenant_id, id)
        .await
        .map_err(|e| Error::from_store(e, PROFILE))?
        .ok_or(Error::NotFound(PROFILE))?;
    if current.version != expected {
        return Err(Error::PreconditionFailed(PROFILE));
    }
    let updated = current.patched(catalogue, patch, now)?;
    match store.update_profile(&current, &updated).await {
        Ok(()) => Ok(updated),
        Err(StoreError::NameTaken) => Err(name_taken(&updated.name)),
        Err(e) => Err(Error::from_store(e, PROFILE)),
    }
}

/// Deletes a profile no user holds. `if_match` is optional here: a delete
/// without it removes whatever version is current.
pub async fn delete_profile(
    store: &dyn ProfileStore,
    caller: &Caller,
    id: &ProfileId,
    if_match: Option<u64>,
) -> Result<(), Error> {
    authorize(caller, Action::DeleteProfile)?;
    match store.delete_profile(&caller.tenant_id, id, if_match).await {
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

fn name_taken(name: &ProfileName) -> Error {
    Error::Conflict {
        code: "profile_name_taken",
        detail: format!("a profile named \"{}\" already exists", name.as_str()),
    }
}
