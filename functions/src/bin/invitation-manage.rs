//! Lambda `invitation-manage`: resend or revoke an invitation.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("invitation-manage").await
}
