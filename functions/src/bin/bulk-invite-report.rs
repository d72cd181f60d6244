//! Lambda `bulk-invite-report`: A finished bulk invite's report (CSV: row, email, outcome, column, code, reason).

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::BulkInviteReport, handlers::BulkInviteReport)];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("bulk-invite-report", routes, ports).await
}
