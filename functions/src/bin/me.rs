//! Lambda `me`: the signed-in user's own record.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("me").await
}
