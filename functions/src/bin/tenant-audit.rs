//! Lambda `tenant-audit`: the tenant's recent audit events.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("tenant-audit").await
}
