//! Lambda `bulk-invite-upload`: a presigned S3 URL for a large bulk-invite file.

use peak_api::{Handler, Route, dispatch};
use peak_functions::{Ports, no_identity_provider, s3_files};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::CreateBulkUpload, dispatch::CreateBulkUpload)];
    let ports = Ports {
        files: s3_files,
        idp: no_identity_provider,
    };
    peak_functions::run("bulk-invite-upload", routes, ports).await
}
