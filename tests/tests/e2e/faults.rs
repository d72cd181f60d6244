//! Faults while draining (issue 18): the fault-injecting proxy
//! (`peak_tests::fault_proxy`) in front of DynamoDB Local and moto's SES.
//! - The SDK reads the proxy's errors as the services' own (throttling
//!   retried, then `Unavailable`; SES's 429 as `TooManyRequestsException`),
//!   and a store that stays throttled answers 503 with `Retry-After`.
//! - With throttles, 500s, resets and latency on every DynamoDB and SES
//!   call: every API request answers 2xx or 503 + `Retry-After` (never a
//!   bare 500), and the outbox and owed-work drains lose and double nothing
//!   (moto's messages and the Auth0 fake's logins and blocks counted).

use crate::auth0_sync::env_over;
use peak_email::{Brand, Brands};
use peak_local::Stores;
use peak_mailer::{EmailSender, Mailer, MailerConfig, OutgoingEmail, SendError, SesSender};
use peak_store_dynamodb::DynamoStore;
use peak_tests::fault_proxy::{Counted, FaultProxy, FaultRates, Service};
use reqwest::{Method, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

const FROM: &str = "no-reply@faults.example";

fn endpoint(var: &str) -> String {
    std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} is not set: run the tests with scripts/test.sh"))
}

/// A fresh table: stores whose every call goes through `proxy`, and stores
/// on the same table that talk to DynamoDB Local directly (to check).
async fn stores_through(proxy: &FaultProxy) -> (Stores, Stores) {
    let direct = peak_store_dynamodb::client_from_env().await;
    let table = format!("e2e-{}", ulid::Ulid::new());
    peak_store_dynamodb::create_table(&direct, &table)
        .await
        .expect("create table");
    let proxied = aws_sdk_dynamodb::Client::from_conf(
        direct
            .config()
            .to_builder()
            .endpoint_url(&proxy.url)
            .build(),
    );
    (
        Stores::from(DynamoStore::new(proxied, table.clone())),
        Stores::from(DynamoStore::new(direct, table)),
    )
}

async fn ses_through(proxy: &FaultProxy) -> SesSender {
    let direct = SesSender::from_env().await;
    direct
        .client()
        .create_email_identity()
        .email_identity(FROM)
        .send()
        .await
        .expect("sender identity in moto");
    SesSender::new(aws_sdk_sesv2::Client::from_conf(
        direct
            .client()
            .config()
            .to_builder()
            .endpoint_url(&proxy.url)
            .build(),
    ))
}

async fn moto_messages() -> Vec<Value> {
    let url = format!(
        "{}/moto-api/data.json",
        endpoint("SES_ENDPOINT").trim_end_matches('/')
    );
    let data: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn messages_to(all: &[Value], to: &str) -> usize {
    all.iter()
        .filter(|m| {
            m["destinations"]["ToAddresses"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == to))
        })
        .count()
}

/// A 503 carries `Retry-After` and the stable problem code; anything else
/// must be `ok`. Answers whether it was a 503 (and the body otherwise).
async fn ok_or_503(resp: Response, ok: u16, what: &str) -> Option<Value> {
    let status = resp.status().as_u16();
    if status == 503 {
        let retry_after = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            retry_after.as_deref(),
            Some("2"),
            "{what}: 503 without Retry-After"
        );
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["code"], "temporarily_unavailable", "{what}: {body}");
        return None;
    }
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(status, ok, "{what}: only {ok} or 503: {body}");
    Some(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_reads_injected_errors_as_the_services_own_and_the_api_answers_503_retry_after() {
    let always = FaultRates {
        throttle: 1.0,
        ..FaultRates::NONE
    };
    let dynamo = FaultProxy::start(
        Service::DynamoDb,
        &endpoint("DYNAMODB_ENDPOINT"),
        FaultRates::NONE,
    )
    .await;
    let (stores, _) = stores_through(&dynamo).await;
    let app = peak_tests::spawn(stores).await;
    let admin = app.token("admin");
    dynamo.set_rates(always);

    // The SDK's own call: the throttling code parsed, after 3 attempts.
    let client = aws_sdk_dynamodb::Client::from_conf(
        peak_store_dynamodb::client_from_env()
            .await
            .config()
            .to_builder()
            .endpoint_url(&dynamo.url)
            .build(),
    );
    let before = dynamo.counts().requests;
    let err = client.list_tables().send().await.expect_err("throttled");
    let code = aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&err).map(str::to_owned);
    assert!(
        matches!(
            code.as_deref(),
            Some("ThrottlingException" | "ProvisionedThroughputExceededException")
        ),
        "{code:?}"
    );
    assert_eq!(dynamo.counts().requests - before, 3, "the SDK's 3 attempts");

    // Through the API: a 503 with Retry-After, not a 500, whether the
    // store throttles every call, answers 500 or resets the connection.
    for (fault, path) in [
        (always, "/users?role=customer"),
        (
            FaultRates {
                server_error: 1.0,
                ..FaultRates::NONE
            },
            "/users",
        ),
        (
            FaultRates {
                reset: 1.0,
                ..FaultRates::NONE
            },
            "/users",
        ),
    ] {
        dynamo.set_rates(fault);
        let resp = app
            .with_token(&admin, Method::GET, path)
            .send()
            .await
            .unwrap();
        assert_eq!(ok_or_503(resp, 200, "GET /users").await, None, "{fault:?}");
    }

    // SES: 429 read as TooManyRequestsException → a throttled send.
    let ses = FaultProxy::start(Service::Ses, &endpoint("SES_ENDPOINT"), always).await;
    let sender = ses_through(&ses).await;
    let email = OutgoingEmail {
        from: FROM.into(),
        reply_to: None,
        to: peak_domain::model::user::Email::parse("ada@faults.example").unwrap(),
        subject: "s".into(),
        html: "<p>h</p>".into(),
        text: "t".into(),
        configuration_set: None,
        idempotency_id: ulid::Ulid::new().to_string(),
        kind: None,
    };
    let result = sender.send(&email).await;
    assert!(
        matches!(&result, Err(SendError::Throttled(m)) if m.contains("TooManyRequestsException")),
        "{result:?}"
    );
    assert_eq!(ses.counts().throttled, 3, "the SDK's 3 attempts");
}

/// Faults on every call while invites, accepts, suspensions and both
/// drains run.
const DYNAMO_FAULTS: FaultRates = FaultRates {
    throttle: 0.05,
    server_error: 0.02,
    reset: 0.02,
    latency: 0.05,
    latency_ms: 100,
};
const SES_FAULTS: FaultRates = FaultRates {
    throttle: 0.15,
    server_error: 0.05,
    reset: 0.05,
    latency: 0.05,
    latency_ms: 100,
};
const INVITES: usize = 16;
const ACCEPTS: usize = 6;
const SUSPENSIONS: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_faults_requests_answer_2xx_or_503_and_drains_lose_and_double_nothing() {
    let dynamo = FaultProxy::start(
        Service::DynamoDb,
        &endpoint("DYNAMODB_ENDPOINT"),
        FaultRates::NONE,
    )
    .await;
    let ses = FaultProxy::start(Service::Ses, &endpoint("SES_ENDPOINT"), SES_FAULTS).await;
    let (stores, direct) = stores_through(&dynamo).await;
    let e = env_over(stores, Duration::from_secs(20)).await;
    let app = &e.app;
    // Set-up without faults: accounts, a profile, logins to suspend.
    app.seed_accounts(&["ACME"]).await;
    let profile = app.create_profile("Faults").await;
    let mut suspended = BTreeMap::new();
    for i in 0..SUSPENSIONS {
        let subject = e.fake.insert_user(peak_auth0::fake::FakeUser::new(
            e.fake.connection.clone(),
            format!("s{i}.{}@faults.example", app.tenant),
        ));
        let id = app
            .seed_user_with_subject(&subject, "customer", &["ACME"], &[], &[])
            .await;
        e.fake
            .set_app_metadata(&subject, json!({"tenant": app.tenant, "peak_user_id": id}));
        suspended.insert(id, subject);
    }
    dynamo.set_rates(DYNAMO_FAULTS);
    let admin = app.token("admin");
    let mut unavailable = 0;

    // Invites: each retried with its Idempotency-Key until it is 201.
    let addresses: Vec<String> = (0..INVITES)
        .map(|i| format!("i{i}.{}@faults.example", app.tenant))
        .collect();
    for (i, to) in addresses.iter().enumerate() {
        let key = format!("invite-{i}");
        loop {
            let resp = app
                .with_token(&admin, Method::POST, "/users")
                .header("idempotency-key", &key)
                .json(&json!({"first_name": "Ada", "last_name": "L", "email": to,
                    "role": "customer", "profile_id": profile["id"],
                    "customer_accounts": ["ACME"]}))
                .send()
                .await
                .unwrap();
            match ok_or_503(resp, 201, "invite").await {
                Some(_) => break,
                None => unavailable += 1,
            }
            assert!(unavailable < 200, "the API never gets through");
        }
    }
    // Lists and reads under faults.
    for _ in 0..10 {
        let resp = app
            .with_token(&admin, Method::GET, "/users?role=customer&status=invited")
            .send()
            .await
            .unwrap();
        if ok_or_503(resp, 200, "list").await.is_none() {
            unavailable += 1;
        }
    }
    // Suspensions in one batch; an item answered 503 is sent again.
    let mut pending: Vec<String> = suspended.keys().cloned().collect();
    while !pending.is_empty() {
        let ops: Vec<Value> = pending
            .iter()
            .map(|id| json!({"op": "suspend", "id": id}))
            .collect();
        let resp = app
            .with_token(&admin, Method::POST, "/users/batch")
            .json(&json!({ "operations": ops }))
            .send()
            .await
            .unwrap();
        let Some(body) = ok_or_503(resp, 200, "batch").await else {
            unavailable += 1;
            continue;
        };
        let mut again = Vec::new();
        for (id, r) in pending.iter().zip(body["results"].as_array().unwrap()) {
            match r["status"].as_u64() {
                Some(200) => {}
                Some(503) => {
                    unavailable += 1;
                    again.push(id.clone());
                }
                _ => panic!("batch item: only 200 or 503: {r}"),
            }
        }
        pending = again;
        assert!(unavailable < 200, "the API never gets through");
    }

    // The outbox drained through faulty SES and DynamoDB.
    let brands = Brands::new(Brand {
        name: "Faults".into(),
        sender: format!("Faults <{FROM}>"),
        reply_to: None,
        portal_url: app.running.url(),
        accent_color: None,
    });
    let mailer = Mailer::new(
        app.stores.users.clone(),
        app.stores.users.clone(),
        app.stores.tenants.clone(),
        Arc::new(ses_through(&ses).await),
        brands,
        app.running.state.idp.clone(),
    )
    .with_config(MailerConfig {
        backoff_base: Duration::from_millis(20),
        backoff_cap: Duration::from_millis(200),
        ..MailerConfig::default()
    });
    let mine = |all: Vec<peak_domain::outbox::OutboxEmail>| {
        all.into_iter()
            .filter(|m| m.tenant_id.as_str() == app.tenant)
            .count()
    };
    let started = Instant::now();
    loop {
        let _ = mailer.drain_once(100).await;
        let left = direct
            .users
            .pending_outbox(10_000, OffsetDateTime::now_utc() + time::Duration::hours(1))
            .await
            .expect("outbox");
        if mine(left) == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the outbox does not drain"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let failed = direct.users.failed_outbox(1000).await.expect("failed");
    assert_eq!(
        mine(failed.into_iter().map(|f| f.email).collect()),
        0,
        "no email failed for good"
    );
    let sent = moto_messages().await;
    for to in &addresses {
        assert_eq!(messages_to(&sent, to), 1, "exactly one invitation to {to}");
    }

    // Accepts (the public route) under faults: one login each.
    for to in addresses.iter().take(ACCEPTS) {
        let token = invitation_token(&sent, to, &app.running.url());
        loop {
            let resp = app
                .anonymous(Method::POST, &format!("/invitations/{token}/accept"))
                .send()
                .await
                .unwrap();
            if ok_or_503(resp, 200, "accept").await.is_some() {
                break;
            }
            unavailable += 1;
            assert!(unavailable < 200, "the API never gets through");
        }
    }
    let logins = e.fake.users();
    for to in addresses.iter().take(ACCEPTS) {
        let n = logins.iter().filter(|u| u.email == *to).count();
        assert_eq!(n, 1, "exactly one Auth0 login for {to}");
    }

    // The owed work (the blocks) drained by the sweeper's run under faults.
    let started = Instant::now();
    let mut sweeps = 0i64;
    loop {
        let now = OffsetDateTime::now_utc() + time::Duration::hours(2 * sweeps);
        sweeps += 1;
        let _ = e.worker.run_due(now).await;
        let owed = direct.users.list_idp_work(1000).await.expect("owed");
        if !owed
            .iter()
            .any(|w| w.work.tenant_id.as_str() == app.tenant && !w.done)
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "owed work does not drain"
        );
    }
    let mut blocks: BTreeMap<String, usize> = BTreeMap::new();
    for r in e.fake.requests() {
        if r.method == "PATCH"
            && r.status == 200
            && r.body.as_ref().is_some_and(|b| b["blocked"] == true)
            && let Some(subject) = r.path.strip_prefix("/api/v2/users/")
        {
            let subject = subject.replace("%7C", "|").replace("%7c", "|");
            *blocks.entry(subject).or_default() += 1;
        }
    }
    for (id, subject) in &suspended {
        assert!(e.fake.user(subject).unwrap().blocked, "{id} not blocked");
        // A block is idempotent; a second one happens only when marking the
        // work done failed after Auth0 answered (then it is repeated, with
        // the same effect). It is counted, never lost.
        assert!(blocks.get(subject).copied().unwrap_or(0) >= 1, "{id}");
    }
    let repeated: usize = blocks.values().map(|n| n.saturating_sub(1)).sum();
    let (d, s): (Counted, Counted) = (dynamo.counts(), ses.counts());
    eprintln!(
        "faults: DynamoDB {d}; SES {s}; API requests answered 503: {unavailable}; \
         owed-work sweeps {sweeps}, repeated blocks {repeated}"
    );
    assert!(d.failed() > 0, "faults were injected: {d}");
}

/// The invitation link's token from the message moto holds for `to`.
fn invitation_token(all: &[Value], to: &str, portal: &str) -> String {
    let message = all
        .iter()
        .find(|m| {
            m["destinations"]["ToAddresses"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == to))
        })
        .expect("the invitation");
    let body = message["body"]
        .as_str()
        .or(message["text_part"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| message.to_string());
    let prefix = format!("{portal}/invitations/");
    let start = body.find(&prefix).expect("the link") + prefix.len();
    body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "-_".contains(*c))
        .collect()
}
