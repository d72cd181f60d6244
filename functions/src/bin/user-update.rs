//! Lambda `user-update`: edit a user (If-Match required).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("user-update").await
}
