//! Lambda `bulk-job-create`: Upload a .csv or .xlsx of users to change (kind=update: as PATCH /users/{id} and suspend/enable would, as the uploader) or of customer accounts (kind=account_import, admins: as PUT /accounts/{number}): 202 with a queued job (?dry_run=true: check only).

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_identity_provider, s3_files};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::BulkJobCreate, handlers::BulkJobCreate)];
    let ports = Ports {
        files: s3_files,
        idp: no_identity_provider,
    };
    peak_functions::run("bulk-job-create", routes, ports).await
}
