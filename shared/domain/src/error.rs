//! The domain's one error type. The HTTP edge turns it into problem+json in
//! one place; every variant says what the caller can do about it.

use crate::store_error::StoreError;
use serde::Serialize;

/// One invalid input field, named as the client sent it (`settings.my_cases.view`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The caller is known but may not do this.
    #[error("you are not allowed to {0}")]
    Forbidden(&'static str),
    /// Nothing of that kind with that id in the caller's tenant.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The delegation rule: the request would give (or act on) more than the
    /// caller holds. A 403 whose `code` says which kind and whose errors
    /// name each role, account, group or setting.
    #[error("{detail}")]
    Exceeds {
        code: &'static str,
        detail: String,
        errors: Vec<FieldError>,
    },
    /// Known caller, refused for a reason they can act on (suspended,
    /// unknown user): a 403 with its own code.
    #[error("{detail}")]
    AccessDenied { code: &'static str, detail: String },
    /// A link that worked once and no longer does (expired, revoked, used).
    #[error("{detail}")]
    Gone { code: &'static str, detail: String },
    /// Too many requests for this key; try again after the window.
    #[error("too many requests; try again in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    /// The request conflicts with current state (name taken, still in use).
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// `If-Match` named a version that is no longer current.
    #[error("the {0} was changed by someone else; fetch it again and reapply your edit")]
    PreconditionFailed(&'static str),
    /// An edit was sent without `If-Match`.
    #[error("send If-Match with the ETag of the {0} you are editing")]
    PreconditionRequired(&'static str),
    /// Input that parsed but is not acceptable; every bad field is named.
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    /// A request that cannot be understood (bad cursor, malformed query).
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    /// A backend is temporarily unavailable; retrying later may work.
    #[error("the service is temporarily unavailable")]
    Unavailable(String),
    /// A bug or an unexpected backend answer. The text is for logs only.
    #[error("internal error")]
    Internal(String),
}

impl Error {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Validation(vec![FieldError::new(field, reason)])
    }

    /// Maps a store error that the calling use case did not handle itself.
    pub fn from_store(err: StoreError, what: &'static str) -> Self {
        match err {
            StoreError::NotFound => Error::NotFound(what),
            StoreError::VersionMismatch => Error::PreconditionFailed(what),
            StoreError::InvalidCursor => Error::BadRequest {
                code: "invalid_cursor",
                detail: "the cursor is not one this list gave out".into(),
            },
            StoreError::Unavailable(msg) => Error::Unavailable(msg),
            StoreError::EmailTaken => Error::Conflict {
                code: "email_taken",
                detail: "another user of this tenant already has this email address".into(),
            },
            StoreError::ProfileMissing => Error::invalid("profile_id", "no such profile"),
            other => Error::Internal(other.to_string()),
        }
    }
}
