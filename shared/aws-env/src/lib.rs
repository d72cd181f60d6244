//! The AWS SDK configuration of every client here (DynamoDB, SES v2, S3),
//! read from the process environment.
//!
//! Why not `aws-config`: in Lambda, the only place these binaries run in
//! AWS, the region (`AWS_REGION`) and the function role's credentials
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) are
//! environment variables. aws-config's full chain (profile files, SSO, STS
//! web identity, IMDS, ECS) is ~0.5 MB of each function binary (it brings
//! the STS, SSO and SSO-OIDC clients) and work at every cold start, for
//! sources Lambda never uses. A developer pointing the local run at a real
//! AWS account exports credentials as environment variables too (e.g.
//! `eval "$(aws configure export-credentials --format env)"`).
//!
//! Stand-ins: when the service's endpoint variable is set (DynamoDB Local,
//! moto) and no credentials are in the environment, dummy credentials and
//! region `us-east-1` are used, which both stand-ins accept.
//!
//! TLS roots: every SDK client shares one HTTPS client that trusts the
//! system's CA bundle *file* ([`ca_bundle`]). The SDK's default reads the
//! bundle and then every file of the certificate directory beside it (~150
//! on Debian, the same roots again) while the client is built — at a Lambda
//! cold start that was most of the init time (docs/benchmarks.md).

use aws_credential_types::Credentials;
use aws_credential_types::provider::{
    ProvideCredentials, SharedCredentialsProvider, error::CredentialsError, future,
};
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::behavior_version::BehaviorVersion;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
pub use aws_types::SdkConfig;
use aws_types::region::Region;
pub use aws_types::sdk_config::TimeoutConfig;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::path::Path;
use std::sync::OnceLock;

/// The configuration for a client whose stand-in endpoint is named by
/// `endpoint_var` (e.g. `DYNAMODB_ENDPOINT`), with `timeouts` if given.
pub fn sdk_config(endpoint_var: &str, timeouts: Option<TimeoutConfig>) -> SdkConfig {
    from_vars(|k| std::env::var(k).ok(), endpoint_var, timeouts)
}

fn from_vars(
    var: impl Fn(&str) -> Option<String>,
    endpoint_var: &str,
    timeouts: Option<TimeoutConfig>,
) -> SdkConfig {
    let var = |k: &str| var(k).filter(|v| !v.is_empty());
    let endpoint = var(endpoint_var);
    let mut builder = SdkConfig::builder().behavior_version(BehaviorVersion::latest());
    let region = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION"));
    let stand_in_without_keys = endpoint.is_some() && var("AWS_ACCESS_KEY_ID").is_none();
    match (region, &endpoint) {
        (Some(r), _) => builder = builder.region(Region::new(r)),
        (None, Some(_)) => builder = builder.region(Region::from_static("us-east-1")),
        // No region: the SDK refuses every call with "a region must be set",
        // the same clear error aws-config would have led to.
        (None, None) => {}
    }
    // Without keys outside a stand-in, the environment provider reports what
    // is missing at the first call.
    builder = builder.credentials_provider(if stand_in_without_keys {
        SharedCredentialsProvider::new(Credentials::new(
            "local",
            "local",
            None,
            None,
            "peak-stand-in",
        ))
    } else {
        SharedCredentialsProvider::new(EnvCredentials)
    });
    if let Some(endpoint) = endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    if let Some(t) = timeouts {
        builder = builder.timeout_config(t);
    }
    if let Some(client) = https_client() {
        builder = builder.http_client(client);
    }
    builder.build()
}

/// Where Linux distributions put the CA bundle: Debian/Ubuntu/Alpine, Amazon
/// Linux 2023 / Fedora / RHEL (Lambda's `provided.al2023`), SUSE, then other
/// common spellings.
pub const CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
    "/etc/pki/tls/cert.pem",
];

/// The system's CA bundle, read and checked once per process: the file
/// `SSL_CERT_FILE` names, else the first of [`CA_BUNDLES`] that exists.
/// `None` — and each client then loads the platform's roots its own way —
/// when `SSL_CERT_DIR` is set (that directory is meant to be read), when no
/// file is readable, or when a certificate in it is not a usable trust
/// anchor (the SDK would panic on it; the platform loaders skip it).
pub fn ca_bundle() -> Option<&'static CaBundle> {
    static BUNDLE: OnceLock<Option<CaBundle>> = OnceLock::new();
    BUNDLE
        .get_or_init(|| {
            if std::env::var_os("SSL_CERT_DIR").is_some() {
                return None;
            }
            let named = std::env::var_os("SSL_CERT_FILE");
            let paths = named
                .as_deref()
                .map(Path::new)
                .into_iter()
                .chain(CA_BUNDLES.iter().map(Path::new));
            for path in paths {
                if let Ok(text) = std::fs::read(path) {
                    return CaBundle::parse(&text);
                }
            }
            None
        })
        .as_ref()
}

/// The certificates of a CA bundle.
#[derive(Debug)]
pub struct CaBundle {
    der: Vec<Vec<u8>>,
    pem: Vec<u8>,
}

impl CaBundle {
    /// Every certificate, DER-encoded, in file order.
    pub fn der(&self) -> &[Vec<u8>] {
        &self.der
    }

    /// The bundle as read (PEM), for the SDK's trust store, which takes PEM
    /// only. It parses there: the SDK reads it with the same PEM reader
    /// (rustls-pki-types) that [`CaBundle::parse`] used.
    pub fn pem(&self) -> &[u8] {
        &self.pem
    }

    /// The certificates of a PEM bundle, if it has at least one and each is
    /// a usable trust anchor (sections of other kinds are skipped, as the
    /// SDK and rustls-native-certs skip them).
    pub fn parse(text: &[u8]) -> Option<CaBundle> {
        let mut der = Vec::new();
        for cert in CertificateDer::pem_slice_iter(text) {
            let cert = cert.ok()?;
            webpki::anchor_from_trusted_cert(&cert).ok()?;
            der.push(cert.to_vec());
        }
        (!der.is_empty()).then(|| CaBundle {
            der,
            pem: text.to_vec(),
        })
    }
}

/// The SDK clients' shared HTTPS client, trusting [`ca_bundle`]; `None`
/// (the SDK's default client) when there is no usable bundle.
fn https_client() -> Option<SharedHttpClient> {
    static CLIENT: OnceLock<Option<SharedHttpClient>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let pem = ca_bundle()?.pem();
            let context = TlsContext::builder()
                .with_trust_store(TrustStore::empty().with_pem_certificate(pem))
                .build()
                .ok()?;
            Some(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
                    .tls_context(context)
                    .build_https(),
            )
        })
        .clone()
}

/// The credentials in the environment, read at every resolution (the SDK
/// caches them for their lifetime), as aws-config's environment provider does.
#[derive(Debug)]
struct EnvCredentials;

impl EnvCredentials {
    fn read(var: impl Fn(&str) -> Option<String>) -> Result<Credentials, CredentialsError> {
        let var = |k: &str| var(k).filter(|v| !v.is_empty());
        let (Some(id), Some(secret)) = (
            var("AWS_ACCESS_KEY_ID"),
            var("AWS_SECRET_ACCESS_KEY").or_else(|| var("SECRET_ACCESS_KEY")),
        ) else {
            return Err(CredentialsError::not_loaded(
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set \
                 (this process reads AWS credentials from the environment only)",
            ));
        };
        Ok(Credentials::new(
            id,
            secret,
            var("AWS_SESSION_TOKEN"),
            None,
            "environment",
        ))
    }
}

impl ProvideCredentials for EnvCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(Self::read(|k| std::env::var(k).ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)], endpoint_var: &str) -> SdkConfig {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        from_vars(|k| map.get(k).cloned(), endpoint_var, None)
    }

    #[test]
    fn lambda_environment_gives_its_region_and_no_endpoint() {
        let c = config(
            &[
                ("AWS_REGION", "eu-west-1"),
                ("AWS_ACCESS_KEY_ID", "AKIA"),
                ("AWS_SECRET_ACCESS_KEY", "s"),
            ],
            "DYNAMODB_ENDPOINT",
        );
        assert_eq!(c.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!(c.endpoint_url(), None);
        assert!(c.credentials_provider().is_some());
    }

    #[test]
    fn a_stand_in_endpoint_without_credentials_gets_dummy_ones_and_a_region() {
        let c = config(
            &[("DYNAMODB_ENDPOINT", "http://127.0.0.1:8000")],
            "DYNAMODB_ENDPOINT",
        );
        assert_eq!(c.endpoint_url(), Some("http://127.0.0.1:8000"));
        assert_eq!(c.region().map(|r| r.as_ref()), Some("us-east-1"));
    }

    #[test]
    fn another_services_endpoint_is_not_used() {
        let c = config(
            &[
                ("SES_ENDPOINT", "http://127.0.0.1:5000"),
                ("AWS_REGION", "us-west-2"),
            ],
            "DYNAMODB_ENDPOINT",
        );
        assert_eq!(c.endpoint_url(), None);
    }

    #[test]
    fn credentials_come_from_the_environment_with_the_session_token() {
        let vars: HashMap<&str, &str> = [
            ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
        ]
        .into();
        let c = EnvCredentials::read(|k| vars.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.access_key_id(), "AKIAEXAMPLE");
        assert_eq!(c.session_token(), Some("token"));
    }

    #[test]
    fn a_bundle_with_anything_but_trust_anchors_is_not_used() {
        assert!(CaBundle::parse(b"").is_none(), "no certificate");
        let bad = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(CaBundle::parse(bad).is_none(), "not a certificate");
        let unterminated = b"-----BEGIN CERTIFICATE-----\nAAAA\n";
        assert!(CaBundle::parse(unterminated).is_none());
        if let Some(bundle) = ca_bundle() {
            let mut text = bundle.pem().to_vec();
            text.extend_from_slice(
                b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            );
            assert!(
                CaBundle::parse(&text).is_none(),
                "one bad certificate among good ones"
            );
        }
    }

    #[test]
    fn the_systems_bundle_is_found_and_usable_here() {
        // Debian's ca-certificates is on every machine this runs on (CI
        // included); Lambda's al2023 has /etc/pki/tls/certs/ca-bundle.crt.
        if std::env::var_os("SSL_CERT_DIR").is_none() && Path::new(CA_BUNDLES[0]).exists() {
            let text = std::fs::read(CA_BUNDLES[0]).unwrap();
            let bundle = ca_bundle().expect("the Debian bundle");
            let sections = text
                .windows(27)
                .filter(|w| w == b"-----BEGIN CERTIFICATE-----")
                .count();
            assert_eq!(bundle.der().len(), sections, "every certificate is kept");
            assert!(https_client().is_some());
        }
    }

    #[test]
    fn missing_credentials_say_what_to_set() {
        let err = EnvCredentials::read(|_| None).unwrap_err();
        assert!(format!("{err:?}").contains("AWS_ACCESS_KEY_ID"), "{err:?}");
    }
}
