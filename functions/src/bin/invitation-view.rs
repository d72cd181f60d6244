//! Lambda `invitation-view`: what an invitation link shows (does not consume it).

use peak_api::{Handler, Route, dispatch};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::ViewInvitation, dispatch::ViewInvitation)];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("invitation-view", routes, ports).await
}
