//! Lambda `user-invite`: Invite a user (Idempotency-Key honoured).

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::UserInvite, handlers::UserInvite)];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("user-invite", routes, ports).await
}
