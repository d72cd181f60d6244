//! Streams a bulk-invite file through reader + validator (a dry run) and
//! prints counts and timings; the report CSV goes to REPORT if given.
//!
//! ```sh
//! cargo run --release -p peak-bulk --example bulk_check -- /tmp/users.csv [REPORT]
//! /usr/bin/time -v target/release/examples/bulk_check /tmp/users.csv   # peak RSS
//! ```
//!
//! Knows the profiles "Standard" and "VIP"; no existing users.

use peak_bulk::{Entry, Limits, ReportWriter, Validator, open};
use peak_domain::ProfileId;
use peak_domain::catalogue::catalogue;
use std::io::{BufWriter, Write};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: bulk_check FILE [REPORT]");
        std::process::exit(2);
    };
    let report: Box<dyn Write> = match args.next() {
        Some(p) => Box::new(BufWriter::new(std::fs::File::create(p)?)),
        None => Box::new(std::io::sink()),
    };
    let started = Instant::now();
    let limits = Limits::default();
    let profiles = [
        ("Standard", ProfileId::generate()),
        ("VIP", ProfileId::generate()),
    ];
    let mut validator = Validator::new(catalogue(), profiles, &limits);
    let mut writer = ReportWriter::new(report)?;
    let file = std::fs::File::open(&path)?;
    let rows = match open(file, Some(&path), None, &limits) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("file refused ({}): {e}", e.code());
            std::process::exit(1);
        }
    };
    let format = rows.format();
    let opened = started.elapsed();
    for row in rows {
        match row {
            Ok(row) => writer.write(&Entry::from_check(&validator.check(&row)))?,
            Err(e) => {
                eprintln!("file error ({}): {e}", e.code());
                writer.write_file_error(&(&e).into())?;
                break;
            }
        }
    }
    let distinct = validator.distinct_emails();
    let (counts, mut out) = writer.finish()?;
    out.flush()?;
    let elapsed = started.elapsed();
    println!(
        "format={format:?} total={} valid={} skipped={} failed={} distinct_emails={distinct}",
        counts.total, counts.valid, counts.skipped, counts.failed
    );
    println!(
        "opened in {:.1} ms, done in {:.1} ms ({:.0} rows/s)",
        opened.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e3,
        f64::from(counts.total) / elapsed.as_secs_f64().max(1e-9)
    );
    Ok(())
}
