//! The sharded pending partitions (`OUTBOX#PENDING#<k>`,
//! `IDPWORK#PENDING#<k>`, src/due.rs) against DynamoDB Local: items spread
//! over the shards, read back in one order across them as one partition
//! gave them, and items written with the old unsharded key still found.
//!
//! A table of its own: these tests look at every tenant's pending work.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use peak_domain::TenantId;
use peak_domain::model::user::{Email, UserId};
use peak_domain::outbox::{EmailKind, OutboxClaim, OutboxEmail};
use peak_domain::ports::{IdpWorkQueue, OutboxQueue};
use peak_store_dynamodb::due::{PENDING_SHARDS, shard_of};
use peak_store_dynamodb::record_item::outbox_item;
use peak_store_dynamodb::{DynamoStore, client_from_env, create_table};
use std::collections::BTreeSet;
use time::OffsetDateTime;
use tokio::sync::OnceCell;

static TABLE: OnceCell<String> = OnceCell::const_new();
/// The tests of this file share the table's pending partitions: one at a
/// time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn store() -> DynamoStore {
    assert!(
        std::env::var("DYNAMODB_ENDPOINT").is_ok_and(|v| !v.is_empty()),
        "DynamoDB Local is not running: run scripts/test.sh"
    );
    let client: Client = client_from_env().await;
    let table = TABLE
        .get_or_init(|| async {
            let name = format!("peak-users-test-{}", ulid::Ulid::new());
            create_table(&client, &name).await.expect("create table");
            name
        })
        .await;
    DynamoStore::new(client, table.as_str())
}

fn email(t: &TenantId) -> OutboxEmail {
    OutboxEmail {
        tenant_id: t.clone(),
        id: ulid::Ulid::new().to_string(),
        kind: EmailKind::Invitation,
        to: Email::parse("shard@example.com").unwrap(),
        user_id: UserId::generate(),
        data: serde_json::json!({"link": "https://portal.example/x"}),
        created_at: OffsetDateTime::now_utc(),
    }
}

async fn put(store: &DynamoStore, item: std::collections::HashMap<String, AttributeValue>) {
    store
        .client()
        .put_item()
        .table_name(store.table())
        .set_item(Some(item))
        .send()
        .await
        .expect("put");
}

async fn drain(store: &DynamoStore) {
    let far = OffsetDateTime::now_utc() + time::Duration::days(1);
    for e in store.pending_outbox(10_000, far).await.unwrap() {
        store
            .complete_outbox(&e.tenant_id, &e.id, "m")
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn pending_emails_spread_over_the_shards_and_come_back_in_one_order() {
    let _one = SERIAL.lock().await;
    let store = store().await;
    drain(&store).await;
    let t = TenantId::parse(&format!(
        "shards-{}",
        ulid::Ulid::new().to_string().to_lowercase()
    ))
    .unwrap();
    let mut ids = Vec::new();
    let mut shards = BTreeSet::new();
    for _ in 0..60 {
        let m = email(&t);
        let item = outbox_item(&m).unwrap();
        let pk = item["GSI2PK"].as_s().unwrap().clone();
        assert_eq!(
            pk,
            format!("OUTBOX#PENDING#{}", shard_of(&m.id, PENDING_SHARDS))
        );
        shards.insert(pk);
        put(&store, item).await;
        ids.push(m.id);
    }
    assert!(shards.len() > 8, "60 emails in {} shards", shards.len());
    // Fresh emails are due at 0: in id (creation) order across shards,
    // whatever the page size.
    let now = OffsetDateTime::now_utc();
    for limit in [1, 7, 16, 25, 60, 100] {
        let got: Vec<String> = store
            .pending_outbox(limit, now)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        let want: Vec<String> = ids.iter().take(limit as usize).cloned().collect();
        assert_eq!(got, want, "limit {limit}");
    }
    // A retry waits in its shard until due, after the fresh ones.
    let first = &ids[0];
    match store.claim_outbox(&t, first, now, 60).await.unwrap() {
        OutboxClaim::Claimed { .. } => {}
        other => panic!("{other:?}"),
    }
    let retry_at = now + time::Duration::seconds(30);
    store
        .fail_outbox(&t, first, "busy", false, retry_at)
        .await
        .unwrap();
    let due_now = store.pending_outbox(100, now).await.unwrap();
    assert_eq!(due_now.len(), 59);
    assert!(due_now.iter().all(|e| &e.id != first));
    let later = store
        .pending_outbox(100, retry_at + time::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(later.len(), 60);
    assert_eq!(&later[59].id, first, "retries after fresh emails");
    drain(&store).await;
    assert!(
        store
            .pending_outbox(100, retry_at)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn emails_and_owed_work_under_the_old_unsharded_keys_are_still_found() {
    let _one = SERIAL.lock().await;
    let store = store().await;
    drain(&store).await;
    let t = TenantId::parse(&format!(
        "legacy-{}",
        ulid::Ulid::new().to_string().to_lowercase()
    ))
    .unwrap();
    // As written before the sharding: one partition for every tenant.
    let old = email(&t);
    let mut item = outbox_item(&old).unwrap();
    item.insert("GSI2PK".into(), AttributeValue::S("OUTBOX#PENDING".into()));
    put(&store, item).await;
    let new = email(&t);
    put(&store, outbox_item(&new).unwrap()).await;
    let now = OffsetDateTime::now_utc();
    // The drain above found the old partition empty: this store skips it
    // for a while (nothing writes there but a version being replaced).
    assert_eq!(store.pending_outbox(10, now).await.unwrap().len(), 1);
    // A fresh store (a new process) reads it, while it is not empty.
    let store = self::store().await;
    let pending: Vec<String> = store
        .pending_outbox(10, now)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(pending, [old.id.clone(), new.id.clone()], "in id order");
    // Claimed, failed, and found again when due, still in the old partition.
    assert!(matches!(
        store.claim_outbox(&t, &old.id, now, 60).await.unwrap(),
        OutboxClaim::Claimed { .. }
    ));
    let retry_at = now + time::Duration::seconds(5);
    store
        .fail_outbox(&t, &old.id, "busy", false, retry_at)
        .await
        .unwrap();
    assert_eq!(store.pending_outbox(10, now).await.unwrap().len(), 1);
    let later = store
        .pending_outbox(10, retry_at + time::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(later.len(), 2);
    assert_eq!(later[1].id, old.id);
    store.complete_outbox(&t, &old.id, "m").await.unwrap();
    store.complete_outbox(&t, &new.id, "m").await.unwrap();

    // Owed identity-provider work under `IDPWORK#PENDING`.
    let user = UserId::generate();
    let mut work = std::collections::HashMap::new();
    let mut set = |k: &str, v: AttributeValue| {
        work.insert(k.to_owned(), v);
    };
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let n = |v: i64| AttributeValue::N(v.to_string());
    set(
        "PK",
        s(&format!("IDPWORK#{}#{}", t.as_str(), user.as_str())),
    );
    set("SK", s("IDPWORK"));
    set("entity", s("idp_work"));
    set("tenant_id", s(t.as_str()));
    set("user_id", s(user.as_str()));
    set("subject", s("auth0|legacy"));
    set("op", s("sync"));
    set("seq", n(1));
    set("attempts", n(0));
    set("due_ms", n(0));
    set("done", AttributeValue::Bool(false));
    set("GSI2PK", s("IDPWORK#PENDING"));
    set(
        "GSI2SK",
        s(&format!("0000000000000#{}#{}", t.as_str(), user.as_str())),
    );
    put(&store, work).await;
    let owed = store.pending_idp_work(100, now).await.unwrap();
    assert!(owed.iter().any(|w| w.work.user_id == user), "{owed:?}");
    assert!(
        store
            .list_idp_work(100)
            .await
            .unwrap()
            .iter()
            .any(|w| w.work.user_id == user)
    );
    let claimed = store
        .claim_idp_work(&t, &user, now, 60)
        .await
        .unwrap()
        .expect("claimed");
    assert!(store.complete_idp_work(&claimed.work, &[]).await.unwrap());
    assert!(
        !store
            .pending_idp_work(100, now)
            .await
            .unwrap()
            .iter()
            .any(|w| w.work.user_id == user)
    );
}
