//! The events both channels deliver, parsed into one [`IdpEvent`].
//!
//! **Auth0 Event Streams** send CloudEvents 1.0 (Auth0 docs, "Event Types"
//! and "Event Testing, Observability and Failure Recovery"):
//!
//! ```json
//! { "id": "evt_6SfwXrtm8nVcjzzN", "source": "urn:auth0:example.auth0app.com",
//!   "specversion": "1.0", "type": "user.created", "time": "2025-02-02T17:56:01.573Z",
//!   "a0tenant": "example", "a0stream": "est_1234567890abcdef",
//!   "data": { "object": { "user_id": "auth0|679fb1b1e809445f129bc18d",
//!     "email": "someone@example.com", "email_verified": false, "blocked": false,
//!     "app_metadata": { "tenant": "acme" }, "identities": [ ... ], ... } } }
//! ```
//!
//! Auth0's pages show the type both as `user.created` and as
//! `com.auth0.user.created`, and the version key both as `specversion` (the
//! CloudEvents name, in delivered examples) and `spec_version`; all are
//! accepted.
//!
//! **Our Actions** (`infra/auth0/*.js`) send a shape of ours, signed:
//!
//! ```json
//! { "type": "password.changed" | "user.logged_in" | "email.verified",
//!   "id": "<the webhook-id>", "time": "<RFC 3339>",
//!   "data": { "user_id": "auth0|...", "tenant": "acme" | null, "email": "..." } }
//! ```
//!
//! Unknown fields are ignored everywhere (Auth0 adds fields over time).

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::signature::{MAX_BODY_BYTES, VerifiedDelivery, WebhookSecrets, verify};
use crate::{WebhookError, verify_bearer};

/// The largest Event Streams body accepted. Auth0 caps a user profile at
/// 10 KB with an allowance of about ten times that for older profiles, and an
/// update event may carry the profile twice (`object`, `previous_object`).
pub const MAX_EVENT_STREAM_BODY_BYTES: usize = 256 * 1024;

const MAX_EVENT_ID_LEN: usize = 256;
const MAX_FIELD_LEN: usize = 512;

/// What every event has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMeta {
    /// The event's id: the dedupe key (for our Actions, equal to `webhook-id`).
    pub event_id: String,
    /// When the event happened at Auth0 (not when it was delivered): the
    /// ordering key, so an older event never overwrites newer state.
    pub occurred_at: OffsetDateTime,
    /// The Auth0 user id (`auth0|...`), our users' subject.
    pub subject: String,
}

/// The user as an Event Stream shows it (`data.object`): what we need to map
/// it to a tenant and mirror its state. Personal data: do not log.
#[derive(Clone, PartialEq, Eq)]
pub struct IdpUser {
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    /// Blocked at Auth0 (absent means not blocked).
    pub blocked: bool,
    /// `app_metadata.tenant`, when the user has one.
    pub tenant: Option<String>,
    /// `app_metadata.peak_blocked`: the blocked state peak-users' own last
    /// push recorded on the login (so a block it made itself, read back, is
    /// not taken for a dashboard change).
    pub pushed_blocked: Option<bool>,
}

impl std::fmt::Debug for IdpUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdpUser")
            .field("email", &self.email.as_ref().map(|_| "<redacted>"))
            .field("email_verified", &self.email_verified)
            .field("blocked", &self.blocked)
            .field("tenant", &self.tenant)
            .field("pushed_blocked", &self.pushed_blocked)
            .finish()
    }
}

/// An identity-provider event, from either channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdpEvent {
    /// Event Streams `user.created`.
    UserCreated { meta: EventMeta, user: IdpUser },
    /// Event Streams `user.updated`.
    UserUpdated { meta: EventMeta, user: IdpUser },
    /// Event Streams `user.deleted` (the user as it was).
    UserDeleted { meta: EventMeta, user: IdpUser },
    /// Action `password.changed` (Post Change Password): the user set a
    /// password, e.g. through the invitation's password-change ticket.
    PasswordChanged {
        meta: EventMeta,
        tenant: Option<String>,
    },
    /// Action `user.logged_in` (Post Login).
    LoggedIn {
        meta: EventMeta,
        tenant: Option<String>,
    },
    /// Action `email.verified` (Post Login, once per user and address).
    EmailVerified {
        meta: EventMeta,
        tenant: Option<String>,
        email: Option<String>,
    },
}

impl IdpEvent {
    pub fn meta(&self) -> &EventMeta {
        match self {
            IdpEvent::UserCreated { meta, .. }
            | IdpEvent::UserUpdated { meta, .. }
            | IdpEvent::UserDeleted { meta, .. }
            | IdpEvent::PasswordChanged { meta, .. }
            | IdpEvent::LoggedIn { meta, .. }
            | IdpEvent::EmailVerified { meta, .. } => meta,
        }
    }

    pub fn event_id(&self) -> &str {
        &self.meta().event_id
    }

    pub fn occurred_at(&self) -> OffsetDateTime {
        self.meta().occurred_at
    }

    /// The Auth0 user id.
    pub fn subject(&self) -> &str {
        &self.meta().subject
    }

    /// The tenant the event names, if any (`app_metadata.tenant` for Event
    /// Streams; what the Action read from the user for Action events).
    pub fn tenant(&self) -> Option<&str> {
        match self {
            IdpEvent::UserCreated { user, .. }
            | IdpEvent::UserUpdated { user, .. }
            | IdpEvent::UserDeleted { user, .. } => user.tenant.as_deref(),
            IdpEvent::PasswordChanged { tenant, .. }
            | IdpEvent::LoggedIn { tenant, .. }
            | IdpEvent::EmailVerified { tenant, .. } => tenant.as_deref(),
        }
    }

    /// The canonical type name (`user.created`, ..., `email.verified`).
    pub fn kind(&self) -> &'static str {
        match self {
            IdpEvent::UserCreated { .. } => "user.created",
            IdpEvent::UserUpdated { .. } => "user.updated",
            IdpEvent::UserDeleted { .. } => "user.deleted",
            IdpEvent::PasswordChanged { .. } => "password.changed",
            IdpEvent::LoggedIn { .. } => "user.logged_in",
            IdpEvent::EmailVerified { .. } => "email.verified",
        }
    }
}

/// Verifies an Action delivery ([`verify`]) and parses its body
/// ([`parse_action_event`]); the body's `id` must be the signed `webhook-id`.
pub fn verify_action_delivery<H>(
    secrets: &WebhookSecrets,
    headers: H,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<(VerifiedDelivery, IdpEvent), WebhookError>
where
    H: Fn(&str) -> Option<String>,
{
    let delivery = verify(secrets, headers, body, now)?;
    let event = parse_action_event(body)?;
    if event.event_id() != delivery.id {
        return Err(WebhookError::Malformed("body id differs from webhook-id"));
    }
    Ok((delivery, event))
}

/// Checks an Event Streams delivery's bearer token ([`verify_bearer`]), then
/// its size, then parses it ([`parse_event_stream`]).
pub fn verify_event_stream_delivery(
    expected_tokens: &[String],
    authorization_header: Option<&str>,
    body: &[u8],
) -> Result<IdpEvent, WebhookError> {
    verify_bearer(expected_tokens, authorization_header)?;
    parse_event_stream(body)
}

/// Parses an Auth0 Event Streams CloudEvent. Types other than
/// `user.created`/`user.updated`/`user.deleted` (with or without the
/// `com.auth0.` prefix) are [`WebhookError::UnsupportedType`].
pub fn parse_event_stream(body: &[u8]) -> Result<IdpEvent, WebhookError> {
    if body.len() > MAX_EVENT_STREAM_BODY_BYTES {
        return Err(WebhookError::TooLarge);
    }
    let value = parse_json(body)?;
    let root = root_object(&value)?;

    let version = match (root.get("specversion"), root.get("spec_version")) {
        (Some(v), _) | (None, Some(v)) => v,
        (None, None) => return Err(WebhookError::Malformed("specversion is missing")),
    };
    if version.as_str() != Some("1.0") {
        return Err(WebhookError::Malformed("specversion is not 1.0"));
    }

    let kind = required_str(root, "type", "type is missing or not a string")?;
    #[derive(Clone, Copy)]
    enum Kind {
        Created,
        Updated,
        Deleted,
    }
    let kind = match kind.strip_prefix("com.auth0.").unwrap_or(kind) {
        "user.created" => Kind::Created,
        "user.updated" => Kind::Updated,
        "user.deleted" => Kind::Deleted,
        _ => return Err(WebhookError::UnsupportedType),
    };

    let data = required_object(root, "data", "data is missing or not an object")?;
    let object = required_object(data, "object", "data.object is missing or not an object")?;
    let meta = EventMeta {
        event_id: event_id(root)?,
        occurred_at: event_time(root)?,
        subject: bounded(
            required_str(
                object,
                "user_id",
                "data.object.user_id is missing or not a string",
            )?,
            "data.object.user_id is too long",
        )?,
    };
    let app_metadata = match object.get("app_metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        Some(_) => {
            return Err(WebhookError::Malformed(
                "data.object.app_metadata is not an object",
            ));
        }
    };
    let user = IdpUser {
        email: optional_str(object, "email", "data.object.email is not a string")?,
        email_verified: optional_bool(
            object,
            "email_verified",
            "data.object.email_verified is not a boolean",
        )?,
        blocked: optional_bool(object, "blocked", "data.object.blocked is not a boolean")?
            .unwrap_or(false),
        tenant: match app_metadata {
            Some(map) => optional_str(
                map,
                "tenant",
                "data.object.app_metadata.tenant is not a string",
            )?,
            None => None,
        },
        pushed_blocked: match app_metadata {
            Some(map) => optional_bool(
                map,
                "peak_blocked",
                "data.object.app_metadata.peak_blocked is not a boolean",
            )?,
            None => None,
        },
    };
    Ok(match kind {
        Kind::Created => IdpEvent::UserCreated { meta, user },
        Kind::Updated => IdpEvent::UserUpdated { meta, user },
        Kind::Deleted => IdpEvent::UserDeleted { meta, user },
    })
}

/// Parses the body one of our Actions sent. Types other than
/// `password.changed`/`user.logged_in`/`email.verified` are
/// [`WebhookError::UnsupportedType`].
pub fn parse_action_event(body: &[u8]) -> Result<IdpEvent, WebhookError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(WebhookError::TooLarge);
    }
    let value = parse_json(body)?;
    let root = root_object(&value)?;
    let kind = required_str(root, "type", "type is missing or not a string")?;
    #[derive(Clone, Copy)]
    enum Kind {
        PasswordChanged,
        LoggedIn,
        EmailVerified,
    }
    let kind = match kind {
        "password.changed" => Kind::PasswordChanged,
        "user.logged_in" => Kind::LoggedIn,
        "email.verified" => Kind::EmailVerified,
        _ => return Err(WebhookError::UnsupportedType),
    };
    let data = required_object(root, "data", "data is missing or not an object")?;
    let meta = EventMeta {
        event_id: event_id(root)?,
        occurred_at: event_time(root)?,
        subject: bounded(
            required_str(data, "user_id", "data.user_id is missing or not a string")?,
            "data.user_id is too long",
        )?,
    };
    let tenant = optional_str(data, "tenant", "data.tenant is not a string")?;
    Ok(match kind {
        Kind::PasswordChanged => IdpEvent::PasswordChanged { meta, tenant },
        Kind::LoggedIn => IdpEvent::LoggedIn { meta, tenant },
        Kind::EmailVerified => IdpEvent::EmailVerified {
            meta,
            tenant,
            email: optional_str(data, "email", "data.email is not a string")?,
        },
    })
}

// serde_json's messages may quote the payload: they are dropped, and every
// reason below is a fixed string.

fn parse_json(body: &[u8]) -> Result<Value, WebhookError> {
    serde_json::from_slice(body).map_err(|_| WebhookError::Malformed("body is not JSON"))
}

fn root_object(value: &Value) -> Result<&Map<String, Value>, WebhookError> {
    value
        .as_object()
        .ok_or(WebhookError::Malformed("body is not a JSON object"))
}

fn required_str<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    reason: &'static str,
) -> Result<&'a str, WebhookError> {
    match map.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        _ => Err(WebhookError::Malformed(reason)),
    }
}

fn required_object<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    reason: &'static str,
) -> Result<&'a Map<String, Value>, WebhookError> {
    map.get(key)
        .and_then(Value::as_object)
        .ok_or(WebhookError::Malformed(reason))
}

/// Absent or `null` is `None`; a string is kept (bounded); anything else is
/// malformed.
fn optional_str(
    map: &Map<String, Value>,
    key: &str,
    reason: &'static str,
) -> Result<Option<String>, WebhookError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => bounded(s, reason).map(Some),
        Some(_) => Err(WebhookError::Malformed(reason)),
    }
}

fn optional_bool(
    map: &Map<String, Value>,
    key: &str,
    reason: &'static str,
) -> Result<Option<bool>, WebhookError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(WebhookError::Malformed(reason)),
    }
}

fn bounded(value: &str, reason: &'static str) -> Result<String, WebhookError> {
    if value.len() > MAX_FIELD_LEN {
        return Err(WebhookError::Malformed(reason));
    }
    Ok(value.to_owned())
}

/// `id`: non-empty printable ASCII, bounded (a dedupe key in our store).
fn event_id(root: &Map<String, Value>) -> Result<String, WebhookError> {
    let id = required_str(root, "id", "id is missing or not a string")?;
    if id.len() > MAX_EVENT_ID_LEN || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(WebhookError::Malformed(
            "id is too long or not printable ASCII",
        ));
    }
    Ok(id.to_owned())
}

/// `time`: RFC 3339.
fn event_time(root: &Map<String, Value>) -> Result<OffsetDateTime, WebhookError> {
    let time = required_str(root, "time", "time is missing or not a string")?;
    OffsetDateTime::parse(time, &Rfc3339)
        .map_err(|_| WebhookError::Malformed("time is not an RFC 3339 date-time"))
}
