//! The job-store contract: bulk-invite jobs (checkpoint, versioned
//! updates, the runnable list across tenants, retention) and their report
//! entries.
//!
//! `runnable_jobs` serves every tenant and adapters may share one table
//! between cases, so assertions on it only look at the case's own tenants.

use crate::fresh_tenant;
use peak_domain::TenantId;
use peak_domain::bulk_job::{BulkJob, JOB_RETENTION_DAYS, JobCounts, JobEntry, JobKind, JobStatus};
use peak_domain::ids::monotonic_ulid;
use peak_domain::model::user::UserId;
use peak_domain::ports::{JobStore, StoreError};
use time::{Duration, OffsetDateTime};

/// Enough to see every job the cases of one run leave runnable.
const ALL: u32 = 10_000;

fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .expect("valid nanosecond")
}

/// A queued job of `tenant`, as the API creates it.
pub fn sample_job(tenant: &TenantId) -> BulkJob {
    let t = now();
    let id = monotonic_ulid().to_string();
    BulkJob {
        tenant_id: tenant.clone(),
        file_key: format!("bulk/{}/{id}", tenant.as_str()),
        id,
        kind: JobKind::Invite,
        created_by: UserId::generate(),
        status: JobStatus::Queued,
        file_name: "people.csv".into(),
        total_rows: 60,
        next_row: 0,
        counts: JobCounts::default(),
        error: None,
        error_code: None,
        dry_run: false,
        lease_until: None,
        version: 1,
        created_at: t,
        updated_at: t,
    }
}

/// `job` written again by a runner: the next version, with `change`.
fn next(job: &BulkJob, change: impl FnOnce(&mut BulkJob)) -> BulkJob {
    let mut n = job.clone();
    change(&mut n);
    n.version = job.version + 1;
    n.updated_at = now();
    n
}

fn running(job: &BulkJob, lease_until: OffsetDateTime) -> BulkJob {
    next(job, |j| {
        j.status = JobStatus::Running;
        j.lease_until = Some(lease_until);
    })
}

fn finished(job: &BulkJob, status: JobStatus) -> BulkJob {
    next(job, |j| {
        j.status = status;
        j.lease_until = None;
        j.next_row = j.total_rows + 2;
        if status == JobStatus::Failed {
            j.error = Some("the file ends in the middle of a row".into());
            j.error_code = Some("unreadable".into());
        }
    })
}

async fn create(store: &dyn JobStore, job: &BulkJob) {
    store.create_job(job).await.expect("create job");
}

async fn get(store: &dyn JobStore, job: &BulkJob) -> Option<BulkJob> {
    store
        .get_job(&job.tenant_id, &job.id)
        .await
        .expect("get job")
}

/// The ids of the runnable jobs of `tenant`, in the order given.
async fn runnable_ids(store: &dyn JobStore, at: OffsetDateTime, tenant: &TenantId) -> Vec<String> {
    store
        .runnable_jobs(at, ALL)
        .await
        .expect("runnable jobs")
        .into_iter()
        .filter(|j| &j.tenant_id == tenant)
        .map(|j| j.id)
        .collect()
}

fn entry(row: u32) -> JobEntry {
    JobEntry {
        row,
        email: format!("person{row}@example.com"),
        outcome: "invited".into(),
        column: None,
        code: String::new(),
        reason: String::new(),
    }
}

fn failed_entry(row: u32, email: &str) -> JobEntry {
    JobEntry {
        row,
        email: email.into(),
        outcome: "failed".into(),
        column: Some("email".into()),
        code: "bad_email".into(),
        reason: "is not an email address".into(),
    }
}

async fn entries(store: &dyn JobStore, job: &BulkJob, after_row: u32, limit: u32) -> Vec<JobEntry> {
    store
        .list_job_entries(&job.tenant_id, &job.id, after_row, limit)
        .await
        .expect("list entries")
}

fn rows(entries: &[JobEntry]) -> Vec<u32> {
    entries.iter().map(|e| e.row).collect()
}

pub async fn job_round_trips_and_ids_are_unique(store: &dyn JobStore) {
    let t = fresh_tenant();
    let job = sample_job(&t);
    create(store, &job).await;
    assert_eq!(get(store, &job).await, Some(job.clone()));

    // Every field, full precision, another offset, empty strings.
    let mut full = sample_job(&t);
    full.status = JobStatus::Running;
    full.file_name = String::new();
    full.total_rows = u32::MAX;
    full.next_row = 27;
    full.counts = JobCounts {
        invited: 20,
        skipped: 3,
        failed: 2,
    };
    full.error = Some("partial".into());
    full.error_code = Some("bad_header".into());
    full.dry_run = true;
    full.lease_until = Some(
        OffsetDateTime::now_utc().to_offset(time::macros::offset!(+05:30)) + Duration::minutes(2),
    );
    full.created_at = OffsetDateTime::now_utc();
    full.updated_at = full.created_at.to_offset(time::macros::offset!(-03:00));
    full.version = 9;
    full.kind = JobKind::AccountImport;
    create(store, &full).await;
    let stored = get(store, &full).await.expect("stored");
    assert_eq!(stored, full);
    assert_eq!(stored.updated_at.offset(), full.updated_at.offset());
    // The kind and the dry-run flag are kept through updates (a runner
    // never changes them); the row total the runner learns is stored.
    let mut update = sample_job(&t);
    update.kind = JobKind::Update;
    update.dry_run = true;
    update.total_rows = 0;
    create(store, &update).await;
    let mut taken = running(&update, OffsetDateTime::now_utc() + Duration::minutes(2));
    taken.total_rows = 100_000;
    store
        .update_job(update.version, &taken)
        .await
        .expect("update");
    let stored = get(store, &update).await.expect("stored");
    assert_eq!(
        (stored.kind, stored.dry_run, stored.total_rows),
        (JobKind::Update, true, 100_000)
    );

    let missing = monotonic_ulid().to_string();
    assert_eq!(store.get_job(&t, &missing).await.expect("get"), None);

    // The same id again: refused, the first one stays.
    let mut again = sample_job(&t);
    again.id = job.id.clone();
    again.file_name = "other.xlsx".into();
    assert_eq!(
        store.create_job(&again).await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(get(store, &job).await, Some(job));
}

pub async fn job_updates_check_the_version(store: &dyn JobStore) {
    let t = fresh_tenant();
    let job = sample_job(&t);
    create(store, &job).await;

    let taken = running(&job, now() + Duration::minutes(2));
    store.update_job(job.version, &taken).await.expect("take");
    assert_eq!(get(store, &taken).await, Some(taken.clone()));

    let checkpoint = next(&taken, |j| {
        j.next_row = 27;
        j.counts.invited = 25;
    });
    store
        .update_job(taken.version, &checkpoint)
        .await
        .expect("checkpoint");

    // A runner that still holds version 2 (it lost its lease): refused,
    // nothing changes.
    let stale = next(&taken, |j| j.next_row = 52);
    assert_eq!(
        store.update_job(taken.version, &stale).await,
        Err(StoreError::VersionMismatch)
    );
    assert_eq!(get(store, &job).await, Some(checkpoint.clone()));

    let missing = sample_job(&t);
    assert_eq!(
        store.update_job(1, &next(&missing, |_| {})).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(get(store, &missing).await, None, "not created by an update");

    let done = finished(&checkpoint, JobStatus::Done);
    store
        .update_job(checkpoint.version, &done)
        .await
        .expect("finish");
    assert_eq!(get(store, &job).await, Some(done));
}

pub async fn runnable_jobs_are_queued_or_past_their_lease(store: &dyn JobStore) {
    let (t, u) = (fresh_tenant(), fresh_tenant());
    let at = now();
    let mut jobs = Vec::new();
    for tenant in [&t, &t, &t, &t, &t, &t, &t, &u] {
        let job = sample_job(tenant);
        create(store, &job).await;
        jobs.push(job);
    }
    let [
        queued,
        queued_later,
        held,
        lapsed_long_ago,
        lapsed,
        done,
        failed,
        other,
    ] = <[BulkJob; 8]>::try_from(jobs).expect("eight jobs");
    let held = running(&held, at + Duration::seconds(60));
    let lapsed_long_ago = running(&lapsed_long_ago, at - Duration::seconds(10));
    let lapsed = running(&lapsed, at - Duration::seconds(1));
    let done_taken = running(&done, at - Duration::seconds(30));
    let failed = finished(&failed, JobStatus::Failed);
    for j in [&held, &lapsed_long_ago, &lapsed, &done_taken, &failed] {
        store.update_job(1, j).await.expect("update");
    }
    let done = finished(&done_taken, JobStatus::Done);
    store.update_job(2, &done).await.expect("finish");

    // Queued first, in creation order; then lapsed leases, oldest first.
    assert_eq!(
        runnable_ids(store, at, &t).await,
        [&queued, &queued_later, &lapsed_long_ago, &lapsed].map(|j| j.id.clone()),
    );
    // Across tenants.
    assert_eq!(runnable_ids(store, at, &u).await, vec![other.id]);
    // Once its lease is over, the held job is runnable too; finished jobs
    // never are.
    let later = at + Duration::seconds(120);
    let ids = runnable_ids(store, later, &t).await;
    assert_eq!(ids.len(), 5, "{ids:?}");
    assert!(ids.contains(&held.id));
    assert!(!ids.contains(&done.id) && !ids.contains(&failed.id));
    let far = at + Duration::days(365 * 10);
    assert!(!runnable_ids(store, far, &t).await.contains(&done.id));

    // Taking a job removes it; finishing one too.
    let taken = running(&queued, at + Duration::seconds(120));
    store.update_job(1, &taken).await.expect("take");
    let finish = finished(&lapsed, JobStatus::Done);
    store
        .update_job(lapsed.version, &finish)
        .await
        .expect("finish");
    assert_eq!(
        runnable_ids(store, at, &t).await,
        [&queued_later, &lapsed_long_ago].map(|j| j.id.clone()),
    );
    // The returned jobs are whole.
    let listed = store.runnable_jobs(at, ALL).await.expect("runnable");
    assert!(listed.contains(&lapsed_long_ago));

    let one = store.runnable_jobs(at, 1).await.expect("runnable");
    assert_eq!(one.len(), 1, "the limit holds");
    assert!(
        store
            .runnable_jobs(at, 0)
            .await
            .expect("runnable")
            .is_empty()
    );
}

pub async fn report_entries_page_in_row_order_and_replace(store: &dyn JobStore) {
    let t = fresh_tenant();
    let job = sample_job(&t);
    create(store, &job).await;
    // Rows 2..=61 (row 1 is the header), out of order, in one call: more
    // than two of DynamoDB's batches.
    let mut given: Vec<JobEntry> = (0..60u32).map(|i| entry(2 + (i * 37) % 60)).collect();
    given[10] = failed_entry(given[10].row, "");
    given[11] = failed_entry(given[11].row, "not-an-email");
    store
        .put_job_entries(&t, &job.id, &given)
        .await
        .expect("put entries");
    let mut expected = given.clone();
    expected.sort_by_key(|e| e.row);

    let first = entries(store, &job, 0, 25).await;
    assert_eq!(rows(&first), (2..=26).collect::<Vec<_>>());
    let second = entries(store, &job, 26, 25).await;
    assert_eq!(rows(&second), (27..=51).collect::<Vec<_>>());
    let third = entries(store, &job, 51, 25).await;
    assert_eq!(rows(&third), (52..=61).collect::<Vec<_>>());
    assert!(entries(store, &job, 61, 25).await.is_empty());
    assert_eq!(
        [first, second, third].concat(),
        expected,
        "exactly as given"
    );
    assert_eq!(rows(&entries(store, &job, 30, 3).await), [31, 32, 33]);
    assert!(entries(store, &job, 0, 0).await.is_empty());
    assert!(entries(store, &job, u32::MAX, 10).await.is_empty());

    // A chunk redone after a crash: row 5 again replaces it.
    let redone = failed_entry(5, "person5@example");
    store
        .put_job_entries(&t, &job.id, std::slice::from_ref(&redone))
        .await
        .expect("put again");
    // A row twice in one call keeps the last.
    let twice = [failed_entry(7, "x"), entry(7)];
    store
        .put_job_entries(&t, &job.id, &twice)
        .await
        .expect("put twice");
    let all = entries(store, &job, 0, 1000).await;
    assert_eq!(all.len(), 60);
    assert_eq!(all[3], redone);
    assert_eq!(all[5], entry(7));

    // Another job's report is its own.
    let other = sample_job(&t);
    create(store, &other).await;
    assert!(entries(store, &other, 0, 100).await.is_empty());
    store
        .put_job_entries(&t, &other.id, &[entry(2)])
        .await
        .expect("put");
    assert_eq!(entries(store, &other, 0, 100).await, [entry(2)]);
    assert_eq!(entries(store, &job, 0, 1000).await.len(), 60);
    store
        .put_job_entries(&t, &other.id, &[])
        .await
        .expect("nothing to put");
}

pub async fn jobs_and_reports_are_tenant_isolated(store: &dyn JobStore) {
    let (a, b) = (fresh_tenant(), fresh_tenant());
    let job = sample_job(&a);
    create(store, &job).await;
    store
        .put_job_entries(&a, &job.id, &[entry(2), entry(3)])
        .await
        .expect("put");

    assert_eq!(store.get_job(&b, &job.id).await.expect("get"), None);
    assert!(
        store
            .list_job_entries(&b, &job.id, 0, 100)
            .await
            .expect("list")
            .is_empty()
    );
    let mut as_b = job.clone();
    as_b.tenant_id = b.clone();
    assert_eq!(
        store.update_job(1, &next(&as_b, |_| {})).await,
        Err(StoreError::NotFound)
    );
    // B's entries under the same id are B's.
    store
        .put_job_entries(&b, &job.id, &[failed_entry(2, "b@example.com")])
        .await
        .expect("put as b");
    // The same id in B is another job, not a clash.
    store.create_job(&as_b).await.expect("B's own job");
    assert_eq!(get(store, &as_b).await, Some(as_b.clone()));
    assert_eq!(
        get(store, &job).await,
        Some(job.clone()),
        "A's job untouched"
    );
    assert_eq!(entries(store, &job, 0, 100).await, [entry(2), entry(3)]);
    assert_eq!(
        entries(store, &as_b, 0, 100).await,
        [failed_entry(2, "b@example.com")]
    );
}

pub async fn finished_jobs_are_forgotten_after_retention(store: &dyn JobStore) {
    let t = fresh_tenant();
    let retention = Duration::days(JOB_RETENTION_DAYS);

    let mut old = finished(&sample_job(&t), JobStatus::Done);
    old.created_at = now() - retention - Duration::days(2);
    old.updated_at = now() - retention - Duration::hours(1);
    create(store, &old).await;
    assert_eq!(get(store, &old).await, None, "past its retention");
    assert_eq!(
        store.update_job(old.version, &next(&old, |_| {})).await,
        Err(StoreError::NotFound)
    );

    let mut recent = finished(&sample_job(&t), JobStatus::Failed);
    recent.updated_at = now() - retention + Duration::hours(1);
    create(store, &recent).await;
    assert_eq!(get(store, &recent).await, Some(recent.clone()));

    // An unfinished job is kept however old.
    let mut stuck = sample_job(&t);
    stuck.created_at = now() - retention * 2;
    stuck.updated_at = stuck.created_at;
    create(store, &stuck).await;
    assert_eq!(get(store, &stuck).await, Some(stuck.clone()));
    assert!(runnable_ids(store, now(), &t).await.contains(&stuck.id));
}

pub async fn bad_job_input_is_refused(store: &dyn JobStore) {
    let t = fresh_tenant();
    let mut bad = sample_job(&t);
    bad.id = "not-a-ulid".into();
    assert!(matches!(
        store.create_job(&bad).await,
        Err(StoreError::Backend(_))
    ));
    assert!(matches!(
        store.update_job(1, &bad).await,
        Err(StoreError::Backend(_))
    ));
    assert!(matches!(
        store.put_job_entries(&t, "", &[entry(2)]).await,
        Err(StoreError::Backend(_))
    ));
    // Reads of an id no job can have find nothing.
    assert_eq!(store.get_job(&t, "not-a-ulid").await.expect("get"), None);
    assert_eq!(store.get_job(&t, "").await.expect("get"), None);
    assert!(
        store
            .list_job_entries(&t, "../x", 0, 10)
            .await
            .expect("list")
            .is_empty()
    );
}
