//! Lambda `mailer-sweeper`: every few minutes, sends whatever outbox email
//! is due but was not sent from the stream (stream retries used up, a lease
//! that expired mid-send, a retry time that has come), batch after batch
//! until shortly before the invocation's deadline (`Mailer::drain_until`:
//! a margin of one batch, so no batch is cut off mid-send; what is left is
//! the next run's).

use lambda_runtime::{LambdaEvent, service_fn};
use peak_aws_env::invocation;
use serde_json::Value;
use std::time::{Duration, SystemTime};

/// Emails per batch.
const BATCH: u32 = 100;
/// The least time kept for one more batch: 100 emails at the default SES
/// rate (14/s) take about 7 s, plus an identity-provider link for each
/// password reset (bounded by the Auth0 call deadline, 10 s); the longest
/// batch of the run counts if it was longer.
const BATCH_MARGIN: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    peak_api::telemetry::init();
    let mailer = peak_functions::mailer_from_env().await?;
    let mailer = &mailer;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = event.context.deadline();
        let remaining = || {
            deadline
                .duration_since(SystemTime::now())
                .unwrap_or_default()
        };
        let (summary, run) = invocation::within(
            peak_functions::deadline(&event.context),
            mailer.drain_until(BATCH, BATCH_MARGIN, remaining),
        )
        .await?;
        tracing::info!(
            handled = summary.total(),
            sent = summary.sent,
            batches = run.batches,
            stopped_for_time = run.stopped_for_time,
            "outbox sweep"
        );
        Ok::<_, lambda_runtime::Error>(())
    }))
    .await
}
