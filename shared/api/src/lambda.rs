//! Running as a Lambda function: the runtime loop around `handle_routes`.

use crate::app::{Served, handle_routes};
use crate::state::AppState;
use lambda_http::{Request, RequestExt, service_fn};
use peak_aws_env::invocation;
use std::convert::Infallible;
use std::sync::Arc;

/// Serves `served` until the Lambda runtime stops the process. `state` was
/// built once, at cold start.
pub async fn serve(state: AppState, served: Served) -> Result<(), lambda_http::Error> {
    let served = Arc::new(served);
    let state = Arc::new(state);
    lambda_http::run(service_fn(move |req: Request| {
        let state = Arc::clone(&state);
        let served = Arc::clone(&served);
        // Every downstream deadline is cut to the invocation's (Lambda's
        // `Timeout`), so the caller gets our answer, not API Gateway's.
        let deadline = req
            .lambda_context_ref()
            .map(|c| invocation::from_epoch_millis(c.deadline));
        async move {
            let answer = invocation::within(deadline, handle_routes(&state, &served, req)).await;
            Ok::<_, Infallible>(answer)
        }
    }))
    .await
}
