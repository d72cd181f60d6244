//! Lambda `auth0-sweeper`: every few minutes, performs owed Auth0 work that
//! is due (retries after a failure or an outage, and anything the stream
//! missed). Work is never dropped: after five failures each attempt logs
//! `stuck = true`, which the `Auth0WorkStuckAlarm` counts.

use lambda_runtime::{LambdaEvent, service_fn};
use peak_idp_sync::Worker;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    peak_api::telemetry::init();
    let (store, idp) = peak_functions::idp_sync_from_env().await?;
    let worker = Worker::new(store, idp);
    let worker = &worker;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| async move {
        let summary = worker.run_due(time::OffsetDateTime::now_utc()).await?;
        tracing::info!(
            done = summary.done,
            failed = summary.failed,
            skipped = summary.skipped,
            "owed Auth0 work sweep"
        );
        Ok::<_, lambda_runtime::Error>(())
    }))
    .await
}
