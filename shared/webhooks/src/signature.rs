//! Standard Webhooks, symmetric scheme (spec v1.0.0, "Verifying webhook
//! authenticity"): the signed content is `{webhook-id}.{webhook-timestamp}.{body}`,
//! signed with HMAC-SHA256 under the key that the `whsec_` secret's base64
//! part decodes to; `webhook-signature` is a space-delimited list of
//! `<version>,<base64 signature>` entries, of which we read `v1`.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::digest::{Key, KeyInit};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::{ConfigError, WebhookError, list_items};

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// The unique id of a message; the same on every retry of it.
pub const HEADER_ID: &str = "webhook-id";
/// When this attempt was signed, integer Unix seconds.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Space-delimited `v1,<base64>` signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// How far `webhook-timestamp` may be from our clock, either way (5 minutes).
pub const TOLERANCE_SECONDS: i64 = 5 * 60;
/// The largest body accepted on the signed channel (our Actions send well
/// under 1 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How every symmetric Standard Webhooks secret is written.
pub const SECRET_PREFIX: &str = "whsec_";
/// The spec asks for at least 24 random bytes.
pub const MIN_SECRET_BYTES: usize = 24;

/// Signature entries read from one header at most; the rest is refused
/// rather than hashed (each entry costs a comparison per secret).
const MAX_SIGNATURES: usize = 16;
/// A `webhook-id` is a dedupe key in our store: bounded and printable.
const MAX_ID_LEN: usize = 256;
const SIGNATURE_VERSION: &str = "v1";
const SIGNATURE_LEN: usize = 32;

/// Secrets as generators write them: padded or not.
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The HMAC keys a delivery may be signed with: the current one and, during a
/// rotation, the previous one. Never empty. `Debug` shows only how many.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecrets(Vec<Vec<u8>>);

impl WebhookSecrets {
    /// Reads a list of `whsec_<base64>` secrets separated by commas and/or
    /// spaces (the `AUTH0_WEBHOOK_SECRETS` value). Every item must carry the
    /// prefix and decode to at least [`MIN_SECRET_BYTES`] bytes.
    pub fn parse(list: &str) -> Result<Self, ConfigError> {
        let keys = list_items(list)
            .enumerate()
            .map(|(i, item)| decode_numbered(item, i + 1))
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(ConfigError::NoSecrets);
        }
        Ok(WebhookSecrets(keys))
    }

    /// How many secrets are configured.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a `WebhookSecrets` holds at least one secret.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `webhook-signature` value signed with every secret, in order (what
    /// a sender puts on a message during a rotation).
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        self.0
            .iter()
            .map(|key| sign(key, id, timestamp, body))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookSecrets(<{} secret(s)>)", self.0.len())
    }
}

/// Decodes one `whsec_<base64>` secret to its HMAC key.
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, ConfigError> {
    decode_numbered(secret, 1)
}

fn decode_numbered(secret: &str, position: usize) -> Result<Vec<u8>, ConfigError> {
    let encoded = secret
        .strip_prefix(SECRET_PREFIX)
        .ok_or(ConfigError::MissingPrefix { position })?;
    let key = SECRET_BASE64
        .decode(encoded)
        .map_err(|_| ConfigError::BadBase64 { position })?;
    if key.len() < MIN_SECRET_BYTES {
        return Err(ConfigError::SecretTooShort {
            position,
            len: key.len(),
        });
    }
    Ok(key)
}

/// The `webhook-signature` value for one message under one key:
/// `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")).
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = signing_mac(key, id, &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    format!("{SIGNATURE_VERSION},{}", STANDARD.encode(tag))
}

/// What a verified delivery tells: its id (the dedupe key), when this attempt
/// was signed, and which configured secret signed it (0 = first; a non-zero
/// index after a rotation means the sender still uses an older secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDelivery {
    pub id: String,
    pub timestamp: OffsetDateTime,
    pub key_index: usize,
}

/// Verifies a Standard Webhooks delivery.
///
/// `headers` looks a header up by its lower-case name (case-insensitively,
/// as `http::HeaderMap` does) and returns its value. `body` is the raw body,
/// exactly as received: never parse and re-serialize before verifying.
///
/// Order: size, headers present, id and timestamp well formed, signature
/// header well formed, a signature matching one of `secrets` (constant-time
/// comparison), and last the timestamp within [`TOLERANCE_SECONDS`] of `now`
/// either way. So `TooOld`/`TooNew` are reported only for authentic
/// deliveries, and a forgery is a forgery whatever its timestamp.
pub fn verify<H>(
    secrets: &WebhookSecrets,
    headers: H,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<VerifiedDelivery, WebhookError>
where
    H: Fn(&str) -> Option<String>,
{
    if body.len() > MAX_BODY_BYTES {
        return Err(WebhookError::TooLarge);
    }
    let id = headers(HEADER_ID).ok_or(WebhookError::MissingHeader(HEADER_ID))?;
    let timestamp_raw =
        headers(HEADER_TIMESTAMP).ok_or(WebhookError::MissingHeader(HEADER_TIMESTAMP))?;
    let signature_header =
        headers(HEADER_SIGNATURE).ok_or(WebhookError::MissingHeader(HEADER_SIGNATURE))?;

    check_id(&id)?;
    let timestamp = parse_timestamp(&timestamp_raw)?;
    let candidates = parse_signatures(&signature_header)?;

    let key_index = secrets
        .0
        .iter()
        .position(|key| {
            // The signed text uses the timestamp exactly as sent.
            let mac = signing_mac(key, &id, &timestamp_raw, body);
            candidates
                .iter()
                .any(|candidate| mac.clone().verify_slice(candidate).is_ok())
        })
        .ok_or(WebhookError::NoValidSignature)?;

    let age = now.unix_timestamp() - timestamp.unix_timestamp();
    if age > TOLERANCE_SECONDS {
        return Err(WebhookError::TooOld);
    }
    if -age > TOLERANCE_SECONDS {
        return Err(WebhookError::TooNew);
    }
    Ok(VerifiedDelivery {
        id,
        timestamp,
        key_index,
    })
}

fn check_id(id: &str) -> Result<(), WebhookError> {
    if id.is_empty() {
        return Err(WebhookError::Malformed("webhook-id is empty"));
    }
    if id.len() > MAX_ID_LEN {
        return Err(WebhookError::Malformed("webhook-id is too long"));
    }
    if !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(WebhookError::Malformed(
            "webhook-id has characters other than printable ASCII",
        ));
    }
    Ok(())
}

/// Integer Unix seconds, digits only (no sign, no spaces, no fraction), within
/// the range `time` represents.
fn parse_timestamp(raw: &str) -> Result<OffsetDateTime, WebhookError> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(WebhookError::BadTimestamp);
    }
    let seconds: i64 = raw.parse().map_err(|_| WebhookError::BadTimestamp)?;
    OffsetDateTime::from_unix_timestamp(seconds).map_err(|_| WebhookError::BadTimestamp)
}

/// The well-formed `v1` signatures of the header. Entries of other versions
/// (`v1a`, future ones) and `v1` entries that are not base64 of 32 bytes are
/// skipped; a header with none left is malformed.
fn parse_signatures(header: &str) -> Result<Vec<[u8; SIGNATURE_LEN]>, WebhookError> {
    let mut found = Vec::new();
    for (n, entry) in header.split(' ').filter(|e| !e.is_empty()).enumerate() {
        if n >= MAX_SIGNATURES {
            return Err(WebhookError::Malformed(
                "webhook-signature has too many entries",
            ));
        }
        let Some((SIGNATURE_VERSION, encoded)) = entry.split_once(',') else {
            continue;
        };
        let Ok(decoded) = STANDARD.decode(encoded) else {
            continue;
        };
        if let Ok(signature) = <[u8; SIGNATURE_LEN]>::try_from(decoded.as_slice()) {
            found.push(signature);
        }
    }
    if found.is_empty() {
        return Err(WebhookError::Malformed(
            "webhook-signature has no v1 signature",
        ));
    }
    Ok(found)
}

/// HMAC-SHA256 under `key`, fed `{id}.{timestamp}.{body}`.
fn signing_mac(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    let mut mac = keyed(key);
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// HMAC-SHA256 keyed with `key`, of any length. RFC 2104: a key longer than
/// the 64-byte block is hashed first, and every key is zero-padded to the
/// block, so the padded block is the same key (no fallible constructor needed).
pub(crate) fn keyed(key: &[u8]) -> HmacSha256 {
    let mut block = Key::<HmacSha256>::default();
    if key.len() > block.len() {
        let digest = Sha256::digest(key);
        block[..digest.len()].copy_from_slice(&digest);
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    <HmacSha256 as KeyInit>::new(&block)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_equals_the_hmac_crates_own_key_handling() {
        for len in [0, 1, 24, 32, 63, 64, 65, 100, 200] {
            let key: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut ours = keyed(&key);
            let mut theirs = <HmacSha256 as KeyInit>::new_from_slice(&key).unwrap();
            ours.update(b"message");
            theirs.update(b"message");
            assert_eq!(
                ours.finalize().into_bytes(),
                theirs.finalize().into_bytes(),
                "key length {len}"
            );
        }
    }

    #[test]
    fn timestamps_are_digits_only() {
        for bad in [
            "",
            "-5",
            "+5",
            " 5",
            "5 ",
            "1.5",
            "1e9",
            "0x10",
            "99999999999999999999",
        ] {
            assert_eq!(
                parse_timestamp(bad),
                Err(WebhookError::BadTimestamp),
                "{bad:?}"
            );
        }
        assert_eq!(parse_timestamp("0").unwrap().unix_timestamp(), 0);
        assert_eq!(
            parse_timestamp("1614265330").unwrap().unix_timestamp(),
            1614265330
        );
    }

    #[test]
    fn debug_never_shows_keys() {
        let secrets = WebhookSecrets::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(format!("{secrets:?}"), "WebhookSecrets(<1 secret(s)>)");
    }
}
