//! [`MemoryStore`] as an account store. The benchmarked invite checks its
//! accounts (one batched read, [`AccountStore::get_accounts`]): the
//! benchmarks' directory holds every account asked for, active, so that
//! read costs what a lookup costs and refuses nothing. No other benchmarked
//! route reads the directory; those calls answer "not used by the
//! benchmarks" (as the store's other unused calls do).

use crate::memory_store::MemoryStore;
use async_trait::async_trait;
use peak_domain::accounts::{Account, AccountName, AccountStatus, AccountStore, AccountWrite};
use peak_domain::ids::TenantId;
use peak_domain::model::user::AccountNumber;
use peak_domain::ports::{Page, PageRequest, StoreError};

fn unused<T>() -> Result<T, StoreError> {
    Err(StoreError::Backend("not used by the benchmarks".into()))
}

#[async_trait]
impl AccountStore for MemoryStore {
    async fn get_account(
        &self,
        _: &TenantId,
        _: &AccountNumber,
    ) -> Result<Option<Account>, StoreError> {
        unused()
    }

    async fn get_accounts(
        &self,
        tenant: &TenantId,
        numbers: &[AccountNumber],
    ) -> Result<Vec<Account>, StoreError> {
        let at = time::OffsetDateTime::UNIX_EPOCH;
        numbers
            .iter()
            .map(|n| {
                Ok(Account {
                    tenant_id: tenant.clone(),
                    number: n.clone(),
                    name: AccountName::parse("name", n.as_str())
                        .map_err(|e| StoreError::Backend(e.reason))?,
                    parent: None,
                    ancestors: Vec::new(),
                    status: AccountStatus::Active,
                    version: 1,
                    created_at: at,
                    updated_at: at,
                })
            })
            .collect()
    }

    async fn write_account(&self, _: AccountWrite<'_>) -> Result<(), StoreError> {
        unused()
    }

    async fn search_accounts(
        &self,
        _: &TenantId,
        _: &str,
        _: &PageRequest,
    ) -> Result<Page<Account>, StoreError> {
        unused()
    }

    async fn child_accounts(
        &self,
        _: &TenantId,
        _: &AccountNumber,
        _: &PageRequest,
    ) -> Result<Page<Account>, StoreError> {
        unused()
    }

    async fn descendant_accounts(
        &self,
        _: &TenantId,
        _: &AccountNumber,
        _: &PageRequest,
    ) -> Result<Page<Account>, StoreError> {
        unused()
    }
}
