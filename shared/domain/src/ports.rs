//! Ports: what the domain needs from storage. Adapters (SQLite, DynamoDB)
//! implement them and pass one shared contract suite
//! (`peak-store-contract`).

use crate::error::Error;
use crate::ids::{ProfileId, TenantId};
use crate::profile::Profile;
use async_trait::async_trait;

/// Why a store call failed, in terms a use case can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("an item with this id already exists")]
    AlreadyExists,
    #[error("the name is already taken in this tenant")]
    NameTaken,
    #[error("not found")]
    NotFound,
    /// A conditional write found another version than the one expected.
    #[error("version mismatch")]
    VersionMismatch,
    /// Delete refused: users still hold the item.
    #[error("still held by {holders} users")]
    InUse { holders: u64 },
    #[error("invalid cursor")]
    InvalidCursor,
    /// Throttling, timeouts, a backend that is down: worth retrying.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or an unexpected answer.
    #[error("store error: {0}")]
    Backend(String),
}

/// A page request: at most `limit` items after `cursor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub cursor: Option<String>,
}

impl PageRequest {
    pub const DEFAULT_LIMIT: u32 = 25;
    pub const MAX_LIMIT: u32 = 100;

    pub fn new(limit: Option<u32>, cursor: Option<String>) -> Result<Self, Error> {
        let limit = limit.unwrap_or(Self::DEFAULT_LIMIT);
        if !(1..=Self::MAX_LIMIT).contains(&limit) {
            return Err(Error::invalid(
                "limit",
                format!("must be between 1 and {}", Self::MAX_LIMIT),
            ));
        }
        Ok(Self {
            limit,
            cursor: cursor.filter(|c| !c.is_empty()),
        })
    }

    pub fn first(limit: u32) -> Self {
        Self {
            limit,
            cursor: None,
        }
    }
}

/// One page of a list in a stable order; `next_cursor` is `None` on the last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

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
    /// profile. User assignment calls this; the count guards deletion.
    async fn change_profile_holders(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
        delta: i64,
    ) -> Result<(), StoreError>;
}
