//! Lambda `failed-email-list`: The tenant's emails the mailer gave up on, newest first (admins).

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::FailedEmailList, handlers::FailedEmailList)];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("failed-email-list", routes, ports).await
}
