//! Where the verifier gets its public keys from.

use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;

use crate::AuthError;

/// A JWKS fetch runs inside a request; never let a slow identity provider
/// hold it for longer than this.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// A provider of the identity provider's current public keys.
#[async_trait]
pub trait JwksSource: Send + Sync {
    async fn fetch(&self) -> Result<JwkSet, AuthError>;
}

/// Keys published over HTTP(S), e.g. Auth0's `/.well-known/jwks.json`.
#[derive(Debug, Clone)]
pub struct HttpJwks {
    url: String,
    /// The process's shared client ([`crate::https_client`]). One that
    /// failed to build (no TLS roots, say) is reported by `fetch` as
    /// `KeysUnavailable`, through the same path as any outage, so
    /// constructing an `HttpJwks` cannot fail.
    client: Result<reqwest::Client, String>,
}

impl HttpJwks {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            client: crate::https::https_client(),
        }
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
        let unavailable =
            |e: reqwest::Error| AuthError::KeysUnavailable(format!("JWKS fetch: {e}"));
        let client = self
            .client
            .as_ref()
            .map_err(|e| AuthError::KeysUnavailable(e.clone()))?;
        client
            .get(&self.url)
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unavailable)?
            .json::<JwkSet>()
            .await
            .map_err(unavailable)
    }
}

/// Keys held in process: the local run (from [`crate::DevIdentityProvider`])
/// and tests.
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
