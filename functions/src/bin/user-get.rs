//! Lambda `user-get`: one user.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("user-get").await
}
