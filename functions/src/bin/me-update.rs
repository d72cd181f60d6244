//! Lambda `me-update`: the signed-in user's name and login email.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("me-update").await
}
