//! Lambda `bulk-invite-template`: the CSV template for bulk invites.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("bulk-invite-template").await
}
