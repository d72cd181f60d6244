//! The sign-in port.

use super::StoreError;
use crate::ids::TenantId;
use crate::model::user::UserId;
use async_trait::async_trait;
use time::OffsetDateTime;

/// Sign-ins, kept apart from the user record.
#[async_trait]
pub trait LoginLog: Send + Sync {
    /// Records a sign-in at `at` on the user, if it is newer than the one
    /// recorded (an older, late delivery never wins). Kept apart from the
    /// user record: the version is left as it is, and no user write (which
    /// may carry an older copy) can undo it. `false`: no such user, or a
    /// newer sign-in is recorded. Every read of the user carries it as
    /// `last_login_at`.
    async fn record_login(
        &self,
        tenant: &TenantId,
        user: &UserId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError>;
}
