//! Lambda `email-verification-confirm`: confirming a new login email.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("email-verification-confirm").await
}
