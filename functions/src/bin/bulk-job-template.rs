//! Lambda `bulk-job-template`: The CSV template of a bulk update or an account import.

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::BulkJobTemplate, handlers::BulkJobTemplate)];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("bulk-job-template", routes, ports).await
}
