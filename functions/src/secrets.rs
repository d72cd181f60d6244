//! Auth0's secrets, read from Secrets Manager when the function starts.
//!
//! The template gives a function the secret's id (`AUTH0_SECRET_ID`), never
//! its values: a value in an environment variable is readable by anyone with
//! `lambda:GetFunctionConfiguration`. At init the function reads the secret
//! once (`GetSecretValue`, one request signed with Signature Version 4 by
//! `aws-sigv4` and sent through the process's HTTPS client, as
//! `crate::files` does for S3: no Secrets Manager SDK) and keeps its values
//! in memory for the life of the process; a secret that is missing, not
//! readable or not JSON fails the init, naming the secret. Without
//! `AUTH0_SECRET_ID` (the local run, tests) the values come from the
//! environment variables of the same names, as before.
//!
//! The secret is JSON with the keys of [`AUTH0_KEYS`] (README, "Configuring a
//! real Auth0 tenant").

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::SigningSettings;
use bytes::Bytes;
use peak_aws_env::Https;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// The secret's keys and the settings they stand for.
pub const AUTH0_KEYS: [(&str, &str); 3] = [
    ("client_secret", "AUTH0_CLIENT_SECRET"),
    ("webhook_secrets", "AUTH0_WEBHOOK_SECRETS"),
    ("event_stream_tokens", "AUTH0_EVENT_STREAM_TOKENS"),
];

/// One attempt; init retries nothing (Lambda retries a failed init).
const TIMEOUT: Duration = Duration::from_secs(5);

/// The values read at init, by setting name.
static AUTH0_SECRET: OnceLock<HashMap<&'static str, String>> = OnceLock::new();

/// Reads the secret `AUTH0_SECRET_ID` names, once per process; nothing
/// when it is unset.
pub async fn load_auth0_secret() -> Result<(), String> {
    let Some(id) = std::env::var("AUTH0_SECRET_ID")
        .ok()
        .filter(|v| !v.is_empty())
    else {
        return Ok(());
    };
    if AUTH0_SECRET.get().is_some() {
        return Ok(());
    }
    let text = SecretsManager::from_env().secret_string(&id).await?;
    let values = auth0_values(&text).map_err(|e| format!("secret {id}: {e}"))?;
    let calls_auth0 = std::env::var("AUTH0_DOMAIN").is_ok_and(|v| !v.is_empty());
    if calls_auth0 && !values.contains_key("AUTH0_CLIENT_SECRET") {
        return Err(format!("secret {id}: no `client_secret`"));
    }
    let _ = AUTH0_SECRET.set(values);
    Ok(())
}

/// A setting: from the secret read at init when there is one, else from
/// the environment.
pub fn setting(name: &str) -> Option<String> {
    match AUTH0_SECRET.get() {
        Some(values) if AUTH0_KEYS.iter().any(|(_, n)| *n == name) => values.get(name).cloned(),
        _ => std::env::var(name).ok(),
    }
}

/// The secret's JSON as settings; keys it lacks are simply unset (the
/// configuration that needs one then names it).
pub fn auth0_values(text: &str) -> Result<HashMap<&'static str, String>, String> {
    let json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|_| "the secret string is not a JSON object")?;
    let mut values = HashMap::new();
    for (key, name) in AUTH0_KEYS {
        match json.get(key) {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(v)) => {
                values.insert(name, v.clone());
            }
            Some(_) => return Err(format!("`{key}` is not a string")),
        }
    }
    Ok(values)
}

/// `GetSecretValue` and nothing else.
pub struct SecretsManager {
    http: Result<Https, String>,
    credentials: SharedCredentialsProvider,
    region: Option<String>,
    /// A stand-in's endpoint (moto in tests); `None` in AWS.
    endpoint: Option<String>,
}

impl SecretsManager {
    /// With the region and credentials of the environment (`peak_aws_env`)
    /// and `SECRETS_MANAGER_ENDPOINT` for a stand-in.
    pub fn from_env() -> Self {
        let config = peak_aws_env::sdk_config("SECRETS_MANAGER_ENDPOINT", None);
        Self {
            http: peak_aws_env::https().map_err(|e| format!("secrets manager: {e}")),
            credentials: config
                .credentials_provider()
                .expect("peak_aws_env always sets a credentials provider"),
            region: config.region().map(|r| r.to_string()),
            endpoint: config
                .endpoint_url()
                .map(|e| e.trim_end_matches('/').to_owned()),
        }
    }

    /// The secret's `SecretString`; an error naming the secret otherwise.
    pub async fn secret_string(&self, id: &str) -> Result<String, String> {
        let fail = |why: String| format!("cannot read the secret {id} from Secrets Manager: {why}");
        let response = self
            .call("GetSecretValue", &serde_json::json!({ "SecretId": id }))
            .await
            .map_err(fail)?;
        response["SecretString"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| fail("it has no SecretString (a binary secret?)".into()))
    }

    /// One signed JSON call (`secretsmanager.<action>`); the JSON answer.
    pub(crate) async fn call(
        &self,
        action: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let http = self.http.as_ref().map_err(Clone::clone)?;
        let region = self.region.as_deref().ok_or("AWS_REGION is not set")?;
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| format!("credentials: {e}"))?;
        let request = signed_request(
            self.endpoint.as_deref(),
            region,
            &credentials,
            SystemTime::now(),
            action,
            Bytes::from(body.to_string()),
        )?;
        let response = http
            .send(request, TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        let json: serde_json::Value =
            serde_json::from_slice(response.body()).unwrap_or(serde_json::Value::Null);
        if !response.status().is_success() {
            // Secrets Manager names the error (`ResourceNotFoundException`,
            // `AccessDeniedException`, …) in `__type`; never the value.
            let kind = json["__type"].as_str().unwrap_or("error");
            return Err(format!("HTTP {} {kind}", response.status().as_u16()));
        }
        Ok(json)
    }
}

/// A Secrets Manager JSON-protocol request, signed at `time`.
pub(crate) fn signed_request(
    endpoint: Option<&str>,
    region: &str,
    credentials: &Credentials,
    time: SystemTime,
    action: &str,
    body: Bytes,
) -> Result<http::Request<Bytes>, String> {
    let url = match endpoint {
        Some(e) => format!("{e}/"),
        None => format!("https://secretsmanager.{region}.amazonaws.com/"),
    };
    let mut request = http::Request::builder()
        .method("POST")
        .uri(url)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("secretsmanager.{action}"))
        .body(body)
        .map_err(|e| e.to_string())?;
    crate::sigv4::sign(
        &mut request,
        credentials,
        region,
        "secretsmanager",
        time,
        SigningSettings::default(),
        false,
    )?;
    Ok(request)
}
