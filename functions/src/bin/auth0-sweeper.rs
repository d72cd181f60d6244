//! Lambda `auth0-sweeper`: every few minutes, performs owed Auth0 work that
//! is due (retries after a failure or an outage, and anything the stream
//! missed), batch after batch until shortly before the invocation's deadline
//! (`Worker::sweep_until`: a margin of one batch, so no batch is cut off;
//! work left is taken by the next run). Work is never dropped: after five
//! failures each attempt logs `stuck = true`, which the
//! `Auth0WorkStuckAlarm` counts.

use lambda_runtime::{LambdaEvent, service_fn};
use peak_aws_env::invocation;
use peak_idp_sync::Worker;
use serde_json::Value;
use std::time::SystemTime;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    peak_api::telemetry::init();
    let (store, idp) = peak_functions::idp_sync_from_env().await?;
    let worker = Worker::new(store, idp);
    let worker = &worker;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = event.context.deadline();
        let remaining = || {
            deadline
                .duration_since(SystemTime::now())
                .unwrap_or_default()
        };
        let summary = invocation::within(
            peak_functions::deadline(&event.context),
            worker.sweep_until(time::OffsetDateTime::now_utc(), remaining),
        )
        .await?;
        tracing::info!(
            done = summary.done,
            failed = summary.failed,
            skipped = summary.skipped,
            deferred = summary.deferred,
            batches = summary.batches,
            stopped_for_time = summary.stopped_for_time,
            "owed Auth0 work sweep"
        );
        Ok::<_, lambda_runtime::Error>(())
    }))
    .await
}
