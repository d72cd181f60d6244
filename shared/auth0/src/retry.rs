//! The one retry policy every Management API call goes through.

use crate::call::Call;
use http::StatusCode;
use http::header::HeaderMap;
use peak_domain::identity::IdpError;
use std::sync::Mutex as StdMutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// First backoff ceiling; doubles per attempt.
pub const BACKOFF_BASE: Duration = Duration::from_millis(200);
/// Largest backoff ceiling.
pub const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// Why an attempt got no final answer.
pub(crate) enum Outcome {
    /// 429, with the wait Auth0 asked for, if it said.
    RateLimited(Option<Duration>),
    ServerError(StatusCode),
    Timeout,
    Connect,
    Transport,
}

impl Outcome {
    fn label(&self) -> String {
        match self {
            Outcome::RateLimited(_) => "429 Too Many Requests".into(),
            Outcome::ServerError(status) => status.to_string(),
            Outcome::Timeout => "timeout".into(),
            Outcome::Connect => "connection error".into(),
            Outcome::Transport => "transport error".into(),
        }
    }
}

/// The attempts of one request within its call's deadline.
pub(crate) struct Attempt<'a> {
    call: &'a Call,
    deadline: Instant,
    request_timeout: Duration,
    not_before: &'a StdMutex<Option<Instant>>,
    number: u32,
}

impl<'a> Attempt<'a> {
    pub fn new(
        call: &'a Call,
        deadline: Instant,
        request_timeout: Duration,
        not_before: &'a StdMutex<Option<Instant>>,
    ) -> Self {
        Self {
            call,
            deadline,
            request_timeout,
            not_before,
            number: 0,
        }
    }

    /// Waits out a rate-limit pause any caller learnt of; returns the time
    /// this attempt may take.
    pub async fn before_sending(&mut self) -> Result<Duration, IdpError> {
        loop {
            let pause = *self.not_before.lock().unwrap_or_else(|p| p.into_inner());
            let Some(until) = pause.filter(|&u| u > Instant::now()) else {
                break;
            };
            if until >= self.deadline {
                tracing::warn!(
                    op = self.call.op,
                    method = %self.call.method,
                    path = self.call.template,
                    attempt = self.number,
                    wait_ms = millis(until - Instant::now()),
                    "giving up on an Auth0 call: rate limited past the call deadline"
                );
                return Err(IdpError::Unavailable(format!(
                    "Auth0 {}: rate limited past the call deadline",
                    self.call.op
                )));
            }
            tracing::debug!(
                op = self.call.op,
                method = %self.call.method,
                path = self.call.template,
                wait_ms = millis(until - Instant::now()),
                "waiting out Auth0's rate limit"
            );
            tokio::time::sleep_until(until).await;
        }
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(IdpError::Unavailable(format!(
                "Auth0 {}: no time left within the call deadline",
                self.call.op
            )));
        }
        self.number += 1;
        Ok(left.min(self.request_timeout))
    }

    pub fn answered(&self, status: StatusCode) {
        tracing::debug!(
            op = self.call.op,
            method = %self.call.method,
            path = self.call.template,
            status = status.as_u16(),
            attempt = self.number,
            "Auth0 answered"
        );
    }

    /// Sleeps before the next attempt, or gives up when that sleep would
    /// end past the deadline.
    pub async fn after_failure(&mut self, outcome: Outcome) -> Result<(), IdpError> {
        let wait = match outcome {
            Outcome::RateLimited(asked) => {
                let wait = asked
                    .unwrap_or_else(|| backoff(self.number))
                    .max(BACKOFF_BASE);
                let until = Instant::now() + wait;
                let mut shared = self.not_before.lock().unwrap_or_else(|p| p.into_inner());
                if shared.is_none_or(|t| t < until) {
                    *shared = Some(until);
                }
                wait
            }
            _ => backoff(self.number),
        };
        let label = outcome.label();
        if Instant::now() + wait >= self.deadline {
            tracing::warn!(
                op = self.call.op,
                method = %self.call.method,
                path = self.call.template,
                status = %label,
                attempt = self.number,
                wait_ms = millis(wait),
                "giving up on an Auth0 call: the next try would pass the call deadline"
            );
            return Err(IdpError::Unavailable(format!(
                "Auth0 {}: {label} on attempt {}; the next try would pass the call deadline",
                self.call.op, self.number
            )));
        }
        tracing::warn!(
            op = self.call.op,
            method = %self.call.method,
            path = self.call.template,
            status = %label,
            attempt = self.number,
            wait_ms = millis(wait),
            "retrying an Auth0 call"
        );
        tokio::time::sleep(wait).await;
        Ok(())
    }
}

/// Full jitter: uniform in `[0, min(cap, base · 2^(attempt-1))]`.
pub fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(BACKOFF_CAP);
    let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    let random = getrandom::u64().unwrap_or(ceiling_ms / 2);
    Duration::from_millis(random % (ceiling_ms + 1))
}

/// What a 429 asks for: `Retry-After` seconds, else until
/// `x-ratelimit-reset` (Unix seconds).
pub fn rate_limit_wait(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    if let Some(secs) = number("retry-after") {
        return Some(Duration::from_secs(secs));
    }
    let reset = number("x-ratelimit-reset")?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    Duration::from_secs(reset)
        .checked_sub(now)
        .filter(|d| !d.is_zero())
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::HeaderValue;

    #[test]
    fn backoff_grows_to_the_cap_with_full_jitter() {
        for attempt in 1..40 {
            let d = backoff(attempt);
            let ceiling = (BACKOFF_BASE * 2u32.pow((attempt - 1).min(16))).min(BACKOFF_CAP);
            assert!(d <= ceiling, "attempt {attempt}: {d:?} > {ceiling:?}");
        }
        let spread: std::collections::HashSet<_> = (0..20).map(|_| backoff(6)).collect();
        assert!(spread.len() > 1, "no jitter");
    }

    #[test]
    fn rate_limit_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(rate_limit_wait(&h), None);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let reset = (now.as_secs() + 3).to_string();
        h.insert("x-ratelimit-reset", HeaderValue::from_str(&reset).unwrap());
        let d = rate_limit_wait(&h).unwrap();
        assert!(
            d > Duration::from_secs(1) && d <= Duration::from_secs(3),
            "{d:?}"
        );
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(rate_limit_wait(&h), Some(Duration::from_secs(7)));
        let mut past = HeaderMap::new();
        past.insert("x-ratelimit-reset", HeaderValue::from_static("1000"));
        assert_eq!(rate_limit_wait(&past), None);
    }
}
