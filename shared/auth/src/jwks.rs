//! Where the verifier gets its public keys from.

use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;

use crate::error::AuthError;

/// A JWKS fetch runs inside a request; never let a slow identity provider
/// hold it for longer than this.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// A provider of the identity provider's current public keys.
#[async_trait]
pub trait JwksSource: Send + Sync {
    async fn fetch(&self) -> Result<JwkSet, AuthError>;
}

/// Keys published over HTTP(S), e.g. Auth0's `/.well-known/jwks.json`,
/// fetched with the process's HTTP(S) client (`peak_aws_env::https`). A client
/// that cannot be built (an unusable `SSL_CERT_FILE`) is reported by `fetch`
/// as `KeysUnavailable`, through the same path as any outage, so
/// constructing an `HttpJwks` cannot fail.
#[derive(Debug, Clone)]
pub struct HttpJwks {
    url: String,
}

impl HttpJwks {
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into() }
    }

    /// Auth0 publishes its keys at `<issuer>/.well-known/jwks.json`.
    pub fn for_issuer(issuer: &str) -> Self {
        Self::new(format!(
            "{}/.well-known/jwks.json",
            issuer.trim_end_matches('/')
        ))
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

#[async_trait]
impl JwksSource for HttpJwks {
    async fn fetch(&self) -> Result<JwkSet, AuthError> {
        let unavailable = |e: &dyn std::fmt::Display| {
            AuthError::KeysUnavailable(format!("JWKS fetch from {}: {e}", self.url))
        };
        let client = peak_aws_env::https().map_err(|e| unavailable(&e))?;
        let request = http::Request::get(&self.url)
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|e| unavailable(&e))?;
        let response = client
            .send(request, FETCH_TIMEOUT)
            .await
            .map_err(|e| unavailable(&e))?;
        if !response.status().is_success() {
            return Err(unavailable(&format_args!("HTTP {}", response.status())));
        }
        serde_json::from_slice(response.body()).map_err(|e| unavailable(&e))
    }
}

/// Keys held in process: the local run (the development identity
/// provider's, feature `dev-idp`) and tests.
#[derive(Debug, Clone)]
pub struct StaticJwks(pub JwkSet);

impl StaticJwks {
    pub fn new(jwks: JwkSet) -> Self {
        Self(jwks)
    }
}

#[async_trait]
impl JwksSource for StaticJwks {
    async fn fetch(&self) -> Result<JwkSet, AuthError> {
        Ok(self.0.clone())
    }
}
