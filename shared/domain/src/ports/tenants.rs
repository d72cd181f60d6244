//! The tenants port.

use super::{Page, PageRequest, StoreError};
use crate::audit::AuditEvent;
use crate::ids::TenantId;
use crate::model::tenant::Tenant;
use async_trait::async_trait;

/// Tenants. A tenant without a record (one from before tenants were data)
/// is open, with the deployment's defaults.
#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Stores a new tenant; `AlreadyExists` if the id is taken.
    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), StoreError>;

    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError>;

    /// Every tenant, ordered by id.
    async fn list_tenants(&self, page: &PageRequest) -> Result<Page<Tenant>, StoreError>;

    /// Replaces the tenant if the stored one is still at `previous_version`
    /// (`VersionMismatch` otherwise, `NotFound` if there is none), with
    /// `audit` in the same write.
    async fn update_tenant(
        &self,
        previous_version: u64,
        tenant: &Tenant,
        audit: &[AuditEvent],
    ) -> Result<(), StoreError>;
}
