//! Email delivery. Every email is an outbox record written with the change
//! that causes it (see `peak_domain::outbox`); the [`Mailer`] sends it at
//! most once per successful attempt:
//!
//! 1. claim the record (a lease, one conditional write: only one mailer
//!    holds it),
//! 2. drop it as failed if its user is gone, otherwise render it in the
//!    tenant's brand (password resets get the identity provider's link now),
//! 3. wait for the send rate ([`RateLimiter`]), send it through an
//!    [`EmailSender`],
//!    The send rate is the account's: with [`Mailer::with_send_budget`] one
//!    budget per second counted in the table, shared by every instance.
//! 4. complete the record (sent, its data dropped), or fail it: transient
//!    errors are retried with exponential backoff and jitter, permanent
//!    ones (and transient ones past the last attempt) are listed by the
//!    store's `failed_outbox`. A throttled send (SES's rate, or the budget
//!    spent) is put back without counting an attempt: being throttled never
//!    fails an email.
//!
//! In AWS the DynamoDB stream of the table triggers delivery
//! ([`Mailer::handle_stream_batch`]); locally, and as a sweeper for emails
//! whose stream retries ran out, [`Mailer::drain_once`] sends what is due.
//!
//! Senders: [`SesSender`] (Amazon SES v2; `SES_ENDPOINT` points it at moto
//! locally) and [`EmlFolderSender`] (the local default: `.eml` files and one
//! console line per email).
//!
//! Logs never hold a full address (`Email::masked`), a link, or an email's
//! content.

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod eml;
mod mailer;
mod rate;
mod ses;
mod stream;

/// The stream event [`Mailer::handle_stream_batch`] takes and its answer
/// (the `aws_lambda_events` that `lambda_http` uses too).
pub use aws_lambda_events::dynamodb::Event as DynamoDbEvent;
pub use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
pub use eml::{EmlFolderSender, to_eml};
pub use mailer::{
    Delivery, DrainRun, DrainSummary, Mailer, MailerConfig, SES_BUDGET_BUCKET, backoff,
};
pub use rate::{DEFAULT_SEND_RATE, RateLimiter};
pub use ses::{SesSender, ses_client_from_env};

use async_trait::async_trait;
use peak_domain::model::user::{Email, mask_email};

/// One email, ready to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// The From address, `addr@domain` or `Display Name <addr@domain>` (a
    /// verified SES identity).
    pub from: String,
    pub reply_to: Option<String>,
    pub to: Email,
    pub subject: String,
    pub html: String,
    pub text: String,
    /// The SES configuration set (event publishing: bounces, complaints).
    pub configuration_set: Option<String>,
    /// The outbox id: the same email sent again has the same id (SES gets
    /// it as the `outbox_id` message tag; the .eml folder as the file name).
    pub idempotency_id: String,
    /// What kind of email (an outbox `EmailKind` name), if known: the SES
    /// `kind` message tag and the .eml file name's suffix.
    pub kind: Option<String>,
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Throttling, a quota, a timeout, a server error, sending paused:
    /// worth retrying later.
    #[error("transient send failure: {0}")]
    Transient(String),
    /// The email itself was refused (rejected, unverified sender, unknown
    /// configuration set, a bad request): retrying will not help.
    #[error("permanent send failure: {0}")]
    Permanent(String),
    /// The provider throttled the send (SES `TooManyRequestsException`,
    /// 429): nothing is wrong with the email; it is retried without
    /// counting an attempt.
    #[error("send throttled: {0}")]
    Throttled(String),
}

impl SendError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_) | Self::Throttled(_))
    }
}

/// Sends one email; returns the provider's message id.
#[async_trait]
pub trait EmailSender: Send + Sync {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError>;
}

/// `text` with every email address in it masked (`j***@example.com`), for
/// error messages that may quote one (SES names unverified addresses).
pub fn redact_emails(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.contains('@') {
            out.push_str(&mask_email(word));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_alphanumeric() || matches!(c, '@' | '.' | '_' | '-' | '+' | '%') {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_in_error_text_are_masked() {
        assert_eq!(
            redact_emails("Email address is not verified: ada.l@example.com, bob@x.org."),
            "Email address is not verified: a***@example.com, b***@x.org."
        );
        assert_eq!(redact_emails("no address here"), "no address here");
        assert_eq!(redact_emails("<jane@example.com>"), "<j***@example.com>");
    }
}
