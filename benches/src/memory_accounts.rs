//! [`MemoryStore`] as an account store: no benchmarked route reads the
//! account directory, so every call answers "not used by the benchmarks"
//! (as the store's other unused calls do).

use crate::memory_store::MemoryStore;
use async_trait::async_trait;
use peak_domain::accounts::{Account, AccountStore, AccountWrite};
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
