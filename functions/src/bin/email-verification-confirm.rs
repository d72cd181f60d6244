//! Lambda `email-verification-confirm`: Make the new address the login email: the user as JSON, or an HTML done page to a browser's form post.

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(
        Route::EmailVerificationConfirm,
        handlers::EmailVerificationConfirm,
    )];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("email-verification-confirm", routes, ports).await
}
