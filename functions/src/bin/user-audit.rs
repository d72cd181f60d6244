//! Lambda `user-audit`: a user's audit trail.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("user-audit").await
}
