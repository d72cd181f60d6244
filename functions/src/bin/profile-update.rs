//! Lambda `profile-update`: an edit of a profile, guarded by If-Match.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("profile-update").await
}
