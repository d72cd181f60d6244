//! Lambda `profile-catalogue`: The seven tabs of profile settings and the extension groups.

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::ProfileCatalogue, handlers::ProfileCatalogue)];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("profile-catalogue", routes, ports).await
}
