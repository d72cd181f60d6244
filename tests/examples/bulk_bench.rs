//! Bulk-invite throughput on the local store (SQLite file), for the README:
//!
//!   cargo run --release -p peak-tests --example bulk_bench -- 10000
//!   /usr/bin/time -v target/release/examples/bulk_bench 100000 --no-run
//!
//! Generates an N-row CSV (valid customers), then times what a user waits
//! for: the dry run (a job: accepted — stored, queued, the file not parsed
//! — then run: every row checked, each address looked up, only report
//! entries written), accepting the real upload, and the job itself (every
//! row validated and invited: one user transaction each, with its
//! invitation email queued in the outbox, after its accounts are checked
//! against the directory; report entries and checkpoints per chunk of 25).
//! Prints rows per second.

use peak_bulk_jobs::{FolderFiles, RunEnd, Upload};
use peak_local::Stores;
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), peak_local::BoxError> {
    let rows: u32 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);
    let dir = std::env::temp_dir().join(format!("peak-bulk-bench-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&dir)?;
    let store = peak_store_sqlite::SqliteStore::open(&dir.join("peak-users.db"))?;
    let stores = Stores::from(store);
    let tenant = "bench";
    peak_local::seed_admin(&stores, tenant, "dev|bench-admin", "admin@bench.example").await?;
    // The 50 accounts the rows name (each row's accounts are checked: one
    // batched read per row).
    let numbers: Vec<String> = (0..50).map(|i| format!("ACC-{i}")).collect();
    let accounts: Vec<(&str, &str, Option<&str>)> = numbers
        .iter()
        .map(|n| (n.as_str(), n.as_str(), None))
        .collect();
    peak_local::seed_accounts(&stores, tenant, &accounts).await?;
    let files = FolderFiles::new(dir.join("uploads"));

    let mut csv = String::from("First name,Last name,Email,Role,Profile,Customer accounts\n");
    for i in 0..rows {
        csv.push_str(&format!(
            "First{i},Last{i},person{i}@bench.example,customer,Standard,ACC-{}\n",
            i % 50
        ));
    }
    let settings = peak_domain::users::UserSettings::default();
    let request_id = "bench";
    let ctx = peak_domain::users::Ctx {
        users: stores.users.as_ref(),
        profiles: stores.profiles.as_ref(),
        tenants: stores.tenants.as_ref(),
        accounts: stores.accounts.as_ref(),
        catalogue: peak_domain::catalogue::catalogue(),
        settings: &settings,
        now: time::OffsetDateTime::now_utc(),
        request_id,
        tenant: None,
    };
    let tenant_id = peak_domain::TenantId::parse(tenant).ok_or("tenant")?;
    let actor = peak_domain::users::resolve_actor(&ctx, &tenant_id, "dev|bench-admin").await?;
    let limits = peak_bulk::Limits::default();

    let upload = Upload {
        bytes: csv.as_bytes(),
        file_name: Some("bench.csv"),
        content_type: Some("text/csv"),
    };
    let started = Instant::now();
    let dry = peak_bulk_jobs::start_kind(
        &ctx,
        &actor,
        stores.jobs.as_ref(),
        &files,
        peak_bulk_jobs::JobSpec {
            kind: peak_domain::bulk_job::JobKind::Invite,
            dry_run: true,
        },
        upload,
        &limits,
    )
    .await?;
    let end = peak_bulk_jobs::run(
        &ctx,
        stores.jobs.as_ref(),
        &files,
        &tenant_id,
        &dry.id,
        &limits,
        |_| true,
    )
    .await?;
    let validated = started.elapsed();
    let RunEnd::Finished(checked) = end else {
        return Err(format!("dry run did not finish: {end:?}").into());
    };
    // A dry run counts its valid rows where a real run counts its invites.
    let valid = checked.counts.invited;
    let started = Instant::now();
    let job =
        peak_bulk_jobs::start(&ctx, &actor, stores.jobs.as_ref(), &files, upload, &limits).await?;
    let accepted = started.elapsed();
    if std::env::args().nth(2).as_deref() == Some("--no-run") {
        println!(
            "rows {rows}: validated (dry-run job: every row checked, each address looked up) in {:.2} s, {valid} valid; staged (stored, job queued) in {:.3} s",
            validated.as_secs_f64(),
            accepted.as_secs_f64()
        );
        std::fs::remove_dir_all(&dir)?;
        return Ok(());
    }
    drop(csv);
    let started = Instant::now();
    let end = peak_bulk_jobs::run(
        &ctx,
        stores.jobs.as_ref(),
        &files,
        &tenant_id,
        &job.id,
        &limits,
        |_| true,
    )
    .await?;
    let ran = started.elapsed();
    let RunEnd::Finished(done) = end else {
        return Err(format!("job did not finish: {end:?}").into());
    };
    println!(
        "rows {rows}: validated in {:.2} s ({valid} valid); staged in {:.3} s; job {:?} in {:.2} s ({:.0} rows/s): invited {}, skipped {}, failed {}",
        validated.as_secs_f64(),
        accepted.as_secs_f64(),
        done.status,
        ran.as_secs_f64(),
        f64::from(rows) / ran.as_secs_f64(),
        done.counts.invited,
        done.counts.skipped,
        done.counts.failed,
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
