//! The bearer token Auth0 Event Streams send (`Authorization: Bearer <token>`,
//! the token set on the stream's webhook destination).

use hmac::Mac;

use crate::signature::keyed;
use crate::{ConfigError, WebhookError, list_items};

/// The shortest token accepted in configuration. Generate them with e.g.
/// `openssl rand -base64 32`.
pub const MIN_TOKEN_LEN: usize = 16;

/// Fixed key for fingerprinting tokens before comparing them: both sides
/// become 32-byte HMACs, so the comparison takes the same time whatever the
/// tokens' lengths or contents. Not a secret.
const FINGERPRINT_KEY: &[u8] = b"peak-webhooks bearer token fingerprint";

/// Reads a list of bearer tokens separated by commas and/or spaces (the
/// `AUTH0_EVENT_STREAM_TOKENS` value): the current token and, during a
/// rotation, the previous one. Each must be at least [`MIN_TOKEN_LEN`]
/// characters of the RFC 6750 token alphabet.
pub fn parse_bearer_tokens(list: &str) -> Result<Vec<String>, ConfigError> {
    let mut tokens = Vec::new();
    for (i, token) in list_items(list).enumerate() {
        let position = i + 1;
        if !token.bytes().all(is_token_char) {
            return Err(ConfigError::BadTokenChars { position });
        }
        if token.len() < MIN_TOKEN_LEN {
            return Err(ConfigError::TokenTooShort {
                position,
                len: token.len(),
            });
        }
        tokens.push(token.to_owned());
    }
    if tokens.is_empty() {
        return Err(ConfigError::NoTokens);
    }
    Ok(tokens)
}

/// RFC 6750 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
/// (the `=` placement is not checked).
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

/// Checks an `Authorization` header value against the expected tokens (any of
/// them; several during a rotation). The scheme is matched without regard to
/// case; the token exactly, in constant time. An empty `expected_tokens`
/// accepts nothing.
pub fn verify_bearer(
    expected_tokens: &[String],
    authorization_header: Option<&str>,
) -> Result<(), WebhookError> {
    let header = authorization_header.ok_or(WebhookError::MissingHeader("authorization"))?;
    let (scheme, token) = header.split_once(' ').ok_or(WebhookError::Malformed(
        "authorization is not `Bearer <token>`",
    ))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(WebhookError::Malformed(
            "authorization scheme is not Bearer",
        ));
    }
    let token = token.trim_matches(' ');
    if token.is_empty() {
        return Err(WebhookError::Malformed("bearer token is empty"));
    }

    let presented = fingerprint(token.as_bytes()).finalize().into_bytes();
    // Every expected token is compared; no early exit.
    let matched = expected_tokens.iter().fold(false, |matched, expected| {
        let same = fingerprint(expected.as_bytes())
            .verify_slice(&presented)
            .is_ok();
        matched | same
    });
    if matched {
        Ok(())
    } else {
        Err(WebhookError::InvalidToken)
    }
}

fn fingerprint(token: &[u8]) -> crate::signature::HmacSha256 {
    let mut mac = keyed(FINGERPRINT_KEY);
    mac.update(token);
    mac
}
