//! DynamoDB adapter of the domain's store ports, one module per port
//! (`profiles`, `users` with `user_write`, `audit`, `outbox`,
//! `idempotency`, `idp_work`, `logins`, `deliveries`, `rate_limits`,
//! `jobs`, `tenants`): one table for every entity (single-table design),
//! defined once in infra/template.yaml.
//!
//! Profiles live under their tenant's partition (`PK = TENANT#<tenant>`):
//! the profile itself at `SK = PROFILE#<id>`, and a name guard at
//! `SK = PROFILENAME#<lowercased name>` that keeps names unique per tenant,
//! and its holder count spread over shards at `SK = PROFILE#<id>#HOLDERS#<k>`
//! (see [`item`]). Every write that touches more than one is one
//! transaction.
//!
//! Users have a partition each (`TENANT#<tenant>#USER#<id>`) and are listed
//! through five secondary indexes and per-account membership copies; their
//! guards, audit events, outbox emails, idempotency keys and rate counters
//! are laid out in [`user_item`] and [`record_item`], and a user write is
//! one transaction (see src/user_write.rs). Bulk-invite jobs and their report entries share a
//! partition per job ([`jobs`]). No call scans: see docs/dynamodb.md for
//! the access patterns.

mod accounts;
mod audit;
mod caller;
mod deliveries;
pub mod due;
mod error;
mod idempotency;
mod idp_work;
pub mod item;
pub mod jobs;
mod logins;
mod outbox;
mod profiles;
mod rate_limits;
pub mod record_item;
mod shard;
pub mod table;
mod tenants;
pub mod user_item;
mod user_write;
mod users;

pub use table::{TABLE_RESOURCE, TEMPLATE, TableDefinition, create_table};
pub use user_write::MAX_TRANSACTION_ITEMS;

use crate::error::{cancelled, sdk};
use crate::item::Item;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::TransactWriteItem;
use peak_domain::ports::StoreError;
use std::collections::HashMap;
use std::time::Duration;

/// The cancellation reason of an item whose condition failed.
const CONDITION_FAILED: &str = "ConditionalCheckFailed";

/// A DynamoDB client for this environment: region and credentials from the
/// environment (see `peak_aws_env` for why not aws-config). When
/// `DYNAMODB_ENDPOINT` is set (DynamoDB Local), requests go there, with
/// dummy credentials and region `us-east-1` if none are set.
///
/// Every call is bounded so that a throttled or unreachable DynamoDB turns
/// into `Unavailable` (503 with `Retry-After`) before the API function's
/// 10 s timeout, never into a Lambda timeout (a bare 5xx from API Gateway):
/// [`ATTEMPT_TIMEOUT`] per attempt, [`CALL_TIMEOUT`] for a call with its
/// retries, and the SDK's standard retries (3 attempts; throttling,
/// 5xx, timeouts and reset connections are retried) with a short backoff.
///
/// Against a stand-in (`DYNAMODB_ENDPOINT` set: DynamoDB Local) the bounds
/// are [`STAND_IN_ATTEMPT_TIMEOUT`] and [`STAND_IN_CALL_TIMEOUT`]: DynamoDB
/// Local serialises on one SQLite database, and under the whole e2e suite on
/// a loaded 2-core machine a BatchWriteItem took longer than 6 s (a bulk
/// job's report write timed out). The bound exists for Lambda's timeout,
/// which a laptop does not have.
pub async fn client_from_env() -> Client {
    let stand_in = std::env::var("DYNAMODB_ENDPOINT").is_ok_and(|v| !v.is_empty());
    let (attempt, call) = if stand_in {
        (STAND_IN_ATTEMPT_TIMEOUT, STAND_IN_CALL_TIMEOUT)
    } else {
        (ATTEMPT_TIMEOUT, CALL_TIMEOUT)
    };
    let timeouts = peak_aws_env::TimeoutConfig::builder()
        .operation_attempt_timeout(attempt)
        .operation_timeout(call)
        .build();
    let config = peak_aws_env::sdk_config("DYNAMODB_ENDPOINT", Some(timeouts));
    let retry = aws_sdk_dynamodb::config::retry::RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(RETRY_BACKOFF)
        .with_max_backoff(RETRY_BACKOFF_CAP);
    Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&config)
            .retry_config(retry)
            .build(),
    )
}

/// One attempt of a DynamoDB call. DynamoDB answers in milliseconds (a
/// 1 MB Query page in well under a second); 3 s leaves room for DynamoDB
/// Local on a loaded laptop.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// A call with its retries: below the API functions' 10 s, with time left
/// for the request's other work.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(6);
/// The bounds against DynamoDB Local (see [`client_from_env`]).
pub const STAND_IN_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
pub const STAND_IN_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The first retry waits up to this (full jitter), doubling to
/// [`RETRY_BACKOFF_CAP`]: the SDK's default (1 s, to 20 s) would spend a
/// request's whole time waiting. AWS's own DynamoDB clients start at 25 ms
/// (500 ms when throttled); this sits between.
pub const RETRY_BACKOFF: Duration = Duration::from_millis(200);
pub const RETRY_BACKOFF_CAP: Duration = Duration::from_secs(1);

/// Every store port of the domain ([`UserStore`](peak_domain::ports::UserStore),
/// [`ProfileStore`](peak_domain::ports::ProfileStore),
/// [`JobStore`](peak_domain::ports::JobStore), …) on one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// Users a filtered list reads at most per request
    /// ([`DynamoStore::with_filtered_read_bound`]).
    filtered_read_bound: usize,
    /// When the pre-sharding pending partitions were found empty.
    legacy_pending: due::LegacyPending,
}

/// Why a transaction failed.
enum TxError {
    /// Cancelled: one reason code per item, in order ("None" when that
    /// item was fine). Empty if the server gave no reasons.
    Cancelled(Vec<String>),
    Failed(StoreError),
}

impl TxError {
    fn condition_failed(reasons: &[String], index: usize) -> bool {
        reasons.get(index).is_some_and(|c| c == CONDITION_FAILED)
    }

    fn into_store_error(reasons: &[String], op: &str) -> StoreError {
        let codes: Vec<Option<&str>> = reasons.iter().map(|c| Some(c.as_str())).collect();
        cancelled(op, &codes)
    }
}

/// Expression attribute names for `attrs` (`#a` → `a`), so that no
/// attribute can clash with a DynamoDB reserved word.
fn names(attrs: &[&str]) -> HashMap<String, String> {
    attrs
        .iter()
        .map(|a| (format!("#{a}"), (*a).to_owned()))
        .collect()
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Backend(format!("could not build request: {e}"))
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            filtered_read_bound: users::FILTERED_READ_BOUND,
            legacy_pending: due::LegacyPending::default(),
        }
    }

    /// Reads at most `items` users per filtered list request (default
    /// 1,000; see `users::FILTERED_READ_BOUND`): for tests, which show the
    /// partial pages without writing thousands of users.
    pub fn with_filtered_read_bound(mut self, items: usize) -> Self {
        self.filtered_read_bound = items.max(1);
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// One item by key, strongly consistent.
    async fn get_item(&self, op: &str, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk(op, &e))?;
        Ok(out.item)
    }

    /// A strongly consistent Query of one partition of the table from
    /// `start`: the items whose sort key starts with `sk_prefix` (all of
    /// them when `None`), in sort-key order. Callers add a limit or a
    /// direction and page on `last_evaluated_key`.
    fn partition_query(
        &self,
        pk: String,
        sk_prefix: Option<&str>,
        start: Option<Item>,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", item::s(pk))
            .consistent_read(true)
            .set_exclusive_start_key(start);
        match sk_prefix {
            Some(prefix) => query
                .key_condition_expression("PK = :pk AND begins_with(SK, :sk)")
                .expression_attribute_values(":sk", item::s(prefix)),
            None => query.key_condition_expression("PK = :pk"),
        }
    }

    async fn transact(&self, op: &str, items: Vec<TransactWriteItem>) -> Result<(), TxError> {
        // The SDK adds an idempotency token (ClientRequestToken) and reuses
        // it when it retries, so a retried write cannot fail its own
        // conditions.
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                    Err(TxError::Cancelled(
                        c.cancellation_reasons()
                            .iter()
                            .map(|r| r.code().unwrap_or("None").to_owned())
                            .collect(),
                    ))
                }
                _ => Err(TxError::Failed(sdk(op, &e))),
            },
        }
    }
}
