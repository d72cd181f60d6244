//! SDK errors → [`StoreError`]. Messages name the operation and the error
//! code only: never item contents, keys or personal data.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use peak_domain::ports::StoreError;
use std::time::Duration;

/// Service error codes that mean "try again later".
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    // A single-item write on an item a transaction holds.
    "TransactionConflictException",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
];

/// Maps any SDK failure of `op` that the caller did not handle itself.
pub(crate) fn sdk<E: ProvideErrorMetadata>(
    op: &str,
    err: &SdkError<E, HttpResponse>,
) -> StoreError {
    match err {
        SdkError::TimeoutError(_) => StoreError::Unavailable(format!("{op}: timed out")),
        // The connection error (refused, reset, TLS) says what an SRE needs;
        // it holds addresses and I/O reasons, never request contents.
        SdkError::DispatchFailure(e) => StoreError::Unavailable(match e.as_connector_error() {
            Some(c) => format!(
                "{op}: could not reach DynamoDB ({})",
                aws_sdk_dynamodb::error::DisplayErrorContext(c)
            ),
            None => format!("{op}: could not reach DynamoDB"),
        }),
        SdkError::ConstructionFailure(_) => {
            StoreError::Backend(format!("{op}: could not build the request"))
        }
        SdkError::ServiceError(e) => service(op, e.err().code(), e.raw().status().as_u16()),
        SdkError::ResponseError(e) => {
            let status = e.raw().status().as_u16();
            if status >= 500 {
                StoreError::Unavailable(format!("{op}: HTTP {status}"))
            } else {
                StoreError::Backend(format!("{op}: unreadable response (HTTP {status})"))
            }
        }
        _ => StoreError::Backend(format!("{op}: unexpected SDK error")),
    }
}

fn service(op: &str, code: Option<&str>, status: u16) -> StoreError {
    let code = code.unwrap_or("unknown error");
    if status >= 500 || RETRYABLE_CODES.contains(&code) {
        StoreError::Unavailable(format!("{op}: {code}"))
    } else {
        StoreError::Backend(format!("{op}: {code}"))
    }
}

/// A transaction refused for a reason other than our own conditions: a
/// conflict with a concurrent transaction is worth retrying.
pub(crate) fn cancelled(op: &str, reasons: &[Option<&str>]) -> StoreError {
    let codes: Vec<&str> = reasons
        .iter()
        .map(|c| c.unwrap_or("None"))
        .filter(|c| *c != "None")
        .collect();
    if codes.iter().any(|c| {
        matches!(
            *c,
            "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
        )
    }) {
        StoreError::Unavailable(format!(
            "{op}: transaction cancelled ({})",
            codes.join(", ")
        ))
    } else {
        StoreError::Backend(format!(
            "{op}: transaction cancelled ({})",
            codes.join(", ")
        ))
    }
}

pub(crate) fn malformed(what: &str) -> StoreError {
    StoreError::Backend(format!("malformed item: {what}"))
}

/// Attempts of a user write that keeps conflicting with concurrent ones.
pub(crate) const WRITE_ATTEMPTS: u32 = 8;
/// Backoff before retry n: a random wait up to min(BASE·2ⁿ, CAP) ms.
pub(crate) const BACKOFF_BASE_MS: u64 = 10;
pub(crate) const BACKOFF_CAP_MS: u64 = 400;
/// Attempts of a guard lookup whose guard moves between its two reads,
/// and of an idempotency claim racing an expiry.
pub(crate) const LOOKUP_ATTEMPTS: usize = 3;

/// A random wait before retry `attempt` (full jitter).
pub(crate) fn backoff(attempt: u32) -> Duration {
    use std::hash::{BuildHasher, RandomState};
    let cap = BACKOFF_BASE_MS
        .saturating_mul(1u64 << attempt.min(16))
        .min(BACKOFF_CAP_MS);
    let random = RandomState::new().hash_one(std::time::SystemTime::now());
    Duration::from_millis(1 + random % cap.max(1))
}

pub(crate) fn is_condition_failed<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    e.as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_server_errors_are_retryable() {
        assert!(matches!(
            service("get", Some("ThrottlingException"), 400),
            StoreError::Unavailable(_)
        ));
        for code in [
            "ProvisionedThroughputExceededException",
            "RequestLimitExceeded",
            "TransactionConflictException",
        ] {
            assert!(matches!(
                service("put", Some(code), 400),
                StoreError::Unavailable(_)
            ));
        }
        assert!(matches!(
            service("get", None, 503),
            StoreError::Unavailable(_)
        ));
        assert_eq!(
            service("get", Some("ValidationException"), 400),
            StoreError::Backend("get: ValidationException".into())
        );
        assert!(matches!(
            cancelled("insert", &[Some("None"), Some("TransactionConflict")]),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            cancelled("insert", &[Some("ValidationError"), None]),
            StoreError::Backend(_)
        ));
    }

    #[test]
    fn backoff_stays_within_its_cap() {
        for attempt in 0..20 {
            let d = backoff(attempt);
            assert!(d >= Duration::from_millis(1) && d <= Duration::from_millis(BACKOFF_CAP_MS));
        }
    }
}
