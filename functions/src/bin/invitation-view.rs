//! Lambda `invitation-view`: what an invitation link shows (does not consume it).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("invitation-view").await
}
