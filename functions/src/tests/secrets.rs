//! Secrets Manager at runtime: `GetSecretValue` against moto's server (the
//! one scripts/test.sh starts for SES, `SES_ENDPOINT`), and the shape of
//! the signed request.

use crate::secrets::{SecretsManager, auth0_values, signed_request};
use aws_credential_types::Credentials;
use std::time::{Duration, SystemTime};

fn client() -> SecretsManager {
    let Ok(endpoint) = std::env::var("SES_ENDPOINT") else {
        panic!(
            "moto is not running: run the tests with scripts/test.sh, or start it with \
             `scripts/moto.sh start` and export the SES_ENDPOINT it prints"
        );
    };
    assert!(
        endpoint.starts_with("http://127.0.0.1:"),
        "loopback only, not {endpoint}"
    );
    // SAFETY: the same values every test of this crate sets.
    unsafe {
        std::env::set_var("SECRETS_MANAGER_ENDPOINT", &endpoint);
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
        std::env::set_var("AWS_REGION", "us-east-1");
    }
    SecretsManager::from_env()
}

#[tokio::test]
async fn the_auth0_secret_is_read_from_secrets_manager() {
    let sm = client();
    let id = format!("peak-users/test-{}", ulid::Ulid::new());
    let value = r#"{"client_secret":"m2m-secret","webhook_secrets":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","event_stream_tokens":"token-new-0123456789 token-old-0123456789"}"#;
    sm.call(
        "CreateSecret",
        &serde_json::json!({ "Name": id, "SecretString": value }),
    )
    .await
    .expect("create the secret in moto");

    let text = sm.secret_string(&id).await.expect("read it back");
    let values = auth0_values(&text).expect("the Auth0 keys");
    assert_eq!(values["AUTH0_CLIENT_SECRET"], "m2m-secret");
    assert_eq!(
        values["AUTH0_EVENT_STREAM_TOKENS"],
        "token-new-0123456789 token-old-0123456789"
    );
    // As the functions' wiring uses them.
    let config = peak_auth0::Auth0Config::from_lookup(|name| match name {
        "AUTH0_DOMAIN" => Some("tenant.example.auth0.com".into()),
        "AUTH0_CLIENT_ID" | "AUTH0_CONNECTION" | "AUTH0_PORTAL_CLIENT_ID" => Some("x".into()),
        other => values.get(other).cloned(),
    })
    .expect("an Auth0 configuration");
    assert_eq!(config.client_secret, "m2m-secret");
    let hooks = peak_api::WebhookConfig::from_lookup(|n| values.get(n).cloned())
        .expect("webhook settings")
        .expect("configured");
    assert_eq!(
        hooks.event_stream_tokens,
        ["token-new-0123456789", "token-old-0123456789"]
    );
    assert!(hooks.action_secrets.is_some());
}

#[tokio::test]
async fn a_missing_secret_fails_naming_it_and_not_a_value() {
    let sm = client();
    let err = sm
        .secret_string("peak-users/does-not-exist")
        .await
        .expect_err("no such secret");
    assert!(err.contains("peak-users/does-not-exist"), "{err}");
    assert!(err.contains("ResourceNotFoundException"), "{err}");
    // A secret that is not the JSON object the functions expect.
    assert!(auth0_values("not json").is_err());
    assert!(auth0_values(r#"{"client_secret": 42}"#).is_err());
}

/// The request as AWS documents the JSON protocol: POST / to the regional
/// endpoint, `x-amz-target: secretsmanager.GetSecretValue`, the 1.1 JSON
/// content type, signed for the `secretsmanager` service in the region,
/// with the target and the body's hash covered by the signature.
#[test]
fn get_secret_value_is_a_signed_json_protocol_request() {
    let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160); // 2015-08-30T12:36:00Z
    let request = signed_request(
        None,
        "eu-west-1",
        &credentials,
        time,
        "GetSecretValue",
        bytes::Bytes::from_static(br#"{"SecretId":"peak-users/auth0"}"#),
    )
    .expect("signed");
    assert_eq!(request.method(), "POST");
    assert_eq!(
        request.uri().to_string(),
        "https://secretsmanager.eu-west-1.amazonaws.com/"
    );
    let header = |name: &str| request.headers()[name].to_str().expect("ascii").to_owned();
    assert_eq!(header("x-amz-target"), "secretsmanager.GetSecretValue");
    assert_eq!(header("content-type"), "application/x-amz-json-1.1");
    assert_eq!(header("x-amz-date"), "20150830T123600Z");
    let auth = header("authorization");
    assert!(
        auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-1/secretsmanager/aws4_request, "
        ),
        "{auth}"
    );
    let signed = auth
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .expect("SignedHeaders");
    for h in ["content-type", "host", "x-amz-date", "x-amz-target"] {
        assert!(
            signed.split(';').any(|s| s == h),
            "{h} not signed: {signed}"
        );
    }
    assert!(!auth.contains("secret,"), "the secret key is never sent");
}
