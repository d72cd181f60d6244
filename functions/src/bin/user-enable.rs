//! Lambda `user-enable`: enable a suspended user.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("user-enable").await
}
