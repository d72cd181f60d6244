//! Lambda `bulk-invite-report`: a finished bulk invite's report (CSV).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("bulk-invite-report").await
}
