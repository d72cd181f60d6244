//! Bulk invites over real HTTP: the template, the dry run (a job whose
//! report checks every row, nothing else written), a file the runner
//! refuses (a failed job with the file error, nothing written), and the job
//! (202, progress, a runner that crashes mid-way and a second one that
//! finishes without inviting anyone twice).

use peak_bulk_jobs::RunEnd;
use peak_domain::TenantId;
use peak_domain::bulk_job::JobStatus;
use peak_tests::{TestApp, spawn_dynamodb, spawn_sqlite};
use reqwest::Method;
use serde_json::{Value, json};

async fn send(req: reqwest::RequestBuilder) -> (u16, Value, String) {
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("text");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    )
}

async fn user_count(app: &TestApp) -> usize {
    app.all_items(&app.token("admin"), "/users?limit=100")
        .await
        .len()
}

fn upload(app: &TestApp, query: &str, csv: &str) -> reqwest::RequestBuilder {
    app.admin(Method::POST, &format!("/bulk-invites{query}"))
        .header("content-type", "text/csv")
        .body(csv.to_owned())
}

async fn dry_run_reports_every_row_and_writes_nothing(app: TestApp) {
    app.seed_accounts(&["ACME"]).await;
    let (status, _, template) = send(app.admin(Method::GET, "/bulk-invites/template")).await;
    assert_eq!(status, 200);
    assert!(template.starts_with("First name,Last name,Email,Role,Profile"));

    let csv = "First name,Last name,Email,Role,Profile,Customer accounts\n\
        Ada,Lovelace,ada@acme.example,customer,Standard,ACME\n\
        Bob,Bad,not-an-email,customer,Standard,ACME\n\
        Cy,Nope,cy@acme.example,customer,No Such Profile,ACME\n\
        Di,Noacct,di@acme.example,customer,Standard,\n\
        Ada,Again,ADA@acme.example,customer,Standard,ACME\n\
        Admin,Exists,admin@tenant.example,admin,Standard,\n\
        =HYPERLINK(\"x\"),Formula,eve@acme.example,customer,Standard,ACME\n";
    let users_before = user_count(&app).await;
    let mail_before = app.my_outbox().await.len();
    let dry = app.dry_run(upload(&app, "?dry_run=true", csv)).await;
    let body = &dry.body;
    let counts = &body["counts"];
    assert_eq!(counts["total"], 7, "{body}");
    assert_eq!(counts["valid"], 2, "{body}");
    assert_eq!(
        counts["skipped"], 2,
        "duplicate in the file, existing user: {body}"
    );
    assert_eq!(counts["failed"], 3, "{body}");
    let code_of = |row: u64| -> Vec<String> {
        body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["row"] == row)
            .unwrap()["issues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["code"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(code_of(2), Vec::<String>::new());
    assert!(!code_of(3).is_empty(), "bad email");
    assert!(!code_of(4).is_empty(), "unknown profile");
    assert!(!code_of(5).is_empty(), "customer without an account");
    assert_eq!(code_of(7), ["user_exists"]);
    // Nothing written.
    assert_eq!(user_count(&app).await, users_before);
    assert_eq!(app.my_outbox().await.len(), mail_before);

    // The job: done, a dry run, its rows counted by the runner.
    let job = &dry.job;
    assert_eq!(
        (&job["status"], &job["dry_run"], &job["total_rows"]),
        (&json!("done"), &json!(true), &json!(7)),
        "{job}"
    );
    assert_eq!((&job["valid"], &job["applied"]), (&json!(2), &json!(0)));
    assert!(
        job["report"]
            .as_str()
            .is_some_and(|r| r.starts_with("/bulk-invites/")),
        "{job}"
    );
    // The report, as the bulk invite's own route gives it too: a value a
    // spreadsheet would run is made inert.
    let id = job["id"].as_str().unwrap();
    let (status, _, report) =
        send(app.admin(Method::GET, &format!("/bulk-invites/{id}/report"))).await;
    assert_eq!(status, 200);
    assert_eq!(report, dry.report);
    assert!(
        report.starts_with("row,email,outcome,column,code,reason"),
        "{report}"
    );
    assert!(
        !report.contains("\"=") && !report.contains(",="),
        "{report}"
    );
}

/// A file the request cannot judge without parsing it (a bad header) is
/// accepted and its job fails with the file error, as the request used to
/// refuse it: code and message in the view and the report, no row acted
/// on, nothing written — for a dry run and a real run alike. What needs no
/// parser is still refused at once.
async fn a_bad_file_fails_its_job_and_writes_nothing(app: TestApp) {
    app.seed_accounts(&["ACME"]).await;
    let users_before = user_count(&app).await;
    let mail_before = app.my_outbox().await.len();
    for query in ["?dry_run=true&file_name=x.csv", "?file_name=x.csv"] {
        let (status, job, text) = send(upload(&app, query, "Name,Email\nx,x@bulk.example\n")).await;
        assert_eq!((status, &job["status"]), (202, &json!("queued")), "{text}");
        let id = job["id"].as_str().unwrap().to_owned();
        let done = app.run_bulk_job(&id).await;
        assert_eq!(done.status, JobStatus::Failed);
        assert_eq!(done.counts.processed(), 0);
        let (_, job, _) = send(app.admin(Method::GET, &format!("/bulk-invites/{id}"))).await;
        assert_eq!(job["status"], "failed", "{job}");
        assert_eq!(job["file_error"]["code"], "bad_header", "{job}");
        let message = job["file_error"]["message"].as_str().unwrap();
        assert!(
            message.contains("missing column(s)") && message.ends_with("(bad_header)"),
            "{message}"
        );
        assert_eq!(job["processed"], 0);
        let (status, _, report) =
            send(app.admin(Method::GET, &format!("/bulk-invites/{id}/report"))).await;
        assert_eq!(status, 200);
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines.len(), 2, "header and the file error: {report}");
        assert!(lines[1].contains("\"bad_header\""), "{report}");
    }
    // A header and no rows: failed too.
    let (_, job, _) = send(upload(
        &app,
        "?dry_run=true",
        "First name,Last name,Email,Role,Profile\n",
    ))
    .await;
    let done = app.run_bulk_job(job["id"].as_str().unwrap()).await;
    assert_eq!(
        (done.status, done.error_code.as_deref()),
        (JobStatus::Failed, Some("no_rows"))
    );
    assert_eq!(user_count(&app).await, users_before);
    assert_eq!(app.my_outbox().await.len(), mail_before);

    // Refused by the request, no job: not a spreadsheet by its bytes, name
    // or type; empty.
    for (query, content_type, body, code) in [
        (
            "?file_name=people.pdf",
            "text/csv",
            "%PDF-1.4",
            "validation_failed",
        ),
        ("", "image/png", "x", "validation_failed"),
        (
            "?file_name=people.xlsx",
            "text/csv",
            "First name",
            "validation_failed",
        ),
        ("", "text/csv", "", "empty_upload"),
    ] {
        let (status, problem, text) = send(
            app.admin(Method::POST, &format!("/bulk-invites{query}"))
                .header("content-type", content_type)
                .body(body),
        )
        .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (if code == "empty_upload" { 400 } else { 422 }, Some(code)),
            "{query} {content_type}: {text}"
        );
    }
}

#[tokio::test]
async fn a_bad_file_fails_its_job_and_writes_nothing_on_sqlite() {
    a_bad_file_fails_its_job_and_writes_nothing(spawn_sqlite().await).await;
}

#[tokio::test]
async fn a_bad_file_fails_its_job_and_writes_nothing_on_dynamodb() {
    a_bad_file_fails_its_job_and_writes_nothing(spawn_dynamodb().await).await;
}

#[tokio::test]
async fn dry_run_reports_every_row_and_writes_nothing_on_sqlite() {
    dry_run_reports_every_row_and_writes_nothing(spawn_sqlite().await).await;
}

#[tokio::test]
async fn dry_run_reports_every_row_and_writes_nothing_on_dynamodb() {
    dry_run_reports_every_row_and_writes_nothing(spawn_dynamodb().await).await;
}

/// A dry run beyond what a request could check (one store read per row in
/// sequence ran a 10 s request out at about 2,000 rows on DynamoDB) is a
/// job: worked by runners that stop at their deadline (here: after every
/// 20 chunks) and resume at the checkpoint, until every row is reported.
/// Nothing but the report is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_beyond_a_requests_reach_is_a_job_that_resumes() {
    let app = spawn_sqlite().await;
    app.seed_accounts(&["ACME"]).await;
    let rows: u32 = 3_000;
    let mut csv = String::from("First name,Last name,Email,Role,Profile,Customer accounts\n");
    for i in 0..rows {
        csv.push_str(&format!(
            "P{i},Person,big{i}@bulk.example,customer,Standard,ACME\n"
        ));
    }
    csv.push_str("Bad,Row,nope,customer,Standard,ACME\n");
    let users_before = user_count(&app).await;
    let mail_before = app.my_outbox().await.len();
    let (status, job, text) = send(upload(&app, "?dry_run=true&file_name=big.csv", &csv)).await;
    assert_eq!((status, &job["dry_run"]), (202, &json!(true)), "{text}");
    let id = job["id"].as_str().unwrap().to_owned();

    let state = app.running.state.clone();
    let tenant = TenantId::parse(&app.tenant).unwrap();
    let limits = peak_bulk::Limits::default();
    let mut runs = 0;
    let done = loop {
        runs += 1;
        assert!(runs < 20, "the dry run does not end");
        // No clock moved between runs: a runner that stops for its
        // deadline gives the job back, so the next one takes it at once.
        let ctx = state.ctx("runner");
        let mut chunks = 0;
        let end = peak_bulk_jobs::run(
            &ctx,
            state.jobs.as_ref(),
            state.files.as_ref(),
            &tenant,
            &id,
            &limits,
            |_| {
                chunks += 1;
                chunks < 20
            },
        )
        .await
        .expect("run");
        match end {
            RunEnd::Finished(done) => break done,
            RunEnd::Paused => {
                // Runnable again now, not after the lease.
                let due = state.jobs.runnable_jobs(ctx.now, 100).await.unwrap();
                assert!(due.iter().any(|j| j.id == id), "the paused job is runnable");
                // Progress shows while it runs: the runner counted the rows.
                let (_, job, _) =
                    send(app.admin(Method::GET, &format!("/bulk-invites/{id}"))).await;
                assert_eq!(job["total_rows"], rows + 1, "{job}");
                assert_eq!(job["processed"], 500 * runs, "{job}");
            }
            other => panic!("{other:?}"),
        }
    };
    assert!(runs > 5, "resumed {runs} times");
    assert_eq!(done.status, JobStatus::Done);
    assert!(done.dry_run);
    assert_eq!(
        (done.counts.invited, done.counts.skipped, done.counts.failed),
        (rows, 0, 1),
        "valid rows are counted, not invited"
    );
    let (status, _, report) =
        send(app.admin(Method::GET, &format!("/bulk-invites/{id}/report"))).await;
    assert_eq!(status, 200);
    assert_eq!(report.lines().count() as u32, 1 + rows + 1);
    assert_eq!(
        report.lines().filter(|l| l.contains("\"valid\"")).count() as u32,
        rows
    );
    assert_eq!(user_count(&app).await, users_before, "no user written");
    assert_eq!(app.my_outbox().await.len(), mail_before, "no email queued");
}

async fn a_job_resumes_after_a_crash_without_inviting_twice(app: TestApp) {
    app.seed_accounts(&["ACME"]).await;
    let mut csv = String::from("First name,Last name,Email,Role,Profile,Customer accounts\n");
    for i in 0..60 {
        csv.push_str(&format!(
            "P{i},Person,p{i}@bulk.example,customer,Standard,ACME\n"
        ));
    }
    csv.push_str("Bad,Row,nope,customer,Standard,ACME\n");
    let users_before = user_count(&app).await;

    let (status, job, text) = send(upload(&app, "?file_name=people.csv", &csv)).await;
    assert_eq!(status, 202, "{text}");
    assert_eq!(job["status"], "queued");
    assert_eq!(job["dry_run"], false);
    // Counted by the runner, which reads the file (the request does not).
    assert_eq!(job["total_rows"], 0);
    let id = job["id"].as_str().unwrap().to_owned();
    let (status, _, _) = send(app.admin(Method::GET, &format!("/bulk-invites/{id}/report"))).await;
    assert_eq!(status, 409, "no report before the job is done");

    let state = app.running.state.clone();
    let tenant = TenantId::parse(&app.tenant).unwrap();
    let limits = peak_bulk::Limits::default();
    // A runner stops after its first chunk...
    let ctx = state.ctx("runner-1");
    let end = peak_bulk_jobs::run(
        &ctx,
        state.jobs.as_ref(),
        state.files.as_ref(),
        &tenant,
        &id,
        &limits,
        |_| false,
    )
    .await
    .expect("run");
    assert_eq!(end, RunEnd::Paused);
    // ...and dies there, still holding its lease (a paused runner gives
    // the job back; a dead one cannot).
    let stored = state.jobs.get_job(&tenant, &id).await.unwrap().unwrap();
    let mut held = stored.clone();
    held.lease_until = Some(ctx.now + time::Duration::seconds(peak_bulk_jobs::LEASE_SECS));
    held.version += 1;
    state.jobs.update_job(stored.version, &held).await.unwrap();
    let (_, job, _) = send(app.admin(Method::GET, &format!("/bulk-invites/{id}"))).await;
    assert_eq!(job["status"], "running");
    assert_eq!(job["total_rows"], 61, "{job}");
    assert_eq!(job["processed"], 25, "{job}");
    assert!(job["progress"].as_f64().unwrap() > 0.4);

    // Another runner cannot take it while the lease holds...
    let ctx = state.ctx("runner-2");
    let end = peak_bulk_jobs::run(
        &ctx,
        state.jobs.as_ref(),
        state.files.as_ref(),
        &tenant,
        &id,
        &limits,
        |_| true,
    )
    .await
    .expect("run");
    assert_eq!(end, RunEnd::NotTaken);
    // ...but after it runs out, it resumes at the checkpoint and finishes.
    let mut ctx = state.ctx("runner-3");
    ctx.now += time::Duration::seconds(peak_bulk_jobs::LEASE_SECS + 1);
    let end = peak_bulk_jobs::run(
        &ctx,
        state.jobs.as_ref(),
        state.files.as_ref(),
        &tenant,
        &id,
        &limits,
        |_| true,
    )
    .await
    .expect("run");
    let RunEnd::Finished(done) = end else {
        panic!("{end:?}");
    };
    assert_eq!(done.status, JobStatus::Done);
    assert_eq!(
        (done.counts.invited, done.counts.skipped, done.counts.failed),
        (60, 0, 1)
    );

    // Every valid row invited once: one user, one invitation email each.
    assert_eq!(user_count(&app).await, users_before + 60);
    let invitations = app
        .my_outbox()
        .await
        .into_iter()
        .filter(|m| m.to.as_str().ends_with("@bulk.example"))
        .count();
    assert_eq!(invitations, 60);

    let (status, job, _) = send(app.admin(Method::GET, &format!("/bulk-invites/{id}"))).await;
    assert_eq!(status, 200);
    assert_eq!(job["status"], "done");
    assert_eq!(job["progress"], 1.0);
    let (status, _, report) =
        send(app.admin(Method::GET, &format!("/bulk-invites/{id}/report"))).await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 1 + 61, "{report}");
    assert_eq!(
        lines.iter().filter(|l| l.contains("\"invited\"")).count(),
        60
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("62,") && l.contains("\"failed\""))
    );

    // Only its starter and admins see a job.
    let (status, _, _) =
        send(app.as_role("sales_rep", Method::GET, &format!("/bulk-invites/{id}"))).await;
    assert_eq!(status, 404);
    let (_, other_admin) = app.other_tenant_admin().await;
    let (status, _, _) =
        send(app.with_token(&other_admin, Method::GET, &format!("/bulk-invites/{id}"))).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_job_resumes_after_a_crash_without_inviting_twice_on_sqlite() {
    a_job_resumes_after_a_crash_without_inviting_twice(spawn_sqlite().await).await;
}

#[tokio::test]
async fn a_job_resumes_after_a_crash_without_inviting_twice_on_dynamodb() {
    a_job_resumes_after_a_crash_without_inviting_twice(spawn_dynamodb().await).await;
}

/// The dry run and the real upload are two requests: one Idempotency-Key
/// used for both must not hand the dry run's job back as the upload's
/// answer (which would queue no real job while the client thinks it did).
async fn a_dry_run_is_never_replayed_as_the_upload(app: TestApp) {
    app.seed_accounts(&["ACME"]).await;
    let csv = "First name,Last name,Email,Role,Profile,Customer accounts\n\
        Ida,Dry,ida.dry@bulk.example,customer,Standard,ACME\n";
    let key = format!("bulk-{}", ulid::Ulid::new());
    let keyed = |query: &str| upload(&app, query, csv).header("idempotency-key", key.as_str());

    let dry = keyed("?dry_run=true").send().await.expect("send");
    assert_eq!(dry.status(), 202);
    let dry: Value = dry.json().await.expect("json");
    assert_eq!(dry["dry_run"], true);
    let (status, body, text) = send(keyed("")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("idempotency_key_reused")),
        "the upload must not get the dry run's answer: {text}"
    );
    // The same dry run again is a replay; the upload with its own key runs.
    let again = keyed("?dry_run=true").send().await.expect("send");
    assert_eq!(again.status(), 202);
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let (status, job, text) =
        send(upload(&app, "", csv).header("idempotency-key", format!("{key}-upload").as_str()))
            .await;
    assert_eq!(
        (status, job["status"].as_str(), &job["dry_run"]),
        (202, Some("queued"), &json!(false)),
        "{text}"
    );
    assert_ne!(job["id"], dry["id"]);
}

#[tokio::test]
async fn a_dry_run_is_never_replayed_as_the_upload_on_sqlite() {
    a_dry_run_is_never_replayed_as_the_upload(spawn_sqlite().await).await;
}

#[tokio::test]
async fn a_dry_run_is_never_replayed_as_the_upload_on_dynamodb() {
    a_dry_run_is_never_replayed_as_the_upload(spawn_dynamodb().await).await;
}

#[tokio::test]
async fn customers_cannot_bulk_invite() {
    let app = spawn_sqlite().await;
    app.seed_accounts(&["ACME"]).await;
    let (status, body, _) = send(
        app.as_role("customer", Method::POST, "/bulk-invites?dry_run=true")
            .header("content-type", "text/csv")
            .body("First name,Last name,Email,Role,Profile\n"),
    )
    .await;
    assert_eq!(status, 403, "{body}");
}
