//! Lambda `auth0-reconcile`: daily, compares Auth0's logins (all of them,
//! from a users-export job) with our users and repairs drift (see `peak_idp_sync::reconcile`); returns and logs the
//! report of what it changed.

use lambda_runtime::{LambdaEvent, service_fn};
use peak_aws_env::invocation;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    peak_api::telemetry::init();
    let (store, idp, directory) = peak_functions::reconcile_from_env().await?;
    let (store, idp, directory) = (&store, &idp, &directory);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = peak_functions::deadline(&event.context);
        let report = invocation::within(
            deadline,
            peak_idp_sync::reconcile(store.as_ref(), idp.as_ref(), directory.as_ref()),
        )
        .await;
        Ok::<_, lambda_runtime::Error>(serde_json::to_value(report)?)
    }))
    .await
}
