//! The send rate: a token bucket that makes callers wait (backpressure),
//! never refuses.

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// SES's maximum send rate once out of the sandbox (per second, per
/// account and region); the sandbox allows 1.
pub const DEFAULT_SEND_RATE: f64 = 14.0;

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
/// [`acquire`](Self::acquire) takes one token, waiting for it when the
/// bucket is empty; waiters are served in the order they asked.
///
/// Per process: it smooths one mailer's sends. Several mailers running at
/// once (Lambda instances) share the account's rate through
/// [`Mailer::with_send_budget`](crate::Mailer::with_send_budget) (a counter
/// in the table); SES's own throttling is retried without counting an
/// attempt.
#[derive(Debug)]
pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// May go negative: tokens promised to callers still waiting.
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// `per_sec` sends a second (values that are not positive and finite
    /// become 1), with a burst of one second's worth (at least 1).
    pub fn per_second(per_sec: f64) -> Self {
        let per_sec = if per_sec.is_finite() && per_sec > 0.0 {
            per_sec
        } else {
            1.0
        };
        let burst = per_sec.max(1.0);
        Self {
            per_sec,
            burst,
            state: Mutex::new(Bucket {
                tokens: burst,
                at: Instant::now(),
            }),
        }
    }

    /// From `SES_MAX_SEND_RATE` (sends per second, may be fractional),
    /// [`DEFAULT_SEND_RATE`] when unset or unreadable.
    pub fn from_env() -> Self {
        let rate = std::env::var("SES_MAX_SEND_RATE")
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|r| r.is_finite() && *r > 0.0)
            .unwrap_or(DEFAULT_SEND_RATE);
        Self::per_second(rate)
    }

    /// No limit worth the name (tests, the local .eml folder).
    pub fn unlimited() -> Self {
        Self::per_second(1e9)
    }

    pub fn rate(&self) -> f64 {
        self.per_sec
    }

    /// Takes one token, waiting as long as it takes to get it.
    pub async fn acquire(&self) {
        let wait = self.reserve();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Takes a token now (possibly one not refilled yet) and says how long
    /// to wait before using it.
    fn reserve(&self) -> Duration {
        let mut b = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let refill = now.saturating_duration_since(b.at).as_secs_f64() * self.per_sec;
        b.tokens = (b.tokens + refill).min(self.burst);
        b.at = now;
        b.tokens -= 1.0;
        if b.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-b.tokens / self.per_sec)
        }
    }
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::per_second(DEFAULT_SEND_RATE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Paused tokio time: the clock moves only when every task waits, so
    /// the counts below do not depend on how fast the machine is.
    #[tokio::test(start_paused = true)]
    async fn callers_wait_their_turn_and_none_is_refused() {
        let limiter = Arc::new(RateLimiter::per_second(2.0));
        let start = Instant::now();
        let done = Arc::new(Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..6)
            .map(|i| {
                let limiter = limiter.clone();
                let done = done.clone();
                tokio::spawn(async move {
                    limiter.acquire().await;
                    done.lock().unwrap().push((i, start.elapsed()));
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let done = done.lock().unwrap().clone();
        assert_eq!(done.len(), 6, "every caller got through");
        let at = |limit: Duration| done.iter().filter(|(_, t)| *t <= limit).count();
        assert_eq!(at(Duration::ZERO), 2, "the burst goes at once");
        assert_eq!(at(Duration::from_millis(500)), 3);
        assert_eq!(at(Duration::from_millis(1000)), 4);
        assert_eq!(at(Duration::from_millis(2000)), 6);
        let order: Vec<_> = done.iter().map(|(i, _)| *i).collect();
        assert_eq!(order, [0, 1, 2, 3, 4, 5], "first come, first served");
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_bucket_refills_up_to_its_burst() {
        let limiter = RateLimiter::per_second(1.0);
        limiter.acquire().await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        let start = Instant::now();
        limiter.acquire().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        limiter.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(1), "burst of one");
    }

    #[test]
    fn nonsense_rates_fall_back_to_one_per_second() {
        assert_eq!(RateLimiter::per_second(0.0).rate(), 1.0);
        assert_eq!(RateLimiter::per_second(f64::NAN).rate(), 1.0);
        assert_eq!(RateLimiter::per_second(-3.0).rate(), 1.0);
        assert_eq!(RateLimiter::per_second(0.5).rate(), 0.5);
    }
}
