//! Authentication for peak-users.
//!
//! [`JwtVerifier`] checks the Auth0 access token on every API request (in
//! Lambda and locally). [`DevIdentityProvider`] is the local run's stand-in
//! for Auth0: it issues RS256 tokens that the very same verifier accepts, so
//! the local run exercises the production verification path.

mod dev_idp;
mod https;
mod jwks;
mod verifier;

#[cfg(test)]
mod tests;

pub use dev_idp::{DevClaims, DevIdentityProvider, DevIdpError};
pub use https::{USER_AGENT, https_client};
pub use jsonwebtoken::jwk::JwkSet;
pub use jwks::{HttpJwks, JwksSource, StaticJwks};
pub use verifier::{
    AuthError, Clock, JwtVerifier, MIN_REFETCH_INTERVAL, RETRY_AFTER_FAILURE, VerifiedToken,
};

/// Prefix of our custom claims (Auth0 requires namespaced custom claims).
pub const CLAIM_NAMESPACE: &str = "https://peakcommerce.com/";
/// The caller's tenant. Required.
pub const TENANT_CLAIM: &str = "https://peakcommerce.com/tenant";
/// The caller's role. Optional: the API decides what a missing role means.
pub const ROLE_CLAIM: &str = "https://peakcommerce.com/role";
