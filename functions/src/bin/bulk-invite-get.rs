//! Lambda `bulk-invite-get`: a bulk invite's status and progress.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("bulk-invite-get").await
}
