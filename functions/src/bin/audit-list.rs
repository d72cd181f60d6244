//! Lambda `audit-list`: a user's or the tenant's audit trail.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("audit-list").await
}
