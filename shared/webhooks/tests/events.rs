//! Bearer tokens (Event Streams) and event parsing (both channels).

use peak_webhooks::{
    ConfigError, IdpEvent, IdpUser, MAX_EVENT_STREAM_BODY_BYTES, WebhookError, parse_action_event,
    parse_bearer_tokens, parse_event_stream, verify_bearer, verify_event_stream_delivery,
};
use serde_json::{Value, json};
use time::macros::datetime;

const CURRENT: &str = "MGZndp-6E_2MOlfxmeLpFCWOVIDnLS_g";
const PREVIOUS: &str = "Yr34eiWPjkV0k1Eas6sAi9Kj6X_PbTjl";

fn tokens() -> Vec<String> {
    parse_bearer_tokens(&format!("{CURRENT},{PREVIOUS}")).unwrap()
}

// ---- bearer ----

#[test]
fn right_token_passes() {
    assert_eq!(
        verify_bearer(&tokens(), Some(&format!("Bearer {CURRENT}"))),
        Ok(())
    );
}

#[test]
fn one_of_several_tokens_passes() {
    assert_eq!(
        verify_bearer(&tokens(), Some(&format!("Bearer {PREVIOUS}"))),
        Ok(())
    );
    // Scheme case does not matter (RFC 7235); extra spaces before the token
    // are tolerated.
    assert_eq!(
        verify_bearer(&tokens(), Some(&format!("bearer  {CURRENT}"))),
        Ok(())
    );
    assert_eq!(
        verify_bearer(&tokens(), Some(&format!("BEARER {CURRENT}"))),
        Ok(())
    );
}

#[test]
fn wrong_token_is_refused() {
    for wrong in [
        "VUKVKvXLdgY641TDAOmSQ_iNSjB5xvb0".to_owned(),
        CURRENT[..16].to_owned(),        // a prefix
        format!("{CURRENT}x"),           // longer
        CURRENT.to_ascii_lowercase(),    // tokens are case-sensitive
        format!("{CURRENT},{PREVIOUS}"), // the configured list itself
    ] {
        assert_eq!(
            verify_bearer(&tokens(), Some(&format!("Bearer {wrong}"))),
            Err(WebhookError::InvalidToken),
            "{wrong}"
        );
    }
}

#[test]
fn missing_header_is_refused() {
    assert_eq!(
        verify_bearer(&tokens(), None),
        Err(WebhookError::MissingHeader("authorization"))
    );
}

#[test]
fn wrong_scheme_is_refused() {
    assert_eq!(
        verify_bearer(&tokens(), Some(&format!("Basic {CURRENT}"))),
        Err(WebhookError::Malformed(
            "authorization scheme is not Bearer"
        ))
    );
    assert_eq!(
        verify_bearer(&tokens(), Some(&format!("Token {CURRENT}"))),
        Err(WebhookError::Malformed(
            "authorization scheme is not Bearer"
        ))
    );
    assert_eq!(
        verify_bearer(&tokens(), Some(CURRENT)),
        Err(WebhookError::Malformed(
            "authorization is not `Bearer <token>`"
        ))
    );
    assert_eq!(
        verify_bearer(&tokens(), Some("Bearer ")),
        Err(WebhookError::Malformed("bearer token is empty"))
    );
}

#[test]
fn no_configured_token_accepts_nothing() {
    assert_eq!(
        verify_bearer(&[], Some(&format!("Bearer {CURRENT}"))),
        Err(WebhookError::InvalidToken)
    );
}

#[test]
fn token_lists_parse_with_clear_errors() {
    assert_eq!(
        parse_bearer_tokens(&format!(" {CURRENT}\n{PREVIOUS} ")).unwrap(),
        vec![CURRENT.to_owned(), PREVIOUS.to_owned()]
    );
    assert_eq!(parse_bearer_tokens(""), Err(ConfigError::NoTokens));
    assert_eq!(
        parse_bearer_tokens(&format!("{CURRENT} short")),
        Err(ConfigError::TokenTooShort {
            position: 2,
            len: 5
        })
    );
    assert_eq!(
        parse_bearer_tokens("abcdefghijklmnop\"quoted\""),
        Err(ConfigError::BadTokenChars { position: 1 })
    );
    assert_eq!(
        ConfigError::TokenTooShort {
            position: 2,
            len: 5
        }
        .to_string(),
        "bearer token #2 is 5 characters; at least 16 are required"
    );
}

// ---- Event Streams (CloudEvents) ----

fn profile() -> Value {
    // The shape of Auth0's delivered example (Event Testing, Observability and
    // Failure Recovery), with the fields we read.
    json!({
        "created_at": "2025-02-02T17:56:01.566Z",
        "email": "ana@example.com",
        "email_verified": false,
        "identities": [{
            "connection": "Username-Password-Authentication",
            "isSocial": false, "provider": "auth0", "user_id": "679fb1b1e809445f129bc18d"
        }],
        "name": "ana@example.com",
        "nickname": "ana",
        "picture": "test.png",
        "updated_at": "2025-02-02T17:56:01.566Z",
        "user_id": "auth0|679fb1b1e809445f129bc18d",
        "user_metadata": {},
        "app_metadata": { "tenant": "acme", "other": [1, 2] }
    })
}

fn cloud_event(kind: &str, object: Value) -> Value {
    json!({
        "id": "evt_6SfwXrtm8nVcjzzN",
        "source": "urn:auth0:example.auth0app.com",
        "specversion": "1.0",
        "type": kind,
        "time": "2025-02-02T17:56:01.573Z",
        "a0tenant": "example",
        "a0stream": "est_1234567890abcdef",
        "data": { "object": object }
    })
}

fn stream(value: &Value) -> Result<IdpEvent, WebhookError> {
    parse_event_stream(value.to_string().as_bytes())
}

#[test]
fn every_stream_type_parses_in_both_spellings() {
    for (short, long, expected) in [
        ("user.created", "com.auth0.user.created", "user.created"),
        ("user.updated", "com.auth0.user.updated", "user.updated"),
        ("user.deleted", "com.auth0.user.deleted", "user.deleted"),
    ] {
        for kind in [short, long] {
            let event = stream(&cloud_event(kind, profile())).unwrap();
            assert_eq!(event.kind(), expected, "{kind}");
            assert_eq!(event.event_id(), "evt_6SfwXrtm8nVcjzzN");
            assert_eq!(event.subject(), "auth0|679fb1b1e809445f129bc18d");
            assert_eq!(event.occurred_at(), datetime!(2025-02-02 17:56:01.573 UTC));
            assert_eq!(event.tenant(), Some("acme"));
            let user = match &event {
                IdpEvent::UserCreated { user, .. }
                | IdpEvent::UserUpdated { user, .. }
                | IdpEvent::UserDeleted { user, .. } => user,
                other => panic!("{other:?}"),
            };
            assert_eq!(
                *user,
                IdpUser {
                    email: Some("ana@example.com".into()),
                    email_verified: Some(false),
                    blocked: false,
                    tenant: Some("acme".into()),
                    pushed_blocked: None,
                }
            );
        }
    }
}

#[test]
fn stream_user_fields() {
    let mut object = profile();
    object["blocked"] = json!(true);
    object["email_verified"] = json!(true);
    let IdpEvent::UserUpdated { user, .. } = stream(&cloud_event("user.updated", object)).unwrap()
    else {
        panic!()
    };
    assert!(user.blocked);
    assert_eq!(user.email_verified, Some(true));
    assert_eq!(user.pushed_blocked, None, "no mark: not a block of ours");

    // Our own block, read back: the login carries the mark of our push.
    let mut object = profile();
    object["blocked"] = json!(true);
    object["app_metadata"] = json!({ "tenant": "acme", "peak_blocked": true });
    let IdpEvent::UserUpdated { user, .. } = stream(&cloud_event("user.updated", object)).unwrap()
    else {
        panic!()
    };
    assert_eq!(user.pushed_blocked, Some(true));
    let mut object = profile();
    object["app_metadata"] = json!({ "tenant": "acme", "peak_blocked": "yes" });
    assert!(stream(&cloud_event("user.updated", object)).is_err());

    // A user without app_metadata, email or flags (e.g. a social login).
    let minimal = json!({ "user_id": "google-oauth2|1234", "created_at": "x", "updated_at": "y" });
    let IdpEvent::UserCreated { meta, user } =
        stream(&cloud_event("user.created", minimal)).unwrap()
    else {
        panic!()
    };
    assert_eq!(meta.subject, "google-oauth2|1234");
    assert_eq!(
        user,
        IdpUser {
            email: None,
            email_verified: None,
            blocked: false,
            tenant: None,
            pushed_blocked: None,
        }
    );

    // app_metadata without a tenant, or null.
    for app_metadata in [json!({ "plan": "x" }), Value::Null] {
        let mut object = profile();
        object["app_metadata"] = app_metadata;
        assert_eq!(
            stream(&cloud_event("user.created", object))
                .unwrap()
                .tenant(),
            None
        );
    }
}

#[test]
fn spec_version_may_be_spelled_either_way() {
    let mut event = cloud_event("user.created", profile());
    let map = event.as_object_mut().unwrap();
    map.remove("specversion");
    map.insert("spec_version".into(), json!("1.0"));
    assert!(stream(&event).is_ok());
}

#[test]
fn unknown_stream_types_are_unsupported_not_malformed() {
    for kind in [
        "organization.member.added",
        "com.auth0.organization.created",
        "password.changed",
        "user.logged_in",
        "email.verified",
        "user.created.v2",
        "auth0.user.created",
    ] {
        assert_eq!(
            stream(&cloud_event(kind, profile())),
            Err(WebhookError::UnsupportedType),
            "{kind}"
        );
    }
}

#[test]
fn malformed_stream_events_are_refused_with_a_fixed_reason() {
    let base = cloud_event("user.created", profile());
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|e| {
                e.as_object_mut().unwrap().remove("specversion");
            }),
            "specversion is missing",
        ),
        (
            Box::new(|e| e["specversion"] = json!("0.3")),
            "specversion is not 1.0",
        ),
        (
            Box::new(|e| e["specversion"] = json!(1.0)),
            "specversion is not 1.0",
        ),
        (
            Box::new(|e| {
                e.as_object_mut().unwrap().remove("type");
            }),
            "type is missing or not a string",
        ),
        (
            Box::new(|e| e["type"] = json!(7)),
            "type is missing or not a string",
        ),
        (
            Box::new(|e| {
                e.as_object_mut().unwrap().remove("id");
            }),
            "id is missing or not a string",
        ),
        (
            Box::new(|e| e["id"] = json!("")),
            "id is missing or not a string",
        ),
        (
            Box::new(|e| e["id"] = json!("evt with space")),
            "id is too long or not printable ASCII",
        ),
        (
            Box::new(|e| e["id"] = json!("e".repeat(257))),
            "id is too long or not printable ASCII",
        ),
        (
            Box::new(|e| {
                e.as_object_mut().unwrap().remove("time");
            }),
            "time is missing or not a string",
        ),
        (
            Box::new(|e| e["time"] = json!("yesterday")),
            "time is not an RFC 3339 date-time",
        ),
        (
            Box::new(|e| e["time"] = json!(1738518961)),
            "time is missing or not a string",
        ),
        (
            Box::new(|e| {
                e.as_object_mut().unwrap().remove("data");
            }),
            "data is missing or not an object",
        ),
        (
            Box::new(|e| e["data"] = json!([])),
            "data is missing or not an object",
        ),
        (
            Box::new(|e| e["data"] = json!({})),
            "data.object is missing or not an object",
        ),
        (
            Box::new(|e| {
                e["data"]["object"]
                    .as_object_mut()
                    .unwrap()
                    .remove("user_id");
            }),
            "data.object.user_id is missing or not a string",
        ),
        (
            Box::new(|e| e["data"]["object"]["user_id"] = json!(42)),
            "data.object.user_id is missing or not a string",
        ),
        (
            Box::new(|e| e["data"]["object"]["user_id"] = json!("a".repeat(513))),
            "data.object.user_id is too long",
        ),
        (
            Box::new(|e| e["data"]["object"]["email"] = json!(["x"])),
            "data.object.email is not a string",
        ),
        (
            Box::new(|e| e["data"]["object"]["email_verified"] = json!("yes")),
            "data.object.email_verified is not a boolean",
        ),
        (
            Box::new(|e| e["data"]["object"]["blocked"] = json!("true")),
            "data.object.blocked is not a boolean",
        ),
        (
            Box::new(|e| e["data"]["object"]["app_metadata"] = json!("acme")),
            "data.object.app_metadata is not an object",
        ),
        (
            Box::new(|e| e["data"]["object"]["app_metadata"]["tenant"] = json!({"id": "acme"})),
            "data.object.app_metadata.tenant is not a string",
        ),
    ];
    for (change, reason) in cases {
        let mut event = base.clone();
        change(&mut event);
        assert_eq!(
            stream(&event),
            Err(WebhookError::Malformed(reason)),
            "{event}"
        );
    }
    for (body, reason) in [
        (&b"not json"[..], "body is not JSON"),
        (b"", "body is not JSON"),
        (b"[1,2]", "body is not a JSON object"),
        (b"\"user.created\"", "body is not a JSON object"),
        (b"{\"id\": \"evt_1\", ", "body is not JSON"),
    ] {
        assert_eq!(
            parse_event_stream(body),
            Err(WebhookError::Malformed(reason))
        );
    }
}

#[test]
fn errors_never_echo_the_payload() {
    // A field of the wrong type whose value is personal data: serde_json's
    // own message would quote it.
    let mut event = cloud_event("user.created", profile());
    event["data"]["object"]["blocked"] = json!("ana@example.com");
    let err = stream(&event).unwrap_err();
    assert!(!err.to_string().contains("ana"), "{err}");
    assert!(!format!("{err:?}").contains("ana"), "{err:?}");
    // Nor does an event's Debug show the address.
    let event = stream(&cloud_event("user.created", profile())).unwrap();
    assert!(!format!("{event:?}").contains("ana@example.com"));
}

#[test]
fn stream_delivery_checks_token_then_size_then_body() {
    let body = cloud_event("user.created", profile()).to_string();
    let ok = format!("Bearer {CURRENT}");
    assert!(verify_event_stream_delivery(&tokens(), Some(&ok), body.as_bytes()).is_ok());
    assert_eq!(
        verify_event_stream_delivery(
            &tokens(),
            Some("Bearer nope-nope-nope-nope"),
            body.as_bytes()
        ),
        Err(WebhookError::InvalidToken)
    );
    let big = vec![b' '; MAX_EVENT_STREAM_BODY_BYTES + 1];
    assert_eq!(
        verify_event_stream_delivery(&tokens(), None, &big),
        Err(WebhookError::MissingHeader("authorization")),
        "unauthenticated callers learn nothing about size limits"
    );
    assert_eq!(
        verify_event_stream_delivery(&tokens(), Some(&ok), &big),
        Err(WebhookError::TooLarge)
    );
}

// ---- our Actions' events ----

fn action(kind: &str, data: Value) -> Value {
    json!({ "type": kind, "id": "pcp_7a7d891a66e66f5c6d9c968c7c681a84", "time": "2025-03-01T12:00:00.000Z", "data": data })
}

fn parse_action(value: &Value) -> Result<IdpEvent, WebhookError> {
    parse_action_event(value.to_string().as_bytes())
}

#[test]
fn every_action_type_parses() {
    let data = json!({ "user_id": "auth0|1", "tenant": "acme", "email": "ana@example.com" });
    let event = parse_action(&action("password.changed", data.clone())).unwrap();
    assert!(
        matches!(event, IdpEvent::PasswordChanged { ref tenant, .. } if tenant.as_deref() == Some("acme"))
    );
    assert_eq!(event.event_id(), "pcp_7a7d891a66e66f5c6d9c968c7c681a84");
    assert_eq!(event.subject(), "auth0|1");
    assert_eq!(event.occurred_at(), datetime!(2025-03-01 12:00 UTC));

    let event = parse_action(&action("user.logged_in", data.clone())).unwrap();
    assert_eq!(event.kind(), "user.logged_in");
    assert_eq!(event.tenant(), Some("acme"));

    let event = parse_action(&action("email.verified", data)).unwrap();
    let IdpEvent::EmailVerified { email, tenant, .. } = event else {
        panic!()
    };
    assert_eq!(email.as_deref(), Some("ana@example.com"));
    assert_eq!(tenant.as_deref(), Some("acme"));

    // tenant null or absent: none.
    for data in [
        json!({ "user_id": "auth0|1", "tenant": null }),
        json!({ "user_id": "auth0|1" }),
    ] {
        assert_eq!(
            parse_action(&action("password.changed", data))
                .unwrap()
                .tenant(),
            None
        );
    }
}

#[test]
fn action_channel_accepts_only_its_own_types() {
    for kind in [
        "user.created",
        "com.auth0.user.deleted",
        "password.reset",
        "PASSWORD.CHANGED",
    ] {
        assert_eq!(
            parse_action(&action(kind, json!({ "user_id": "auth0|1" }))),
            Err(WebhookError::UnsupportedType),
            "{kind}"
        );
    }
}

#[test]
fn malformed_action_events_are_refused() {
    let cases = [
        (
            json!({ "id": "x", "time": "2025-03-01T12:00:00Z", "data": { "user_id": "u" } }),
            "type is missing or not a string",
        ),
        (
            json!({ "type": "password.changed", "time": "2025-03-01T12:00:00Z", "data": { "user_id": "u" } }),
            "id is missing or not a string",
        ),
        (
            json!({ "type": "password.changed", "id": "x", "data": { "user_id": "u" } }),
            "time is missing or not a string",
        ),
        (
            json!({ "type": "password.changed", "id": "x", "time": "2025-03-01", "data": { "user_id": "u" } }),
            "time is not an RFC 3339 date-time",
        ),
        (
            json!({ "type": "password.changed", "id": "x", "time": "2025-03-01T12:00:00Z" }),
            "data is missing or not an object",
        ),
        (
            json!({ "type": "password.changed", "id": "x", "time": "2025-03-01T12:00:00Z", "data": {} }),
            "data.user_id is missing or not a string",
        ),
        (
            json!({ "type": "password.changed", "id": "x", "time": "2025-03-01T12:00:00Z", "data": { "user_id": "" } }),
            "data.user_id is missing or not a string",
        ),
        (
            json!({ "type": "password.changed", "id": "x", "time": "2025-03-01T12:00:00Z", "data": { "user_id": "u", "tenant": 5 } }),
            "data.tenant is not a string",
        ),
        (
            json!({ "type": "email.verified", "id": "x", "time": "2025-03-01T12:00:00Z", "data": { "user_id": "u", "email": true } }),
            "data.email is not a string",
        ),
    ];
    for (value, reason) in cases {
        assert_eq!(
            parse_action(&value),
            Err(WebhookError::Malformed(reason)),
            "{value}"
        );
    }
}

#[test]
fn error_codes_are_stable() {
    let all = [
        (WebhookError::TooLarge, "too_large"),
        (WebhookError::MissingHeader("webhook-id"), "missing_header"),
        (WebhookError::BadTimestamp, "bad_timestamp"),
        (WebhookError::TooOld, "too_old"),
        (WebhookError::TooNew, "too_new"),
        (WebhookError::NoValidSignature, "no_valid_signature"),
        (WebhookError::InvalidToken, "invalid_token"),
        (WebhookError::UnsupportedType, "unsupported_type"),
        (WebhookError::Malformed("x"), "malformed"),
    ];
    for (error, code) in all {
        assert_eq!(error.code(), code);
    }
}
