//! Lambda `password-reset-request`: Signed-out password reset (same answer whether or not the address exists).

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] =
        &[(Route::PasswordResetRequest, handlers::PasswordResetRequest)];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("password-reset-request", routes, ports).await
}
