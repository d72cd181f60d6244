//! The users port: the one-transaction write plan and the lookups and
//! lists of users.

use super::{Page, PageRequest, StoreError};
use crate::audit::AuditEvent;
use crate::ids::TenantId;
use crate::model::user::{Email, User, UserId, UserQuery};
use crate::outbox::OutboxEmail;
use async_trait::async_trait;

/// One atomic change to a user and everything that must change with it.
///
/// The store derives the rest from `previous` → `next`: the email guard
/// (normalized email, unique per tenant), the identity-provider subject
/// lookup, the invitation-token lookup, per-account membership entries and
/// list indexes, and the holder counts of the profiles involved (+1 on the
/// new profile, -1 on the old), and the work the change owes the identity
/// provider ([`owed_work`](crate::idp_work::owed_work): one record per user,
/// replacing an older one). Everything — including `audit` and `outbox` —
/// is written in one transaction, or nothing is.
#[derive(Debug, Clone, Copy)]
pub struct UserWrite<'a> {
    /// The stored user this write replaces, checked by `version`
    /// (`VersionMismatch` if it moved, `NotFound` if gone); `None` creates.
    pub previous: Option<&'a User>,
    /// The user after the write; `None` deletes the user, its lookups and
    /// memberships, and removes personal data from its past audit events.
    pub next: Option<&'a User>,
    pub audit: &'a [AuditEvent],
    pub outbox: &'a [OutboxEmail],
}

/// Users and their lookups (email, identity-provider subject, invitation).
/// Every method but the public invitation lookup is scoped to one tenant.
#[async_trait]
pub trait UserRecords: Send + Sync {
    /// Applies `write` atomically. Errors: `AlreadyExists` (create with a
    /// taken id), `EmailTaken`, `VersionMismatch`, `NotFound`,
    /// `ProfileMissing`.
    async fn write_user(&self, write: UserWrite<'_>) -> Result<(), StoreError>;

    async fn get_user(&self, tenant: &TenantId, id: &UserId) -> Result<Option<User>, StoreError>;

    /// By login email, compared case-insensitively.
    async fn find_user_by_email(
        &self,
        tenant: &TenantId,
        email: &Email,
    ) -> Result<Option<User>, StoreError>;

    /// By identity-provider subject (`auth0|…`).
    async fn find_user_by_subject(
        &self,
        tenant: &TenantId,
        subject: &str,
    ) -> Result<Option<User>, StoreError>;

    /// By the hash of an invitation token: public, so across tenants. Only
    /// the user's current invitation resolves.
    async fn find_user_by_invitation(&self, token_hash: &str) -> Result<Option<User>, StoreError>;

    /// A page of users matching `query`, ordered by (name key, id), or by
    /// (normalized email, id) when `email_prefix` is set. A set of accounts
    /// ([`UserQuery::account_set`]) lists each user on any of them once;
    /// stores read each account's memberships (one index range each) and
    /// merge them rather than scan the tenant.
    async fn list_users(
        &self,
        tenant: &TenantId,
        query: &UserQuery,
        page: &PageRequest,
    ) -> Result<Page<User>, StoreError>;
}
