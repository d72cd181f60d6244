//! Lambda `email-verification-confirm`: confirming a new login email.

use peak_api::{Handler, Route, dispatch};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(
        Route::ConfirmEmailVerification,
        dispatch::ConfirmEmailVerification,
    )];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("email-verification-confirm", routes, ports).await
}
