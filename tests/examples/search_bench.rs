//! Filtered search over a big tenant on DynamoDB Local (issue 18, wall 4).
//! Run by scripts/bench-drain.sh, or:
//!
//!   cargo run -p peak-tests --example search_bench -- --users 1000000 --requests 200
//!
//! (DYNAMODB_ENDPOINT set; DynamoDB Local started with a bigger heap, e.g.
//! `DYNAMODB_LOCAL_JAVA_OPTS=-Xmx6g`.)
//! 1. Generates N users into one tenant with BatchWriteItem straight from
//!    the store's own item mapping (`user_item::user_item`: the user item
//!    and the index keys it carries), `--writers` batches at a time. Only
//!    the user items are written (no email guards or account memberships:
//!    a list by role and status reads neither). Roles: 94 % customer, 3 %
//!    partner, 3 % sales rep; status: 95 % active, 5 % suspended.
//! 2. Three filters, `--requests` each, one after another, each following
//!    the previous page's cursor:
//!    - `GET /users?role=partner&status=suspended` (0.15 % match: the role
//!      index serves the role, status is filtered, so the bound decides);
//!    - `GET /users?role=customer&status=active` (89 % match);
//!    - `GET /users?email=u&role=partner&status=suspended` (0.15 %
//!      match, and no index narrows it: an email prefix is served only by
//!      the email order, every generated email starts with `u`, so role and
//!      status are both filtered).
//!
//!    The store is reached through the loopback proxy (no faults), which
//!    sums the `ScannedCount` of every Query: the items DynamoDB read for
//!    each request, exactly. Prints items read per request (max, mean) and
//!    latency p50/p99.

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use peak_domain::model::user::{Email, PersonName, User, UserId, UserStatus};
use peak_local::Stores;
use peak_store_dynamodb::DynamoStore;
use peak_tests::fault_proxy::{FaultProxy, FaultRates, Service};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    let mut users: usize = 1_000_000;
    let mut requests: usize = 200;
    // 4: DynamoDB Local serialises on SQLite; 8 at a time was 20x slower.
    let mut writers: usize = 4;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--users" => users = value.parse()?,
            "--requests" => requests = value.parse()?,
            "--writers" => writers = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let upstream =
        std::env::var("DYNAMODB_ENDPOINT").map_err(|_| "DYNAMODB_ENDPOINT is not set")?;
    let proxy = FaultProxy::start(Service::DynamoDb, &upstream, FaultRates::NONE).await;
    let direct = peak_store_dynamodb::client_from_env().await;
    let table = format!("search-{}", ulid::Ulid::new());
    peak_store_dynamodb::create_table(&direct, &table).await?;
    let proxied = aws_sdk_dynamodb::Client::from_conf(
        direct
            .config()
            .to_builder()
            .endpoint_url(&proxy.url)
            .build(),
    );
    let app = peak_tests::spawn(Stores::from(DynamoStore::new(proxied, table.clone()))).await;
    let tenant = peak_domain::TenantId::parse(&app.tenant).ok_or("tenant")?;
    let standard = app
        .all_items(&app.token("admin"), "/profiles")
        .await
        .into_iter()
        .find(|p| p["name"] == "Standard")
        .ok_or("Standard profile")?;
    let profile =
        peak_domain::ProfileId::parse(standard["id"].as_str().ok_or("id")?).ok_or("profile id")?;

    // 1. Generate. BatchWriteItem of 25 users with their index entries can
    // take DynamoDB Local seconds on a loaded machine: this client (the
    // generator's only) waits longer than the store's bounded calls.
    let direct = aws_sdk_dynamodb::Client::from_conf(
        direct
            .config()
            .to_builder()
            .timeout_config(
                peak_aws_env::TimeoutConfig::builder()
                    .operation_attempt_timeout(Duration::from_secs(30))
                    .operation_timeout(Duration::from_secs(90))
                    .build(),
            )
            .build(),
    );
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let written = Arc::new(AtomicUsize::new(0));
    let now = time::OffsetDateTime::now_utc();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (next, written, direct) = (next.clone(), written.clone(), direct.clone());
        let (table, tenant, profile) = (table.clone(), tenant.clone(), profile.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let from = next.fetch_add(25, Ordering::SeqCst);
                if from >= users {
                    return Ok::<(), BoxError>(());
                }
                let mut batch = Vec::with_capacity(25);
                for i in from..(from + 25).min(users) {
                    let user = generated(&tenant, &profile, i, now)?;
                    let item = peak_store_dynamodb::user_item::user_item(&user)?;
                    batch.push(
                        WriteRequest::builder()
                            .put_request(PutRequest::builder().set_item(Some(item)).build()?)
                            .build(),
                    );
                }
                let n = batch.len();
                let mut pending = batch;
                let mut attempt = 0u32;
                while !pending.is_empty() {
                    let out = direct
                        .batch_write_item()
                        .request_items(&table, pending.clone())
                        .send()
                        .await;
                    match out {
                        Ok(out) => {
                            pending = out
                                .unprocessed_items
                                .and_then(|mut m| m.remove(&table))
                                .unwrap_or_default();
                        }
                        Err(e) if attempt < 10 => {
                            eprintln!("batch write failed, retrying: {e}");
                        }
                        Err(e) => return Err(e.into()),
                    }
                    if !pending.is_empty() {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(50 << attempt.min(5))).await;
                    }
                }
                let total = written.fetch_add(n, Ordering::SeqCst) + n;
                if total % 25_000 < n {
                    eprintln!(
                        "  {total} users in {:.0} s",
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let took = started.elapsed().as_secs_f64();
    println!(
        "generated {users} users in {took:.0} s = {:.0} users/s ({writers} BatchWriteItem calls of 25 at a time)",
        users as f64 / took
    );

    // 2. Search.
    let admin = app.token("admin");
    for (filter, what) in [
        ("role=partner&status=suspended", "0.15 % match"),
        ("role=customer&status=active", "89 % match"),
        (
            "email=u&role=partner&status=suspended",
            "0.15 % match, no index narrows it",
        ),
    ] {
        let mut latencies = Vec::with_capacity(requests);
        let mut reads = Vec::with_capacity(requests);
        let (mut returned, mut empty, mut cursor) = (0usize, 0usize, None::<String>);
        for _ in 0..requests {
            let path = match &cursor {
                Some(c) => format!("/users?{filter}&cursor={c}"),
                None => format!("/users?{filter}"),
            };
            let before = proxy.counts().scanned;
            let t = Instant::now();
            let resp = app
                .with_token(&admin, reqwest::Method::GET, &path)
                .send()
                .await?;
            let status = resp.status();
            let body: serde_json::Value = resp.json().await?;
            latencies.push(t.elapsed());
            reads.push(proxy.counts().scanned - before);
            if status != 200 {
                return Err(format!("{path}: {status} {body}").into());
            }
            let n = body["items"].as_array().map_or(0, Vec::len);
            returned += n;
            if n == 0 {
                empty += 1;
            }
            cursor = body["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        latencies.sort();
        let pct = |p: f64| {
            latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
                .as_secs_f64()
                * 1000.0
        };
        let max = reads.iter().max().copied().unwrap_or(0);
        let mean = reads.iter().sum::<u64>() as f64 / reads.len().max(1) as f64;
        println!(
            "GET /users?{filter} ({what}), {} requests over {users} users: items read per request max {max}, mean {mean:.0}; {returned} users returned ({empty} empty pages); latency p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            latencies.len(),
            pct(0.5),
            pct(0.99),
            pct(1.0)
        );
    }
    Ok(())
}

fn generated(
    tenant: &peak_domain::TenantId,
    profile: &peak_domain::ProfileId,
    i: usize,
    now: time::OffsetDateTime,
) -> Result<User, BoxError> {
    let role = match i % 100 {
        0..=2 => "partner",
        3..=5 => "sales_rep",
        _ => "customer",
    };
    // Status on another cycle than the role, so the two are independent.
    let status = if (i / 100) % 20 == 7 {
        UserStatus::Suspended
    } else {
        UserStatus::Active
    };
    let id = UserId::generate();
    Ok(User {
        tenant_id: tenant.clone(),
        id: id.clone(),
        email: Email::parse(&format!("u{i}@search.example")).map_err(fe)?,
        pending_email: None,
        first_name: PersonName::parse("first_name", &format!("First{i}")).map_err(fe)?,
        last_name: PersonName::parse("last_name", &format!("Last{}", i % 9973)).map_err(fe)?,
        account_number: None,
        customer_accounts: if role == "customer" {
            vec![peak_domain::model::user::AccountNumber::parse("a", "ACME").map_err(fe)?]
        } else {
            Vec::new()
        },
        role: peak_domain::Role::parse(role).ok_or("role")?,
        profile_id: profile.clone(),
        extension_groups: Vec::new(),
        status,
        idp_subject: Some(format!("auth0|gen{i}")),
        invitation: None,
        version: 1,
        created_at: now,
        updated_at: now,
        last_login_at: None,
    })
}

fn fe(e: peak_domain::FieldError) -> BoxError {
    format!("{e:?}").into()
}
