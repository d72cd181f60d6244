//! Lambda `bulk-invite-template`: The CSV template for bulk invites (header and one example row).

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::BulkInviteTemplate, handlers::BulkInviteTemplate)];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("bulk-invite-template", routes, ports).await
}
