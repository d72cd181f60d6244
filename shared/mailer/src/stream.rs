//! The DynamoDB stream handler: the table's stream triggers delivery of
//! every outbox email written (`INSERT`) and of every email whose retry
//! time was set (`MODIFY` that released a lease).

use crate::mailer::{Delivery, Mailer};
use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use peak_domain::TenantId;
use std::collections::HashSet;

/// What the DynamoDB adapter writes on an outbox item (see
/// peak-store-dynamodb's `user_item`): `entity = "outbox"`, `tenant_id`,
/// `id`; `GSI2PK` while pending; `leased_until` while claimed. The key is
/// `PK = OUTBOX#<tenant>#<id>`, `SK = OUTBOX`.
const OUTBOX_ENTITY: &str = "outbox";
const OUTBOX_SK: &str = "OUTBOX";
const OUTBOX_PK_PREFIX: &str = "OUTBOX#";

impl Mailer {
    /// Delivers the outbox emails of a batch of stream records, one after
    /// another. Records of other items, of emails no longer pending (sent,
    /// failed) and of claims (another mailer is on it) are skipped. A
    /// delivery that should be tried again soon (a transient failure, the
    /// store unavailable) is reported as a batch item failure, so Lambda
    /// retries from that record; a redelivered record of an email sent in
    /// the meantime sends nothing (`AlreadySent`).
    pub async fn handle_stream_batch(&self, event: Event) -> DynamoDbEventResponse {
        let mut failures = Vec::new();
        let mut seen = HashSet::new();
        for record in &event.records {
            let Some((tenant, id)) = outbox_target(record) else {
                continue;
            };
            if !seen.insert((tenant.clone(), id.clone())) {
                continue; // delivered (or tried) in this batch already
            }
            let delivery = self.deliver(&tenant, &id).await;
            if delivery.needs_retry() {
                if let Some(seq) = record.change.sequence_number.clone() {
                    let mut failure = DynamoDbBatchItemFailure::default();
                    failure.item_identifier = Some(seq);
                    failures.push(failure);
                }
            } else if let Delivery::Busy { .. } = delivery {
                tracing::debug!(tenant = %tenant, outbox_id = %id, "email busy elsewhere");
            }
        }
        let mut response = DynamoDbEventResponse::default();
        response.batch_item_failures = failures;
        response
    }
}

/// The (tenant, outbox id) a record asks to deliver, if any.
fn outbox_target(record: &EventRecord) -> Option<(TenantId, String)> {
    if !matches!(record.event_name.as_str(), "INSERT" | "MODIFY") {
        return None;
    }
    let image = &record.change.new_image;
    if image.is_empty() {
        // A KEYS_ONLY stream: the key says which email; the claim decides.
        let pk = string_attr(record.change.keys.get("PK"))?;
        if string_attr(record.change.keys.get("SK"))? != OUTBOX_SK {
            return None;
        }
        let (tenant, id) = pk.strip_prefix(OUTBOX_PK_PREFIX)?.rsplit_once('#')?;
        return target(tenant, id);
    }
    if string_attr(image.get("entity"))? != OUTBOX_ENTITY {
        return None;
    }
    // Sent or failed for good: nothing to do. Claimed: the claimer is on it
    // (a stream record of our own claim, or another mailer's).
    if !image.contains_key("GSI2PK") || image.contains_key("leased_until") {
        return None;
    }
    target(
        &string_attr(image.get("tenant_id"))?,
        &string_attr(image.get("id"))?,
    )
}

fn target(tenant: &str, id: &str) -> Option<(TenantId, String)> {
    let tenant = TenantId::parse(tenant)?;
    (!id.is_empty()).then(|| (tenant, id.to_owned()))
}

/// The string of a stream attribute (`{"S": "..."}`), read through its
/// JSON form so this crate needs no second copy of the attribute types.
fn string_attr<T: serde::Serialize>(value: Option<&T>) -> Option<String> {
    let json = serde_json::to_value(value?).ok()?;
    json.get("S")?.as_str().map(str::to_owned)
}
