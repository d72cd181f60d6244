//! Authentication for peak-users.
//!
//! [`JwtVerifier`] checks the Auth0 access token on every API request (in
//! Lambda and locally). `DevIdentityProvider` (feature `dev-idp`) is the
//! local run's stand-in for Auth0: it issues RS256 tokens that the very same
//! verifier accepts, so the local run exercises the production verification
//! path.
//!
//! The signature crypto is `ring`'s, through [`jwt_crypto`]; the `dev-idp`
//! feature adds aws-lc-rs for RSA key generation, and nothing built for
//! Lambda enables it.

#[cfg(feature = "dev-idp")]
mod dev_idp;
mod error;
mod jwks;
pub mod jwt_crypto;
mod verifier;

#[cfg(all(test, feature = "dev-idp"))]
mod tests;

#[cfg(feature = "dev-idp")]
pub use dev_idp::{DevClaims, DevIdentityProvider, DevIdpError};
pub use error::AuthError;
pub use jsonwebtoken::jwk::JwkSet;
pub use jwks::{HttpJwks, JwksSource, StaticJwks};
pub use verifier::{Clock, JwtVerifier, MIN_REFETCH_INTERVAL, RETRY_AFTER_FAILURE, VerifiedToken};

/// Prefix of our custom claims (Auth0 requires namespaced custom claims).
pub const CLAIM_NAMESPACE: &str = "https://peakcommerce.com/";
/// The caller's tenant. Required.
pub const TENANT_CLAIM: &str = "https://peakcommerce.com/tenant";
/// The caller's role. Optional: the API decides what a missing role means.
pub const ROLE_CLAIM: &str = "https://peakcommerce.com/role";
