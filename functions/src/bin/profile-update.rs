//! Lambda `profile-update`: an edit of a profile, guarded by If-Match.

use peak_api::{Handler, Route, dispatch};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::UpdateProfile, dispatch::UpdateProfile)];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("profile-update", routes, ports).await
}
