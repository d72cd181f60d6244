//! The one error every port returns. Its own module so that the domain's
//! [`Error`](crate::error::Error) and the ports can both use it without
//! importing each other.

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
    /// Another user of the tenant has this login email.
    #[error("the email address is taken in this tenant")]
    EmailTaken,
    /// The profile a user write refers to does not exist (any more).
    #[error("the referenced profile does not exist")]
    ProfileMissing,
    /// Throttling, timeouts, a backend that is down: worth retrying.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or an unexpected answer.
    #[error("store error: {0}")]
    Backend(String),
}
