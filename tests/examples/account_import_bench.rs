//! Account-import throughput and memory on the local store (a SQLite file),
//! for the README:
//!
//!   scripts/bench-account-import.sh 100000
//!
//! Generates an N-row account CSV (a tree: every 10th row a root, the rest
//! its children; every 100th child listed *before* its parent, so the
//! parents-after-children path runs too), writes it to a file, then does
//! what the local server does with an upload: reads it through once,
//! stores it and queues the job (`start_kind`), and runs the job
//! (`run_job`, with the account directory — as the in-process runner):
//! every row through the account upsert use case, report entries and a
//! checkpoint per chunk of 25. Prints rows per second; peak RSS comes from
//! `/usr/bin/time -v` around the process (the script does that).

use peak_bulk_jobs::{FolderFiles, Ports, RunEnd, Upload};
use peak_domain::bulk_job::JobKind;
use peak_local::Stores;
use std::fmt::Write as _;
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), peak_local::BoxError> {
    let rows: u32 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let dir = std::env::temp_dir().join(format!("peak-import-bench-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&dir)?;
    let store = peak_store_sqlite::SqliteStore::open(&dir.join("peak-users.db"))?;
    let stores = Stores::from(store);
    let tenant = "bench";
    peak_local::seed_admin(&stores, tenant, "dev|bench-admin", "admin@bench.example").await?;
    let files = FolderFiles::new(dir.join("uploads"));

    // The file, as an upload would bring it.
    let mut csv = String::from("Number,Name,Parent,Status\n");
    let mut i = 0;
    while i < rows {
        let root = i;
        let children: Vec<u32> = (root + 1..(root + 10).min(rows)).collect();
        // Every 10th tree lists its first child before the root.
        let early = (root / 10) % 10 == 0 && !children.is_empty();
        if early {
            writeln!(
                csv,
                "ACC-{:06},Account {},ACC-{root:06},",
                children[0], children[0]
            )?;
        }
        writeln!(csv, "ACC-{root:06},Account {root},,active")?;
        for c in children.iter().skip(usize::from(early)) {
            writeln!(csv, "ACC-{c:06},Account {c},ACC-{root:06},")?;
        }
        i += 10;
    }
    let path = dir.join("accounts.csv");
    std::fs::write(&path, &csv)?;
    drop(csv);
    let bytes = std::fs::read(&path)?;

    let settings = peak_domain::users::UserSettings::default();
    let ctx = peak_domain::users::Ctx {
        users: stores.users.as_ref(),
        profiles: stores.profiles.as_ref(),
        accounts: stores.accounts.as_ref(),
        tenants: stores.tenants.as_ref(),
        catalogue: peak_domain::catalogue::catalogue(),
        settings: &settings,
        now: time::OffsetDateTime::now_utc(),
        request_id: "bench",
        tenant: None,
    };
    let tenant_id = peak_domain::TenantId::parse(tenant).ok_or("tenant")?;
    let actor = peak_domain::users::resolve_actor(&ctx, &tenant_id, "dev|bench-admin").await?;
    let limits = peak_bulk::Limits::default();
    let upload = Upload {
        bytes: &bytes,
        file_name: Some("accounts.csv"),
        content_type: Some("text/csv"),
    };
    let started = Instant::now();
    let job = peak_bulk_jobs::start_kind(
        &ctx,
        &actor,
        stores.jobs.as_ref(),
        &files,
        JobKind::AccountImport,
        upload,
        &limits,
    )
    .await?;
    let staged = started.elapsed();
    drop(bytes);

    let ports = Ports {
        jobs: stores.jobs.as_ref(),
        files: &files,
        accounts: Some(stores.accounts.as_ref()),
    };
    let started = Instant::now();
    let end = peak_bulk_jobs::run_job(&ctx, ports, &tenant_id, &job.id, &limits, |_| true).await?;
    let ran = started.elapsed();
    let RunEnd::Finished(done) = end else {
        return Err(format!("job did not finish: {end:?}").into());
    };
    println!(
        "rows {rows}: staged (read through, stored, queued) in {:.3} s; job {:?} in {:.2} s ({:.0} rows/s): applied {}, skipped {}, failed {}",
        staged.as_secs_f64(),
        done.status,
        ran.as_secs_f64(),
        f64::from(rows) / ran.as_secs_f64(),
        done.counts.invited,
        done.counts.skipped,
        done.counts.failed,
    );
    if done.counts.invited != rows {
        return Err(format!("expected {rows} accounts applied, got {:?}", done.counts).into());
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
