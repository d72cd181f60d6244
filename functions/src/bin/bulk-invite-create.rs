//! Lambda `bulk-invite-create`: a bulk-invite upload (a dry run, or a queued job).

use peak_api::{Handler, Route, dispatch};
use peak_functions::{Ports, no_identity_provider, s3_files};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::CreateBulkInvite, dispatch::CreateBulkInvite)];
    let ports = Ports {
        files: s3_files,
        idp: no_identity_provider,
    };
    peak_functions::run("bulk-invite-create", routes, ports).await
}
