//! Lambda `email-verification`: email-change verification links.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("email-verification").await
}
