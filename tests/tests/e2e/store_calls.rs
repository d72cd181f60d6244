//! What each operation costs in DynamoDB, measured through the HTTP API on
//! the real client against DynamoDB Local:
//!
//! - **calls**: an SDK interceptor counts operations (once per operation,
//!   before the retry loop), by name;
//! - **round trips**: the HTTP connector under the client records when each
//!   request starts and ends; requests that overlap in time are one round
//!   trip (they wait on the network together), so this counts the
//!   *sequential* waits an operation makes;
//! - **latency**: the same connector waits a fixed [`DELAY`] before sending
//!   each request, as a network between the function and DynamoDB would,
//!   and the request is timed end to end from the HTTP client (median and
//!   best of [`REPS`] runs), and again without the delay (median).
//!   DynamoDB Local on loopback answers in a few milliseconds, so without
//!   the delay the figures would hide much of what round trips cost on a
//!   network.
//!
//! - **capacity**: read and write units by table and index, as DynamoDB
//!   Local reports them (`store_capacity.rs`), the same in every run and
//!   pinned in `docs/capacity.json`.
//!
//! The numbers are the README's "Store calls and round trips per operation"
//! table; a change that adds a call or a round trip to a hot path fails
//! here and must update both.

use crate::store_capacity::{self, AskCapacity, Units};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use peak_local::Stores;
use peak_tests::{TestApp, spawn};
use reqwest::{Method, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Injected before every DynamoDB request: a same-region network hop.
const DELAY: Duration = Duration::from_millis(5);
/// Runs per operation; the latency is their median.
const REPS: usize = 9;

#[derive(Debug, Clone, Default)]
pub(crate) struct CallCounter(Arc<Mutex<Vec<String>>>);

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    /// Once per operation (before the retry loop): the request's
    /// `X-Amz-Target` names it, e.g. `DynamoDB_20120810.GetItem`.
    fn read_after_serialization(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = context
            .request()
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("?")
            .to_owned();
        self.0.lock().unwrap().push(op);
        Ok(())
    }
}

impl CallCounter {
    pub(crate) fn take(&self) -> BTreeMap<String, usize> {
        let mut calls = self.0.lock().unwrap();
        let mut counts = BTreeMap::new();
        for op in calls.drain(..) {
            *counts.entry(op).or_insert(0) += 1;
        }
        counts
    }
}

/// The client's HTTP client, wrapped: waits [`DELAY`] before each request
/// (asynchronously, so concurrent requests wait together) and records when
/// each one started and ended.
#[derive(Debug, Clone)]
pub(crate) struct Wire {
    inner: SharedHttpClient,
    spans: Arc<Mutex<Vec<(Instant, Instant)>>>,
    /// [`DELAY`] or none (to show what the local server alone costs).
    delayed: Arc<AtomicBool>,
    /// Capacity the responses reported.
    units: Arc<Mutex<Units>>,
    /// Whether transactions are priced by AWS's rules (their items read
    /// before and after: more requests beside the client, which would
    /// blur the timings and the overlap of concurrent requests, so the
    /// timed runs go without).
    priced: Arc<AtomicBool>,
}

#[derive(Debug)]
struct WireConnector {
    inner: SharedHttpConnector,
    spans: Arc<Mutex<Vec<(Instant, Instant)>>>,
    delayed: Arc<AtomicBool>,
    units: Arc<Mutex<Units>>,
    priced: Arc<AtomicBool>,
}

impl HttpClient for Wire {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(WireConnector {
            inner: self.inner.http_connector(settings, components),
            spans: self.spans.clone(),
            delayed: self.delayed.clone(),
            units: self.units.clone(),
            priced: self.priced.clone(),
        })
    }
}

impl HttpConnector for WireConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (inner, spans, units) = (self.inner.clone(), self.spans.clone(), self.units.clone());
        let delayed = self.delayed.load(Ordering::Relaxed);
        let op = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("?")
            .to_owned();
        units
            .lock()
            .unwrap()
            .add_request(&op, request.body().bytes());
        // A transaction's items are read before and after it (beside the
        // client: neither counted nor timed as its requests) to compute
        // what AWS would charge, which DynamoDB Local does not report.
        let priced = self.priced.load(Ordering::Relaxed);
        let actions = match (op.as_str(), request.body().bytes()) {
            ("TransactWriteItems", Some(body)) if priced => store_capacity::actions(body),
            _ => Vec::new(),
        };
        let template = request.try_clone();
        HttpConnectorFuture::new(async move {
            let mut before = Vec::new();
            for a in &actions {
                before.push(read_item(&inner, template.as_ref(), a).await);
            }
            let start = Instant::now();
            if delayed {
                tokio::time::sleep(DELAY).await;
            }
            let mut out = inner.call(request).await;
            // The whole body, read here to take its ConsumedCapacity, then
            // handed on as it came.
            if let Ok(resp) = &mut out {
                let body = ByteStream::new(resp.take_body())
                    .collect()
                    .await
                    .map_err(|e| ConnectorError::io(e.into()))?
                    .into_bytes();
                units
                    .lock()
                    .unwrap()
                    .add_response(&op, resp.status().as_u16(), &body);
                *resp.body_mut() = SdkBody::from(body);
            }
            spans.lock().unwrap().push((start, Instant::now()));
            if !actions.is_empty() && out.as_ref().is_ok_and(|r| r.status().as_u16() == 200) {
                let mut images = Vec::new();
                for (a, old) in actions.into_iter().zip(before) {
                    let new = read_item(&inner, template.as_ref(), &a).await;
                    images.push((a, old, new));
                }
                let aws = store_capacity::aws_transaction_units(&images);
                units.lock().unwrap().add_aws(&aws);
            }
            out
        })
    }
}

/// The item `action` names, read with a copy of the transaction's request
/// (its headers; DynamoDB Local does not check the signature).
async fn read_item(
    inner: &SharedHttpConnector,
    template: Option<&HttpRequest>,
    action: &store_capacity::Action,
) -> Option<serde_json::Map<String, Value>> {
    let mut req = template?.try_clone()?;
    let body = action.get_body();
    req.headers_mut()
        .insert("x-amz-target", "DynamoDB_20120810.GetItem");
    req.headers_mut()
        .insert("content-length", body.len().to_string());
    *req.body_mut() = SdkBody::from(body);
    let mut resp = inner.call(req).await.expect("read an item");
    let status = resp.status().as_u16();
    let bytes = ByteStream::new(resp.take_body())
        .collect()
        .await
        .expect("its body")
        .into_bytes();
    let v: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(status, 200, "read an item: {v}");
    v.get("Item")?.as_object().cloned()
}

impl Wire {
    /// Wraps `client`'s HTTP client, without the delay.
    pub(crate) fn around(client: &aws_sdk_dynamodb::Client) -> Self {
        Wire {
            inner: client
                .config()
                .http_client()
                .expect("the client's HTTP client"),
            spans: Arc::default(),
            delayed: Arc::new(AtomicBool::new(false)),
            units: Arc::default(),
            priced: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Capacity reported since the last take.
    pub(crate) fn take_units(&self) -> Units {
        std::mem::take(&mut *self.units.lock().unwrap())
    }

    /// Round trips since the last take: requests overlapping in time are
    /// one (the union of their spans is one interval).
    fn take(&self) -> usize {
        let mut spans = std::mem::take(&mut *self.spans.lock().unwrap());
        spans.sort_by_key(|s| s.0);
        let mut trips = 0;
        let mut busy_until: Option<Instant> = None;
        for (start, end) in spans {
            match busy_until {
                Some(until) if start < until => busy_until = Some(until.max(end)),
                _ => {
                    trips += 1;
                    busy_until = Some(end);
                }
            }
        }
        trips
    }
}

struct Probe {
    counter: CallCounter,
    wire: Wire,
    rows: Vec<String>,
    /// `docs/capacity.json`'s entries, by operation.
    capacity: BTreeMap<String, Value>,
}

impl Probe {
    fn reset(&self) {
        self.counter.take();
        self.wire.take();
        self.wire.take_units();
    }

    /// Records what `name` consumed (the same in every run) for
    /// `docs/capacity.json`, compared by [`Probe::pin`].
    fn record(
        &mut self,
        name: &str,
        calls: &BTreeMap<String, usize>,
        round_trips: Option<usize>,
        units: &Units,
    ) {
        self.capacity
            .insert(name.to_owned(), units.to_json(calls, round_trips));
    }

    /// Fails unless `docs/capacity.json` holds what was recorded.
    fn pin(&self) {
        store_capacity::pin(&self.capacity);
    }

    /// Runs `op` [`REPS`] times with the delay and as many without (`op(i)`
    /// for run `i`, which must answer `status`), then once more, untimed,
    /// pricing its transactions by AWS's rules; every run must make
    /// exactly `calls` in `round_trips` and consume the same units.
    /// Records the row of the README table.
    async fn measure(
        &mut self,
        name: &str,
        calls: &[(&str, usize)],
        round_trips: usize,
        status: u16,
        op: impl AsyncFn(usize) -> Response,
    ) {
        self.measure_between(name, calls, round_trips..=round_trips, status, op)
            .await;
    }

    /// [`Probe::measure`] for an operation whose round trips are two
    /// chains run at the same time (a rep's profile beside their reach:
    /// the served account's path, then its subtree): requests overlapping
    /// in time count as one, so the count is the longer chain's or less,
    /// as the two happen to interleave; it must stay within `round_trips`.
    async fn measure_between(
        &mut self,
        name: &str,
        calls: &[(&str, usize)],
        round_trips: std::ops::RangeInclusive<usize>,
        status: u16,
        op: impl AsyncFn(usize) -> Response,
    ) {
        let mut times = Vec::new();
        let mut local = Vec::new();
        let mut first: Option<Units> = None;
        let mut priced_units = None;
        for i in 0..=2 * REPS {
            let delayed = i < REPS;
            let priced = i == 2 * REPS;
            self.wire.delayed.store(delayed, Ordering::Relaxed);
            self.wire.priced.store(priced, Ordering::Relaxed);
            self.reset();
            let started = Instant::now();
            let resp = op(i).await;
            let got_status = resp.status().as_u16();
            let body = resp.text().await.unwrap();
            if delayed {
                times.push(started.elapsed());
            } else if !priced {
                local.push(started.elapsed());
            }
            assert_eq!(got_status, status, "{name}: {body}");
            let got = self.counter.take();
            assert_eq!(got, counts(calls), "{name} (run {i}): calls");
            let units = self.wire.take_units();
            assert_eq!(
                units.failed, 0,
                "{name} (run {i}): a DynamoDB request failed"
            );
            match &first {
                Some(first) => assert_eq!(&units.local(), first, "{name} (run {i}): capacity"),
                None => first = Some(units.local()),
            }
            let trips = self.wire.take();
            if priced {
                priced_units = Some(units);
                continue;
            }
            assert!(
                round_trips.contains(&trips),
                "{name} (run {i}): {trips} round trips, not within {round_trips:?}"
            );
        }
        self.wire.delayed.store(true, Ordering::Relaxed);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let median = |mut times: Vec<Duration>| {
            times.sort();
            ms(times[times.len() / 2])
        };
        let best = ms(*times.iter().min().unwrap());
        let total: usize = calls.iter().map(|(_, n)| n).sum();
        let detail: Vec<String> = calls.iter().map(|(op, n)| format!("{n} {op}")).collect();
        let most_trips = *round_trips.end();
        let round_trips = if round_trips.start() == round_trips.end() {
            round_trips.start().to_string()
        } else {
            format!("{}–{}", round_trips.start(), round_trips.end())
        };
        let units = priced_units.expect("the priced run");
        self.rows.push(format!(
            "| {name} | {total} ({}) | {round_trips} | {:.0} ms | {:.0} ms ({best:.0} ms) | {} |",
            detail.join(", "),
            median(local),
            median(times),
            units.cells(),
        ));
        self.record(name, &counts(calls), Some(most_trips), &units);
    }
}

async fn app_with_probe() -> (TestApp, Probe) {
    assert!(
        std::env::var("DYNAMODB_ENDPOINT").is_ok(),
        "DynamoDB Local is not running: run the tests with scripts/test.sh"
    );
    let base = peak_store_dynamodb::client_from_env().await;
    let table = format!("calls-{}", ulid::Ulid::new());
    peak_store_dynamodb::create_table(&base, &table)
        .await
        .expect("table");
    let counter = CallCounter::default();
    let wire = Wire::around(&base);
    wire.delayed.store(true, Ordering::Relaxed);
    wire.priced.store(false, Ordering::Relaxed);
    let conf = base
        .config()
        .to_builder()
        .interceptor(counter.clone())
        .interceptor(AskCapacity)
        .http_client(wire.clone())
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(conf);
    let app = spawn(Stores::from(peak_store_dynamodb::DynamoStore::new(
        client, table,
    )))
    .await;
    // The account the invites below name (invites refuse accounts the
    // directory does not hold).
    app.seed_accounts(&["ACME"]).await;
    let probe = Probe {
        counter,
        wire,
        rows: Vec::new(),
        capacity: BTreeMap::new(),
    };
    probe.reset();
    (app, probe)
}

pub(crate) fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[tokio::test]
async fn store_calls_per_operation() {
    let (app, mut probe) = app_with_probe().await;
    let admin = app.token("admin");
    // A non-admin: a sales rep serving account ACME, who may see its
    // customer users.
    let (_, rep) = app
        .seed_user(
            "sales_rep",
            &["ACME"],
            &[("my_customers.customer_users", "view")],
            &[],
        )
        .await;
    let profiles = app.all_items(&admin, "/profiles").await;
    let standard = profiles.iter().find(|p| p["name"] == "Standard").unwrap()["id"].clone();
    let profile_path = format!("/profiles/{}", standard.as_str().unwrap());
    let invite = |email: String| {
        json!({"first_name": "Ada", "last_name": "Lovelace", "email": email,
               "role": "customer", "profile_id": standard, "customer_accounts": ["ACME"]})
    };
    let resp = app
        .with_token(&admin, Method::POST, "/users")
        .json(&invite("ada@calls.example".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let user: Value = resp.json().await.unwrap();
    let user_path = format!("/users/{}", user["id"].as_str().unwrap());
    probe.reset();

    // Every authenticated request first admits its tenant and loads its
    // caller: the tenant record and the subject item (which carries a copy
    // of the user) in one BatchGetItem; then, for anyone but an admin, the
    // profile. (Before: the tenant, the subject guard, the user's
    // partition and the profile, one after another: 4 round trips.)
    let send = async |token: &str, method: Method, path: &str| {
        app.with_token(token, method, path).send().await.unwrap()
    };
    probe
        .measure(
            "`GET /profile-catalogue` (admin)",
            &[("BatchGetItem", 1)],
            1,
            200,
            async |_| send(&admin, Method::GET, "/profile-catalogue").await,
        )
        .await;
    probe
        .measure_between(
            "`GET /profile-catalogue` (sales rep)",
            // Then the profile (one Query: the profile and its holder
            // shards) and, at the same time, the rep's reach: ACME's path
            // (GetItem), then its subtree (one Query).
            &[("BatchGetItem", 1), ("GetItem", 1), ("Query", 2)],
            2..=3,
            200,
            async |_| send(&rep, Method::GET, "/profile-catalogue").await,
        )
        .await;
    // A rep serving three accounts: their subtrees are read all at once.
    app.seed_accounts(&["GLOBEX", "INITECH"]).await;
    let (_, rep3) = app
        .seed_user(
            "sales_rep",
            &["ACME", "GLOBEX", "INITECH"],
            &[("my_customers.customer_users", "view")],
            &[],
        )
        .await;
    probe.reset();
    probe
        .measure_between(
            "`GET /profile-catalogue` (sales rep of 3 accounts)",
            &[("BatchGetItem", 1), ("GetItem", 3), ("Query", 4)],
            2..=3,
            200,
            async |_| send(&rep3, Method::GET, "/profile-catalogue").await,
        )
        .await;
    probe
        .measure(
            "`GET /me` (admin)",
            // The user (with the last sign-in) and the profile, at once.
            &[("BatchGetItem", 1), ("Query", 2)],
            2,
            200,
            async |_| send(&admin, Method::GET, "/me").await,
        )
        .await;
    probe
        .measure(
            "`GET /users/{id}` (admin)",
            // The user and their login's sync state (owed-work record),
            // read at the same time; then the user's accounts' names and
            // statuses (one BatchGetItem, however many).
            &[("BatchGetItem", 2), ("GetItem", 1), ("Query", 1)],
            3,
            200,
            async |_| send(&admin, Method::GET, &user_path).await,
        )
        .await;
    probe
        .measure_between(
            "`GET /users/{id}` (sales rep)",
            // Sign-in as above (at most 3 round trips), then the user,
            // then their accounts.
            &[("BatchGetItem", 2), ("GetItem", 1), ("Query", 3)],
            4..=5,
            200,
            async |_| send(&rep, Method::GET, &user_path).await,
        )
        .await;
    probe
        .measure(
            "`GET /users?limit=10` (admin)",
            // The page, then its users' last sign-ins.
            &[("BatchGetItem", 2), ("Query", 1)],
            3,
            200,
            async |_| send(&admin, Method::GET, "/users?limit=10").await,
        )
        .await;
    // A rep serving HOLD, which has 3 descendants (HOLD-A above HOLD-A1,
    // HOLD-B), lists the subtree: sign-in as above (their reach), then
    // HOLD's path (GetItem) and its subtree (one Query), then one Query
    // per account — 4, sent at once, so one round trip — then the page's
    // last sign-ins.
    app.seed_account("HOLD", "HOLD", None).await;
    app.seed_account("HOLD-A", "HOLD-A", Some("HOLD")).await;
    app.seed_account("HOLD-A1", "HOLD-A1", Some("HOLD-A")).await;
    app.seed_account("HOLD-B", "HOLD-B", Some("HOLD")).await;
    app.seed_user("customer", &["HOLD-A1"], &[], &[]).await;
    app.seed_user("customer", &["HOLD", "HOLD-B"], &[], &[])
        .await;
    let (_, holder) = app
        .seed_user(
            "sales_rep",
            &["HOLD"],
            &[("my_customers.customer_users", "view")],
            &[],
        )
        .await;
    probe.reset();
    probe
        .measure_between(
            "`GET /users?under=HOLD` (sales rep; 4 accounts)",
            &[("BatchGetItem", 2), ("GetItem", 2), ("Query", 7)],
            6..=7,
            200,
            async |_| send(&holder, Method::GET, "/users?under=HOLD").await,
        )
        .await;
    probe
        .measure(
            "`GET /profiles/{id}` (admin)",
            &[("BatchGetItem", 1), ("Query", 1)],
            2,
            200,
            async |_| send(&admin, Method::GET, &profile_path).await,
        )
        .await;
    // auth + profile exists + the accounts (one BatchGetItem, however
    // many) + email lookup (the guard); one transaction.
    probe
        .measure(
            "`POST /users` (invite, admin)",
            &[
                ("BatchGetItem", 2),
                ("GetItem", 1),
                ("Query", 1),
                ("TransactWriteItems", 1),
            ],
            5,
            201,
            async |i| {
                app.with_token(&admin, Method::POST, "/users")
                    .json(&invite(format!("ada{i}@calls.example")))
                    .send()
                    .await
                    .unwrap()
            },
        )
        .await;
    // + claim and complete the key.
    probe
        .measure(
            "`POST /users` with `Idempotency-Key`",
            &[
                ("BatchGetItem", 2),
                ("GetItem", 1),
                ("PutItem", 1),
                ("Query", 1),
                ("TransactWriteItems", 1),
                ("UpdateItem", 1),
            ],
            7,
            201,
            async |i| {
                app.with_token(&admin, Method::POST, "/users")
                    .header("idempotency-key", format!("calls-{i}"))
                    .json(&invite(format!("grace{i}@calls.example")))
                    .send()
                    .await
                    .unwrap()
            },
        )
        .await;
    // auth + read + one transaction.
    probe
        .measure(
            "`PATCH /users/{id}` (admin)",
            &[("BatchGetItem", 1), ("Query", 1), ("TransactWriteItems", 1)],
            3,
            200,
            async |i| {
                app.with_token(&admin, Method::PATCH, &user_path)
                    .header("if-match", format!("\"{}\"", i + 1))
                    .json(&json!({"first_name": format!("Augusta{i}")}))
                    .send()
                    .await
                    .unwrap()
            },
        )
        .await;
    // A batch: the auth reads once, then per operation what its single
    // route makes beyond them (one read, one transaction), one after the
    // other. The user's version after the edits above (2 * REPS + 1 runs)
    // is 2 * REPS + 2.
    probe
        .measure(
            "`POST /users/batch` of 3 edits (admin)",
            &[("BatchGetItem", 1), ("Query", 3), ("TransactWriteItems", 3)],
            7,
            200,
            async |i| {
                let v = 2 * REPS + 2 + 3 * i;
                let ops: Vec<Value> = (0..3)
                    .map(|k| {
                        json!({"op": "update", "id": user["id"], "if_match": format!("\"{}\"", v + k),
                               "patch": {"first_name": format!("Ada{i}{k}")}})
                    })
                    .collect();
                app.with_token(&admin, Method::POST, "/users/batch")
                    .json(&json!({"operations": ops}))
                    .send()
                    .await
                    .unwrap()
            },
        )
        .await;

    eprintln!(
        "store calls, round trips, latency (+{} ms per DynamoDB request) and read | write units per operation:\n{}",
        DELAY.as_millis(),
        probe.rows.join("\n")
    );
    probe.pin();
}

/// A bulk invite of 100 rows, end to end: the upload (accepted and
/// queued) and the job. Per invited row one user transaction (the user,
/// its guards, membership, audit event and invitation email: one
/// `TransactWriteItems`); per chunk of 25 rows one `BatchWriteItem` of
/// report entries and one conditional `PutItem` checkpoint. The README's
/// "per 1,000 rows" figures are these times ten.
#[tokio::test]
async fn bulk_invite_store_calls_per_row_and_chunk() {
    let (app, mut probe) = app_with_probe().await;
    // Untimed: its transactions are priced by AWS's rules as they run.
    probe.wire.priced.store(true, Ordering::Relaxed);
    let counter = probe.counter.clone();
    let mut csv = String::from("First name,Last name,Email,Role,Profile,Customer accounts\n");
    for i in 0..100 {
        csv.push_str(&format!(
            "P{i},Person,p{i}@calls.example,customer,Standard,ACME\n"
        ));
    }
    let resp = app
        .admin(Method::POST, "/bulk-invites")
        .header("content-type", "text/csv")
        .body(csv.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let job: Value = resp.json().await.unwrap();
    let upload = counter.take();
    // auth (1) + the job (1 PutItem); the file goes to the file store.
    assert_eq!(
        upload,
        counts(&[("BatchGetItem", 1), ("PutItem", 1)]),
        "{upload:?}"
    );
    assert_eq!(probe.wire.take(), 2, "upload: round trips");
    let units = probe.wire.take_units();
    assert_eq!(units.failed, 0, "upload: a DynamoDB request failed");
    probe.record(
        "`POST /bulk-invites` (upload, admin)",
        &upload,
        Some(2),
        &units,
    );

    let state = app.running.state.clone();
    let ctx = state.ctx("calls");
    let tenant = peak_domain::TenantId::parse(&app.tenant).unwrap();
    let end = peak_bulk_jobs::run(
        &ctx,
        state.jobs.as_ref(),
        state.files.as_ref(),
        &tenant,
        job["id"].as_str().unwrap(),
        &peak_bulk::Limits::default(),
        |_| true,
    )
    .await
    .unwrap();
    assert!(
        matches!(end, peak_bulk_jobs::RunEnd::Finished(_)),
        "{end:?}"
    );
    let run = counter.take();
    let units = probe.wire.take_units();
    eprintln!(
        "bulk invite of 100 rows: {run:?}; read | write units: {}",
        units.cells()
    );
    assert_eq!(units.failed, 0, "job: a DynamoDB request failed");
    probe.record("bulk invite job of 100 rows", &run, None, &units);
    probe.pin();
    assert_eq!(
        run["TransactWriteItems"], 100,
        "one transaction per invited row"
    );
    assert_eq!(run["BatchWriteItem"], 4, "one batch of entries per 25 rows");
    // Take the job, 4 checkpoints, finish.
    assert_eq!(run["PutItem"], 1 + 4 + 1, "{run:?}");
    let writes: usize = [
        "TransactWriteItems",
        "BatchWriteItem",
        "PutItem",
        "UpdateItem",
    ]
    .iter()
    .map(|op| run.get(*op).copied().unwrap_or(0))
    .sum();
    eprintln!("write requests per 1,000 rows: {}", writes * 10);

    // The same file as a dry run: a job too; per row the checks a single
    // invite makes (reads only), per chunk the report entries and the
    // checkpoint — no user transaction.
    let resp = app
        .admin(Method::POST, "/bulk-invites?dry_run=true")
        .header("content-type", "text/csv")
        .body(csv.replace("@calls.example", "@dry.calls.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let job: Value = resp.json().await.unwrap();
    counter.take();
    let end = peak_bulk_jobs::run(
        &ctx,
        state.jobs.as_ref(),
        state.files.as_ref(),
        &tenant,
        job["id"].as_str().unwrap(),
        &peak_bulk::Limits::default(),
        |_| true,
    )
    .await
    .unwrap();
    assert!(
        matches!(&end, peak_bulk_jobs::RunEnd::Finished(j) if j.dry_run && j.counts.invited == 100),
        "{end:?}"
    );
    let dry = counter.take();
    eprintln!("dry run of 100 rows: {dry:?}");
    assert_eq!(
        dry.get("TransactWriteItems"),
        None,
        "nothing written: {dry:?}"
    );
    assert_eq!(dry["BatchWriteItem"], 4, "the report's entries: {dry:?}");
    assert_eq!(dry["PutItem"], 1 + 4 + 1, "{dry:?}");
}

/// Runs of the batch of 100 below, with the delay and as many without.
const BATCH_REPS: usize = 3;

/// `POST /users/batch` of 100 updates, one per user, by an admin: the
/// auth reads once, then per item its single route's read (one `Query`)
/// and write (one `TransactWriteItems`). The calls are pinned exactly; the
/// round trips are pinned by the critical path — items on different users
/// run [`peak_domain::users::BATCH_CONCURRENCY`] at a time, each item's read and
/// write one after the other, so at most `1 + 2 * ceil(100 / width)`
/// sequential waits (requests overlapping in time count once, so the
/// measured figure is usually lower). Timings are printed, not asserted.
#[tokio::test]
async fn batch_of_100_updates_store_calls_and_round_trips() {
    let (app, mut probe) = app_with_probe().await;
    let admin = app.token("admin");
    let mut ids = Vec::new();
    for _ in 0..100 {
        ids.push(app.seed_user("customer", &["ACME"], &[], &[]).await.0);
    }
    probe.reset();
    let width = peak_domain::users::BATCH_CONCURRENCY;
    let bound = 1 + 2 * 100_usize.div_ceil(width);
    let (mut delayed, mut local, mut trips) = (Vec::new(), Vec::new(), Vec::new());
    let (mut first, mut priced_units): (Option<Units>, _) = (None, None);
    // The last run, untimed, prices the transactions by AWS's rules.
    for i in 0..=2 * BATCH_REPS {
        let with_delay = i < BATCH_REPS;
        let priced = i == 2 * BATCH_REPS;
        probe.wire.delayed.store(with_delay, Ordering::Relaxed);
        probe.wire.priced.store(priced, Ordering::Relaxed);
        probe.reset();
        // Seeded at version 1; each run bumps every user once.
        let ops: Vec<Value> = ids
            .iter()
            .map(|id| {
                json!({"op": "update", "id": id, "if_match": format!("\"{}\"", i + 1),
                       "patch": {"first_name": format!("Run{i}")}})
            })
            .collect();
        let started = Instant::now();
        let resp = app
            .with_token(&admin, Method::POST, "/users/batch")
            .json(&json!({ "operations": ops }))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        let took = started.elapsed();
        assert_eq!(status, 200, "{body}");
        let results = body["results"].as_array().expect("results");
        assert_eq!(results.len(), 100);
        for (r, id) in results.iter().zip(&ids) {
            assert_eq!((&r["id"], &r["status"]), (&json!(id), &json!(200)), "{r}");
            assert_eq!(r["etag"], json!(format!("\"{}\"", i + 2)), "{r}");
        }
        assert_eq!(
            probe.counter.take(),
            counts(&[
                ("BatchGetItem", 1),
                ("Query", 100),
                ("TransactWriteItems", 100)
            ]),
            "run {i}: calls"
        );
        let run_trips = probe.wire.take();
        let units = probe.wire.take_units();
        assert_eq!(units.failed, 0, "run {i}: a DynamoDB request failed");
        match &first {
            Some(first) => assert_eq!(&units.local(), first, "run {i}: capacity"),
            None => first = Some(units.local()),
        }
        if priced {
            priced_units = Some(units);
            continue;
        }
        trips.push(run_trips);
        if with_delay {
            delayed.push(took);
        } else {
            local.push(took);
        }
    }
    let ms = |d: &Duration| format!("{:.0}", d.as_secs_f64() * 1000.0);
    eprintln!(
        "batch of 100 updates ({width} at a time): 201 calls, round trips {trips:?} (bound {bound}); \
         +{} ms per call: {:?} ms; no delay: {:?} ms",
        DELAY.as_millis(),
        delayed.iter().map(ms).collect::<Vec<_>>(),
        local.iter().map(ms).collect::<Vec<_>>(),
    );
    for (i, t) in trips.iter().enumerate() {
        assert!(*t <= bound, "run {i}: {t} round trips, over {bound}");
    }
    let units = priced_units.expect("the priced run");
    eprintln!(
        "batch of 100 updates: read | write units: {}",
        units.cells()
    );
    probe.record(
        "`POST /users/batch` of 100 updates, one per user (admin)",
        &counts(&[
            ("BatchGetItem", 1),
            ("Query", 100),
            ("TransactWriteItems", 100),
        ]),
        Some(bound),
        &units,
    );
    probe.pin();
}
