//! The caller lookup port: everything authenticating one request reads
//! from storage, in as few round trips as the store allows (see
//! [`crate::users::signed_in`] for how it is used).
//!
//! Kept apart from [`UserStore`](crate::ports::UserStore) because it is the
//! hot path of every request and a store answers it differently from a
//! user read: DynamoDB reads the tenant record and the subject item —
//! which carries a copy of the user, written in the same transaction as
//! the user (`store-dynamodb/src/caller.rs`) — with one `BatchGetItem`.

use crate::ids::TenantId;
use crate::model::tenant::Tenant;
use crate::model::user::User;
use crate::ports::StoreError;
use async_trait::async_trait;

/// What a store knows about the caller of one request, read now (never
/// from a cache: a suspension, a deletion or a closed tenant shows on the
/// very next request).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallerRecords {
    /// The token's tenant's record; `None` for a tenant without one (from
    /// before tenants were data: open, with the deployment's defaults).
    pub tenant: Option<Tenant>,
    /// The user of that tenant holding the identity-provider subject, as
    /// last written, whatever their status; `None` if there is none.
    /// `last_login_at` is not read (`None`): the last sign-in is kept apart
    /// from the user, and what shows it (`/me`) reads the user itself.
    pub user: Option<User>,
}

#[async_trait]
pub trait CallerStore: Send + Sync {
    /// The tenant record and the user holding `subject` in `tenant`, read
    /// together, consistently (a user write that returned is seen). An
    /// empty `subject` is held by nobody (the tenant is still read).
    async fn caller(&self, tenant: &TenantId, subject: &str) -> Result<CallerRecords, StoreError>;
}
