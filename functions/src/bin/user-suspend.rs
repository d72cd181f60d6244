//! Lambda `user-suspend`: suspend a user (refused by the API at once).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("user-suspend").await
}
