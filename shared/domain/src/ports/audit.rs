//! The audit-log port (the events themselves are written with the change
//! they record, by [`UserRecords::write_user`](super::UserRecords::write_user)).

use super::{Page, PageRequest, StoreError};
use crate::audit::AuditEvent;
use crate::ids::TenantId;
use crate::model::user::UserId;
use async_trait::async_trait;

/// Reads the audit trail.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Audit events, newest first: one user's history, or the tenant's.
    async fn list_audit(
        &self,
        tenant: &TenantId,
        user: Option<&UserId>,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>, StoreError>;
}
