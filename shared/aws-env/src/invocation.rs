//! The invocation's deadline, for every call made on its behalf.
//!
//! Lambda stops an invocation at its deadline (the function's `Timeout`),
//! whatever it is doing. A downstream call with a budget of its own (an
//! Auth0 Management API call has 10 s) that starts late would run past it:
//! the function is killed, API Gateway answers a bare 503/504, and an
//! owed-work attempt is never recorded. So the runtime glue sets the
//! invocation's deadline around each event ([`within`]), and clients cap
//! their own deadlines at it ([`cap`]), leaving [`ANSWER_MARGIN`] to write
//! the answer or record the failure.
//!
//! A task-local rather than a parameter: the deadline belongs to the
//! invocation, not to any port's operation, and every identity-provider
//! method would otherwise carry it. Outside an invocation (tests, the local
//! server) there is none and nothing is capped.

use std::future::Future;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// Kept free at the end of an invocation: to answer (a 503 with
/// `Retry-After`), record a failed attempt, or report batch item failures.
pub const ANSWER_MARGIN: Duration = Duration::from_millis(1_000);

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `f` with `deadline` (if any) as the invocation's deadline.
pub async fn within<F: Future>(deadline: Option<Instant>, f: F) -> F::Output {
    match deadline {
        Some(d) => DEADLINE.scope(d, f).await,
        None => f.await,
    }
}

/// The invocation's deadline, less [`ANSWER_MARGIN`]: Lambda's
/// `Lambda-Runtime-Deadline-Ms` (milliseconds since the epoch) on this
/// process's monotonic clock (tokio's, which tests can pause).
pub fn from_epoch_millis(deadline_ms: u64) -> Instant {
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(deadline_ms);
    let left = at
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    Instant::now() + left.saturating_sub(ANSWER_MARGIN)
}

/// The current invocation's deadline, if running inside [`within`].
pub fn deadline() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok()
}

/// `at`, or the invocation's deadline if that comes first.
pub fn cap(at: Instant) -> Instant {
    deadline().map_or(at, |d| at.min(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_deadline_caps_only_inside_its_invocation() {
        let soon = Instant::now() + Duration::from_secs(2);
        let later = Instant::now() + Duration::from_secs(10);
        assert_eq!(cap(later), later, "no invocation: nothing is capped");
        within(Some(soon), async {
            assert_eq!(deadline(), Some(soon));
            assert_eq!(cap(later), soon);
            let earlier = Instant::now() + Duration::from_millis(500);
            assert_eq!(cap(earlier), earlier, "an earlier deadline stays");
        })
        .await;
        assert_eq!(deadline(), None);
        within(None, async { assert_eq!(cap(later), later) }).await;
    }

    #[test]
    fn the_lambda_deadline_keeps_the_answer_margin() {
        let ms = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64
        };
        let d = from_epoch_millis(ms(SystemTime::now() + Duration::from_secs(10)));
        let left = d.saturating_duration_since(Instant::now());
        assert!(left <= Duration::from_secs(9), "{left:?}");
        assert!(left > Duration::from_secs(8), "{left:?}");
        // Already past: now, not a panic.
        let past = from_epoch_millis(ms(SystemTime::now() - Duration::from_secs(5)));
        assert!(past <= Instant::now());
    }
}
