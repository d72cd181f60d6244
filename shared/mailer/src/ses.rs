//! Amazon SES v2 `SendEmail` with simple content (HTML and text).

use crate::{EmailSender, OutgoingEmail, SendError, redact_emails};
use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::config::http::HttpResponse;
use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message, MessageTag};
use peak_aws_env::TimeoutConfig;
use std::time::Duration;

/// Error codes of SES's rate throttling (also seen as the status 429).
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
];

/// Error codes (outside the modelled ones) that a later attempt may get
/// past: throttling, server trouble, and credentials or permissions that an
/// operator can fix without the email being at fault.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestTimeout",
    "RequestTimeoutException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalServerError",
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
];

/// An SES v2 client, configured from the environment (`peak_aws_env`), with
/// short timeouts. When `SES_ENDPOINT` is set (moto), requests go there, with
/// dummy credentials and region `us-east-1` if none are set.
pub async fn ses_client_from_env() -> Client {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(5))
        .operation_timeout(Duration::from_secs(12))
        .build();
    Client::new(&peak_aws_env::sdk_config("SES_ENDPOINT", Some(timeouts)))
}

/// Sends through SES v2. Tags every message with `outbox_id` (and `kind`)
/// so bounce and complaint events can be traced back to the outbox record.
#[derive(Debug, Clone)]
pub struct SesSender {
    client: Client,
}

impl SesSender {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// Over [`ses_client_from_env`].
    pub async fn from_env() -> Self {
        Self::new(ses_client_from_env().await)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

#[async_trait]
impl EmailSender for SesSender {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError> {
        let content = |data: &str| {
            Content::builder()
                .data(data)
                .charset("UTF-8")
                .build()
                .map_err(|e| SendError::Permanent(format!("cannot build the email: {e}")))
        };
        let message = Message::builder()
            .subject(content(&email.subject)?)
            .body(
                Body::builder()
                    .html(content(&email.html)?)
                    .text(content(&email.text)?)
                    .build(),
            )
            .build();
        let mut request = self
            .client
            .send_email()
            .from_email_address(&email.from)
            .destination(
                Destination::builder()
                    .to_addresses(email.to.as_str())
                    .build(),
            )
            .content(EmailContent::builder().simple(message).build());
        if let Some(reply_to) = email.reply_to.as_deref().filter(|r| !r.is_empty()) {
            request = request.reply_to_addresses(reply_to);
        }
        if let Some(set) = email.configuration_set.as_deref().filter(|s| !s.is_empty()) {
            request = request.configuration_set_name(set);
        }
        for (name, value) in [
            ("outbox_id", Some(email.idempotency_id.as_str())),
            ("kind", email.kind.as_deref()),
        ] {
            if let Some(value) = value.filter(|v| is_tag_value(v)) {
                let tag = MessageTag::builder()
                    .name(name)
                    .value(value)
                    .build()
                    .map_err(|e| SendError::Permanent(format!("cannot build a tag: {e}")))?;
                request = request.email_tags(tag);
            }
        }
        let out = request.send().await.map_err(|e| classify(&e))?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }
}

/// SES tag values: 1 to 256 ASCII letters, digits, `_` and `-`.
fn is_tag_value(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 256
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Throttling, quotas, paused or suspended sending, 5xx, timeouts and
/// connection failures are transient; a rejected message, an unverified
/// MAIL FROM domain, a missing configuration set or identity and a bad
/// request are permanent. Messages are stripped of email addresses.
fn classify(e: &SdkError<SendEmailError, HttpResponse>) -> SendError {
    match e {
        SdkError::ServiceError(service) => {
            classify_service(service.err(), service.raw().status().as_u16())
        }
        SdkError::TimeoutError(_) => SendError::Transient("SES: timed out".into()),
        SdkError::DispatchFailure(d) => SendError::Transient(format!(
            "SES: could not send the request ({})",
            if d.is_timeout() {
                "timeout"
            } else if d.is_io() {
                "connection"
            } else {
                "dispatch"
            }
        )),
        SdkError::ResponseError(_) => SendError::Transient("SES: unreadable response".into()),
        // Building the request failed (credentials missing, say): an
        // operator can fix that, and the attempts are bounded.
        other => SendError::Transient(redact_emails(&format!("SES: {other}"))),
    }
}

fn classify_service(err: &SendEmailError, status: u16) -> SendError {
    let code = err.code().unwrap_or("Unknown");
    let text = redact_emails(&match err.message() {
        Some(message) => format!("SES {code}: {message}"),
        None => format!("SES {code}: {err}"),
    });
    // The rate: retried without counting an attempt. (A daily quota or a
    // paused account is not a rate: those count, as other transient
    // failures do.)
    let throttled = matches!(err, SendEmailError::TooManyRequestsException(_))
        || status == 429
        || THROTTLING_CODES.contains(&code);
    if throttled {
        return SendError::Throttled(text);
    }
    let transient = match err {
        SendEmailError::LimitExceededException(_)
        | SendEmailError::SendingPausedException(_)
        | SendEmailError::AccountSuspendedException(_) => true,
        SendEmailError::MessageRejected(_)
        | SendEmailError::MailFromDomainNotVerifiedException(_)
        | SendEmailError::NotFoundException(_)
        | SendEmailError::BadRequestException(_) => false,
        _ => status >= 500 || status == 429 || TRANSIENT_CODES.contains(&code),
    };
    if transient {
        SendError::Transient(text)
    } else {
        SendError::Permanent(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sesv2::types::error::{MessageRejected, TooManyRequestsException};

    fn unhandled(code: &str) -> SendEmailError {
        let meta = aws_sdk_sesv2::error::ErrorMetadata::builder()
            .code(code)
            .message("m")
            .build();
        SendEmailError::generic(meta)
    }

    #[test]
    fn errors_are_classified() {
        let text = "Email address is not verified: ada@example.com";
        let rejected = MessageRejected::builder()
            .message(text)
            .meta(
                aws_sdk_sesv2::error::ErrorMetadata::builder()
                    .code("MessageRejected")
                    .message(text)
                    .build(),
            )
            .build();
        match classify_service(&SendEmailError::MessageRejected(rejected), 400) {
            SendError::Permanent(m) => {
                assert!(m.contains("a***@example.com"), "{m}");
                assert!(!m.contains("ada@"), "{m}");
            }
            other => panic!("{other:?}"),
        }
        let throttled = TooManyRequestsException::builder().build();
        assert!(matches!(
            classify_service(&SendEmailError::TooManyRequestsException(throttled), 429),
            SendError::Throttled(_)
        ));
        assert!(matches!(
            classify_service(&unhandled("Throttling"), 400),
            SendError::Throttled(_)
        ));
        assert!(matches!(
            classify_service(&unhandled("Whatever"), 429),
            SendError::Throttled(_)
        ));
        assert!(matches!(
            classify_service(&unhandled("InternalFailure"), 500),
            SendError::Transient(_)
        ));
        assert!(classify_service(&unhandled("InternalFailure"), 500).is_transient());
        assert!(classify_service(&unhandled("Whatever"), 503).is_transient());
        assert!(!classify_service(&unhandled("InvalidParameterValue"), 400).is_transient());
        let timeout: SdkError<SendEmailError, HttpResponse> = SdkError::timeout_error("slow");
        assert!(classify(&timeout).is_transient());
    }

    #[test]
    fn tag_values_are_checked() {
        assert!(is_tag_value("01JAAAAAAAAAAAAAAAAAAAAAAA"));
        assert!(is_tag_value("password_reset"));
        assert!(!is_tag_value("a b"));
        assert!(!is_tag_value(""));
    }
}
