//! Read and write units per operation, as DynamoDB Local reports them, for
//! `store_calls.rs`: in the tests only, an interceptor asks every request
//! for its consumed capacity (`"ReturnConsumedCapacity": "INDEXES"`, added
//! to the JSON body before signing; production code never asks), and the
//! HTTP connector wrapper reads `ConsumedCapacity` from each response body
//! (an object, or a list for the batch and transaction operations): the
//! table's and each index's units. Local prices transactions differently
//! from AWS (README), so a priced run also reads each transaction's items
//! before and after it and computes AWS's charge
//! ([`aws_transaction_units`]).
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
    /// Write units by AWS's rules: Local's figure for every write but a
    /// transaction, which [`aws_transaction_units`] computes.
    pub aws_write: BTreeMap<String, f64>,
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
        let read = READS.contains(&op);
        let aws_too = !read && op != "TransactWriteItems";
        let into = if read {
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
            let mut spent = vec![("table".to_owned(), units(cc.get("Table").unwrap_or(&cc)))];
            for kind in ["GlobalSecondaryIndexes", "LocalSecondaryIndexes"] {
                if let Some(Value::Object(indexes)) = cc.get(kind) {
                    spent.extend(indexes.iter().map(|(name, v)| (name.clone(), units(v))));
                }
            }
            for (at, n) in spent {
                add(into, &at, n);
                if aws_too {
                    add(&mut self.aws_write, &at, n);
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

    /// What DynamoDB Local reported, without the units computed by AWS's
    /// rules (which only a priced run has).
    pub(crate) fn local(&self) -> Units {
        Units {
            aws_write: BTreeMap::new(),
            ..self.clone()
        }
    }

    /// Adds a transaction's units by AWS's rules.
    pub(crate) fn add_aws(&mut self, units: &BTreeMap<String, f64>) {
        for (at, n) in units {
            add(&mut self.aws_write, at, *n);
        }
    }

    /// The README table's three cells: read units, write units as Local
    /// reports them, write units by AWS's rules.
    pub(crate) fn cells(&self) -> String {
        format!(
            "{} | {} | {}",
            Self::describe(&self.read),
            Self::describe(&self.write),
            Self::describe(&self.aws_write)
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
            "write_units_aws": units(&self.aws_write),
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

/// An item as DynamoDB's JSON has it, read back (`None`: absent).
pub(crate) type Item = Map<String, Value>;

/// One action of a `TransactWriteItems` request: its kind, table and key.
#[derive(Debug, Clone)]
pub(crate) struct Action {
    kind: String,
    table: String,
    key: Map<String, Value>,
}

/// The actions of a `TransactWriteItems` request body (the key of a `Put`
/// is its item's `PK` and `SK`).
pub(crate) fn actions(body: &[u8]) -> Vec<Action> {
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in body["TransactItems"].as_array().into_iter().flatten() {
        let Some((kind, action)) = item.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        let key = match kind.as_str() {
            "Put" => ["PK", "SK"]
                .iter()
                .filter_map(|k| Some(((*k).to_owned(), action["Item"].get(*k)?.clone())))
                .collect(),
            _ => action["Key"].as_object().cloned().unwrap_or_default(),
        };
        out.push(Action {
            kind: kind.clone(),
            table: action["TableName"].as_str().unwrap_or_default().to_owned(),
            key,
        });
    }
    out
}

impl Action {
    /// A `GetItem` body reading this action's item (strongly consistent).
    pub(crate) fn get_body(&self) -> Vec<u8> {
        serde_json::to_vec(
            &json!({"TableName": self.table, "Key": self.key, "ConsistentRead": true}),
        )
        .unwrap()
    }
}

/// An item's size by AWS's rules: each attribute's name plus its value
/// (strings and binaries their bytes, numbers 1 byte per 2 significant
/// digits plus 1, booleans and nulls 1, lists and maps 3 plus 1 per element
/// plus their contents).
pub(crate) fn item_size(item: &Map<String, Value>) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn value_size(v: &Value) -> usize {
    let Some((t, x)) = v.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    let number = |n: &str| {
        let digits: String = n.chars().filter(char::is_ascii_digit).collect();
        let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
        significant.div_ceil(2) + 1
    };
    fn strings(x: &Value) -> impl Iterator<Item = &str> {
        x.as_array().into_iter().flatten().filter_map(Value::as_str)
    }
    match t.as_str() {
        "S" => x.as_str().map_or(0, str::len),
        "B" => x.as_str().map_or(0, |b| b.len() * 3 / 4),
        "N" => x.as_str().map_or(0, number),
        "BOOL" | "NULL" => 1,
        "SS" => strings(x).map(str::len).sum(),
        "NS" => strings(x).map(number).sum(),
        "BS" => strings(x).map(|b| b.len() * 3 / 4).sum(),
        "L" => {
            3 + x
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| 1 + value_size(e))
                .sum::<usize>()
        }
        "M" => {
            3 + x.as_object().map_or(0, |m| {
                m.iter().map(|(k, e)| 1 + k.len() + value_size(e)).sum()
            })
        }
        _ => 0,
    }
}

/// The index an item is in, with its key there: `GSI<n>` for each
/// `GSI<n>PK` the item carries with its `GSI<n>SK`.
fn index_keys(item: &Map<String, Value>) -> BTreeMap<String, (Value, Value)> {
    item.iter()
        .filter_map(|(k, pk)| {
            let index = k.strip_suffix("PK").filter(|i| i.starts_with("GSI"))?;
            let sk = item.get(&format!("{index}SK"))?;
            Some((index.to_owned(), (pk.clone(), sk.clone())))
        })
        .collect()
}

/// What AWS charges for one transaction, by table and index, from each
/// action's item before and after: 2 units per KB (rounded up per item) of
/// the larger image on the table — a `ConditionCheck` counted as a write
/// (our reading of AWS's rules: an assumption) — and in each index the item
/// is in, the larger image where its entry stays, or the old entry's
/// delete plus the new one's put where it moves, comes or goes.
pub(crate) fn aws_transaction_units(
    images: &[(Action, Option<Item>, Option<Item>)],
) -> BTreeMap<String, f64> {
    let kb = |m: &Option<Map<String, Value>>| m.as_ref().map_or(0, |m| item_size(m).div_ceil(1024));
    let mut units = BTreeMap::new();
    for (action, old, new) in images {
        let larger = kb(old).max(kb(new)).max(1);
        add(&mut units, "table", 2.0 * larger as f64);
        if action.kind == "ConditionCheck" {
            continue;
        }
        let empty = BTreeMap::new();
        let (old_keys, new_keys) = (
            old.as_ref().map_or(empty.clone(), index_keys),
            new.as_ref().map_or(empty, index_keys),
        );
        let indexes: std::collections::BTreeSet<&String> =
            old_keys.keys().chain(new_keys.keys()).collect();
        for index in indexes {
            let entries = match (old_keys.get(index), new_keys.get(index)) {
                (Some(a), Some(b)) if a == b => larger,
                (a, b) => a.map_or(0, |_| kb(old).max(1)) + b.map_or(0, |_| kb(new).max(1)),
            };
            add(&mut units, index, 2.0 * entries as f64);
        }
    }
    units
}
