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
//! HTTP: every SDK client uses the process's one HTTP(S) client
//! ([`https`]), which the identity-provider calls share.

use aws_credential_types::Credentials;
use aws_credential_types::provider::{
    ProvideCredentials, SharedCredentialsProvider, error::CredentialsError, future,
};
use aws_smithy_runtime_api::client::behavior_version::BehaviorVersion;
pub use aws_types::SdkConfig;
use aws_types::region::Region;
pub use aws_types::sdk_config::TimeoutConfig;

mod https;
pub mod invocation;
pub use https::{
    CONNECT_TIMEOUT, Https, MAX_RESPONSE_BYTES, SendError, USER_AGENT, https, roots_from_pem,
};

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
    builder = builder.http_client(https::sdk_http_client());
    builder.build()
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
    fn missing_credentials_say_what_to_set() {
        let err = EnvCredentials::read(|_| None).unwrap_err();
        assert!(format!("{err:?}").contains("AWS_ACCESS_KEY_ID"), "{err:?}");
    }
}
