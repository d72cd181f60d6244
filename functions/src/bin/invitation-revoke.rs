//! Lambda `invitation-revoke`: revoke an invitation.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("invitation-revoke").await
}
