//! Benchmark (not a test): many user transactions on one profile at once,
//! against DynamoDB Local, counting which items each transaction writes.
//!
//! ```sh
//! eval "$(scripts/dynamodb-local.sh start)"; export DYNAMODB_ENDPOINT
//! cargo run --release -p peak-store-dynamodb --example hot_profile -- 400 32
//! ```
//!
//! Args: users to invite (default 400), at most this many at once (32).
//! Every invite is one `TransactWriteItems`; an interceptor reads each
//! request and counts the writes per item key ("how many transactions
//! wrote the hottest item") and the transactions sent: those beyond one
//! per invite are the store's retries after a `TransactionConflict`
//! (DynamoDB Local cancels transactions on one item too, as DynamoDB does)
//! or, for a profile from before the holder shards, a shard created on
//! first use. README, "Hot items (wall 6)", has the figures before and
//! after.

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use peak_domain::ports::{ProfileStore, UserRecords, UserWrite};
use peak_store_contract::users::{profile, sample_user};
use peak_store_dynamodb::{DynamoStore, create_table};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Writes per item key, and the transactions sent.
#[derive(Debug, Default, Clone)]
struct Writes(Arc<Mutex<(HashMap<String, usize>, usize)>>);

impl Intercept for Writes {
    fn name(&self) -> &'static str {
        "Writes"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let is_tx = request
            .headers()
            .get("x-amz-target")
            .is_some_and(|t| t.ends_with("TransactWriteItems"));
        let Some(body) = request.body().bytes() else {
            return Ok(());
        };
        if !is_tx {
            return Ok(());
        }
        let json: serde_json::Value = serde_json::from_slice(body)?;
        let mut seen = self.0.lock().map_err(|_| "poisoned")?;
        seen.1 += 1;
        for item in json["TransactItems"].as_array().into_iter().flatten() {
            for (kind, op) in item.as_object().into_iter().flatten() {
                if kind == "ConditionCheck" {
                    continue; // read, not written
                }
                let key = op.get("Key").or_else(|| op.get("Item"));
                let Some(key) = key else { continue };
                let pk = key["PK"]["S"].as_str().unwrap_or("?");
                let sk = key["SK"]["S"].as_str().unwrap_or("?");
                *seen.0.entry(format!("{pk} | {sk}")).or_insert(0) += 1;
            }
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let users: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(400);
    let width: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
    let writes = Writes::default();
    let conf = aws_sdk_dynamodb::config::Builder::from(&peak_aws_env::sdk_config(
        "DYNAMODB_ENDPOINT",
        None,
    ))
    .interceptor(writes.clone())
    .build();
    let client = aws_sdk_dynamodb::Client::from_conf(conf);
    let table = format!("peak-users-bench-{}", ulid::Ulid::new());
    create_table(&client, &table).await.expect("create table");
    let store = Arc::new(DynamoStore::new(client, &table));
    let t = peak_store_contract::fresh_tenant();
    let p = profile(store.as_ref(), &t, "Everyone").await;
    *writes.0.lock().unwrap() = Default::default();

    let started = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(width));
    let mut tasks = Vec::new();
    for i in 0..users {
        let (store, gate) = (store.clone(), gate.clone());
        let u = sample_user(
            &t,
            &p,
            "Bulk",
            &format!("No{i}"),
            &format!("b{i}@hot.example"),
        );
        tasks.push(tokio::spawn(async move {
            let _slot = gate.acquire().await.expect("gate");
            store
                .write_user(UserWrite {
                    previous: None,
                    next: Some(&u),
                    audit: &[],
                    outbox: &[],
                })
                .await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        if task.await.expect("join").is_ok() {
            ok += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let (per_item, transactions) = writes.0.lock().unwrap().clone();
    let mut hottest: Vec<(String, usize)> = per_item
        .into_iter()
        .filter(|(k, _)| k.contains("PROFILE#"))
        .collect();
    hottest.sort_by_key(|h| std::cmp::Reverse(h.1));
    let held = store
        .get_profile(&t, &p)
        .await
        .unwrap()
        .unwrap()
        .holder_count;
    println!(
        "{ok}/{users} invited on one profile, {width} at once: {transactions} transactions \
         ({} beyond one per invite: retries after conflicts), {secs:.2} s ({:.0} tx/s)",
        transactions - users,
        users as f64 / secs
    );
    println!("holder count read back: {held}");
    println!("profile items written, most written first:");
    for (key, n) in &hottest {
        println!("  {n:>5}  {key}");
    }
}
