//! Lambda `bulk-runner`: works bulk jobs of every kind (invites, updates,
//! account imports: the account directory is the same table). Triggered by the table's
//! stream when a job is queued (it runs that job) and every minute (it runs
//! every runnable job: queued ones the stream missed, and running ones
//! whose runner died — their lease ran out). It stops taking chunks a
//! minute before the invocation's deadline and gives the job back (its
//! lease ends at once), so the next minute's run resumes it at its
//! checkpoint, without applying any row twice.

use lambda_runtime::{LambdaEvent, service_fn};
use peak_domain::TenantId;
use serde_json::Value;
use std::time::{Duration, SystemTime};

/// Time left that a new chunk needs (a chunk is 25 invites).
const STOP_BEFORE_DEADLINE: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    peak_api::telemetry::init();
    let state = peak_functions::state_from_env(peak_functions::Ports {
        files: peak_functions::s3_files,
        idp: peak_functions::no_identity_provider,
    })
    .await?;
    let state = &state;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = SystemTime::UNIX_EPOCH + Duration::from_millis(event.context.deadline);
        let time_left = move || {
            deadline
                .duration_since(SystemTime::now())
                .is_ok_and(|left| left > STOP_BEFORE_DEADLINE)
        };
        let request_id = event.context.request_id.clone();
        let ctx = state.ctx(&request_id);
        let limits = peak_bulk::Limits::default();
        // A stream batch names the jobs it queued; the schedule runs
        // everything runnable.
        let mut jobs = queued_jobs(&event.payload);
        if jobs.is_empty() {
            jobs = state
                .jobs
                .runnable_jobs(ctx.now, 10)
                .await
                .map_err(|e| format!("runnable jobs: {e}"))?
                .into_iter()
                .map(|j| (j.tenant_id, j.id))
                .collect();
        }
        for (tenant, id) in jobs {
            if !time_left() {
                break;
            }
            let ports = peak_bulk_jobs::Ports {
                jobs: state.jobs.as_ref(),
                files: state.files.as_ref(),
                accounts: Some(state.accounts.as_ref()),
            };
            peak_bulk_jobs::run_job(&ctx, ports, &tenant, &id, &limits, |_| time_left()).await?;
        }
        Ok::<_, lambda_runtime::Error>(())
    }))
    .await
}

/// The jobs a stream batch queued (`entity = "bulk_job"`, `status =
/// "queued"` in the new image).
fn queued_jobs(payload: &Value) -> Vec<(TenantId, String)> {
    let s = |image: &Value, name: &str| image[name]["S"].as_str().map(str::to_owned);
    payload["Records"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let image = &r["dynamodb"]["NewImage"];
            (s(image, "entity")? == "bulk_job" && s(image, "status")? == "queued").then_some(())?;
            Some((TenantId::parse(&s(image, "tenant_id")?)?, s(image, "id")?))
        })
        .collect()
}
