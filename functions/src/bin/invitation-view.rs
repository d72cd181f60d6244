//! Lambda `invitation-view`: What an invitation link shows, never consuming it: an HTML page to a browser (Accept: text/html), JSON otherwise.

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::InvitationView, handlers::InvitationView)];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("invitation-view", routes, ports).await
}
