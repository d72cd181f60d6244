//! Lambda `bulk-invite-upload`: a presigned S3 URL for a large bulk-invite file.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("bulk-invite-upload").await
}
