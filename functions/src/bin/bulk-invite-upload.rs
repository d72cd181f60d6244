//! Lambda `bulk-invite-upload`: A presigned URL to PUT a large bulk-invite file to (AWS); then POST /bulk-invites?upload_id=….

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_identity_provider, s3_files};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::BulkInviteUpload, handlers::BulkInviteUpload)];
    let ports = Ports {
        files: s3_files,
        idp: no_identity_provider,
    };
    peak_functions::run("bulk-invite-upload", routes, ports).await
}
