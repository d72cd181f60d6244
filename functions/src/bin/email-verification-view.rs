//! Lambda `email-verification-view`: what an email-verification link shows.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("email-verification-view").await
}
