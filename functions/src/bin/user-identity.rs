//! Lambda `user-identity`: Where a user's login stands with Auth0: in sync, or the work owed (admins).

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::UserIdentity, handlers::UserIdentity)];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("user-identity", routes, ports).await
}
