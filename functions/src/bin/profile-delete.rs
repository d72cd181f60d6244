//! Lambda `profile-delete`: deletion of a profile no user holds.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("profile-delete").await
}
