//! Lambda `user-delete`: delete a user and their personal data.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("user-delete").await
}
