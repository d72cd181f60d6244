//! Lambda `mailer-sweeper`: every few minutes, sends whatever outbox email
//! is due but was not sent from the stream (stream retries used up, a lease
//! that expired mid-send, a retry time that has come).

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    peak_api::telemetry::init();
    let mailer = peak_functions::mailer_from_env().await?;
    let mailer = &mailer;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| async move {
        let summary = mailer.drain_once(100).await?;
        tracing::info!(handled = summary.total(), "outbox sweep");
        Ok::<_, lambda_runtime::Error>(())
    }))
    .await
}
