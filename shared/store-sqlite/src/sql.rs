//! Helpers every module of the store shares: error mapping and the
//! conversions of numbers and times to and from columns.

use peak_domain::ports::StoreError;
use rusqlite::ErrorCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub(crate) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Busy or locked → `Unavailable` (worth retrying); anything else → `Backend`.
pub(crate) fn db_error(e: rusqlite::Error) -> StoreError {
    if is_busy(&e) {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Backend(e.to_string())
    }
}

pub(crate) fn open_error(context: &str, e: rusqlite::Error) -> StoreError {
    match db_error(e) {
        StoreError::Unavailable(m) => StoreError::Unavailable(format!("{context}: {m}")),
        other => StoreError::Backend(format!("{context}: {other}")),
    }
}

/// A UNIQUE constraint (not the primary key, not a CHECK) failed.
pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

pub(crate) fn to_i64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::Backend(format!("{what} {value} is too large to store")))
}

pub(crate) fn to_u64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value)
        .map_err(|_| StoreError::Backend(format!("stored {what} {value} is negative")))
}

pub(crate) fn format_time(t: OffsetDateTime, what: &str) -> Result<String, StoreError> {
    t.format(&Rfc3339)
        .map_err(|e| StoreError::Backend(format!("cannot store {what} {t}: {e}")))
}

pub(crate) fn parse_time(text: &str, what: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| StoreError::Backend(format!("stored {what} {text:?} is not RFC 3339: {e}")))
}

/// Unix time in milliseconds, saturating.
pub(crate) fn unix_millis(t: OffsetDateTime) -> i64 {
    let ms = t.unix_timestamp_nanos().div_euclid(1_000_000);
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

/// A Unix time in milliseconds as a time.
pub(crate) fn from_unix_millis(ms: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| StoreError::Backend(format!("stored time {ms} ms is out of range: {e}")))
}

pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Backend(format!("cannot encode {what}: {e}")))
}

pub(crate) fn from_json<T: for<'de> Deserialize<'de>>(
    text: &str,
    what: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Backend(format!("stored {what} is not valid: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_exactly_with_their_offset() {
        let t = time::macros::datetime!(2024-02-29 23:59:58.123456789 +05:30);
        let text = format_time(t, "t").unwrap();
        let back = parse_time(&text, "t").unwrap();
        assert_eq!(back, t);
        assert_eq!(back.offset(), t.offset());
        assert_eq!(back.nanosecond(), 123_456_789);
    }

    #[test]
    fn busy_and_locked_are_unavailable() {
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(matches!(db_error(busy), StoreError::Unavailable(_)));
        let locked = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_LOCKED),
            None,
        );
        assert!(matches!(db_error(locked), StoreError::Unavailable(_)));
        assert!(matches!(
            db_error(rusqlite::Error::QueryReturnedNoRows),
            StoreError::Backend(_)
        ));
    }
}
