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
        renamed.name = peak_domain::model::profile::ProfileName::parse("Beta renamed").unwrap();
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

/// Migration 1 exactly as the first release wrote it: the starting point of
/// files in the field.
const SCHEMA_V1: &str = "CREATE TABLE profiles (
        tenant_id    TEXT    NOT NULL,
        id           TEXT    NOT NULL,
        name         TEXT    NOT NULL,
        name_key     TEXT    NOT NULL,
        description  TEXT    NOT NULL,
        settings     TEXT    NOT NULL,
        version      INTEGER NOT NULL,
        holder_count INTEGER NOT NULL DEFAULT 0 CHECK (holder_count >= 0),
        created_at   TEXT    NOT NULL,
        updated_at   TEXT    NOT NULL,
        PRIMARY KEY (tenant_id, id),
        UNIQUE (tenant_id, name_key)
    ) STRICT, WITHOUT ROWID;";

#[tokio::test]
async fn a_profiles_only_database_upgrades_keeping_its_profiles() {
    use peak_domain::ports::{UserRecords, UserWrite};
    use time::format_description::well_known::Rfc3339;

    let dir = TempDir::new();
    std::fs::create_dir_all(&dir.0).unwrap();
    let path = dir.0.join("peak-users.db");
    let t = fresh_tenant();
    let mut p = sample_profile(&t, "Legacy");
    p.holder_count = 2;
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO profiles (tenant_id, id, name, name_key, description, settings,
                                   version, holder_count, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            rusqlite::params![
                p.tenant_id.as_str(),
                p.id.as_str(),
                p.name.as_str(),
                p.name.unique_key(),
                p.description,
                serde_json::to_string(p.settings.as_map()).unwrap(),
                p.version as i64,
                p.holder_count as i64,
                p.created_at.format(&Rfc3339).unwrap(),
                p.updated_at.format(&Rfc3339).unwrap(),
            ],
        )
        .unwrap();
    }

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.get_profile(&t, &p.id).await.unwrap(), Some(p.clone()));
    // The new tables are there and work with the old profile.
    let u =
        peak_store_contract::users::sample_user(&t, &p.id, "Ada", "Lovelace", "ada@example.com");
    store
        .write_user(UserWrite {
            previous: None,
            next: Some(&u),
            audit: &[],
            outbox: &[],
        })
        .await
        .unwrap();
    assert_eq!(store.get_user(&t, &u.id).await.unwrap(), Some(u));
    let held = store.get_profile(&t, &p.id).await.unwrap().unwrap();
    assert_eq!(held.holder_count, 3);
    {
        use peak_domain::ports::JobStore;
        let job = peak_store_contract::jobs::sample_job(&t);
        store.create_job(&job).await.unwrap();
        assert_eq!(store.get_job(&t, &job.id).await.unwrap(), Some(job));
        // Migration 12: jobs have a kind.
        let mut import = peak_store_contract::jobs::sample_job(&t);
        import.kind = peak_domain::bulk_job::JobKind::AccountImport;
        store.create_job(&import).await.unwrap();
        assert_eq!(store.get_job(&t, &import.id).await.unwrap(), Some(import));
        // Migration 13: dry runs are jobs; a file error keeps its code.
        let mut dry = peak_store_contract::jobs::sample_job(&t);
        dry.dry_run = true;
        dry.error_code = Some("bad_header".into());
        store.create_job(&dry).await.unwrap();
        assert_eq!(store.get_job(&t, &dry.id).await.unwrap(), Some(dry));
    }
    {
        use peak_domain::accounts::AccountStore;
        let a = peak_store_contract::accounts::sample_account(&t, "ACME", "Acme", None);
        peak_store_contract::accounts::create(&store, &a, None).await;
        assert_eq!(store.get_account(&t, &a.number).await.unwrap(), Some(a));
    }
    drop(store);

    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(SCHEMA_VERSION, 13);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_connections_to_one_file_make_one_user() {
    use peak_domain::model::user::UserQuery;
    use peak_domain::ports::{UserRecords, UserWrite};
    let dir = TempDir::new();
    let path = dir.0.join("peak-users.db");
    // Separate connections: only SQLite's locking keeps them apart.
    let stores: Vec<Arc<SqliteStore>> = (0..3)
        .map(|_| Arc::new(SqliteStore::open(&path).unwrap()))
        .collect();
    let t = fresh_tenant();
    let p = sample_profile(&t, "Standard");
    stores[0].insert_profile(&p).await.unwrap();
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let store = Arc::clone(&stores[i % stores.len()]);
            let u = peak_store_contract::users::sample_user(
                &t,
                &p.id,
                "Racer",
                &format!("No{i}"),
                "race@example.com",
            );
            tokio::spawn(async move {
                store
                    .write_user(UserWrite {
                        previous: None,
                        next: Some(&u),
                        audit: &[],
                        outbox: &[],
                    })
                    .await
            })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::EmailTaken | StoreError::Unavailable(_)) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(ok, 1);
    for store in &stores {
        let all = store
            .list_users(&t, &UserQuery::default(), &PageRequest::first(100))
            .await
            .unwrap();
        assert_eq!(all.items.len(), 1);
        let held = store.get_profile(&t, &p.id).await.unwrap().unwrap();
        assert_eq!(held.holder_count, 1);
    }
}

#[tokio::test]
async fn a_sent_email_keeps_no_content() {
    use peak_domain::outbox::{EmailKind, OutboxEmail};
    use peak_domain::ports::{OutboxQueue, UserRecords, UserWrite};
    let dir = TempDir::new();
    let path = dir.0.join("peak-users.db");
    let store = SqliteStore::open(&path).unwrap();
    let t = fresh_tenant();
    let p = sample_profile(&t, "Standard");
    store.insert_profile(&p).await.unwrap();
    let u =
        peak_store_contract::users::sample_user(&t, &p.id, "Ada", "Lovelace", "ada@example.com");
    let mail = OutboxEmail {
        tenant_id: t.clone(),
        id: ProfileId::generate().to_string(),
        kind: EmailKind::Invitation,
        to: u.email.clone(),
        user_id: u.id.clone(),
        data: serde_json::json!({"link": "https://portal.example/accept?token=secret"}),
        created_at: u.created_at,
    };
    store
        .write_user(UserWrite {
            previous: None,
            next: Some(&u),
            audit: &[],
            outbox: std::slice::from_ref(&mail),
        })
        .await
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    assert!(matches!(
        store.claim_outbox(&t, &mail.id, now, 60).await.unwrap(),
        peak_domain::outbox::OutboxClaim::Claimed { .. }
    ));
    store.complete_outbox(&t, &mail.id, "msg-1").await.unwrap();
    drop(store);

    let conn = rusqlite::Connection::open(&path).unwrap();
    let (body, sent_at, message_id): (Option<String>, Option<String>, Option<String>) = conn
        .query_row(
            "SELECT body, sent_at, message_id FROM outbox WHERE tenant_id = ?1 AND id = ?2",
            [t.as_str(), mail.id.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(body, None, "the token and address are gone");
    assert!(sent_at.is_some());
    assert_eq!(message_id.as_deref(), Some("msg-1"));
}
