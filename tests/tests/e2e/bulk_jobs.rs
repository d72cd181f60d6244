//! Bulk updates and account imports over real HTTP, on both stores: an
//! admin's file from CSV and from XLSX (a bad row reported by its row
//! number, the others applied), dry runs that write nothing, a sales rep's
//! row refused exactly as the single `PATCH` refuses it, a runner that dies
//! between its writes and its report entries and a second one that does
//! not apply a row twice, and an import whose parent comes after its child.

#[path = "../../../shared/bulk/tests/support/mod.rs"]
mod support;

use peak_bulk_jobs::{Ports, RunEnd};
use peak_domain::TenantId;
use peak_domain::bulk_job::{JobKind, JobStatus};
use peak_domain::model::user::UserId;
use peak_domain::ports::PageRequest;
use peak_tests::{TestApp, spawn_dynamodb, spawn_sqlite};
use reqwest::Method;
use serde_json::{Value, json};
use support::{X, row, xlsx};

macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $case() { super::$case(super::spawn_sqlite().await).await; })*
        }
        mod dynamodb {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $case() { super::$case(super::spawn_dynamodb().await).await; })*
        }
    };
}

on_both_stores!(
    an_admin_bulk_updates_users_from_csv_and_xlsx,
    a_reps_row_is_refused_exactly_as_the_single_patch_refuses_it,
    a_resumed_update_does_not_apply_a_row_twice,
    an_account_import_takes_a_parent_after_its_child,
    who_may_start_and_see_bulk_jobs,
);

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

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

fn upload(
    app: &TestApp,
    token: &str,
    query: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    app.with_token(token, Method::POST, &format!("/bulk-jobs{query}"))
        .header("content-type", content_type)
        .body(body)
}

/// Runs the job here, as the local runner would (with the account
/// directory); `keep_going` after each checkpoint.
async fn run(
    app: &TestApp,
    id: &str,
    later_secs: i64,
    keep_going: impl FnMut(&peak_domain::bulk_job::BulkJob) -> bool,
) -> RunEnd {
    let state = app.running.state.clone();
    let tenant = TenantId::parse(&app.tenant).unwrap();
    let mut ctx = state.ctx("bulk-job-test");
    ctx.now += time::Duration::seconds(later_secs);
    let ports = Ports {
        jobs: state.jobs.as_ref(),
        files: state.files.as_ref(),
        accounts: Some(state.accounts.as_ref()),
    };
    peak_bulk_jobs::run_job(
        &ctx,
        ports,
        &tenant,
        id,
        &peak_bulk::Limits::default(),
        keep_going,
    )
    .await
    .expect("run")
}

async fn user(app: &TestApp, id: &str) -> Value {
    let (status, body, text) = send(app.admin(Method::GET, &format!("/users/{id}"))).await;
    assert_eq!(status, 200, "{text}");
    body
}

/// Seeds `n` active customers of account ACME: (id, email).
async fn customers(app: &TestApp, n: usize, accounts: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let (id, _) = app.seed_user("customer", accounts, &[], &[]).await;
        let email = user(app, &id).await["email"].as_str().unwrap().to_owned();
        out.push((id, email));
    }
    out
}

/// The report line of `row` (CSV: `row,key,outcome,column,code,reason`).
fn report_line(report: &str, row: u32) -> &str {
    report
        .lines()
        .find(|l| l.starts_with(&format!("{row},")))
        .unwrap_or_else(|| panic!("no line for row {row}: {report}"))
}

fn entry(body: &Value, row: u64) -> &Value {
    body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["row"] == row)
        .unwrap_or_else(|| panic!("no entry for row {row}: {body}"))
}

async fn an_admin_bulk_updates_users_from_csv_and_xlsx(app: TestApp) {
    let admin = app.token("admin");
    let (status, _, template) =
        send(app.admin(Method::GET, "/bulk-jobs/template?kind=update")).await;
    assert_eq!(status, 200);
    assert!(
        template.starts_with("Email,Id,First name,Last name"),
        "{template}"
    );
    let people = customers(&app, 5, &["ACME"]).await;

    // CSV: rows 2-6 change a last name (row 4 by id, and suspends), row 7
    // names nobody.
    let mut csv = String::from("Email,Id,Last name,Status\n");
    for (i, (id, email)) in people.iter().enumerate() {
        if i == 2 {
            csv.push_str(&format!(",{id},Csv{i},suspend\n"));
        } else {
            csv.push_str(&format!("{email},,Csv{i},\n"));
        }
    }
    csv.push_str("nobody@nowhere.example,,Ghost,\n");
    let versions: Vec<Value> = {
        let mut v = Vec::new();
        for (id, _) in &people {
            v.push(user(&app, id).await["version"].clone());
        }
        v
    };

    // The dry run: a job whose report has every row; nothing written.
    let dry = app
        .dry_run(upload(
            &app,
            &admin,
            "?kind=update&dry_run=true",
            "text/csv",
            csv.clone().into_bytes(),
        ))
        .await;
    let body = &dry.body;
    assert_eq!(dry.job["kind"], "update");
    assert_eq!(
        (&body["counts"]["valid"], &body["counts"]["failed"]),
        (&json!(5), &json!(1)),
        "{body}"
    );
    assert_eq!(entry(body, 7)["issues"][0]["code"], "not_found", "{body}");
    for ((id, _), version) in people.iter().zip(&versions) {
        let u = user(&app, id).await;
        assert_eq!(&u["version"], version, "a dry run writes nothing");
        assert_eq!(u["status"], "active");
    }

    // The job: 202, then run; row 7 failed by number, the others applied.
    let (status, job, text) = send(upload(
        &app,
        &admin,
        "?kind=update&file_name=changes.csv",
        "text/csv",
        csv.into_bytes(),
    ))
    .await;
    assert_eq!(status, 202, "{text}");
    assert_eq!(job["kind"], "update");
    let id = job["id"].as_str().unwrap().to_owned();
    let RunEnd::Finished(done) = run(&app, &id, 0, |_| true).await else {
        panic!("not finished");
    };
    assert_eq!(done.kind, JobKind::Update);
    assert_eq!(
        (done.counts.invited, done.counts.skipped, done.counts.failed),
        (5, 0, 1)
    );
    for (i, (uid, _)) in people.iter().enumerate() {
        let u = user(&app, uid).await;
        assert_eq!(u["last_name"], format!("Csv{i}"), "{u}");
        assert_eq!(u["status"], if i == 2 { "suspended" } else { "active" });
    }
    let (status, job, _) = send(app.admin(Method::GET, &format!("/bulk-jobs/{id}"))).await;
    assert_eq!(status, 200);
    assert_eq!(
        (&job["status"], &job["applied"]),
        (&json!("done"), &json!(5))
    );
    assert_eq!(job["report"], format!("/bulk-jobs/{id}/report"));
    let (status, _, report) =
        send(app.admin(Method::GET, &format!("/bulk-jobs/{id}/report"))).await;
    assert_eq!(status, 200);
    assert!(
        report.starts_with("row,user,outcome,column,code,reason"),
        "{report}"
    );
    assert!(report_line(&report, 2).contains("\"applied\""), "{report}");
    let bad = report_line(&report, 7);
    assert!(
        bad.contains("\"failed\"") && bad.contains("\"not_found\""),
        "{report}"
    );
    // An update job is not a bulk invite.
    let (status, _, _) = send(app.admin(Method::GET, &format!("/bulk-invites/{id}"))).await;
    assert_eq!(status, 404);

    // XLSX: the same file shape from a workbook; row 4 has a bad role.
    let mut rows = vec![row(vec![
        X::S("Email"),
        X::S("Last name"),
        X::S("Role"),
        X::S("Status"),
    ])];
    for (i, (_, email)) in people.iter().enumerate() {
        let role = if i == 2 { "emperor" } else { "" };
        let status = if i == 2 { "" } else { "enable" };
        rows.push(row(vec![
            X::Owned(email.clone()),
            X::Owned(format!("Xlsx{i}")),
            X::Owned(role.to_owned()),
            X::Owned(status.to_owned()),
        ]));
    }
    let (status, job, text) = send(upload(
        &app,
        &admin,
        "?kind=update&file_name=changes.xlsx",
        XLSX,
        xlsx(&rows),
    ))
    .await;
    assert_eq!(status, 202, "{text}");
    let id = job["id"].as_str().unwrap().to_owned();
    let RunEnd::Finished(done) = run(&app, &id, 0, |_| true).await else {
        panic!("not finished");
    };
    assert_eq!((done.counts.invited, done.counts.failed), (4, 1));
    for (i, (uid, _)) in people.iter().enumerate() {
        let u = user(&app, uid).await;
        if i == 2 {
            assert_eq!(u["last_name"], "Csv2", "a bad row changes nothing");
            assert_eq!(u["status"], "suspended");
        } else {
            assert_eq!(u["last_name"], format!("Xlsx{i}"), "{u}");
        }
    }
    let (_, _, report) = send(app.admin(Method::GET, &format!("/bulk-jobs/{id}/report"))).await;
    assert!(
        report_line(&report, 4).contains("\"unknown_role\""),
        "{report}"
    );

    // A file of the wrong sheet fails as a whole: its job (the request
    // does not parse the file) ends with the header error, no row applied.
    let (status, body, _) = send(upload(
        &app,
        &admin,
        "?kind=update",
        "text/csv",
        b"First name,Phone\nA,1\n".to_vec(),
    ))
    .await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let RunEnd::Finished(failed) = run(&app, &id, 0, |_| true).await else {
        panic!("not finished");
    };
    assert_eq!(
        (
            failed.status,
            failed.error_code.as_deref(),
            failed.counts.processed()
        ),
        (JobStatus::Failed, Some("bad_header"), 0)
    );
    let (_, view, _) = send(app.admin(Method::GET, &format!("/bulk-jobs/{id}"))).await;
    assert_eq!(view["file_error"]["code"], "bad_header", "{view}");
    let (status, _, _) = send(upload(
        &app,
        &admin,
        "?kind=export",
        "text/csv",
        b"a\n".to_vec(),
    ))
    .await;
    assert_eq!(status, 422);
}

async fn a_reps_row_is_refused_exactly_as_the_single_patch_refuses_it(app: TestApp) {
    // A rep of ACC-A who may manage its customer users.
    let (_, rep) = app
        .seed_user(
            "sales_rep",
            &["ACC-A"],
            &[("my_customers.customer_users", "manage")],
            &[],
        )
        .await;
    let mine = customers(&app, 2, &["ACC-A"]).await;
    let theirs = customers(&app, 1, &["ACC-B"]).await;

    // One by one: what the rep is answered for each.
    let mut single = Vec::new();
    for (id, _) in [&mine[0], &theirs[0]] {
        let version = user(&app, id).await["version"].clone();
        let resp = app
            .with_token(&rep, Method::PATCH, &format!("/users/{id}"))
            .header("if-match", format!("\"{version}\""))
            .json(&json!({"last_name": "Single"}))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        single.push((status, body["code"].as_str().unwrap_or("").to_owned()));
    }
    assert_eq!(
        single[0].0, 200,
        "the rep edits their own account's user: {single:?}"
    );
    assert!(single[1].0 >= 400, "and not another's: {single:?}");

    // The same from a file: row 2 (their own, not yet edited) applied,
    // row 3 refused with the single route's code; nothing written to it.
    let before = user(&app, &theirs[0].0).await;
    let csv = format!(
        "Email,Last name\n{},Bulk\n{},Bulk\n",
        mine[1].1, theirs[0].1
    );
    let mine_before = user(&app, &mine[1].0).await;
    let dry = app
        .dry_run(upload(
            &app,
            &rep,
            "?kind=update&dry_run=true",
            "text/csv",
            csv.clone().into_bytes(),
        ))
        .await;
    let body = &dry.body;
    assert_eq!(entry(body, 2)["outcome"], "valid", "{body}");
    assert_eq!(entry(body, 3)["issues"][0]["code"], single[1].1, "{body}");
    assert_eq!(
        user(&app, &mine[1].0).await,
        mine_before,
        "a dry run writes nothing"
    );
    let (status, job, text) = send(upload(
        &app,
        &rep,
        "?kind=update",
        "text/csv",
        csv.into_bytes(),
    ))
    .await;
    assert_eq!(status, 202, "{text}");
    let id = job["id"].as_str().unwrap().to_owned();
    let RunEnd::Finished(done) = run(&app, &id, 0, |_| true).await else {
        panic!("not finished");
    };
    assert_eq!((done.counts.invited, done.counts.failed), (1, 1));
    assert_eq!(user(&app, &mine[1].0).await["last_name"], "Bulk");
    assert_eq!(user(&app, &theirs[0].0).await, before);
    let (status, _, report) =
        send(app.with_token(&rep, Method::GET, &format!("/bulk-jobs/{id}/report"))).await;
    assert_eq!(status, 200, "the rep reads their own job's report");
    assert!(
        report_line(&report, 3).contains(&format!("\"{}\"", single[1].1)),
        "{report}"
    );
    // A rep may not import accounts (admins only, as PUT /accounts).
    let (status, body, _) = send(upload(
        &app,
        &rep,
        "?kind=account_import",
        "text/csv",
        b"Number,Name\nX-1,X\n".to_vec(),
    ))
    .await;
    assert_eq!(status, 403, "{body}");
}

async fn a_resumed_update_does_not_apply_a_row_twice(app: TestApp) {
    let people = customers(&app, 30, &["ACME"]).await;
    let mut csv = String::from("Email,First name\n");
    for (i, (_, email)) in people.iter().enumerate() {
        csv.push_str(&format!("{email},Run{i}\n"));
    }
    let (status, job, text) = send(upload(
        &app,
        &app.token("admin"),
        "?kind=update",
        "text/csv",
        csv.into_bytes(),
    ))
    .await;
    assert_eq!(status, 202, "{text}");
    let id = job["id"].as_str().unwrap().to_owned();

    // A runner writes its first chunk (rows 2-26)...
    assert_eq!(run(&app, &id, 0, |_| false).await, RunEnd::Paused);
    // ...and dies before the checkpoint is stored: put the job back as it
    // was before that chunk (running, no rows done, its lease run out).
    let state = app.running.state.clone();
    let tenant = TenantId::parse(&app.tenant).unwrap();
    let stored = state.jobs.get_job(&tenant, &id).await.unwrap().unwrap();
    assert_eq!(stored.next_row, 27);
    let mut crashed = stored.clone();
    crashed.next_row = 0;
    crashed.counts = Default::default();
    crashed.version += 1;
    state
        .jobs
        .update_job(stored.version, &crashed)
        .await
        .unwrap();

    // The next runner redoes the chunk's rows: each edit is found in the
    // audit trail, not applied again.
    let RunEnd::Finished(done) = run(&app, &id, peak_bulk_jobs::LEASE_SECS + 1, |_| true).await
    else {
        panic!("not finished");
    };
    assert_eq!(done.status, JobStatus::Done);
    assert_eq!((done.counts.invited, done.counts.failed), (30, 0));
    for (i, (uid, _)) in people.iter().enumerate() {
        let u = user(&app, uid).await;
        assert_eq!(u["first_name"], format!("Run{i}"));
        assert_eq!(u["version"], 2, "seeded at 1, edited once: {u}");
        let events = state
            .users
            .list_audit(
                &tenant,
                Some(&UserId::parse(uid).unwrap()),
                &PageRequest::first(100),
            )
            .await
            .unwrap()
            .items;
        let edits = events.iter().filter(|e| e.action == "user.updated").count();
        assert_eq!(edits, 1, "row {}: {events:?}", i + 2);
    }
}

async fn an_account_import_takes_a_parent_after_its_child(app: TestApp) {
    let admin = app.token("admin");
    let (status, _, template) =
        send(app.admin(Method::GET, "/bulk-jobs/template?kind=account_import")).await;
    assert_eq!(status, 200);
    assert!(template.starts_with("Number,Name,Parent,Status"));
    // Row 2's parent is on row 4, whose parent is on row 5; row 3 names a
    // parent nowhere; row 6 repeats row 2.
    let csv = "Number,Name,Parent,Status\n\
               IMP-EU-DE,Imp Germany,IMP-EU,\n\
               IMP-ORPHAN,Orphan,IMP-NOWHERE,\n\
               IMP-EU,Imp Europe,IMP,\n\
               IMP,Imp Holdings,,\n\
               IMP-EU-DE,Imp Germany again,IMP-EU,closed\n";
    let dry = app
        .dry_run(upload(
            &app,
            &admin,
            "?kind=account_import&dry_run=true",
            "text/csv",
            csv.as_bytes().to_vec(),
        ))
        .await;
    let body = &dry.body;
    assert_eq!(
        (
            &body["counts"]["valid"],
            &body["counts"]["failed"],
            &body["counts"]["skipped"]
        ),
        (&json!(3), &json!(1), &json!(1)),
        "{body}"
    );
    assert_eq!(entry(body, 3)["issues"][0]["column"], "parent", "{body}");
    let (status, _, _) = send(app.admin(Method::GET, "/accounts/IMP")).await;
    assert_eq!(status, 404, "a dry run writes nothing");

    let (status, job, text) = send(upload(
        &app,
        &admin,
        "?kind=account_import&file_name=accounts.csv",
        "text/csv",
        csv.as_bytes().to_vec(),
    ))
    .await;
    assert_eq!(status, 202, "{text}");
    assert_eq!(job["kind"], "account_import");
    let id = job["id"].as_str().unwrap().to_owned();
    let RunEnd::Finished(done) = run(&app, &id, 0, |_| true).await else {
        panic!("not finished");
    };
    assert_eq!(
        (done.counts.invited, done.counts.skipped, done.counts.failed),
        (3, 1, 1)
    );
    let (status, de, _) = send(app.admin(Method::GET, "/accounts/IMP-EU-DE")).await;
    assert_eq!(status, 200);
    assert_eq!(de["parent"], "IMP-EU", "{de}");
    assert_eq!(
        de["status"], "active",
        "the repeat on row 6 was skipped: {de}"
    );
    let (_, eu, _) = send(app.admin(Method::GET, "/accounts/IMP-EU")).await;
    assert_eq!(eu["parent"], "IMP", "{eu}");
    assert_eq!(
        eu["version"], 1,
        "applied once, early, then unchanged: {eu}"
    );
    let (status, _, _) = send(app.admin(Method::GET, "/accounts/IMP-ORPHAN")).await;
    assert_eq!(status, 404);
    let (_, _, report) = send(app.admin(Method::GET, &format!("/bulk-jobs/{id}/report"))).await;
    assert!(report.starts_with("row,account,outcome"), "{report}");
    assert!(report_line(&report, 4).contains("\"applied\""), "{report}");
    let orphan = report_line(&report, 3);
    assert!(
        orphan.contains("\"failed\"") && orphan.contains("IMP-NOWHERE"),
        "{report}"
    );
    assert!(
        report_line(&report, 6).contains("\"duplicate_account\""),
        "{report}"
    );
}

/// The permission matrix of the `/bulk-jobs` routes: (route, status per
/// role — admin, sales rep, partner, customer). A bulk update is open to
/// every signed-in user because each row is authorised as its single
/// route; an import is the directory's (admins); a job is its starter's
/// and the admins' (404 to anyone else, as a bulk invite).
async fn who_may_start_and_see_bulk_jobs(app: TestApp) {
    let roles = ["admin", "sales_rep", "partner", "customer"];
    let (status, job, text) = send(upload(
        &app,
        &app.token("admin"),
        "?kind=update",
        "text/csv",
        b"Email,Last name\nadmin@tenant.example,Admin\n".to_vec(),
    ))
    .await;
    assert_eq!(status, 202, "{text}");
    let id = job["id"].as_str().unwrap().to_owned();
    let mut got = Vec::new();
    for (label, method, path, body) in [
        (
            "template",
            Method::GET,
            "/bulk-jobs/template?kind=update".to_owned(),
            None,
        ),
        (
            "update dry run",
            Method::POST,
            "/bulk-jobs?kind=update&dry_run=true".to_owned(),
            Some("Email,Last name\nadmin@tenant.example,X\n"),
        ),
        (
            "import dry run",
            Method::POST,
            "/bulk-jobs?kind=account_import&dry_run=true".to_owned(),
            Some("Number,Name\nM-1,M\n"),
        ),
        ("admin's job", Method::GET, format!("/bulk-jobs/{id}"), None),
        (
            "admin's report",
            Method::GET,
            format!("/bulk-jobs/{id}/report"),
            None,
        ),
    ] {
        let mut row = vec![label.to_owned()];
        for role in roles {
            let mut req = app.as_role(role, method.clone(), &path);
            if let Some(b) = body {
                req = req.header("content-type", "text/csv").body(b);
            }
            row.push(send(req).await.0.to_string());
        }
        got.push(row.join(" "));
    }
    assert_eq!(
        got,
        [
            "template 200 200 200 200",
            "update dry run 202 202 202 202",
            "import dry run 202 403 403 403",
            "admin's job 200 404 404 404",
            // Not finished (nobody ran it): the admin is told so.
            "admin's report 409 404 404 404",
        ]
    );
    // A non-admin's update dry run reports the admin row as the single
    // PATCH would answer them.
    let dry = app
        .dry_run(
            app.as_role(
                "customer",
                Method::POST,
                "/bulk-jobs?kind=update&dry_run=true",
            )
            .header("content-type", "text/csv")
            .body("Email,Last name\nadmin@tenant.example,X\n"),
        )
        .await;
    assert_eq!(dry.body["counts"]["failed"], 1, "{}", dry.body);
    // A sales rep's dry-run job is theirs and the admins' (404 to anyone
    // else, as any job), and it changed no one.
    let me = || async { send(app.as_role("sales_rep", Method::GET, "/me")).await.1 };
    let rep_before = me().await;
    let dry = app
        .dry_run(
            app.as_role(
                "sales_rep",
                Method::POST,
                "/bulk-jobs?kind=update&dry_run=true",
            )
            .header("content-type", "text/csv")
            .body(format!(
                "Email,Last name\n{},Renamed\n",
                rep_before["email"].as_str().unwrap()
            )),
        )
        .await;
    // (Refused as their own PATCH is: a rep may not edit themselves.)
    assert_eq!(dry.body["counts"]["total"], 1, "{}", dry.body);
    let id = dry.job["id"].as_str().unwrap();
    let mut seen = Vec::new();
    for role in roles {
        for path in [
            format!("/bulk-jobs/{id}"),
            format!("/bulk-jobs/{id}/report"),
        ] {
            seen.push(send(app.as_role(role, Method::GET, &path)).await.0);
        }
    }
    assert_eq!(seen, [200, 200, 200, 200, 404, 404, 404, 404]);
    let (_, other_admin) = app.other_tenant_admin().await;
    let (status, _, _) =
        send(app.with_token(&other_admin, Method::GET, &format!("/bulk-jobs/{id}"))).await;
    assert_eq!(status, 404, "another tenant's admin");
    assert_eq!(
        me().await["version"],
        rep_before["version"],
        "nothing written"
    );
}
