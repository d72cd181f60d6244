//! Conformance with Auth0's own definition of the Management API.
//!
//! The definition is derived, at test setup, from Auth0's generated SDK
//! (`scripts/auth0-definition.sh`: auth0-python from PyPI, its methods run
//! against a recording transport; `AUTH0_DEFINITION` names the JSON it
//! writes). Here every operation of our client runs against the fake, and
//! every request the fake received — method, path, query parameters, body
//! fields and their types, and `app_metadata` names against Auth0's reserved
//! ones — is held against that definition, and so is every response field
//! the client reads (from its own `Deserialize` structs). The last tests
//! prove the check fails on a misspelled field, a reserved key, an unknown
//! parameter or route.

use peak_auth0::fake::{FakeAuth0, FakeRequest, FakeUser};
use peak_auth0::reads::reads;
use peak_auth0::{Auth0Client, RESERVED_APP_METADATA_KEYS};
use peak_domain::ProfileId;
use peak_domain::identity::{IdentityProvider, IdpUserState, LoginDirectory, SetupLink};
use peak_domain::model::user::{Email, PersonName, User, UserId, UserStatus};
use peak_domain::role::Role;
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn definition() -> Value {
    let path = std::env::var("AUTH0_DEFINITION").unwrap_or_else(|_| {
        panic!(
            "AUTH0_DEFINITION is not set: run the tests with scripts/test.sh, or \
             `eval \"$(scripts/auth0-definition.sh)\"; export AUTH0_DEFINITION` first"
        )
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("the definition is JSON")
}

fn operations(def: &Value) -> &Vec<Value> {
    def["operations"].as_array().expect("operations")
}

/// `/api/v2/users/{id}` matches `/api/v2/users/auth0%7Cabc`.
fn path_matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t == p)
}

fn operation<'a>(def: &'a Value, method: &str, path: &str) -> Option<&'a Value> {
    // A literal route wins over a template (`/jobs/users-exports` over
    // `/jobs/{id}`).
    let candidates: Vec<&Value> = operations(def)
        .iter()
        .filter(|o| o["method"] == method && path_matches(o["path"].as_str().unwrap_or(""), path))
        .collect();
    candidates
        .iter()
        .find(|o| o["path"] == path)
        .or_else(|| candidates.first())
        .copied()
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks `value` against a type of the definition: "string", "boolean",
/// "number", "any", "object", {"array": T}, {"object": {..}, "open": b}.
fn check_value(expected: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    match expected {
        Value::String(kind) if kind == "any" => {}
        Value::String(kind) if kind == "object" && !value.is_object() => {
            errors.push(format!(
                "{at}: expected an object, sent {}",
                type_name(value)
            ));
        }
        Value::String(kind) if kind == "object" => {}
        Value::String(kind) if type_name(value) != kind => {
            errors.push(format!("{at}: expected {kind}, sent {}", type_name(value)));
        }
        Value::String(_) => {}
        Value::Object(spec) if spec.contains_key("array") => match value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    check_value(&spec["array"], item, &format!("{at}[{i}]"), errors);
                }
            }
            other => errors.push(format!(
                "{at}: expected an array, sent {}",
                type_name(other)
            )),
        },
        Value::Object(spec) if spec.contains_key("object") => match value {
            Value::Object(map) => {
                let fields = spec["object"].as_object().expect("fields");
                for (k, v) in map {
                    match fields.get(k) {
                        Some(t) => check_value(t, v, &format!("{at}.{k}"), errors),
                        None => errors.push(format!("{at}.{k}: not in Auth0's definition")),
                    }
                }
            }
            other => errors.push(format!(
                "{at}: expected an object, sent {}",
                type_name(other)
            )),
        },
        _ => {}
    }
}

/// Everything wrong with one request, as Auth0's definition sees it.
fn check_request(def: &Value, r: &FakeRequest) -> Vec<String> {
    let mut errors = Vec::new();
    let Some(op) = operation(def, &r.method, &r.path) else {
        return vec![format!(
            "{} {}: no such route in Auth0's definition",
            r.method, r.path
        )];
    };
    let sdk = op["sdk"].as_str().unwrap_or("?");
    let at = format!("{} {} ({sdk})", r.method, op["path"].as_str().unwrap_or(""));
    let query = op["query"].as_object().expect("query");
    for (k, v) in &r.query {
        match query.get(k) {
            None => errors.push(format!(
                "{at}: query parameter {k} is not in the definition"
            )),
            Some(t) if t == "boolean" && v != "true" && v != "false" => {
                errors.push(format!("{at}: query parameter {k} is not a boolean"))
            }
            Some(t) if t == "number" && v.parse::<f64>().is_err() => {
                errors.push(format!("{at}: query parameter {k} is not a number"))
            }
            Some(_) => {}
        }
    }
    let body = op["body"].as_object().expect("body");
    match &r.body {
        None => {}
        Some(Value::Object(sent)) => {
            for (k, v) in sent {
                match body.get(k) {
                    None => errors.push(format!("{at}: body field {k} is not in the definition")),
                    Some(t) => check_value(t, v, &format!("{at}: body.{k}"), &mut errors),
                }
            }
            for required in op["required"].as_array().into_iter().flatten() {
                let name = required.as_str().unwrap_or("");
                if body.contains_key(name) && !sent.contains_key(name) {
                    errors.push(format!("{at}: required body field {name} is missing"));
                }
            }
            if let Some(Value::Object(meta)) = sent.get("app_metadata") {
                for k in meta.keys() {
                    if RESERVED_APP_METADATA_KEYS.contains(&k.as_str()) {
                        errors.push(format!("{at}: app_metadata.{k} is a name Auth0 reserves"));
                    }
                }
            }
        }
        Some(other) => errors.push(format!(
            "{at}: the body is {}, not an object",
            type_name(other)
        )),
    }
    errors
}

/// The type at a field path (`identities[].connection`) of a response type.
fn response_field<'a>(mut t: &'a Value, path: &str) -> Option<&'a Value> {
    for part in path.split('.') {
        let (name, each) = match part.strip_suffix("[]") {
            Some(n) => (n, true),
            None => (part, false),
        };
        t = t.get("object")?.get(name)?;
        if each {
            t = t.get("array")?;
        }
    }
    Some(t)
}

fn jane() -> User {
    let now = time::OffsetDateTime::now_utc();
    User {
        tenant_id: peak_domain::TenantId::parse("acme").unwrap(),
        id: UserId::generate(),
        email: Email::parse("jane@example.com").unwrap(),
        pending_email: None,
        first_name: PersonName::parse("first_name", "Jane").unwrap(),
        last_name: PersonName::parse("last_name", "Doe").unwrap(),
        account_number: None,
        customer_accounts: Vec::new(),
        role: Role::Customer,
        profile_id: ProfileId::generate(),
        extension_groups: Vec::new(),
        status: UserStatus::Active,
        idp_subject: None,
        invitation: None,
        version: 1,
        created_at: now,
        updated_at: now,
        last_login_at: None,
    }
}

/// Runs every operation the client has, against the fake; returns the
/// Management API requests it sent (the token request and the export file's
/// presigned download are not Management API routes).
async fn every_request() -> Vec<FakeRequest> {
    let fake = FakeAuth0::start().await;
    let client: Auth0Client = fake.client();
    let jane = jane();
    assert!(client.find_login(&jane).await.unwrap().is_none());
    let subject = client.create_login(&jane).await.unwrap().expect("created");
    client.find_login(&jane).await.unwrap().expect("found");
    assert!(client.relink_login(&subject, &jane).await.unwrap());
    let link = SetupLink {
        portal_url: "https://portal.acme.example",
        valid_for: Some(time::Duration::hours(20)),
    };
    client
        .password_setup_link(&jane, &subject, &link)
        .await
        .unwrap();
    let state = IdpUserState {
        email: "jane.smith@example.com".into(),
        given_name: "Jane".into(),
        family_name: "Smith".into(),
        blocked: true,
    };
    assert!(client.update_user(&subject, &state).await.unwrap());
    client.get_user(&subject).await.unwrap().expect("login");
    client.revoke_sessions(&subject).await.unwrap();
    client.revoke_refresh_tokens(&subject).await.unwrap();
    client.clear_login_block(&subject).await.unwrap();
    fake.insert_user(FakeUser::new(&fake.connection, "other@example.com").with_tenant("acme", "x"));
    let listing = client.all_logins().await.unwrap();
    assert_eq!(listing.accounts.count(), 2);
    client.delete_user(&subject).await.unwrap();
    fake.requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/api/v2/"))
        .collect()
}

#[tokio::test]
async fn every_request_the_client_sends_is_in_auth0s_definition() {
    let def = definition();
    let requests = every_request().await;
    let mut covered = BTreeSet::new();
    let mut errors = Vec::new();
    for r in &requests {
        errors.extend(check_request(&def, r));
        if let Some(op) = operation(&def, &r.method, &r.path) {
            covered.insert(op["sdk"].as_str().unwrap_or("").to_owned());
        }
    }
    assert!(
        errors.is_empty(),
        "against {}:\n{}",
        def["source"],
        errors.join("\n")
    );
    let expected: BTreeSet<String> = [
        "users.list_users_by_email",
        "users.create",
        "users.update",
        "users.get",
        "users.delete",
        "users.sessions.delete",
        "users.refresh_token.delete",
        "user_blocks.delete",
        "tickets.change_password",
        "jobs.users_exports.create",
        "jobs.get",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    assert_eq!(
        covered, expected,
        "every operation of the client was checked"
    );
}

#[test]
fn every_response_field_the_client_reads_is_in_auth0s_definition() {
    let def = definition();
    let mut errors = Vec::new();
    for read in reads() {
        let Some(op) = operation(&def, read.method, read.path) else {
            errors.push(format!("{} {}: no such route", read.method, read.path));
            continue;
        };
        let mut t = &op["response"];
        if read.array {
            t = &t["array"];
        }
        for field in &read.fields {
            if response_field(t, field).is_none() {
                errors.push(format!(
                    "{} {}: the client reads {field}, which the definition's answer does not have",
                    read.method, read.path
                ));
            }
        }
    }
    assert!(
        errors.is_empty(),
        "against {}:\n{}",
        def["source"],
        errors.join("\n")
    );
}

fn request(method: &str, path: &str, body: Value) -> FakeRequest {
    FakeRequest {
        method: method.into(),
        path: path.into(),
        query: Vec::new(),
        body: Some(body),
        status: 200,
        at: std::time::Instant::now(),
        unix_ms: 0,
    }
}

#[test]
fn the_check_fails_on_a_misspelled_field_a_reserved_key_or_an_unknown_route() {
    let def = definition();
    let good = request(
        "POST",
        "/api/v2/users",
        json!({ "connection": "c", "email": "a@example.com", "app_metadata": { "peak_user_id": "x" } }),
    );
    assert_eq!(check_request(&def, &good), Vec::<String>::new());

    let misspelled = request(
        "POST",
        "/api/v2/users",
        json!({ "connection": "c", "emial": "a@example.com" }),
    );
    let errors = check_request(&def, &misspelled);
    assert!(errors.iter().any(|e| e.contains("emial")), "{errors:?}");

    let reserved = request(
        "PATCH",
        "/api/v2/users/auth0%7Cabc",
        json!({ "app_metadata": { "user_id": "01J" } }),
    );
    let errors = check_request(&def, &reserved);
    assert!(
        errors.iter().any(|e| e.contains("app_metadata.user_id")),
        "{errors:?}"
    );

    let wrong_type = request(
        "PATCH",
        "/api/v2/users/auth0%7Cabc",
        json!({ "blocked": "yes" }),
    );
    assert!(!check_request(&def, &wrong_type).is_empty());

    let both = request(
        "POST",
        "/api/v2/tickets/password-change",
        json!({ "user_id": "auth0|abc", "ttl": 60 }),
    );
    let errors = check_request(&def, &both);
    assert!(errors.iter().any(|e| e.contains("ttl")), "{errors:?}");

    let mut query = request("GET", "/api/v2/users-by-email", Value::Null);
    query.body = None;
    query.query = vec![("mail".into(), "a@example.com".into())];
    assert!(!check_request(&def, &query).is_empty());

    let route = request("POST", "/api/v2/users/auth0%7Cabc/disable", json!({}));
    assert!(!check_request(&def, &route).is_empty());
}
