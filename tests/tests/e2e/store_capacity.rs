//! Read and write units per operation, as DynamoDB Local reports them, for
//! `store_calls.rs`: in the tests only, an interceptor asks every request
//! for its consumed capacity (`"ReturnConsumedCapacity": "INDEXES"`, added
//! to the JSON body before signing; production code never asks), and the
//! HTTP connector wrapper reads `ConsumedCapacity` from each response body
//! (an object, or a list for the batch and transaction operations): the
//! table's and each index's units.
//!
//! The figures are pinned in `docs/capacity.json`, which the scale model
//! (`scripts/scale-model.py`) reads and whose figures the README's table
//! shows (`scripts/scale-model.py --check` compares them): a change fails
//! here; rerun with `UPDATE_CAPACITY=1` to rewrite the file, then update the
//! README and `docs/scale.md` (`scripts/scale-model.py --write`).

use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_types::body::SdkBody;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Asks each DynamoDB request for its consumed capacity, by table and
/// index, unless the request already names what it wants.
#[derive(Debug, Clone, Default)]
pub(crate) struct AskCapacity;

impl Intercept for AskCapacity {
    fn name(&self) -> &'static str {
        "AskCapacity"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        let Some(Ok(Value::Object(mut body))) = request.body().bytes().map(serde_json::from_slice)
        else {
            return Ok(());
        };
        if body.contains_key("ReturnConsumedCapacity") {
            return Ok(());
        }
        body.insert("ReturnConsumedCapacity".into(), json!("INDEXES"));
        let bytes = serde_json::to_vec(&body)?;
        request
            .headers_mut()
            .insert("content-length", bytes.len().to_string());
        *request.body_mut() = SdkBody::from(bytes);
        Ok(())
    }
}

/// Units consumed, by where: `table` or an index's name.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Units {
    pub read: BTreeMap<String, f64>,
    pub write: BTreeMap<String, f64>,
    /// Items written by `TransactWriteItems` (each of its actions), to
    /// set beside DynamoDB Local's transaction figure (see the README).
    pub transact_items: usize,
    /// Requests answered with an error (no capacity reported, though AWS
    /// charges a failed conditional write).
    pub failed: usize,
}

const READS: [&str; 5] = [
    "GetItem",
    "BatchGetItem",
    "Query",
    "Scan",
    "TransactGetItems",
];

impl Units {
    /// Adds what one response reported (`op` is the operation's name, the
    /// request's `X-Amz-Target` suffix).
    pub(crate) fn add_response(&mut self, op: &str, status: u16, body: &[u8]) {
        if status != 200 {
            self.failed += 1;
            return;
        }
        let Ok(body) = serde_json::from_slice::<Value>(body) else {
            return;
        };
        let into = if READS.contains(&op) {
            &mut self.read
        } else {
            &mut self.write
        };
        let each = match &body["ConsumedCapacity"] {
            Value::Array(list) => list.clone(),
            Value::Object(_) => vec![body["ConsumedCapacity"].clone()],
            _ => Vec::new(),
        };
        for cc in each {
            let units = |v: &Value| v["CapacityUnits"].as_f64().unwrap_or(0.0);
            match cc.get("Table") {
                Some(table) => add(into, "table", units(table)),
                None => add(into, "table", units(&cc)),
            }
            for kind in ["GlobalSecondaryIndexes", "LocalSecondaryIndexes"] {
                if let Some(Value::Object(indexes)) = cc.get(kind) {
                    for (name, v) in indexes {
                        add(into, name, units(v));
                    }
                }
            }
        }
    }

    /// Counts the actions of a `TransactWriteItems` request body.
    pub(crate) fn add_request(&mut self, op: &str, body: Option<&[u8]>) {
        if op != "TransactWriteItems" {
            return;
        }
        if let Some(Ok(body)) = body.map(serde_json::from_slice::<Value>) {
            self.transact_items += body["TransactItems"].as_array().map_or(0, Vec::len);
        }
    }

    /// `7.5 (table 4, GSI1 2, GSI2 1.5)`; units spent on the table only
    /// print as the bare total; nothing prints as `0`.
    pub(crate) fn describe(units: &BTreeMap<String, f64>) -> String {
        let total: f64 = units.values().sum();
        let spent: Vec<String> = units
            .iter()
            .filter(|(_, v)| **v > 0.0)
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        if spent.is_empty() {
            "0".into()
        } else if spent.len() == 1 && units.get("table").is_some_and(|v| *v > 0.0) {
            format!("{total}")
        } else {
            format!("{total} ({})", spent.join(", "))
        }
    }

    /// The README table's two cells: read units, write units.
    pub(crate) fn cells(&self) -> String {
        format!(
            "{} | {}",
            Self::describe(&self.read),
            Self::describe(&self.write)
        )
    }

    /// What `docs/capacity.json` holds for one operation.
    /// `round_trips` is the most the test allows (`None` where it pins no
    /// figure).
    pub(crate) fn to_json(
        &self,
        calls: &BTreeMap<String, usize>,
        round_trips: Option<usize>,
    ) -> Value {
        let units = |m: &BTreeMap<String, f64>| {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
        };
        json!({
            "calls": calls,
            "round_trips": round_trips,
            "read_units": units(&self.read),
            "write_units": units(&self.write),
            "transact_items": self.transact_items,
            "cells": self.cells(),
        })
    }
}

fn add(into: &mut BTreeMap<String, f64>, key: &str, units: f64) {
    *into.entry(key.to_owned()).or_insert(0.0) += units;
}

/// The file every capacity test compares with (and rewrites its own
/// entries of, with `UPDATE_CAPACITY=1`); the tests run at the same time
/// in one process, so they take turns.
static FILE: Mutex<()> = Mutex::new(());
const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/capacity.json");

/// Fails unless `docs/capacity.json` holds exactly `measured` for each of
/// its operations (other entries are other tests').
pub(crate) fn pin(measured: &BTreeMap<String, Value>) {
    let _turn = FILE.lock().unwrap_or_else(|e| e.into_inner());
    let text = std::fs::read_to_string(PATH).unwrap_or_else(|_| "{}".into());
    let mut file: Map<String, Value> = serde_json::from_str(&text).expect("docs/capacity.json");
    if std::env::var("UPDATE_CAPACITY").is_ok_and(|v| v == "1") {
        for (k, v) in measured {
            file.insert(k.clone(), v.clone());
        }
        let sorted: BTreeMap<_, _> = file.into_iter().collect();
        let text = serde_json::to_string_pretty(&sorted).unwrap() + "\n";
        std::fs::write(PATH, text).expect("write docs/capacity.json");
        return;
    }
    let changed: Vec<String> = measured
        .iter()
        .filter(|(k, v)| file.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: measured {v}, pinned {:?}", file.get(k)))
        .collect();
    assert!(
        changed.is_empty(),
        "consumed capacity changed (rerun with UPDATE_CAPACITY=1, then update the README's \
         table and docs/scale.md: scripts/scale-model.py --write):\n{}",
        changed.join("\n")
    );
}
