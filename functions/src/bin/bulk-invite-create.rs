//! Lambda `bulk-invite-create`: a bulk-invite upload (a dry run, or a queued job).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("bulk-invite-create").await
}
