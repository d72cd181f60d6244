//! Running as a Lambda function: the runtime loop around `handle_routes`.

use crate::app::{AppState, handle_routes};
use crate::routes::{Route, RouteSpec, spec};
use lambda_http::{Request, service_fn};
use std::convert::Infallible;
use std::sync::Arc;

/// Serves `routes` until the Lambda runtime stops the process. `state` was
/// built once, at cold start.
pub async fn serve(state: AppState, routes: &[Route]) -> Result<(), lambda_http::Error> {
    let specs: Arc<Vec<&'static RouteSpec>> = Arc::new(routes.iter().map(|r| spec(*r)).collect());
    let state = Arc::new(state);
    lambda_http::run(service_fn(move |req: Request| {
        let state = Arc::clone(&state);
        let specs = Arc::clone(&specs);
        async move { Ok::<_, Infallible>(handle_routes(&state, &specs, req).await) }
    }))
    .await
}
