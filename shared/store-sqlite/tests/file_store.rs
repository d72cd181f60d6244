//! What only a file-backed store shows: durability across reopening, WAL,
//! schema versioning, and the holder count under concurrent changes.

use peak_domain::ids::ProfileId;
use peak_domain::ports::{PageRequest, ProfileStore, StoreError};
use peak_store_contract::{fresh_tenant, sample_profile};
use peak_store_sqlite::{SCHEMA_VERSION, SqliteStore};
use std::path::PathBuf;
use std::sync::Arc;

/// A directory of its own under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "peak-store-sqlite-{}-{}",
            std::process::id(),
            ProfileId::generate()
        ));
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn data_survives_reopening_the_file() {
    let dir = TempDir::new();
    // A parent directory that does not exist yet.
    let path = dir.0.join("nested").join("peak-users.db");
    let t = fresh_tenant();
    let a = sample_profile(&t, "Alpha");
    let mut b = sample_profile(&t, "Beta");
    {
        let store = SqliteStore::open(&path).unwrap();
        store.insert_profile(&a).await.unwrap();
        store.insert_profile(&b).await.unwrap();
        store.change_profile_holders(&t, &b.id, 3).await.unwrap();
        let mut renamed = b.clone();
        renamed.name = peak_domain::profile::ProfileName::parse("Beta renamed").unwrap();
        renamed.version = 2;
        store.update_profile(&b, &renamed).await.unwrap();
        b = renamed;
        b.holder_count = 3;
    }
    assert!(path.exists());

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.get_profile(&t, &a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.get_profile(&t, &b.id).await.unwrap(), Some(b.clone()));
    let mut expected = vec![a, b];
    expected.sort_by(|x, y| x.id.cmp(&y.id));
    let listed = store
        .list_profiles(&t, &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(listed.items, expected);
    assert_eq!(listed.next_cursor, None);
    // The unique name index survived too.
    assert_eq!(
        store
            .insert_profile(&sample_profile(&t, "BETA RENAMED"))
            .await,
        Err(StoreError::NameTaken)
    );
    drop(store);

    // The file is in WAL mode, at the current schema version.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

#[tokio::test]
async fn a_database_from_a_newer_release_is_refused() {
    let dir = TempDir::new();
    let path = dir.0.join("peak-users.db");
    drop(SqliteStore::open(&path).unwrap());
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
    }
    let err = SqliteStore::open(&path).unwrap_err();
    let StoreError::Backend(message) = &err else {
        panic!("expected a Backend error, got {err:?}");
    };
    assert!(
        message.contains("newer") && message.contains(&(SCHEMA_VERSION + 1).to_string()),
        "unclear message: {message}"
    );
    // Refusing left the file as it was.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_holder_changes_are_not_lost_and_never_go_negative() {
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    let t = fresh_tenant();
    let p = sample_profile(&t, "Busy");
    store.insert_profile(&p).await.unwrap();

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (store, t, id) = (Arc::clone(&store), t.clone(), p.id.clone());
            tokio::spawn(async move { store.change_profile_holders(&t, &id, 1).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let held = store.get_profile(&t, &p.id).await.unwrap().unwrap();
    assert_eq!(held.holder_count, 50);

    // Clamped at zero, not refused.
    store.change_profile_holders(&t, &p.id, -80).await.unwrap();
    let held = store.get_profile(&t, &p.id).await.unwrap().unwrap();
    assert_eq!(held.holder_count, 0);
    store.delete_profile(&t, &p.id, Some(1)).await.unwrap();
}

#[tokio::test]
async fn insert_reports_an_id_clash_before_a_name_clash() {
    let store = SqliteStore::open_in_memory().unwrap();
    let t = fresh_tenant();
    let p = sample_profile(&t, "Same");
    store.insert_profile(&p).await.unwrap();
    assert_eq!(
        store.insert_profile(&p).await,
        Err(StoreError::AlreadyExists)
    );
}
