//! Lambda `invitation-public`: invitation links: view (does not consume) and accept.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("invitation-public").await
}
