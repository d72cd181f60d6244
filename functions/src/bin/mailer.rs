//! Lambda `mailer`: triggered by the table's DynamoDB Stream; sends each new
//! outbox email once (claimed before sending, so a redelivered record sends
//! nothing) and reports transient failures as batch item failures, so only
//! those records are retried.

use lambda_runtime::{LambdaEvent, service_fn};
use peak_aws_env::invocation;
use peak_mailer::DynamoDbEvent;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    peak_api::telemetry::init();
    let mailer = peak_functions::mailer_from_env().await?;
    let mailer = &mailer;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<DynamoDbEvent>| async move {
            let deadline = peak_functions::deadline(&event.context);
            let failures =
                invocation::within(deadline, mailer.handle_stream_batch(event.payload)).await;
            Ok::<_, lambda_runtime::Error>(failures)
        },
    ))
    .await
}
