//! The shared store contract, against a fresh in-memory database per case.

peak_store_contract::profile_store_contract!(async {
    std::sync::Arc::new(peak_store_sqlite::SqliteStore::open_in_memory().unwrap())
});
