//! The delivery-log port: webhook deliveries from the identity provider,
//! de-duplicated and applied exactly once.

use super::StoreError;
use crate::model::delivery::{IdpDelivery, Recorded};
use async_trait::async_trait;
use time::OffsetDateTime;

/// Recorded identity-provider deliveries, across tenants.
#[async_trait]
pub trait DeliveryLog: Send + Sync {
    /// Records a verified delivery from the identity provider, as one
    /// conditional write, so that it is applied (exactly once) from the
    /// record: [`Recorded::New`] the first time; a delivery with the same id
    /// recorded less than `ttl_secs` ago is [`Recorded::Done`] or
    /// [`Recorded::Owed`] and is not recorded again.
    async fn record_delivery(
        &self,
        delivery: &IdpDelivery,
        now: OffsetDateTime,
        ttl_secs: u64,
    ) -> Result<Recorded, StoreError>;

    /// Takes a recorded delivery that is owed and due for `lease_secs`
    /// (one conditional write), with the number of failed attempts so far;
    /// `None` when it is done, unknown, leased, or waiting for its retry.
    async fn claim_delivery(
        &self,
        id: &str,
        now: OffsetDateTime,
        lease_secs: u64,
    ) -> Result<Option<(IdpDelivery, u32)>, StoreError>;

    /// The delivery is applied (`outcome` kept); a replay of it is
    /// [`Recorded::Done`] until it expires.
    async fn complete_delivery(&self, id: &str, outcome: &str) -> Result<(), StoreError>;

    /// Applying failed: one more attempt counted, `reason` kept, due again
    /// at `retry_at`. Never dropped.
    async fn fail_delivery(
        &self,
        id: &str,
        reason: &str,
        retry_at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Owed deliveries due at `now`, across tenants, oldest due first.
    async fn pending_deliveries(
        &self,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<IdpDelivery>, StoreError>;
}
