//! Lambda `identity-work-retry`: Make a user's owed Auth0 work due now (admins; audited).

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::IdentityWorkRetry, handlers::IdentityWorkRetry)];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("identity-work-retry", routes, ports).await
}
