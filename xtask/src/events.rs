//! `events/<function>.json`: one API Gateway HTTP API (payload v2) request
//! per operation, for `sam local invoke <Function> -e events/…`;
//! shared/api/tests/events.rs feeds each to its function with the
//! placeholders (documented in events/README.md) replaced by real values.

use peak_api::OPERATIONS;
use peak_api::operations::Op as Operation;
use peak_api::spec::{Method, SampleBody};
use serde::Serialize;
use serde::ser::SerializeMap;
use sha2::{Digest, Sha256};

const TOKEN: &str = "PASTE_A_TOKEN_FROM_peak-local_token";
const PROFILE_ID: &str = "01JDPEAKSAMP1E0000000000AB";
const USER_ID: &str = "01JDPEAKSAMP1EVSER000000AB";
const INVITATION_TOKEN: &str = "PASTE_THE_TOKEN_FROM_AN_INVITATION_LINK";
const VERIFICATION_TOKEN: &str = "PASTE_THE_TOKEN_FROM_AN_EMAIL_VERIFICATION_LINK";
const JOB_ID: &str = "01JDPEAKSAMP1EJ0B0000000AB";
/// A failed email's id: take one from `GET /emails/failed`.
const EMAIL_ID: &str = "01JDPEAKSAMP1EMA11000000AB";
const ACCOUNT_NUMBER: &str = "ACME-EU";

/// The value of a path parameter: its meaning depends on the path it is in
/// (`{token}` is an invitation or a verification token).
fn path_value(path: &str, name: &str) -> Result<&'static str, String> {
    let value = match (path.split('/').nth(1).unwrap_or(""), name) {
        ("profiles", "id") => PROFILE_ID,
        ("users", "id") => USER_ID,
        ("invitations", "token") => INVITATION_TOKEN,
        ("email-verifications", "token") => VERIFICATION_TOKEN,
        ("bulk-invites" | "bulk-jobs", "id") => JOB_ID,
        ("emails", "id") => EMAIL_ID,
        // Owed work is one record per user: its id is the user's.
        ("identity-work", "id") => USER_ID,
        ("accounts", "number") => ACCOUNT_NUMBER,
        _ => {
            return Err(format!(
                "{path}: no sample value for {{{name}}} (add it to xtask/src/events.rs)"
            ));
        }
    };
    Ok(value)
}

/// Pairs serialised as a JSON object, in order.
struct Ordered(Vec<(String, String)>);

impl Serialize for Ordered {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    version: &'static str,
    route_key: String,
    raw_path: String,
    raw_query_string: String,
    headers: Ordered,
    request_context: Context,
    is_base64_encoded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_string_parameters: Option<Ordered>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_parameters: Option<Ordered>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Context {
    account_id: &'static str,
    api_id: &'static str,
    domain_name: &'static str,
    domain_prefix: &'static str,
    http: Http,
    request_id: String,
    route_key: String,
    stage: &'static str,
    time: &'static str,
    time_epoch: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Http {
    method: &'static str,
    path: String,
    protocol: &'static str,
    source_ip: &'static str,
    user_agent: &'static str,
}

/// A fixed key per function, so a rerun changes nothing (a client sends a
/// fresh UUID per logical request): a name-based UUID (version 8) from
/// SHA-256.
fn idempotency_key(function: &str) -> String {
    let mut b: [u8; 16] = Sha256::digest(format!("peak-users:events/{function}"))[..16]
        .try_into()
        .unwrap_or_default();
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn event(op: &Operation) -> Result<Event, String> {
    let mut params = Vec::new();
    let mut raw_path = op.path.to_owned();
    for name in op
        .path
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
    {
        let value = path_value(op.path, name)?;
        raw_path = raw_path.replace(&format!("{{{name}}}"), value);
        params.push((name.to_owned(), value.to_owned()));
    }
    let query: Vec<(String, String)> = op
        .sample
        .query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    if op.method == Method::Patch && matches!(op.sample.body, SampleBody::None) {
        return Err(format!("{}: a PATCH needs a sample body", op.function));
    }
    let mut headers = vec![("accept", "application/json".to_owned())];
    if op.authenticated() {
        headers.push(("authorization", format!("Bearer {TOKEN}")));
    }
    headers.push(("user-agent", "curl/8.5.0".into()));
    headers.push(("x-forwarded-proto", "https".into()));
    headers.push(("host", "api.example.com".into()));
    for (k, v) in op.sample.headers {
        headers.retain(|(name, _)| name != k);
        headers.push((k, (*v).to_owned()));
    }
    let body = match op.sample.body {
        SampleBody::None => None,
        SampleBody::Json(text) => {
            headers.push(("content-type", "application/json".into()));
            Some(text.to_owned())
        }
        SampleBody::File { content_type, text } => {
            headers.push(("content-type", content_type.into()));
            Some(text.to_owned())
        }
    };
    if op.method == Method::Patch {
        headers.push(("if-match", "\"1\"".into()));
    }
    if op.idempotent {
        headers.push(("idempotency-key", idempotency_key(op.function)));
    }
    let route_key = format!("{} {}", op.method, op.path);
    Ok(Event {
        version: "2.0",
        route_key: route_key.clone(),
        raw_path: raw_path.clone(),
        raw_query_string: query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&"),
        headers: Ordered(
            headers
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        ),
        request_context: Context {
            account_id: "123456789012",
            api_id: "peakapi",
            domain_name: "api.example.com",
            domain_prefix: "api",
            http: Http {
                method: op.method.as_str(),
                path: raw_path,
                protocol: "HTTP/1.1",
                source_ip: "192.0.2.10",
                user_agent: "curl/8.5.0",
            },
            request_id: format!("sample-{}", op.function),
            route_key,
            stage: "$default",
            time: "23/Nov/2026:14:00:00 +0000",
            time_epoch: 1795442400000,
        },
        is_base64_encoded: false,
        query_string_parameters: (!query.is_empty()).then_some(Ordered(query)),
        path_parameters: (!params.is_empty()).then_some(Ordered(params)),
        body,
    })
}

pub fn files() -> Vec<(String, String)> {
    OPERATIONS
        .iter()
        .map(|op| {
            let text = event(op)
                .and_then(|e| serde_json::to_string_pretty(&e).map_err(|e| e.to_string()))
                .unwrap_or_else(|e| panic!("{e}"));
            (format!("events/{}.json", op.function), text + "\n")
        })
        .collect()
}
