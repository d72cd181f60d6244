//! Lambda `invitation-accept`: accepting an invitation.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("invitation-accept").await
}
