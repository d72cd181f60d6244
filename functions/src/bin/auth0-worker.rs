//! Lambda `auth0-worker`: triggered by the table's DynamoDB Stream; performs
//! the Auth0 work a user change recorded as owed (block, unblock, rename,
//! email, delete), pushing the user's current state. A provider failure is
//! recorded on the work item and retried by `auth0-sweeper`; only a store
//! failure is reported as a batch item failure.

use lambda_runtime::{LambdaEvent, service_fn};
use peak_aws_env::invocation;
use peak_idp_sync::Worker;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    peak_api::telemetry::init();
    let (store, idp) = peak_functions::idp_sync_from_env().await?;
    let worker = Worker::new(store, idp);
    let worker = &worker;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<aws_lambda_events::event::dynamodb::Event>| async move {
            let deadline = peak_functions::deadline(&event.context);
            let failures =
                invocation::within(deadline, worker.handle_stream_batch(event.payload)).await;
            Ok::<_, lambda_runtime::Error>(failures)
        },
    ))
    .await
}
