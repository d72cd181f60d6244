//! The caller lookup on the benchmarks' in-memory store: its tenants have
//! no record, and the user is found as `find_user_by_subject` finds it.

use crate::memory_store::MemoryStore;
use async_trait::async_trait;
use peak_domain::TenantId;
use peak_domain::ports::{CallerRecords, CallerStore};
use peak_domain::ports::{StoreError, UserRecords};
use peak_domain::tenants::TenantStore;

#[async_trait]
impl CallerStore for MemoryStore {
    async fn caller(&self, tenant: &TenantId, subject: &str) -> Result<CallerRecords, StoreError> {
        Ok(CallerRecords {
            tenant: self.get_tenant(tenant).await?,
            user: self
                .find_user_by_subject(tenant, subject)
                .await?
                .map(|mut u| {
                    u.last_login_at = None;
                    u
                }),
        })
    }
}
