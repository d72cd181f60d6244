//! Lambda `identity-work-list`: The tenant's work owed to Auth0: attempts, last error, next attempt, stuck (admins).

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::IdentityWorkList, handlers::IdentityWorkList)];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("identity-work-list", routes, ports).await
}
