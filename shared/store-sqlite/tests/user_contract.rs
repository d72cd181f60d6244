//! The shared user-store and job-store contracts, against a fresh in-memory
//! database per case. The connection sits behind one mutex, so the
//! concurrency cases check that racing writers are serialized into one
//! winner.

peak_store_contract::user_store_contract!(async {
    std::sync::Arc::new(peak_store_sqlite::SqliteStore::open_in_memory().unwrap())
});

peak_store_contract::job_store_contract!(async {
    std::sync::Arc::new(peak_store_sqlite::SqliteStore::open_in_memory().unwrap())
});

peak_store_contract::tenant_store_contract!(async {
    std::sync::Arc::new(peak_store_sqlite::SqliteStore::open_in_memory().unwrap())
});

peak_store_contract::account_store_contract!(async {
    std::sync::Arc::new(peak_store_sqlite::SqliteStore::open_in_memory().unwrap())
});

peak_store_contract::caller_store_contract!(async {
    std::sync::Arc::new(peak_store_sqlite::SqliteStore::open_in_memory().unwrap())
});
