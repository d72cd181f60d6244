//! Lambda `bulk-invite-get`: A bulk invite's status, counts and progress.

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::BulkInviteGet, handlers::BulkInviteGet)];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("bulk-invite-get", routes, ports).await
}
