//! Lambda `me-password-reset`: the signed-in user's own password reset.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("me-password-reset").await
}
