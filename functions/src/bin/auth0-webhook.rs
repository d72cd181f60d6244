//! Lambda `auth0-webhook`: Auth0 deliveries: Actions signed in the Standard Webhooks scheme, or Event Streams CloudEvents with a bearer token.

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, identity_provider_from_env, no_files};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::Auth0Webhook, handlers::Auth0Webhook)];
    let ports = Ports {
        files: no_files,
        idp: identity_provider_from_env,
    };
    peak_functions::run("auth0-webhook", routes, ports).await
}
