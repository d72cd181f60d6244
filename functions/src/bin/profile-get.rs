//! Lambda `profile-get`: one profile, read-only view.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("profile-get").await
}
