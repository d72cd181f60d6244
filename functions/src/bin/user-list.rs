//! Lambda `user-list`: list and search users.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("user-list").await
}
