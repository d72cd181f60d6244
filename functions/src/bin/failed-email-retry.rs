//! Lambda `failed-email-retry`: Send a failed email again, with a fresh link where it had one (admins; audited).

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::FailedEmailRetry, handlers::FailedEmailRetry)];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("failed-email-retry", routes, ports).await
}
