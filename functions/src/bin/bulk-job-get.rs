//! Lambda `bulk-job-get`: Any bulk job's kind, status, counts and progress (invites, updates, account imports).

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::BulkJobGet, handlers::BulkJobGet)];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("bulk-job-get", routes, ports).await
}
