//! Lambda `profile-create`: a new profile, every setting at its default.

use peak_api::{Handler, Route, dispatch};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::CreateProfile, dispatch::CreateProfile)];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("profile-create", routes, ports).await
}
