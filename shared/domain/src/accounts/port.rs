//! The account directory's storage port. (Kept beside the accounts domain
//! for now; it joins the other ports when they move into `ports/`.)

use super::model::Account;
use crate::audit::AuditEvent;
use crate::ids::TenantId;
use crate::model::user::AccountNumber;
use crate::ports::{Page, PageRequest, StoreError};
use async_trait::async_trait;

/// One atomic change to the directory: an account created or replaced,
/// with the descendants whose ancestor paths it moved, and its audit.
#[derive(Debug, Clone, Copy)]
pub struct AccountWrite<'a> {
    /// The stored account this write replaces, checked by `version`
    /// (`VersionMismatch` if it moved on, `NotFound` if gone); `None`
    /// creates (`AlreadyExists` if the number is taken).
    pub previous: Option<&'a Account>,
    pub next: &'a Account,
    /// `next`'s parent as read when the write was planned: the write holds
    /// only while it is still there at that version (`VersionMismatch`
    /// otherwise), so a concurrent move can neither leave a stale path nor
    /// close a cycle.
    pub parent: Option<&'a Account>,
    /// Descendants with their new ancestors (a moved subtree), each written
    /// only if still at its `version` (kept: the path is derived data).
    pub moved: &'a [Account],
    pub audit: &'a [AuditEvent],
}

/// Customer accounts of a tenant. Every method is scoped to one tenant.
#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn get_account(
        &self,
        tenant: &TenantId,
        number: &AccountNumber,
    ) -> Result<Option<Account>, StoreError>;

    /// The accounts among `numbers` that exist (any order; each once),
    /// in one batched read: checking the accounts of an invite or an edit,
    /// and showing a user's accounts, cost one round trip whatever their
    /// number (a user holds at most 25).
    async fn get_accounts(
        &self,
        tenant: &TenantId,
        numbers: &[AccountNumber],
    ) -> Result<Vec<Account>, StoreError>;

    /// Applies `write` atomically (all of it or nothing).
    async fn write_account(&self, write: AccountWrite<'_>) -> Result<(), StoreError>;

    /// Accounts whose number or name (lowercased) starts with `prefix`
    /// (already lowercased; empty: every account), ordered by
    /// ([`Account::search_key`], number): each account once.
    async fn search_accounts(
        &self,
        tenant: &TenantId,
        prefix: &str,
        page: &PageRequest,
    ) -> Result<Page<Account>, StoreError>;

    /// The accounts whose parent is `number`, by number.
    async fn child_accounts(
        &self,
        tenant: &TenantId,
        number: &AccountNumber,
        page: &PageRequest,
    ) -> Result<Page<Account>, StoreError>;

    /// Every account below `number` (children, their children, …), by
    /// path key; not `number` itself. Empty if there is no such account.
    async fn descendant_accounts(
        &self,
        tenant: &TenantId,
        number: &AccountNumber,
        page: &PageRequest,
    ) -> Result<Page<Account>, StoreError>;
}
