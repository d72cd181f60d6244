//! Lambda `profile-create`: a new profile, every setting at its default.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("profile-create").await
}
