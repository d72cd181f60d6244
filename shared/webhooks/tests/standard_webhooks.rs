//! Standard Webhooks verification: the published test vectors, rotation,
//! secret configuration, and agreement with the signer in our Auth0 Actions.
//!
//! Vectors come from the reference libraries of the spec's repository,
//! github.com/standard-webhooks/standard-webhooks:
//! - `libraries/javascript/src/webhook.test.ts` and `libraries/go/webhook_test.go`
//!   ("sign function works" / `TestWebhookSign`, and the default message of
//!   their other tests; the decoy signatures of "multi sig payload is valid");
//! - `libraries/rust/src/lib.rs` (`test_sign`, `test_no_verify`,
//!   `test_verify_with_multiple_signatures`, `test_no_verify_with_multiple_signatures`).

use peak_webhooks::{
    ConfigError, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, MAX_BODY_BYTES, TOLERANCE_SECONDS,
    WebhookError, WebhookSecrets, decode_secret, sign, verify, verify_action_delivery,
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

// JS/Go libraries' vector.
const JS_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const JS_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const JS_TIMESTAMP: i64 = 1614265330;
const JS_BODY: &[u8] = br#"{"test": 2432232314}"#;
const JS_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

// Rust library's vector.
const RS_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const RS_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
const RS_TIMESTAMP: i64 = 1649367553;
const RS_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
const RS_SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
const RS_WRONG: &str = "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=";
const RS_DECOYS: [&str; 3] = [
    "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ=",
    "v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q=",
    "v1,9DfC1c3eeOrXB6w/5dIDydLNQaEyww5KalE5jLBZucE=",
];
const JS_DECOY: &str = "Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

fn secrets(list: &str) -> WebhookSecrets {
    WebhookSecrets::parse(list).unwrap()
}

/// Headers as a case-insensitive lookup over (name, value) pairs.
fn headers<'a>(pairs: &'a [(&'a str, String)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name: &str| {
        pairs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
}

fn delivery(id: &str, timestamp: i64, signature: &str) -> Vec<(&'static str, String)> {
    vec![
        (HEADER_ID, id.to_owned()),
        (HEADER_TIMESTAMP, timestamp.to_string()),
        (HEADER_SIGNATURE, signature.to_owned()),
    ]
}

#[test]
fn sign_reproduces_the_published_signatures() {
    assert_eq!(
        sign(
            &decode_secret(JS_SECRET).unwrap(),
            JS_ID,
            JS_TIMESTAMP,
            JS_BODY
        ),
        JS_SIGNATURE
    );
    assert_eq!(
        sign(
            &decode_secret(RS_SECRET).unwrap(),
            RS_ID,
            RS_TIMESTAMP,
            RS_BODY
        ),
        RS_SIGNATURE
    );
}

#[test]
fn published_vectors_verify() {
    let d = verify(
        &secrets(JS_SECRET),
        headers(&delivery(JS_ID, JS_TIMESTAMP, JS_SIGNATURE)),
        JS_BODY,
        at(JS_TIMESTAMP),
    )
    .unwrap();
    assert_eq!(d.id, JS_ID);
    assert_eq!(d.timestamp, at(JS_TIMESTAMP));
    assert_eq!(d.key_index, 0);

    verify(
        &secrets(RS_SECRET),
        headers(&delivery(RS_ID, RS_TIMESTAMP, RS_SIGNATURE)),
        RS_BODY,
        at(RS_TIMESTAMP + 10),
    )
    .unwrap();
}

#[test]
fn wrong_secret_or_wrong_signature_is_refused() {
    // Each vector under the other vector's secret.
    assert_eq!(
        verify(
            &secrets(RS_SECRET),
            headers(&delivery(JS_ID, JS_TIMESTAMP, JS_SIGNATURE)),
            JS_BODY,
            at(JS_TIMESTAMP),
        ),
        Err(WebhookError::NoValidSignature)
    );
    assert_eq!(
        verify(
            &secrets(JS_SECRET),
            headers(&delivery(RS_ID, RS_TIMESTAMP, RS_SIGNATURE)),
            RS_BODY,
            at(RS_TIMESTAMP),
        ),
        Err(WebhookError::NoValidSignature)
    );
    // The Rust library's invalid signature, and the JS library's decoy.
    for wrong in [RS_WRONG.to_owned(), format!("v1,{JS_DECOY}")] {
        assert_eq!(
            verify(
                &secrets(RS_SECRET),
                headers(&delivery(RS_ID, RS_TIMESTAMP, &wrong)),
                RS_BODY,
                at(RS_TIMESTAMP),
            ),
            Err(WebhookError::NoValidSignature)
        );
    }
}

#[test]
fn one_valid_signature_among_several_is_enough() {
    // Rust library: three decoys around the valid one.
    let multi = format!(
        "{} {} {} {}",
        RS_DECOYS[0], RS_DECOYS[1], RS_SIGNATURE, RS_DECOYS[2]
    );
    verify(
        &secrets(RS_SECRET),
        headers(&delivery(RS_ID, RS_TIMESTAMP, &multi)),
        RS_BODY,
        at(RS_TIMESTAMP),
    )
    .unwrap();
    // ... and without it, nothing matches.
    let decoys = RS_DECOYS.join(" ");
    assert_eq!(
        verify(
            &secrets(RS_SECRET),
            headers(&delivery(RS_ID, RS_TIMESTAMP, &decoys)),
            RS_BODY,
            at(RS_TIMESTAMP),
        ),
        Err(WebhookError::NoValidSignature)
    );
    // JS/Go libraries: a v1 decoy, a v2 entry (ignored), the valid one, a decoy.
    let multi = format!("v1,{JS_DECOY} v2,{JS_DECOY} {JS_SIGNATURE} v1,{JS_DECOY}");
    verify(
        &secrets(JS_SECRET),
        headers(&delivery(JS_ID, JS_TIMESTAMP, &multi)),
        JS_BODY,
        at(JS_TIMESTAMP),
    )
    .unwrap();
}

#[test]
fn asymmetric_entries_are_ignored() {
    // The spec's example header pairs a v1 with a v1a (ed25519) signature.
    let header = format!(
        "{JS_SIGNATURE} v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg=="
    );
    verify(
        &secrets(JS_SECRET),
        headers(&delivery(JS_ID, JS_TIMESTAMP, &header)),
        JS_BODY,
        at(JS_TIMESTAMP),
    )
    .unwrap();
}

#[test]
fn stale_and_future_timestamps_are_refused_both_ways() {
    let s = secrets(JS_SECRET);
    let h = delivery(JS_ID, JS_TIMESTAMP, JS_SIGNATURE);
    let check = |now: i64| verify(&s, headers(&h), JS_BODY, at(now));
    // The libraries' "old timestamp fails" / "new timestamp fails": the
    // message is 5 minutes + 1 s off our clock.
    assert_eq!(
        check(JS_TIMESTAMP + TOLERANCE_SECONDS + 1),
        Err(WebhookError::TooOld)
    );
    assert_eq!(
        check(JS_TIMESTAMP - TOLERANCE_SECONDS - 1),
        Err(WebhookError::TooNew)
    );
    // The edges are inside.
    assert!(check(JS_TIMESTAMP + TOLERANCE_SECONDS).is_ok());
    assert!(check(JS_TIMESTAMP - TOLERANCE_SECONDS).is_ok());
    // Sub-second parts of `now` do not widen the window.
    assert_eq!(
        verify(
            &s,
            headers(&h),
            JS_BODY,
            at(JS_TIMESTAMP + TOLERANCE_SECONDS + 1) + time::Duration::milliseconds(999)
        ),
        Err(WebhookError::TooOld)
    );
}

#[test]
fn missing_headers_are_named() {
    let full = delivery(JS_ID, JS_TIMESTAMP, JS_SIGNATURE);
    for name in [HEADER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE] {
        let without: Vec<_> = full.iter().filter(|(n, _)| *n != name).cloned().collect();
        assert_eq!(
            verify(
                &secrets(JS_SECRET),
                headers(&without),
                JS_BODY,
                at(JS_TIMESTAMP)
            ),
            Err(WebhookError::MissingHeader(name))
        );
    }
}

#[test]
fn broken_signature_headers_are_malformed() {
    // The JS library's "invalid signature" and "partial signature" cases.
    let partial = JS_SIGNATURE[..8].to_owned();
    for header in [
        "v1,dawfeoifkpqwoekfpqoekf",
        partial.as_str(),
        "v1,",
        "",
        "   ",
    ] {
        assert_eq!(
            verify(
                &secrets(JS_SECRET),
                headers(&delivery(JS_ID, JS_TIMESTAMP, header)),
                JS_BODY,
                at(JS_TIMESTAMP)
            ),
            Err(WebhookError::Malformed(
                "webhook-signature has no v1 signature"
            )),
            "{header:?}"
        );
    }
}

#[test]
fn bad_timestamps_are_refused() {
    for bad in ["hello", "", "1614265330.0", "-1614265330", " 1614265330"] {
        let mut h = delivery(JS_ID, JS_TIMESTAMP, JS_SIGNATURE);
        h[1].1 = bad.to_owned();
        assert_eq!(
            verify(&secrets(JS_SECRET), headers(&h), JS_BODY, at(JS_TIMESTAMP)),
            Err(WebhookError::BadTimestamp),
            "{bad:?}"
        );
    }
}

#[test]
fn body_over_the_limit_is_refused_before_anything_else() {
    let body = vec![b'a'; MAX_BODY_BYTES + 1];
    assert_eq!(
        verify(&secrets(JS_SECRET), headers(&[]), &body, at(JS_TIMESTAMP)),
        Err(WebhookError::TooLarge)
    );
    // At the limit it goes on to the headers.
    let body = vec![b'a'; MAX_BODY_BYTES];
    assert_eq!(
        verify(&secrets(JS_SECRET), headers(&[]), &body, at(JS_TIMESTAMP)),
        Err(WebhookError::MissingHeader(HEADER_ID))
    );
}

#[test]
fn any_configured_secret_verifies_and_its_index_is_reported() {
    let both = secrets(&format!("{RS_SECRET}, {JS_SECRET}"));
    assert_eq!(both.len(), 2);
    let d = verify(
        &both,
        headers(&delivery(JS_ID, JS_TIMESTAMP, JS_SIGNATURE)),
        JS_BODY,
        at(JS_TIMESTAMP),
    )
    .unwrap();
    assert_eq!(d.key_index, 1, "signed with the second secret");
    let d = verify(
        &both,
        headers(&delivery(RS_ID, RS_TIMESTAMP, RS_SIGNATURE)),
        RS_BODY,
        at(RS_TIMESTAMP),
    )
    .unwrap();
    assert_eq!(d.key_index, 0);

    // A sender mid-rotation signs with both; the list signs in order.
    let header = both.sign(JS_ID, JS_TIMESTAMP, JS_BODY);
    assert!(header.ends_with(JS_SIGNATURE), "{header}");
    assert_eq!(header.split(' ').count(), 2);
    // After the rotation the old secret alone no longer verifies new-secret
    // deliveries.
    assert_eq!(
        verify(
            &secrets(RS_SECRET),
            headers(&delivery(JS_ID, JS_TIMESTAMP, JS_SIGNATURE)),
            JS_BODY,
            at(JS_TIMESTAMP),
        ),
        Err(WebhookError::NoValidSignature)
    );
}

#[test]
fn secret_lists_parse_with_clear_errors() {
    assert_eq!(secrets(JS_SECRET).len(), 1);
    assert_eq!(secrets(&format!(" {JS_SECRET} ,\n{RS_SECRET}, ")).len(), 2);
    // Unpadded base64 is accepted too (32 base64 characters need no padding;
    // this one is 25 bytes, which do).
    let padded = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGA==";
    let unpadded = padded.trim_end_matches('=');
    assert_eq!(
        decode_secret(padded).unwrap(),
        decode_secret(unpadded).unwrap()
    );

    assert_eq!(WebhookSecrets::parse(""), Err(ConfigError::NoSecrets));
    assert_eq!(WebhookSecrets::parse(" , "), Err(ConfigError::NoSecrets));
    assert_eq!(
        WebhookSecrets::parse(&format!("{JS_SECRET} MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")),
        Err(ConfigError::MissingPrefix { position: 2 })
    );
    assert_eq!(
        WebhookSecrets::parse("whsec_not*base64!"),
        Err(ConfigError::BadBase64 { position: 1 })
    );
    assert_eq!(
        WebhookSecrets::parse("whsec_c2hvcnQ="),
        Err(ConfigError::SecretTooShort {
            position: 1,
            len: 5
        })
    );
    // Messages name the position, never the value.
    let message = WebhookSecrets::parse(&format!("{JS_SECRET} oops-{JS_SECRET}"))
        .unwrap_err()
        .to_string();
    assert_eq!(message, "webhook secret #2 does not start with `whsec_`");
}

// ---- agreement with infra/auth0 ----

const ACTION_FILES: [&str; 2] = ["post-change-password.js", "post-login.js"];

fn action_source(name: &str) -> String {
    let path = format!("{}/../../infra/auth0/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The signing block every Action carries.
fn signing_block(source: &str) -> &str {
    let start = source
        .find("// ---- peak-webhook-signing")
        .expect("start marker");
    let end = source
        .find("// ---- end peak-webhook-signing ----")
        .expect("end marker");
    &source[start..end]
}

#[test]
fn every_action_carries_the_same_signer() {
    let first = action_source(ACTION_FILES[0]);
    for name in &ACTION_FILES[1..] {
        assert_eq!(
            signing_block(&action_source(name)),
            signing_block(&first),
            "{name}: the peak-webhook-signing block differs from {}",
            ACTION_FILES[0]
        );
    }
    // What the Rust side relies on, in the JS.
    let block = signing_block(&first);
    for needle in [
        "createHmac('sha256', peakKey(secret))",
        ".update(`${id}.${timestamp}.${body}`, 'utf8')",
        ".digest('base64')",
        "return `v1,${mac}`;",
        "secret.slice('whsec_'.length), 'base64'",
        "'webhook-id': message.id",
        "'webhook-timestamp': String(timestamp)",
        "const timestamp = Math.floor(Date.now() / 1000);",
        "AbortSignal.timeout(5000)",
    ] {
        assert!(block.contains(needle), "signer no longer has {needle:?}");
    }
}

/// A delivery as infra/auth0/post-change-password.js builds it, computed by
/// that file's own functions under Node (the command is in
/// infra/auth0/README.md): the id from `peakEventId('pcp', [user_id,
/// last_password_reset])`, the body from `JSON.stringify`, the header from
/// `peakSign`.
#[test]
fn sign_matches_the_action_signer() {
    let secret = "whsec_w3IdqlJ62AW0l5f0eeJ8z3uzzq23qDRr";
    let previous = "whsec_BePxG/qXwJ7dA70ne10levJjW3VsiGAq";
    let user_id = "auth0|65f1c0ffee0123456789abcd";
    let reset = "2025-03-01T12:00:00.000Z";
    let timestamp = 1740830700;
    let id = "pcp_7a7d891a66e66f5c6d9c968c7c681a84";
    let body = r#"{"type":"password.changed","id":"pcp_7a7d891a66e66f5c6d9c968c7c681a84","time":"2025-03-01T12:00:00.000Z","data":{"user_id":"auth0|65f1c0ffee0123456789abcd","tenant":null}}"#;
    let expected = "v1,szXQ1LAfZ6e3PJczFmoyQZrop7BFW8lxbK3uhNoS9Mo=";
    let expected_both = "v1,szXQ1LAfZ6e3PJczFmoyQZrop7BFW8lxbK3uhNoS9Mo= v1,l3cDp7woB/oohGopJoU+SGDnI6jwZjy9RCDYxOpJCRw=";

    // peakEventId: prefix + first 32 hex digits of SHA-256 over the parts
    // joined with "\n".
    let digest = Sha256::digest(format!("{user_id}\n{reset}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(id, format!("pcp_{}", &hex[..32]));

    assert_eq!(
        sign(
            &decode_secret(secret).unwrap(),
            id,
            timestamp,
            body.as_bytes()
        ),
        expected
    );
    assert_eq!(
        secrets(&format!("{secret} {previous}")).sign(id, timestamp, body.as_bytes()),
        expected_both
    );

    let (delivery, event) = verify_action_delivery(
        &secrets(secret),
        headers(&delivery(id, timestamp, expected)),
        body.as_bytes(),
        at(timestamp + 3),
    )
    .unwrap();
    assert_eq!(delivery.id, id);
    assert_eq!(event.kind(), "password.changed");
    assert_eq!(event.subject(), user_id);
    assert_eq!(event.tenant(), None);
    assert_eq!(
        event.occurred_at(),
        OffsetDateTime::parse(reset, &time::format_description::well_known::Rfc3339).unwrap()
    );
}
