//! The DynamoDB stream handler, with hand-built stream events shaped like
//! the ones Lambda delivers for the table (NEW_AND_OLD_IMAGES), sending
//! through moto. Needs `SES_ENDPOINT` (see tests/ses.rs).

mod common;

use aws_lambda_events::event::dynamodb::Event;
use aws_sdk_dynamodb::types::AttributeValue;
use common::*;
use peak_domain::outbox::{EmailKind, OutboxEmail};
use peak_store_dynamodb::user_item::{attr, index};
use serde_json::{Value, json};
use std::sync::Arc;

fn s(v: &str) -> Value {
    json!({ "S": v })
}

/// The item the DynamoDB adapter writes for a pending outbox email (its
/// own mapping, so the handler and the adapter cannot drift apart), in the
/// stream's JSON form.
fn outbox_image(m: &OutboxEmail) -> Value {
    let item = peak_store_dynamodb::record_item::outbox_item(m).expect("an outbox item");
    let mut image = serde_json::Map::new();
    for (name, value) in item {
        let value = match value {
            AttributeValue::S(v) => json!({ "S": v }),
            AttributeValue::N(v) => json!({ "N": v }),
            other => panic!("unexpected attribute {name}: {other:?}"),
        };
        image.insert(name, value);
    }
    Value::Object(image)
}

fn keys(m: &OutboxEmail) -> Value {
    json!({
        "PK": s(&format!("OUTBOX#{}#{}", m.tenant_id, m.id)),
        "SK": s("OUTBOX"),
    })
}

fn record(name: &str, seq: &str, keys: Value, new_image: Option<Value>) -> Value {
    let mut dynamodb = json!({
        "ApproximateCreationDateTime": 1_735_689_600,
        "Keys": keys,
        "SequenceNumber": seq,
        "SizeBytes": 512,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    });
    if let Some(image) = new_image {
        dynamodb["NewImage"] = image;
    }
    json!({
        "eventID": format!("ev-{seq}"),
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": dynamodb,
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/peak-users/stream/2025-01-01T00:00:00.000",
    })
}

fn event(records: Vec<Value>) -> Event {
    serde_json::from_value(json!({ "Records": records })).expect("a stream event")
}

fn failed_sequence_numbers(
    r: &aws_lambda_events::event::streams::DynamoDbEventResponse,
) -> Vec<String> {
    r.batch_item_failures
        .iter()
        .filter_map(|f| f.item_identifier.clone())
        .collect()
}

#[tokio::test]
async fn a_stream_batch_sends_new_emails_once_and_reports_transient_failures() {
    // Recipients with "flaky" in the address fail once, transiently.
    let sender = Arc::new(FlakySender::new(ses().await, "flaky", 1));
    let (store, t, p) = store().await;
    let ok_to = unique_address("stream");
    let flaky_to = unique_address("flaky");
    let keys_to = unique_address("keysonly");
    let (_, ok) = user_with_email(&store, &t, &p, &ok_to, EmailKind::Invitation).await;
    let (_, flaky) = user_with_email(&store, &t, &p, &flaky_to, EmailKind::Invitation).await;
    let (_, keys_only) = user_with_email(&store, &t, &p, &keys_to, EmailKind::Invitation).await;
    let mailer = mailer(store.clone(), sender.clone(), brands());

    let image = outbox_image(&ok);
    assert_eq!(image["entity"], s("outbox"));
    // In one of the sharded pending partitions (`OUTBOX#PENDING#<k>`).
    let shard =
        peak_store_dynamodb::due::shard_of(&ok.id, peak_store_dynamodb::due::PENDING_SHARDS);
    assert_eq!(image["GSI2PK"], s(&format!("OUTBOX#PENDING#{shard}")));
    assert_eq!(image["PK"], keys(&ok)["PK"]);
    let mut claimed = image.clone();
    claimed[attr::LEASED_UNTIL] = json!({ "N": "1735689600000" });
    let mut sent = image.clone();
    sent.as_object_mut().unwrap().remove(index::GSI2.1);
    sent.as_object_mut().unwrap().remove(attr::DATA);
    sent[attr::SENT_AT] = s("2025-01-01T00:00:01Z");
    let user_item = json!({
        "PK": s(&format!("TENANT#{t}#USER#x")),
        "SK": s("USER"),
        "entity": s("user"),
    });
    let batch = || {
        event(vec![
            record("INSERT", "100", keys(&ok), Some(outbox_image(&ok))),
            // Our own claim, then completion, of that email: skipped.
            record("MODIFY", "101", keys(&ok), Some(claimed.clone())),
            record("MODIFY", "102", keys(&ok), Some(sent.clone())),
            // Not an email at all; a removal.
            record(
                "INSERT",
                "103",
                json!({"PK": s("TENANT#x#USER#y"), "SK": s("USER")}),
                Some(user_item.clone()),
            ),
            record("REMOVE", "104", keys(&ok), None),
            // Fails once, transiently.
            record("INSERT", "105", keys(&flaky), Some(outbox_image(&flaky))),
            // A KEYS_ONLY record: the key names the email.
            record("INSERT", "106", keys(&keys_only), None),
        ])
    };

    let first = mailer.handle_stream_batch(batch()).await;
    assert_eq!(failed_sequence_numbers(&first), ["105"]);
    assert_eq!(messages_to(&ok_to).await.len(), 1);
    assert_eq!(messages_to(&keys_to).await.len(), 1);
    assert!(messages_to(&flaky_to).await.is_empty());
    assert_eq!(
        sender.calls_to(&ok_to).len(),
        1,
        "the claim and completion records sent nothing"
    );

    // Lambda retries the batch: what was sent is not sent again, the
    // transient failure is retried (after its backoff) and goes out.
    let again = mailer.handle_stream_batch(batch()).await;
    assert!(failed_sequence_numbers(&again).is_empty());
    assert_eq!(messages_to(&ok_to).await.len(), 1, "still exactly one");
    assert_eq!(messages_to(&keys_to).await.len(), 1, "still exactly one");
    assert_eq!(messages_to(&flaky_to).await.len(), 1);
    assert_eq!(sender.calls_to(&ok_to).len(), 1);
    assert_eq!(sender.calls_to(&flaky_to).len(), 2);

    // The response serializes as Lambda expects.
    let wire = serde_json::to_value(&first).unwrap();
    assert_eq!(
        wire,
        json!({"batchItemFailures": [{"itemIdentifier": "105"}]})
    );
}

#[tokio::test]
async fn a_record_of_another_tenant_or_an_unknown_email_sends_nothing() {
    let sender = Arc::new(FlakySender::new(ses().await, "", 0));
    let (store, t, p) = store().await;
    let to = unique_address("isolated");
    let (_, mail) = user_with_email(&store, &t, &p, &to, EmailKind::Invitation).await;
    let mailer = mailer(store.clone(), sender.clone(), brands());
    let mut foreign = mail.clone();
    foreign.tenant_id = peak_store_contract::fresh_tenant();
    let mut unknown = mail.clone();
    unknown.id = ulid::Ulid::new().to_string();
    let response = mailer
        .handle_stream_batch(event(vec![
            record("INSERT", "1", keys(&foreign), Some(outbox_image(&foreign))),
            record("INSERT", "2", keys(&unknown), Some(outbox_image(&unknown))),
        ]))
        .await;
    assert!(failed_sequence_numbers(&response).is_empty());
    assert!(sender.calls_to(&to).is_empty());
    assert!(messages_to(&to).await.is_empty());
}
