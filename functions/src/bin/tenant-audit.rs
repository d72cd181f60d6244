//! Lambda `tenant-audit`: The tenant's recent audit events, newest first.

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::TenantAudit, handlers::TenantAudit)];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("tenant-audit", routes, ports).await
}
