//! Inbound deliveries from Auth0, verified and parsed. Pure: no I/O, no clock
//! (the caller passes `now`), no HTTP types (the caller passes header values).
//!
//! Two channels reach the webhook endpoint (see `../../infra/auth0/README.md`):
//!
//! - **Our Auth0 Actions** (Post Change Password, Post Login) sign what they
//!   send in the [Standard Webhooks](https://www.standardwebhooks.com) scheme:
//!   [`verify`] checks `webhook-id`, `webhook-timestamp` and
//!   `webhook-signature` against one or more [`WebhookSecrets`] (several during
//!   a rotation), and [`parse_action_event`] reads the body. [`verify_action_delivery`]
//!   does both and ties the body's `id` to the signed `webhook-id`.
//! - **Auth0 Event Streams** (CloudEvents `user.created`, `user.updated`,
//!   `user.deleted`) carry a bearer token: [`verify_bearer`] compares it in
//!   constant time with the configured tokens, and [`parse_event_stream`]
//!   reads the CloudEvent. [`verify_event_stream_delivery`] does both.
//!
//! Both channels yield an [`IdpEvent`]. Each channel accepts only its own
//! event types, so holding the Event Stream token does not let anyone claim
//! that a password was set (which activates an invited user).
//!
//! Errors never carry payload or header values: a delivery may hold personal
//! data, and a header may hold a secret. [`WebhookError::Malformed`] has a
//! fixed, short reason.
//!
//! Configuration (read by the caller from the environment):
//! `AUTH0_WEBHOOK_SECRETS` → [`WebhookSecrets::parse`],
//! `AUTH0_EVENT_STREAM_TOKENS` → [`parse_bearer_tokens`].

mod bearer;
mod events;
mod signature;

pub use bearer::{MIN_TOKEN_LEN, parse_bearer_tokens, verify_bearer};
pub use events::{
    EventMeta, IdpEvent, IdpUser, MAX_EVENT_STREAM_BODY_BYTES, parse_action_event,
    parse_event_stream, verify_action_delivery, verify_event_stream_delivery,
};
pub use signature::{
    HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, MAX_BODY_BYTES, MIN_SECRET_BYTES, SECRET_PREFIX,
    TOLERANCE_SECONDS, VerifiedDelivery, WebhookSecrets, decode_secret, sign, verify,
};

/// Why a delivery was refused. Every variant but [`WebhookError::UnsupportedType`]
/// means "do not act on it"; none carries a value taken from the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The body is over the channel's size limit ([`MAX_BODY_BYTES`] or
    /// [`MAX_EVENT_STREAM_BODY_BYTES`]).
    #[error("body too large")]
    TooLarge,
    /// A required header is absent; the name is ours (lower case).
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not an integer number of Unix seconds.
    #[error("webhook-timestamp is not integer Unix seconds")]
    BadTimestamp,
    /// Authentic, but signed more than [`TOLERANCE_SECONDS`] ago (a replay, or
    /// a delivery held up too long).
    #[error("webhook-timestamp is too old")]
    TooOld,
    /// Authentic, but signed more than [`TOLERANCE_SECONDS`] in the future
    /// (a clock far off, or a delivery prepared for a later replay).
    #[error("webhook-timestamp is too far in the future")]
    TooNew,
    /// There are `v1` signatures, and none matches any configured secret: a
    /// forgery, a tampered id/timestamp/body, or a secret we do not have.
    #[error("no signature matches")]
    NoValidSignature,
    /// A bearer token was presented and matches none of the configured tokens.
    #[error("bearer token does not match")]
    InvalidToken,
    /// Authentic and well formed, but of a type this channel does not handle.
    /// Answer 2xx and ignore it: Auth0 disables an Event Stream whose
    /// deliveries keep failing.
    #[error("event type not handled on this channel")]
    UnsupportedType,
    /// The delivery does not follow the scheme or the event schema.
    #[error("malformed delivery: {0}")]
    Malformed(&'static str),
}

impl WebhookError {
    /// A stable snake_case code for logs and problem+json.
    pub fn code(&self) -> &'static str {
        match self {
            WebhookError::TooLarge => "too_large",
            WebhookError::MissingHeader(_) => "missing_header",
            WebhookError::BadTimestamp => "bad_timestamp",
            WebhookError::TooOld => "too_old",
            WebhookError::TooNew => "too_new",
            WebhookError::NoValidSignature => "no_valid_signature",
            WebhookError::InvalidToken => "invalid_token",
            WebhookError::UnsupportedType => "unsupported_type",
            WebhookError::Malformed(_) => "malformed",
        }
    }
}

/// A configuration value (`AUTH0_WEBHOOK_SECRETS`, `AUTH0_EVENT_STREAM_TOKENS`)
/// that cannot be used. Names positions (1-based), never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no webhook secret given: expected one or more `whsec_<base64>` values separated by commas or spaces"
    )]
    NoSecrets,
    #[error("webhook secret #{position} does not start with `whsec_`")]
    MissingPrefix { position: usize },
    #[error("webhook secret #{position} is not valid base64 after `whsec_`")]
    BadBase64 { position: usize },
    #[error("webhook secret #{position} is {len} bytes; at least {MIN_SECRET_BYTES} are required")]
    SecretTooShort { position: usize, len: usize },
    #[error("no bearer token given: expected one or more tokens separated by commas or spaces")]
    NoTokens,
    #[error("bearer token #{position} is {len} characters; at least {MIN_TOKEN_LEN} are required")]
    TokenTooShort { position: usize, len: usize },
    #[error("bearer token #{position} has characters a bearer token may not contain")]
    BadTokenChars { position: usize },
}

/// Splits a configuration list on commas and ASCII whitespace.
fn list_items(list: &str) -> impl Iterator<Item = &str> {
    list.split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|item| !item.is_empty())
}
