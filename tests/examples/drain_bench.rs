//! Drain benchmark (issue 18), on DynamoDB Local with the mailer against
//! moto's SES and invitation accepts against the Auth0 fake, optionally
//! through the fault-injecting proxy. Run by scripts/bench-drain.sh, or:
//!
//!   cargo run -p peak-tests --example drain_bench -- \
//!     --rows 100000 --accept-share 0.15 --rates 2,16 --window 300 \
//!     [--faults throttle=0.05,500=0.02,reset=0.02,latency=0.05,latency_ms=100] \
//!     [--ses-faults throttle=0.1,...]
//!
//! (DYNAMODB_ENDPOINT and SES_ENDPOINT set, as scripts/test.sh or the
//! README's ad-hoc commands give them.) Phases, each timed:
//! 1. **Stage**: an N-row bulk-invite CSV, accepted and run as a job (what
//!    the bulk-job runner does: every row validated, its accounts checked,
//!    one user transaction with its invitation email in the outbox).
//! 2. **Emails**: the outbox drained through SES (moto) by two mailers at
//!    once (the stream may run several), send rate not limited (so the
//!    figure is the machinery's; SES's account rate is applied on paper).
//!    Then moto's messages are counted: exactly one per invitee.
//! 3. **Accepts → Auth0** at each `--rates` value: the fake limited to that
//!    many requests a second (429 beyond, as Auth0), the client sharing that
//!    budget through the table, `--accept-share` of the invitees accepting
//!    over HTTP (8 at a time) for at most `--window` seconds. Measured:
//!    accepts/s and Management API calls/s; the full drain time of the
//!    share is computed from the measured rate. Then every accepted invitee
//!    has exactly one login in the fake, and none that was not accepted.

use peak_auth0::Auth0Client;
use peak_auth0::fake::FakeAuth0;
use peak_bulk_jobs::{FolderFiles, RunEnd, Upload};
use peak_email::{Brand, Brands};
use peak_local::{StartOptions, Stores};
use peak_mailer::{Mailer, MailerConfig, RateLimiter, SesSender};
use peak_store_dynamodb::DynamoStore;
use peak_tests::fault_proxy::{FaultProxy, FaultRates, Service};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const FROM: &str = "no-reply@drain.example";

struct Args {
    rows: u32,
    accept_share: f64,
    rates: Vec<u32>,
    window: u64,
    faults: FaultRates,
    ses_faults: FaultRates,
    load: usize,
    load_faults: FaultRates,
}

fn args() -> Result<Args, BoxError> {
    let mut a = Args {
        rows: 100_000,
        accept_share: 0.15,
        rates: vec![2, 16],
        window: 300,
        faults: FaultRates::NONE,
        ses_faults: FaultRates::NONE,
        load: 1000,
        load_faults: FaultRates {
            throttle: 0.2,
            server_error: 0.05,
            reset: 0.05,
            latency: 0.05,
            latency_ms: 200,
        },
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--rows" => a.rows = value.parse()?,
            "--accept-share" => a.accept_share = value.parse()?,
            "--rates" => a.rates = value.split(',').map(str::parse).collect::<Result<_, _>>()?,
            "--window" => a.window = value.parse()?,
            "--faults" => a.faults = FaultRates::parse(&value)?,
            "--ses-faults" => a.ses_faults = FaultRates::parse(&value)?,
            "--load" => a.load = value.parse()?,
            "--load-faults" => a.load_faults = FaultRates::parse(&value)?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    Ok(a)
}

fn env(var: &str) -> Result<String, BoxError> {
    std::env::var(var).map_err(|_| format!("{var} is not set").into())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    let a = args()?;
    println!(
        "drain bench: {} rows, accept share {}, Auth0 rates {:?} rps, window {} s, DynamoDB faults {:?}, SES faults {:?}",
        a.rows, a.accept_share, a.rates, a.window, a.faults, a.ses_faults
    );
    let dynamo = FaultProxy::start(Service::DynamoDb, &env("DYNAMODB_ENDPOINT")?, a.faults).await;
    let ses = FaultProxy::start(Service::Ses, &env("SES_ENDPOINT")?, a.ses_faults).await;
    let direct = peak_store_dynamodb::client_from_env().await;
    let table = format!("drain-{}", ulid::Ulid::new());
    peak_store_dynamodb::create_table(&direct, &table).await?;
    let proxied = aws_sdk_dynamodb::Client::from_conf(
        direct
            .config()
            .to_builder()
            .endpoint_url(&dynamo.url)
            .build(),
    );
    let store = DynamoStore::new(proxied, table.clone());
    let stores = Stores::from(store.clone());
    let checks = Stores::from(DynamoStore::new(direct, table));

    // The app (its identity provider is replaced per rate below).
    let app = peak_tests::spawn(stores.clone()).await;
    let tenant = peak_domain::TenantId::parse(&app.tenant).ok_or("tenant")?;
    let numbers: Vec<String> = (0..50).map(|i| format!("ACC-{i}")).collect();
    let refs: Vec<&str> = numbers.iter().map(String::as_str).collect();
    app.seed_accounts(&refs).await;

    // 0. An HTTP load run under heavier DynamoDB faults: reads, lists and
    // invites, 8 at a time; every answer must be 2xx or 503 + Retry-After.
    if a.load > 0 {
        load_run(&app, &dynamo, &a).await?;
    }

    // 1. Stage.
    let domain = format!("{}.drain.example", app.tenant);
    let mut csv = String::from("First name,Last name,Email,Role,Profile,Customer accounts\n");
    for i in 0..a.rows {
        csv.push_str(&format!(
            "First{i},Last{i},p{i}@{domain},customer,Standard,ACC-{}\n",
            i % 50
        ));
    }
    let dir = std::env::temp_dir().join(format!("peak-drain-bench-{}", ulid::Ulid::new()));
    let files = FolderFiles::new(dir.join("uploads"));
    let settings = peak_domain::users::UserSettings::default();
    let mut ctx = peak_domain::users::Ctx {
        users: stores.users.as_ref(),
        profiles: stores.profiles.as_ref(),
        tenants: stores.tenants.as_ref(),
        accounts: stores.accounts.as_ref(),
        catalogue: peak_domain::catalogue::catalogue(),
        settings: &settings,
        now: OffsetDateTime::now_utc(),
        request_id: "drain-bench",
        tenant: None,
    };
    let actor = peak_domain::users::resolve_actor(&ctx, &tenant, "auth0|admin").await?;
    let limits = peak_bulk::Limits {
        max_rows: a.rows.max(1),
        ..peak_bulk::Limits::default()
    };
    let upload = Upload {
        bytes: csv.as_bytes(),
        file_name: Some("drain.csv"),
        content_type: Some("text/csv"),
    };
    let started = Instant::now();
    let job =
        peak_bulk_jobs::start(&ctx, &actor, stores.jobs.as_ref(), &files, upload, &limits).await?;
    let accepted_upload = started.elapsed();
    drop(csv);
    let started = Instant::now();
    let mut end;
    let mut resumed = 0;
    loop {
        end = peak_bulk_jobs::run(
            &ctx,
            stores.jobs.as_ref(),
            &files,
            &tenant,
            &job.id,
            &limits,
            |_| true,
        )
        .await;
        match &end {
            Ok(RunEnd::Finished(_)) => break,
            other => {
                // A store call that failed after its retries stops the run
                // (in AWS: the runner fails, and the job sweeper takes the
                // job again once its lease has run out). The bench skips
                // the wait: the next run's clock is past the lease.
                resumed += 1;
                eprintln!("job run ended early ({other:?}); resuming after the lease");
                if resumed > 1000 {
                    return Err("the job does not finish".into());
                }
                ctx.now = OffsetDateTime::now_utc()
                    + time::Duration::seconds(peak_bulk_jobs::LEASE_SECS + 1);
            }
        }
    }
    let staged = started.elapsed();
    let Ok(RunEnd::Finished(done)) = end else {
        unreachable!()
    };
    println!(
        "stage: upload accepted in {:.2} s; job {:?} in {:.1} s = {:.0} rows/s ({resumed} runs stopped by a store call failing after its retries, resumed; in AWS each costs a {} s lease); invited {}, skipped {}, failed {}",
        accepted_upload.as_secs_f64(),
        done.status,
        staged.as_secs_f64(),
        f64::from(a.rows) / staged.as_secs_f64(),
        peak_bulk_jobs::LEASE_SECS,
        done.counts.invited,
        done.counts.skipped,
        done.counts.failed
    );
    println!("  DynamoDB proxy so far: {}", dynamo.counts());

    // Invitation tokens of the share that will accept, from the outbox
    // before it is sent (the link is in the email's data).
    let accepting = ((f64::from(a.rows) * a.accept_share).round() as usize).min(a.rows as usize);
    let pending = checks
        .users
        .pending_outbox(
            a.rows + 10,
            OffsetDateTime::now_utc() + time::Duration::days(1),
        )
        .await?;
    let mine: Vec<_> = pending
        .into_iter()
        .filter(|m| m.tenant_id.as_str() == app.tenant)
        .collect();
    println!("  outbox: {} emails pending for the tenant", mine.len());
    let tokens: Vec<(String, String)> = mine
        .iter()
        .filter(|m| m.to.as_str().ends_with(&domain))
        .filter_map(|m| {
            let link = m.data["link"].as_str()?;
            Some((
                m.to.as_str().to_owned(),
                link.rsplit('/').next()?.to_owned(),
            ))
        })
        .take(accepting)
        .collect();

    // 2. Emails.
    let sender = SesSender::from_env().await;
    sender
        .client()
        .create_email_identity()
        .email_identity(FROM)
        .send()
        .await?;
    let sender = Arc::new(SesSender::new(aws_sdk_sesv2::Client::from_conf(
        sender
            .client()
            .config()
            .to_builder()
            .endpoint_url(&ses.url)
            .build(),
    )));
    let brands = Brands::new(Brand {
        name: "Drain".into(),
        sender: format!("Drain <{FROM}>"),
        reply_to: None,
        portal_url: app.running.url(),
        accent_color: None,
    });
    let mailer = |_: usize| {
        Mailer::new(
            stores.users.clone(),
            stores.users.clone(),
            stores.tenants.clone(),
            sender.clone(),
            brands.clone(),
            app.running.state.idp.clone(),
        )
        .with_rate(RateLimiter::unlimited())
        .with_config(MailerConfig {
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(2),
            ..MailerConfig::default()
        })
    };
    let started = Instant::now();
    let sent = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for n in 0..2 {
        let m = mailer(n);
        let sent = sent.clone();
        let checks = checks.clone();
        let tenant = app.tenant.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                if let Ok(s) = m.drain_once(100).await {
                    sent.fetch_add(s.sent, Ordering::SeqCst);
                    if s.total() > 0 {
                        continue;
                    }
                }
                let left = checks
                    .users
                    .pending_outbox(10, OffsetDateTime::now_utc() + time::Duration::days(1))
                    .await
                    .map(|l| l.iter().filter(|m| m.tenant_id.as_str() == tenant).count())
                    .unwrap_or(1);
                if left == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let emailed = started.elapsed();
    let failed = checks
        .users
        .failed_outbox(a.rows + 10)
        .await?
        .into_iter()
        .filter(|f| f.email.tenant_id.as_str() == app.tenant)
        .count();
    let (unique, total) = moto_count(&domain).await?;
    println!(
        "emails: {} sent in {:.1} s = {:.1} emails/s (2 mailers, no send-rate limit); moto holds {total} messages to {unique} distinct invitees (of {}); {failed} failed for good",
        sent.load(Ordering::SeqCst),
        emailed.as_secs_f64(),
        sent.load(Ordering::SeqCst) as f64 / emailed.as_secs_f64(),
        a.rows
    );
    println!("  SES proxy: {}", ses.counts());
    println!(
        "  at SES's account rate of 14/s (a production default) the {} emails would take {:.0} min",
        a.rows,
        f64::from(a.rows) / 14.0 / 60.0
    );

    // 3. Accepts at each Auth0 rate, through the API (a fresh server per
    // rate over the same table, whose identity provider is the client).
    let fake = FakeAuth0::start().await;
    let mut next = 0usize;
    let mut accepted_emails = BTreeSet::new();
    for rate in &a.rates {
        fake.set_rate_limit(Some(*rate));
        fake.clear_requests();
        let mut config = fake.config();
        config.max_rps = *rate;
        let client = Auth0Client::new(config).with_rate_budget(Arc::new(store.clone()));
        let idp: Arc<dyn peak_domain::identity::IdentityProvider> = Arc::new(client);
        let options = StartOptions {
            identity: Some(idp),
            ..StartOptions::default()
        };
        let server = peak_tests::spawn_with(stores.clone(), options).await;
        let window = Duration::from_secs(a.window);
        let started = Instant::now();
        // Tokens taken (a token retried past the window's end is not
        // given to the next rate: it may have been accepted meanwhile).
        let taken = Arc::new(AtomicUsize::new(0));
        let queue = Arc::new(std::sync::Mutex::new(
            tokens
                .iter()
                .skip(next)
                .cloned()
                .collect::<Vec<_>>()
                .into_iter(),
        ));
        let outcomes = Arc::new(std::sync::Mutex::new((0usize, 0usize, 0usize, Vec::new())));
        let mut workers = Vec::new();
        for _ in 0..8 {
            let (queue, outcomes, taken) = (queue.clone(), outcomes.clone(), taken.clone());
            let http = server.http.clone();
            let url = server.running.url();
            workers.push(tokio::spawn(async move {
                while started.elapsed() < window {
                    let Some((email, token)) = queue.lock().unwrap().next() else {
                        break;
                    };
                    taken.fetch_add(1, Ordering::SeqCst);
                    loop {
                        let resp = http
                            .post(format!("{url}/invitations/{token}/accept"))
                            .send()
                            .await;
                        let status = resp.map(|r| r.status().as_u16()).unwrap_or(0);
                        let finished = {
                            let mut o = outcomes.lock().unwrap();
                            match status {
                                200 => {
                                    o.0 += 1;
                                    o.3.push(email.clone());
                                    true
                                }
                                503 => {
                                    o.1 += 1;
                                    false
                                }
                                _ => {
                                    o.2 += 1;
                                    true
                                }
                            }
                        };
                        if finished {
                            break;
                        }
                        if started.elapsed() >= window {
                            break;
                        }
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                }
            }));
        }
        for w in workers {
            w.await?;
        }
        let took = started.elapsed().as_secs_f64();
        let (ok, unavailable, other, emails) = {
            let o = outcomes.lock().unwrap();
            (o.0, o.1, o.2, o.3.clone())
        };
        next += taken.load(Ordering::SeqCst);
        accepted_emails.extend(emails);
        let requests = fake.requests();
        let api: Vec<_> = requests
            .iter()
            .filter(|r| r.path.starts_with("/api/v2/"))
            .collect();
        let answered = api.iter().filter(|r| r.status < 400).count();
        let refused = api.iter().filter(|r| r.status == 429).count();
        let per_s = ok as f64 / took;
        println!(
            "accepts at {rate} rps: {ok} accepted in {took:.1} s = {per_s:.2} accepts/s; {unavailable} answers 503 (retried), {other} other; Management API: {} requests ({answered} answered, {refused} 429) = {:.2} calls/s",
            api.len(),
            api.len() as f64 / took
        );
        if per_s > 0.0 {
            println!(
                "  computed: all {accepting} accepts ({}% of {}) at this rate take {:.1} h",
                a.accept_share * 100.0,
                a.rows,
                accepting as f64 / per_s / 3600.0
            );
        }
    }
    // Logins: one per accepted invitee, none for anyone else.
    let mut per_email = std::collections::BTreeMap::<String, usize>::new();
    for u in fake.users() {
        if u.email.ends_with(&domain) {
            *per_email.entry(u.email.clone()).or_default() += 1;
        }
    }
    let doubled = per_email.values().filter(|n| **n > 1).count();
    let missing = accepted_emails
        .iter()
        .filter(|e| !per_email.contains_key(*e))
        .count();
    let extra = per_email
        .keys()
        .filter(|e| !accepted_emails.contains(*e))
        .count();
    println!(
        "logins: {} in the fake for {} accepted invitees: {missing} missing, {doubled} doubled, {extra} without an accept answered 200",
        per_email.len(),
        accepted_emails.len()
    );
    println!("faults: DynamoDB {}; SES {}", dynamo.counts(), ses.counts());
    let lost_or_doubled = done.counts.invited != a.rows
        || unique != a.rows as usize
        || total != unique
        || failed > 0
        || missing > 0
        || doubled > 0;
    let _ = std::fs::remove_dir_all(&dir);
    if lost_or_doubled {
        return Err("something was lost or doubled (see above)".into());
    }
    println!("nothing lost or doubled");
    Ok(())
}

async fn load_run(
    app: &peak_tests::TestApp,
    dynamo: &FaultProxy,
    a: &Args,
) -> Result<(), BoxError> {
    let admin = app.token("admin");
    let standard = app
        .all_items(&admin, "/profiles")
        .await
        .into_iter()
        .find(|p| p["name"] == "Standard")
        .ok_or("Standard profile")?["id"]
        .clone();
    let before = dynamo.counts();
    dynamo.set_rates(a.load_faults);
    let next = Arc::new(AtomicUsize::new(0));
    // (2xx, 503 with Retry-After, 503 without, other), latencies.
    let tally = Arc::new(std::sync::Mutex::new(([0usize; 4], Vec::new())));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (next, tally, admin) = (next.clone(), tally.clone(), admin.clone());
        let standard = standard.clone();
        let (http, url, total) = (app.http.clone(), app.running.url(), a.load);
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= total {
                    return;
                }
                let req = match i % 4 {
                    0 => http.post(format!("{url}/users")).json(&serde_json::json!({
                        "first_name": "Load", "last_name": "Run",
                        "email": format!("load{i}@load.example"), "role": "customer",
                        "profile_id": standard, "customer_accounts": ["ACC-1"]})),
                    1 => http.get(format!("{url}/users?role=customer&status=invited")),
                    2 => http.get(format!("{url}/users?limit=25")),
                    _ => http.get(format!("{url}/me")),
                };
                let t = Instant::now();
                let resp = req.bearer_auth(&admin).send().await;
                let took = t.elapsed();
                let slot = match resp {
                    Ok(r) if r.status().is_success() => 0,
                    Ok(r) if r.status() == 503 && r.headers().contains_key("retry-after") => 1,
                    Ok(r) if r.status() == 503 => 2,
                    // 4xx from the invites' own rules would be a bug here.
                    Ok(r) => {
                        eprintln!("load: unexpected {}", r.status());
                        3
                    }
                    Err(_) => 3,
                };
                let mut t = tally.lock().unwrap();
                t.0[slot] += 1;
                t.1.push(took);
            }
        }));
    }
    for w in workers {
        w.await?;
    }
    let took = started.elapsed().as_secs_f64();
    dynamo.set_rates(a.faults);
    let after = dynamo.counts();
    let (counts, mut latencies) = {
        let t = tally.lock().unwrap();
        (t.0, t.1.clone())
    };
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
            .as_secs_f64()
            * 1000.0
    };
    println!(
        "load: {} API requests in {took:.1} s ({:.1}/s, 8 at a time; invites, filtered lists, pages, /me) under DynamoDB faults {:?}: {} 2xx, {} 503 with Retry-After, {} 503 without, {} other; latency p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        a.load,
        a.load as f64 / took,
        a.load_faults,
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "  DynamoDB proxy during the load: {} requests, {} throttled, {} 500s, {} resets, {} delayed",
        after.requests - before.requests,
        after.throttled - before.throttled,
        after.server_errors - before.server_errors,
        after.resets - before.resets,
        after.delayed - before.delayed
    );
    if counts[2] + counts[3] > 0 {
        return Err("an API request answered neither 2xx nor 503 + Retry-After".into());
    }
    Ok(())
}

/// (distinct invitees, messages) moto holds for addresses at `domain`.
async fn moto_count(domain: &str) -> Result<(usize, usize), BoxError> {
    let url = format!(
        "{}/moto-api/data.json",
        env("SES_ENDPOINT")?.trim_end_matches('/')
    );
    let data: serde_json::Value = reqwest::get(&url).await?.json().await?;
    let mut to = Vec::new();
    for m in data["ses"]["Message"].as_array().into_iter().flatten() {
        for a in m["destinations"]["ToAddresses"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(a) = a.as_str().filter(|a| a.ends_with(domain)) {
                to.push(a.to_owned());
            }
        }
    }
    let unique: BTreeSet<_> = to.iter().collect();
    Ok((unique.len(), to.len()))
}
