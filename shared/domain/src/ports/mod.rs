//! Ports: what the domain needs from storage, one trait per role. Adapters
//! (SQLite, DynamoDB) implement them and pass one shared contract suite
//! (`peak-store-contract`), with one file per port there too.
//!
//! A consumer takes only the ports it uses (the mailer the outbox and the
//! users it reads, the identity-provider worker [`IdpSyncStore`]). [`UserStore`] names the whole set the user use cases need; every
//! type that implements all of its ports is one.

mod audit;
mod caller;
mod deliveries;
mod files;
mod idempotency;
mod idp_work;
mod jobs;
mod logins;
mod outbox;
mod page;
mod profiles;
mod rate_limits;
mod tenants;
mod users;

pub use crate::store_error::StoreError;
pub use audit::AuditLog;
pub use caller::*;
pub use deliveries::DeliveryLog;
pub use files::FileStore;
pub use idempotency::{IdempotencyClaim, IdempotencyKeys, SavedResponse};
pub use idp_work::IdpWorkQueue;
pub use jobs::JobStore;
pub use logins::LoginLog;
pub use outbox::OutboxQueue;
pub use page::{Page, PageRequest};
pub use profiles::ProfileStore;
pub use rate_limits::RateLimits;
pub use tenants::TenantStore;
pub use users::{UserRecords, UserWrite};

/// What applying the identity provider's events needs (see
/// [`crate::idp_events`]): the users, their sign-ins and the delivery log.
pub trait IdpEventStore: UserRecords + LoginLog + DeliveryLog {}

impl<T> IdpEventStore for T where T: UserRecords + LoginLog + DeliveryLog + ?Sized {}

/// What keeping the identity provider in sync needs (the worker and the
/// sweeper of `peak-idp-sync`): the owed work, and applying its events.
pub trait IdpSyncStore: IdpEventStore + IdpWorkQueue {}

impl<T> IdpSyncStore for T where T: IdpEventStore + IdpWorkQueue + ?Sized {}

/// What the user use cases need: users with their audit trail, outbox,
/// idempotency keys, owed identity-provider work, sign-ins, delivery log
/// and rate limits. No methods of its own: it only names the set, so a use
/// case (or a handler state) can take one bound, while a consumer that
/// uses a slice takes that port (or a smaller set above) alone: a
/// `&dyn UserStore` or `Arc<dyn UserStore>` converts to any of them.
/// Implemented for every type that implements all of them.
pub trait UserStore: IdpSyncStore + AuditLog + OutboxQueue + IdempotencyKeys + RateLimits {}

impl<T> UserStore for T where
    T: IdpSyncStore + AuditLog + OutboxQueue + IdempotencyKeys + RateLimits + ?Sized
{
}
