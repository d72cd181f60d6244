//! Lambda `profile-get`: One profile, with its settings laid out as tabs.

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::ProfileGet, handlers::ProfileGet)];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("profile-get", routes, ports).await
}
