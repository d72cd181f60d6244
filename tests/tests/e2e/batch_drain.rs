//! "A batch of 1,000 suspensions drains at the Management API's rate and
//! loses nothing" (issue 15), end to end on DynamoDB Local: ten
//! `POST /users/batch` of 100 suspensions each, then the Auth0 worker's
//! sweep (`Worker::run_due`, what `auth0-sweeper` runs; the stream-triggered
//! `auth0-worker` performs the same `process` per user) against the fake
//! Management API limited to [`RATE_LIMIT`] requests a second, answering
//! 429 beyond it as Auth0 does. Every user ends blocked in the fake, each
//! by exactly one successful block, and no owed work is left; the drain
//! rate is printed (not asserted: it is the fake's limit divided by the
//! calls one suspension makes, on a shared machine).

use crate::auth0_sync::{env_with, owed};
use peak_auth0::fake::FakeUser;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Users suspended: ten batches of the largest size.
const USERS: usize = 1000;
/// The fake's Management API limit, requests per second (Auth0 gives a
/// paid production tenant's Management API a limit of this order).
const RATE_LIMIT: u32 = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_batched_suspensions_drain_at_the_rate_limit_losing_nothing() {
    // Calls may wait out a 429 (up to the next second) before answering.
    let e = env_with(false, Duration::from_secs(20)).await;
    let app = &e.app;
    let mut ids = Vec::with_capacity(USERS);
    let mut subject_of = BTreeMap::new();
    for i in 0..USERS {
        let subject = e.fake.insert_user(FakeUser::new(
            e.fake.connection.clone(),
            format!("drain{i}@acme.example"),
        ));
        let id = app
            .seed_user_with_subject(&subject, "customer", &["ACME"], &[], &[])
            .await;
        e.fake
            .set_app_metadata(&subject, json!({"tenant": app.tenant, "peak_user_id": id}));
        subject_of.insert(id.clone(), subject);
        ids.push(id);
    }
    assert!(owed(app).await.is_empty());

    let admin = app.token("admin");
    let started = Instant::now();
    for chunk in ids.chunks(100) {
        let ops: Vec<Value> = chunk
            .iter()
            .map(|id| json!({"op": "suspend", "id": id}))
            .collect();
        let resp = app
            .with_token(&admin, Method::POST, "/users/batch")
            .json(&json!({ "operations": ops }))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.expect("json");
        let results = body["results"].as_array().expect("results");
        assert!(
            results.iter().all(|r| r["status"] == 200),
            "every suspension applied: {body}"
        );
    }
    let batches = started.elapsed();
    let pending = app
        .stores
        .users
        .list_idp_work(10 * USERS as u32)
        .await
        .expect("owed");
    let mut owed_ids: Vec<_> = pending
        .iter()
        .filter(|w| w.work.tenant_id.as_str() == app.tenant && !w.done)
        .map(|w| w.work.user_id.to_string())
        .collect();
    owed_ids.sort();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(owed_ids, sorted, "one owed sync per suspended user");

    // Drain as the sweeper does, sweep after sweep; a sweep after the
    // first runs later than every backoff (a failed item waits for its
    // retry), so that nothing is left waiting when the test ends.
    e.fake.clear_requests();
    e.fake.set_rate_limit(Some(RATE_LIMIT));
    let started = Instant::now();
    let (mut sweeps, mut done, mut failed) = (0, 0, 0);
    loop {
        let now = OffsetDateTime::now_utc() + time::Duration::hours(2 * sweeps);
        let summary = e.worker.run_due(now).await.expect("store");
        sweeps += 1;
        done += summary.done;
        failed += summary.failed;
        if summary.done + summary.failed + summary.skipped == 0 {
            break;
        }
        assert!(sweeps < 100, "the work does not drain: {summary:?}");
    }
    let drain = started.elapsed();
    e.fake.set_rate_limit(None);
    assert!(owed(app).await.is_empty(), "no owed work left");
    assert_eq!(done as usize, USERS, "each user's work done once");

    // Exactly one successful block per login; every login blocked.
    let requests = e.fake.requests();
    let mut blocks: BTreeMap<String, usize> = BTreeMap::new();
    for r in &requests {
        if r.method == "PATCH"
            && r.status == 200
            && r.body.as_ref().is_some_and(|b| b["blocked"] == true)
            && let Some(subject) = r.path.strip_prefix("/api/v2/users/")
        {
            let subject = subject.replace("%7C", "|").replace("%7c", "|");
            *blocks.entry(subject).or_default() += 1;
        }
    }
    for (id, subject) in &subject_of {
        let login = e.fake.user(subject).expect("the login stays");
        assert!(login.blocked, "{id} not blocked in Auth0");
        assert_eq!(blocks.get(subject.as_str()), Some(&1), "{id}: blocks");
    }
    assert_eq!(blocks.len(), USERS, "no other login blocked");
    let api: Vec<_> = requests
        .iter()
        .filter(|r| r.path.starts_with("/api/v2/"))
        .collect();
    let refused = api.iter().filter(|r| r.status == 429).count();
    let secs = drain.as_secs_f64();
    eprintln!(
        "{USERS} suspensions in {} batches of 100: {:.1} s; drained in {sweeps} sweeps, {secs:.1} s \
         at {RATE_LIMIT} requests/s: {:.1} users/s, {} Management API requests ({:.1}/s, {refused} \
         answered 429), {failed} items retried after a failure",
        USERS / 100,
        batches.as_secs_f64(),
        USERS as f64 / secs,
        api.len(),
        api.len() as f64 / secs,
    );
}
