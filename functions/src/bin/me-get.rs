//! Lambda `me-get`: the signed-in user's own record and permissions.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("me-get").await
}
