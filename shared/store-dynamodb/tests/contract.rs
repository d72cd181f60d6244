//! The store contract against the real Amazon DynamoDB Local.
//!
//! Needs `DYNAMODB_ENDPOINT`: `scripts/dynamodb-local.sh start` prints it.
//! One table per test binary, created from infra/template.yaml; every case
//! uses fresh tenants, so they share it.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    BillingMode, IndexStatus, KeyType, ProjectionType, StreamViewType, TimeToLiveStatus,
};
use peak_store_dynamodb::{DynamoStore, client_from_env, create_table};
use tokio::sync::OnceCell;

static TABLE: OnceCell<String> = OnceCell::const_new();

/// A client for the test's own runtime (each `#[tokio::test]` has one, and
/// a client's connections belong to the runtime that opened them).
async fn client() -> Client {
    if std::env::var("DYNAMODB_ENDPOINT").map_or(true, |v| v.is_empty()) {
        panic!(
            "DynamoDB Local is not running: start it with `scripts/dynamodb-local.sh start` \
             and export DYNAMODB_ENDPOINT, or run scripts/test.sh"
        );
    }
    client_from_env().await
}

/// The table of this test binary, created once.
async fn table(client: &Client) -> &'static str {
    TABLE
        .get_or_init(|| async {
            let name = format!("peak-users-test-{}", ulid::Ulid::new());
            create_table(client, &name).await.unwrap_or_else(|e| {
                panic!("could not create the test table ({e}): is DynamoDB Local running at DYNAMODB_ENDPOINT?")
            });
            name
        })
        .await
}

async fn make_store() -> Box<DynamoStore> {
    let client = client().await;
    let table = table(&client).await;
    Box::new(DynamoStore::new(client, table))
}

peak_store_contract::profile_store_contract!(make_store());

#[tokio::test]
async fn the_table_is_created_from_the_template() {
    let client = client().await;
    let name = table(&client).await;
    let described = client
        .describe_table()
        .table_name(name)
        .send()
        .await
        .expect("describe table");
    let t = described.table().expect("table");
    let keys: Vec<_> = t
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type().clone()))
        .collect();
    assert_eq!(keys, [("PK", KeyType::Hash), ("SK", KeyType::Range)]);
    let mut indexes: Vec<_> = t
        .global_secondary_indexes()
        .iter()
        .map(|i| {
            assert_eq!(i.index_status(), Some(&IndexStatus::Active));
            assert_eq!(
                i.projection().and_then(|p| p.projection_type()),
                Some(&ProjectionType::All)
            );
            let keys: Vec<_> = i.key_schema().iter().map(|k| k.attribute_name()).collect();
            (i.index_name().expect("index name"), keys)
        })
        .collect();
    indexes.sort();
    assert_eq!(
        indexes,
        [
            ("GSI1", vec!["GSI1PK", "GSI1SK"]),
            ("GSI2", vec!["GSI2PK", "GSI2SK"]),
            ("GSI3", vec!["GSI3PK", "GSI3SK"]),
            ("GSI4", vec!["GSI4PK", "GSI4SK"]),
            ("GSI5", vec!["GSI5PK", "GSI5SK"]),
        ]
    );

    assert_eq!(
        t.billing_mode_summary().and_then(|b| b.billing_mode()),
        Some(&BillingMode::PayPerRequest)
    );
    let stream = t.stream_specification().expect("stream");
    assert!(stream.stream_enabled());
    assert_eq!(
        stream.stream_view_type(),
        Some(&StreamViewType::NewAndOldImages)
    );

    let ttl = client
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .expect("describe TTL");
    let ttl = ttl.time_to_live_description().expect("TTL description");
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));

    // Creating it again is fine.
    create_table(&client, name).await.expect("idempotent");
}

// Beyond the contract: what is particular to this adapter.

#[tokio::test]
async fn empty_descriptions_round_trip() {
    // DynamoDB Local (like DynamoDB before 2020) refuses empty strings.
    use peak_domain::ports::ProfileStore;
    let store = make_store().await;
    let t = peak_store_contract::fresh_tenant();
    let mut p = peak_store_contract::sample_profile(&t, "Plain");
    p.description.clear();
    store.insert_profile(&p).await.expect("insert");
    assert_eq!(
        store.get_profile(&t, &p.id).await.expect("get"),
        Some(p.clone())
    );

    let mut described = p.clone();
    described.description = "Now with words".into();
    described.version = 2;
    store
        .update_profile(&p, &described)
        .await
        .expect("describe");
    let mut cleared = described.clone();
    cleared.description.clear();
    cleared.version = 3;
    store
        .update_profile(&described, &cleared)
        .await
        .expect("clear");
    assert_eq!(
        store.get_profile(&t, &p.id).await.expect("get"),
        Some(cleared)
    );
}

#[tokio::test]
async fn the_holder_count_never_goes_below_zero() {
    use peak_domain::ports::{ProfileStore, StoreError};
    let store = make_store().await;
    let t = peak_store_contract::fresh_tenant();
    let p = peak_store_contract::sample_profile(&t, "Counted");
    store.insert_profile(&p).await.expect("insert");
    store
        .change_profile_holders(&t, &p.id, 2)
        .await
        .expect("+2");
    assert!(matches!(
        store.change_profile_holders(&t, &p.id, -3).await,
        Err(StoreError::Backend(_))
    ));
    store
        .change_profile_holders(&t, &p.id, -2)
        .await
        .expect("-2");
    let stored = store
        .get_profile(&t, &p.id)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(stored.holder_count, 0);
}

#[tokio::test]
async fn a_malformed_item_is_a_backend_error() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use peak_domain::ports::{PageRequest, ProfileStore, StoreError};
    let store = make_store().await;
    let t = peak_store_contract::fresh_tenant();
    let id = peak_domain::ProfileId::generate();
    store
        .client()
        .put_item()
        .table_name(store.table())
        .item("PK", AttributeValue::S(format!("TENANT#{t}")))
        .item("SK", AttributeValue::S(format!("PROFILE#{id}")))
        .item("entity", AttributeValue::S("profile".into()))
        .item("version", AttributeValue::S("one".into()))
        .send()
        .await
        .expect("put a broken item");
    assert!(matches!(
        store.get_profile(&t, &id).await,
        Err(StoreError::Backend(_))
    ));
    assert!(matches!(
        store.list_profiles(&t, &PageRequest::first(10)).await,
        Err(StoreError::Backend(_))
    ));
}
