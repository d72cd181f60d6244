//! Lambda `me-password-reset`: Email oneself a password-change link.

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::MePasswordReset, handlers::MePasswordReset)];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("me-password-reset", routes, ports).await
}
