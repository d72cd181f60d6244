//! Lambda `user-batch`: Change up to 100 users in one request: update, suspend, enable, delete, resend or revoke an invitation, reset a password; each answered as its single route would, in order (Idempotency-Key honoured).

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::UserBatch, handlers::UserBatch)];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("user-batch", routes, ports).await
}
