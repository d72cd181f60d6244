//! Profiles port.

use super::{Page, PageRequest, StoreError};
use crate::ids::{ProfileId, TenantId};
use crate::model::profile::Profile;
use async_trait::async_trait;

/// Profiles, ordered by id (creation order). Every method is scoped to one
/// tenant: no call can see or change another tenant's items.
#[async_trait]
pub trait ProfileStore: Send + Sync {
    /// Stores a new profile. `NameTaken` if another profile of the tenant has
    /// the same name ignoring case; `AlreadyExists` if the id is taken.
    async fn insert_profile(&self, profile: &Profile) -> Result<(), StoreError>;

    async fn get_profile(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
    ) -> Result<Option<Profile>, StoreError>;

    async fn list_profiles(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<Profile>, StoreError>;

    /// Replaces `previous` with `updated` only if the stored version is still
    /// `previous.version` (`VersionMismatch` otherwise, `NotFound` if gone).
    /// A rename keeps names unique (`NameTaken`). The holder count is kept.
    async fn update_profile(&self, previous: &Profile, updated: &Profile)
    -> Result<(), StoreError>;

    /// Deletes the profile, if `expected_version` (when given) is current and
    /// no user holds it (`InUse`), as one atomic check-and-delete.
    async fn delete_profile(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError>;

    /// Adds `delta` (may be negative) to the number of users holding the
    /// profile (for operators and tests: a user write changes the count
    /// itself, in its own transaction). The count guards deletion.
    async fn change_profile_holders(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
        delta: i64,
    ) -> Result<(), StoreError>;
}
