//! Running as a Lambda function: the runtime loop around `handle_routes`.

use crate::app::{Served, handle_routes};
use crate::state::AppState;
use lambda_http::{Request, service_fn};
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
        async move { Ok::<_, Infallible>(handle_routes(&state, &served, req).await) }
    }))
    .await
}
