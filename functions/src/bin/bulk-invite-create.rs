//! Lambda `bulk-invite-create`: Upload a .csv or .xlsx of people to invite: 202 with a queued job the runner reads and works (?dry_run=true: a job that checks and reports every row, inviting no one).

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_identity_provider, s3_files};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::BulkInviteCreate, handlers::BulkInviteCreate)];
    let ports = Ports {
        files: s3_files,
        idp: no_identity_provider,
    };
    peak_functions::run("bulk-invite-create", routes, ports).await
}
