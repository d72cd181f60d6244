//! The process's one HTTPS client for calls to the identity provider: the
//! JWKS fetch ([`crate::HttpJwks`]) and, wired in by the functions, the Auth0
//! Management API client. Built on first use and shared (a `reqwest::Client`
//! is a handle to one connection pool), so the TLS trust store is read and
//! parsed once per process instead of once per client — at a Lambda cold
//! start that was most of the init time (docs/benchmarks.md).
//!
//! Trust roots: the system's CA bundle file, read once. reqwest's default
//! (rustls-platform-verifier) would also read it, and then open and parse
//! every file of the certificate directory beside it (~290 on Debian) —
//! the same roots again, as `update-ca-certificates` / `update-ca-trust`
//! generate both from one source. When there is no bundle file (or
//! `SSL_CERT_DIR` names a directory on purpose, or the bundle does not parse)
//! the platform verifier is used, as before.

use std::sync::OnceLock;

/// The `User-Agent` of every request made through [`https_client`].
pub const USER_AGENT: &str = concat!("peak-users/", env!("CARGO_PKG_VERSION"));

/// The shared client, or why it could not be built (reported by each
/// caller as its own "unavailable" error, so building never fails init).
/// No client-wide timeout: each caller sets its own per request.
pub fn https_client() -> Result<reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT.get_or_init(build).clone()
}

fn build() -> Result<reqwest::Client, String> {
    let builder = || reqwest::Client::builder().user_agent(USER_AGENT);
    if let Some(roots) = system_bundle()
        && let Ok(client) = builder().tls_certs_only(roots).build()
    {
        return Ok(client);
    }
    builder()
        .build()
        .map_err(|e| format!("building the HTTPS client: {e}"))
}

/// The certificates of the system's CA bundle file
/// (`peak_aws_env::ca_bundle`, read and decoded once per process and shared
/// with the AWS SDK's clients); `None` when there is none to use.
fn system_bundle() -> Option<Vec<reqwest::Certificate>> {
    peak_aws_env::ca_bundle()?
        .der()
        .iter()
        .map(|der| reqwest::Certificate::from_der(der).ok())
        .collect::<Option<Vec<_>>>()
        .filter(|certs| !certs.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_builds_whatever_the_roots() {
        // A bundle or, failing that, the platform verifier: either way a
        // client, and the second call returns the stored one.
        assert!(https_client().is_ok());
        assert!(https_client().is_ok());
    }

    #[test]
    fn a_debian_bundle_is_read_when_present() {
        let debian = std::path::Path::new(peak_aws_env::CA_BUNDLES[0]);
        if std::env::var_os("SSL_CERT_DIR").is_none()
            && std::env::var_os("SSL_CERT_FILE").is_none()
            && debian.exists()
        {
            let certs = system_bundle().expect("the bundle's certificates");
            assert!(!certs.is_empty());
        }
    }
}
