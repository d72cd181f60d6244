//! The embedded durable store: one SQLite file (the local run's default),
//! implementing every store port of the domain, one module per port
//! (`users`, `audit`, `outbox`, `idempotency`, `idp_work`, `logins`,
//! `deliveries`, `rate_limits`, `profiles`, `jobs`, `tenants`); the
//! schema is in `schema`, the helpers they share in `sql`.
//!
//! rusqlite is synchronous, so the single [`Connection`] lives behind a
//! `Mutex` in an `Arc` and every call runs on tokio's blocking pool
//! ([`tokio::task::spawn_blocking`]): the async runtime is never blocked.
//! Writes run in `BEGIN IMMEDIATE` transactions, so each check-and-write
//! (insert, conditional update, guarded delete) is atomic, also against other
//! processes sharing the file.
//!
//! The schema is an ordered list of migrations ([`SCHEMA_VERSION`] of them),
//! tracked with `PRAGMA user_version`; see [`SqliteStore::open`].

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod accounts;
mod audit;
mod caller;
mod deliveries;
mod idempotency;
mod idp_work;
mod jobs;
mod logins;
mod outbox;
mod profiles;
mod rate_limits;
mod schema;
mod sql;
mod tenants;
mod user_row;
mod user_write;
mod users;

use crate::schema::{check_not_newer, migrate, schema_version};
use crate::sql::{db_error, open_error};
use peak_domain::ports::StoreError;
use rusqlite::Connection;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

pub use schema::SCHEMA_VERSION;

/// How long a call waits for another connection's write lock before it
/// gives up with [`StoreError::Unavailable`].
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Every store port of the domain ([`UserStore`](peak_domain::ports::UserStore),
/// [`ProfileStore`](peak_domain::ports::ProfileStore),
/// [`JobStore`](peak_domain::ports::JobStore), …) backed by one SQLite database.
///
/// Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// Where the data lives, `None` in memory. For `Debug` only.
    path: Option<Arc<PathBuf>>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let location = match &self.path {
            Some(p) => p.display().to_string(),
            None => ":memory:".to_owned(),
        };
        f.debug_struct("SqliteStore")
            .field("location", &location)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating it and its parent directory if missing) the database
    /// file at `path`, switches it to WAL journaling with foreign keys on and
    /// a busy timeout, and brings its schema up to date.
    ///
    /// A file whose schema is newer than this build knows (written by a later
    /// release) is refused with [`StoreError::Backend`], leaving it
    /// untouched.
    ///
    /// Blocking: call it at start-up, or from `spawn_blocking`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Backend(format!(
                    "cannot create the directory {} for the database: {e}",
                    parent.display()
                ))
            })?;
        }
        let conn = Connection::open(path)
            .map_err(|e| open_error(&format!("cannot open the database {}", path.display()), e))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db_error)?;
        // Refuse a newer file before changing anything in it (`migrate`
        // checks again, inside its transaction).
        check_not_newer(schema_version(&conn)?)?;
        // WAL is a property of the file and survives reopening. Changing the
        // journal mode needs the file to be otherwise unused; if another
        // process has it open in WAL already this is a no-op.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(db_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "cannot switch {} to WAL journaling (journal mode is {mode})",
                path.display()
            )));
        }
        // With WAL, FULL also syncs on every commit: a committed write
        // survives a power loss, not only a crash of this process.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db_error)?;
        Self::prepare(conn, Some(path.to_path_buf()))
    }

    /// A private database that lives as long as this store (and its clones):
    /// for tests and throwaway runs.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory()
            .map_err(|e| open_error("cannot open an in-memory database", e))?;
        Self::prepare(conn, None)
    }

    fn prepare(mut conn: Connection, path: Option<PathBuf>) -> Result<Self, StoreError> {
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(db_error)?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path: path.map(Arc::new),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let job = move || {
            // A panic while the lock was held cannot leave a half-done write
            // behind (an open transaction rolls back when dropped), so the
            // connection is still good: carry on rather than fail forever.
            let mut guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut guard)
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime
                .spawn_blocking(job)
                .await
                .map_err(|e| StoreError::Backend(format!("store task did not complete: {e}")))?,
            // Polled outside tokio (no blocking pool to use): run in place
            // rather than panic.
            Err(_) => job(),
        }
    }
}
