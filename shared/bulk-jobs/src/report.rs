//! A job's report: its entries in row order, and as the CSV the report
//! routes answer.

use peak_domain::Error;
use peak_domain::bulk_job::{BulkJob, JobEntry, JobKind};
use peak_domain::ports::JobStore;

/// The report of a job as CSV (`row,email,outcome,column,code,reason`),
/// values a spreadsheet would run (`=`, `+`, `-`, `@`, tab, CR first) made
/// inert with a leading `'`.
pub fn report_csv(entries: &[JobEntry]) -> String {
    report_csv_for(JobKind::Invite, entries)
}

/// [`report_csv`] for a job of any kind: the same columns, the second
/// named for what the rows name (`email` for invites, `user` — the email
/// or id as written — for updates, `account` for imports).
pub fn report_csv_for(kind: JobKind, entries: &[JobEntry]) -> String {
    fn field(out: &mut String, value: &str) {
        let value = peak_bulk::neutralize(value);
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    }
    let key = match kind {
        JobKind::Invite => "email",
        JobKind::Update => "user",
        JobKind::AccountImport => "account",
    };
    let mut out = format!("row,{key},outcome,column,code,reason\r\n");
    for e in entries {
        out.push_str(&e.row.to_string());
        out.push(',');
        field(&mut out, &e.email);
        out.push(',');
        field(&mut out, &e.outcome);
        out.push(',');
        field(&mut out, e.column.as_deref().unwrap_or(""));
        out.push(',');
        field(&mut out, &e.code);
        out.push(',');
        field(&mut out, &e.reason);
        out.push_str("\r\n");
    }
    out
}

/// Every report entry of a job, in row order.
pub async fn all_entries(jobs: &dyn JobStore, job: &BulkJob) -> Result<Vec<JobEntry>, Error> {
    let mut out: Vec<JobEntry> = Vec::new();
    loop {
        let after = out.last().map_or(0, |e| e.row);
        let page = jobs
            .list_job_entries(&job.tenant_id, &job.id, after, 1000)
            .await
            .map_err(|e| Error::from_store(e, "bulk job report"))?;
        let done = page.len() < 1000;
        out.extend(page);
        if done {
            return Ok(out);
        }
    }
}
