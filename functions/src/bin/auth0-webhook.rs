//! Lambda `auth0-webhook`: deliveries from Auth0 (signed Actions events, Event Streams).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("auth0-webhook").await
}
