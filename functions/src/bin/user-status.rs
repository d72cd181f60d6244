//! Lambda `user-status`: suspend and enable a user.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("user-status").await
}
