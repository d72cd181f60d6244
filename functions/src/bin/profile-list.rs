//! Lambda `profile-list`: a page of the tenant's profiles.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("profile-list").await
}
