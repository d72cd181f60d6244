//! What every Lambda function builds at cold start, from its environment.
//! A missing setting fails the init (visible in the function's logs), not a
//! request.

use peak_api::AppState;
use peak_auth::{HttpJwks, JwtVerifier};
use peak_domain::catalogue::catalogue;
use peak_store_dynamodb::{DynamoStore, client_from_env};
use std::sync::Arc;

fn required(name: &str) -> Result<String, lambda_http::Error> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("environment variable {name} is required").into())
}

/// `TABLE_NAME`, `JWT_ISSUER` (e.g. `https://tenant.auth0.com/`),
/// `JWT_AUDIENCE`, and optionally `JWKS_URL` (default: the issuer's
/// `.well-known/jwks.json`) and `DYNAMODB_ENDPOINT` (DynamoDB Local).
pub async fn state_from_env() -> Result<AppState, lambda_http::Error> {
    let table = required("TABLE_NAME")?;
    let issuer = required("JWT_ISSUER")?;
    let audience = required("JWT_AUDIENCE")?;
    let jwks_url = std::env::var("JWKS_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/')));
    let verifier = JwtVerifier::new(issuer, audience, Arc::new(HttpJwks::new(jwks_url)));
    // Warm the key cache during init (cheap, and saves the first request a
    // round trip). A failure is not fatal: the verifier retries a few seconds
    // later (peak_auth::RETRY_AFTER_FAILURE).
    let _ = verifier.warm().await;
    let client = client_from_env().await;
    Ok(AppState {
        profiles: Arc::new(DynamoStore::new(client, table)),
        verifier: Arc::new(verifier),
        catalogue: catalogue(),
    })
}

/// The body of every function's `main`.
pub async fn run(routes: &[peak_api::Route]) -> Result<(), lambda_http::Error> {
    peak_api::telemetry::init();
    let state = state_from_env().await?;
    peak_api::lambda::serve(state, routes).await
}
