//! The DynamoDB stream entry point of the worker.

use crate::worker::Worker;
use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use peak_domain::TenantId;
use peak_domain::model::user::UserId;
use std::collections::HashSet;
use time::OffsetDateTime;

/// What the DynamoDB adapter writes on an owed-work item (see
/// peak-store-dynamodb's `idp_work`): `entity = "idp_work"`, `tenant_id`,
/// `user_id`, `due_ms` (0 when freshly written by a user change).
const ENTITY: &str = "idp_work";

impl Worker {
    /// Performs the owed work of a batch of stream records. Only freshly
    /// written records (due at once) are taken: the worker's own claims and
    /// failures also change the item, and retries are the sweep's job.
    /// Provider failures are recorded on the item (and retried by the
    /// sweep), so only a store failure is reported as a batch item failure.
    pub async fn handle_stream_batch(&self, event: Event) -> DynamoDbEventResponse {
        let mut failures = Vec::new();
        let mut seen = HashSet::new();
        for record in &event.records {
            let Some((tenant, user)) = target(record) else {
                continue;
            };
            if !seen.insert((tenant.clone(), user.clone())) {
                continue;
            }
            if let Err(e) = self
                .process(&tenant, &user, OffsetDateTime::now_utc())
                .await
            {
                tracing::warn!(tenant = %tenant, user_id = %user, error = %e, "store unavailable");
                if let Some(seq) = record.change.sequence_number.clone() {
                    let mut failure = DynamoDbBatchItemFailure::default();
                    failure.item_identifier = Some(seq);
                    failures.push(failure);
                }
            }
        }
        let mut response = DynamoDbEventResponse::default();
        response.batch_item_failures = failures;
        response
    }
}

fn target(record: &EventRecord) -> Option<(TenantId, UserId)> {
    if !matches!(record.event_name.as_str(), "INSERT" | "MODIFY") {
        return None;
    }
    let image = &record.change.new_image;
    if string_attr(image.get("entity"))? != ENTITY {
        return None;
    }
    if number_attr(image.get("due_ms"))? != 0 {
        return None;
    }
    Some((
        TenantId::parse(&string_attr(image.get("tenant_id"))?)?,
        UserId::parse(&string_attr(image.get("user_id"))?)?,
    ))
}

/// The string of a stream attribute (`{"S": "..."}`).
fn string_attr<T: serde::Serialize>(value: Option<&T>) -> Option<String> {
    let json = serde_json::to_value(value?).ok()?;
    json.get("S")?.as_str().map(str::to_owned)
}

/// The number of a stream attribute (`{"N": "..."}`).
fn number_attr<T: serde::Serialize>(value: Option<&T>) -> Option<i64> {
    let json = serde_json::to_value(value?).ok()?;
    json.get("N")?.as_str()?.parse().ok()
}
