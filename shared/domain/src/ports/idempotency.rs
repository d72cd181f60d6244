//! The idempotency-key port: replaying a request's response.

use super::StoreError;
use crate::ids::TenantId;
use async_trait::async_trait;
use time::OffsetDateTime;

/// What an idempotency key already holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// First use: the caller owns the key and must `complete` it.
    Claimed,
    /// A request with this key is still running.
    InProgress,
    /// Done before; replay this response.
    Completed(SavedResponse),
    /// The key was used for a different request body.
    Mismatch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Idempotency keys, scoped to one tenant.
#[async_trait]
pub trait IdempotencyKeys: Send + Sync {
    /// Claims `key` for a request with body `fingerprint` (a hash), or says
    /// what the key holds. Keys expire after `ttl_secs`. A claim not
    /// completed (nor released) within `lease_secs` is abandoned: the next
    /// claim of the key takes it over, as if it were new.
    async fn claim_idempotency_key(
        &self,
        tenant: &TenantId,
        key: &str,
        fingerprint: &str,
        now: OffsetDateTime,
        lease_secs: u64,
        ttl_secs: u64,
    ) -> Result<IdempotencyClaim, StoreError>;

    /// Stores the response of a claimed key, for replay.
    async fn complete_idempotency_key(
        &self,
        tenant: &TenantId,
        key: &str,
        response: &SavedResponse,
    ) -> Result<(), StoreError>;

    /// Forgets a claimed key whose request failed before changing anything,
    /// so the client may retry with it.
    async fn release_idempotency_key(&self, tenant: &TenantId, key: &str)
    -> Result<(), StoreError>;
}
