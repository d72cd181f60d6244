//! Lambda `user-password-reset`: queue a password-reset email for a user.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("user-password-reset").await
}
