//! Lambda `bulk-job-report`: A finished bulk job's report (CSV: row, then email, user or account, outcome, column, code, reason).

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::BulkJobReport, handlers::BulkJobReport)];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("bulk-job-report", routes, ports).await
}
