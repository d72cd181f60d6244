//! Lambda `user-password-reset`: Email the user a password-change link.

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::UserPasswordReset, handlers::UserPasswordReset)];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("user-password-reset", routes, ports).await
}
