//! Lambda `openapi`: the OpenAPI 3.1 document.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("openapi").await
}
