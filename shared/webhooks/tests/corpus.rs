//! Runs every delivery in tests/corpus/ (forged, replayed, expired, malformed
//! and genuine ones) through the verifier of its channel and compares the
//! outcome with the file's `expect`. The files are made by
//! tests/corpus/generate.js with the signer of our Auth0 Actions; see there.
//!
//! A case file: `description`, `headers` (name → value), `body` (the exact
//! bytes, as a string) or `body_repeat` (`text` repeated `times`), and
//! `expect`: `{"result": "ok", "kind", "subject", "tenant", "key_index"?,
//! "blocked"?}` or `{"result": <WebhookError::code()>, "header"?, "reason"?}`.

use std::fs;
use std::path::{Path, PathBuf};

use peak_webhooks::{
    IdpEvent, WebhookError, WebhookSecrets, parse_bearer_tokens, verify_action_delivery,
    verify_event_stream_delivery,
};
use serde_json::Value;
use time::OffsetDateTime;

struct Config {
    now: OffsetDateTime,
    secrets: WebhookSecrets,
    tokens: Vec<String>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn config() -> Config {
    let c = read_json(&corpus_dir().join("config.json"));
    Config {
        now: OffsetDateTime::from_unix_timestamp(c["now"].as_i64().unwrap()).unwrap(),
        secrets: WebhookSecrets::parse(c["secrets"].as_str().unwrap()).unwrap(),
        tokens: parse_bearer_tokens(c["tokens"].as_str().unwrap()).unwrap(),
    }
}

fn cases(channel: &str) -> Vec<(String, Value)> {
    let dir = corpus_dir().join(channel);
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = format!("{channel}/{}", path.file_name().unwrap().to_string_lossy());
            (name, read_json(&path))
        })
        .collect()
}

fn body(case: &Value) -> Vec<u8> {
    if let Some(body) = case["body"].as_str() {
        return body.as_bytes().to_vec();
    }
    let repeat = &case["body_repeat"];
    repeat["text"]
        .as_str()
        .unwrap()
        .repeat(repeat["times"].as_u64().unwrap() as usize)
        .into_bytes()
}

fn header(case: &Value, name: &str) -> Option<String> {
    case["headers"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str().unwrap().to_owned())
}

/// Compares an outcome with `expect`; returns what differs.
fn check(
    expect: &Value,
    outcome: Result<(Option<usize>, IdpEvent), WebhookError>,
) -> Result<(), String> {
    let want = expect["result"].as_str().unwrap();
    match outcome {
        Ok((key_index, event)) => {
            if want != "ok" {
                return Err(format!("accepted ({}), expected {want}", event.kind()));
            }
            let mut got = serde_json::json!({
                "result": "ok",
                "kind": event.kind(),
                "subject": event.subject(),
                "tenant": event.tenant(),
            });
            if expect.get("key_index").is_some() {
                got["key_index"] = key_index.into();
            }
            if expect.get("blocked").is_some() {
                let blocked = match &event {
                    IdpEvent::UserCreated { user, .. }
                    | IdpEvent::UserUpdated { user, .. }
                    | IdpEvent::UserDeleted { user, .. } => user.blocked,
                    _ => false,
                };
                got["blocked"] = blocked.into();
            }
            if &got != expect {
                return Err(format!("accepted as {got}, expected {expect}"));
            }
        }
        Err(error) => {
            let mut got = serde_json::json!({ "result": error.code() });
            match &error {
                WebhookError::MissingHeader(name) => got["header"] = (*name).into(),
                WebhookError::Malformed(reason) if expect.get("reason").is_some() => {
                    got["reason"] = (*reason).into()
                }
                _ => {}
            }
            if &got != expect {
                return Err(format!("refused as {got}, expected {expect}"));
            }
        }
    }
    Ok(())
}

fn run(channel: &str, deliver: impl Fn(&Value) -> Result<(Option<usize>, IdpEvent), WebhookError>) {
    let cases = cases(channel);
    let mut failures = Vec::new();
    for (name, case) in &cases {
        if let Err(why) = check(&case["expect"], deliver(case)) {
            failures.push(format!("{name} ({}): {why}", case["description"]));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Guard against an emptied or half-generated corpus passing vacuously.
    let results: Vec<&str> = cases
        .iter()
        .map(|(_, c)| c["expect"]["result"].as_str().unwrap())
        .collect();
    assert!(results.contains(&"ok"), "{channel}: no genuine delivery");
    assert!(
        results.iter().filter(|r| **r != "ok").count() >= 10,
        "{channel}: too few refused deliveries"
    );
}

#[test]
fn action_corpus() {
    let config = config();
    run("action", |case| {
        let lookup = |name: &str| header(case, name);
        verify_action_delivery(&config.secrets, lookup, &body(case), config.now)
            .map(|(delivery, event)| (Some(delivery.key_index), event))
    });
    let cases = cases("action");
    for needle in [
        "forged",
        "replay",
        "expired",
        "future",
        "malformed",
        "missing",
        "bad-timestamp",
        "too-large",
        "rotation",
    ] {
        assert!(
            cases.iter().any(|(name, _)| name.contains(needle)),
            "no {needle} case in the action corpus"
        );
    }
}

#[test]
fn event_stream_corpus() {
    let config = config();
    run("event-stream", |case| {
        let authorization = header(case, "authorization");
        verify_event_stream_delivery(&config.tokens, authorization.as_deref(), &body(case))
            .map(|event| (None, event))
    });
}
