//! The Management API client behind [`IdentityProvider`].

use crate::call::Call;
use crate::config::Auth0Config;
use crate::retry::{self, Attempt, Outcome};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Method, StatusCode};
use peak_aws_env::{Https, SendError};
use peak_domain::identity::IdpError;
use peak_domain::ports::RateLimits;
use serde::Deserialize;
use serde_json::{Value, json};
use std::fmt;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;
use tokio::time::Instant;

/// The Auth0 Management API as our [`IdentityProvider`].
///
/// Cheap to construct (no network until the first call) and to clone (clones
/// share the HTTP connection pool, the cached access token and the rate-limit
/// wait).
///
/// Every call has one time budget, [`Auth0Config::call_deadline`] (cut
/// short by the Lambda invocation's own deadline,
/// [`peak_aws_env::invocation`]), that covers fetching a token, every
/// attempt and every wait:
/// - 429: waits `Retry-After` seconds (else until `x-ratelimit-reset`, else a
///   backoff), and makes every other call through this client wait as well;
/// - 5xx, timeouts ([`Auth0Config::request_timeout`] per attempt) and
///   connection errors: exponential backoff with full jitter (200 ms base,
///   5 s cap);
/// - 401: the cached token is dropped and fetched again, once;
/// - any other 4xx: [`IdpError::Rejected`] at once, naming the status and
///   Auth0's `errorCode`;
/// - when the next wait would end past the deadline: [`IdpError::Unavailable`].
///
/// Errors and logs name the operation, method, path template, status,
/// attempt and wait; never the token, the client secret, an email address or
/// a name, and never Auth0's free-text `message` (it can quote them).
#[derive(Clone)]
pub struct Auth0Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: Auth0Config,
    /// Its own connection pool over the process's TLS configuration
    /// (`peak_aws_env::https`). One that cannot be built (an unusable `SSL_CERT_FILE`) is reported by every
    /// call as `Unavailable`, so constructing an `Auth0Client` cannot fail.
    http: Result<Https, String>,
    /// Held while a token is fetched: one fetch at a time, and callers that
    /// arrive meanwhile use its result.
    token: tokio::sync::Mutex<Option<CachedToken>>,
    /// No request before this instant (Auth0 said 429).
    not_before: StdMutex<Option<Instant>>,
    /// The Management API's rate budget, shared with every other instance.
    budget: std::sync::OnceLock<Arc<dyn RateLimits>>,
}

struct CachedToken {
    value: String,
    refresh_at: Instant,
}

impl fmt::Debug for Auth0Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth0Client")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// A final answer (2xx, or a 4xx other than 429).
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Auth0Client {
    /// With a connection pool of its own over the process's HTTP(S) client
    /// and TLS configuration (`peak_aws_env::https`, shared with the AWS SDK
    /// clients and the JWKS fetch). It needs no client-wide timeout: every attempt has its own
    /// (`Auth0Config::request_timeout`).
    pub fn new(config: Auth0Config) -> Self {
        let http = peak_aws_env::https().map_err(|e| format!("Auth0: {e}"));
        Self::with_http(config, http)
    }

    fn with_http(config: Auth0Config, http: Result<Https, String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                http,
                token: tokio::sync::Mutex::new(None),
                not_before: StdMutex::new(None),
                budget: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Spends [`Auth0Config::max_rps`] per second across every client
    /// over the same `limits` (every Lambda instance over the table): the
    /// Management API's limit is per Auth0 tenant, so a per-instance pace
    /// exceeds it as soon as two instances run. Each Management API request
    /// takes one hit of the fixed one-second window
    /// [`RATE_BUDGET_BUCKET`]; when the second's budget is spent, it waits
    /// for the next second (within its call deadline) instead of sending
    /// and getting a 429. Token requests (the Authentication API, limited
    /// apart) and export file downloads (not the Management API) take none.
    pub fn with_rate_budget(self, limits: Arc<dyn RateLimits>) -> Self {
        let _ = self.inner.budget.set(limits);
        self
    }

    pub fn config(&self) -> &Auth0Config {
        &self.inner.config
    }

    /// A call with a token: fetches one if needed, and fetches a new one
    /// (once) when Auth0 answers 401.
    pub(crate) async fn api(&self, call: Call) -> Result<Answer, IdpError> {
        // Never past the invocation's own deadline (less the time to answer):
        // a call started late gets what is left, not its full budget.
        let deadline =
            peak_aws_env::invocation::cap(Instant::now() + self.inner.config.call_deadline);
        let mut token_refreshed = false;
        loop {
            let token = self.token(call.op, deadline).await?;
            let answer = self.send(deadline, &call, Some(&token)).await?;
            if answer.status == StatusCode::UNAUTHORIZED && !token_refreshed {
                token_refreshed = true;
                tracing::info!(
                    op = call.op,
                    method = %call.method,
                    path = call.template,
                    status = 401,
                    "Auth0 refused the access token; fetching a new one"
                );
                self.forget_token(&token, deadline).await;
                continue;
            }
            return Ok(answer);
        }
    }

    async fn token(&self, op: &'static str, deadline: Instant) -> Result<String, IdpError> {
        let mut slot = tokio::time::timeout_at(deadline, self.inner.token.lock())
            .await
            .map_err(|_| {
                IdpError::Unavailable(format!(
                    "Auth0 {op}: no access token before the call deadline"
                ))
            })?;
        if let Some(token) = slot.as_ref()
            && Instant::now() < token.refresh_at
        {
            return Ok(token.value.clone());
        }
        *slot = None;
        let fresh = self.fetch_token(deadline).await?;
        let value = fresh.value.clone();
        *slot = Some(fresh);
        Ok(value)
    }

    async fn forget_token(&self, token: &str, deadline: Instant) {
        if let Ok(mut slot) = tokio::time::timeout_at(deadline, self.inner.token.lock()).await
            && slot.as_ref().is_some_and(|t| t.value == token)
        {
            *slot = None;
        }
    }

    /// Client credentials grant; cached until 10 % of its lifetime (at most
    /// 60 s) before it ends.
    async fn fetch_token(&self, deadline: Instant) -> Result<CachedToken, IdpError> {
        let config = &self.inner.config;
        let asked_at = Instant::now();
        let call =
            Call::new("token", Method::POST, "/oauth/token", "/oauth/token".into()).json(json!({
                "grant_type": "client_credentials",
                "client_id": config.client_id,
                "client_secret": config.client_secret,
                "audience": config.audience,
            }));
        let answer = self.send(deadline, &call, None).await?;
        if answer.status != StatusCode::OK {
            return Err(rejected("token", &answer));
        }
        #[derive(Deserialize)]
        struct Token {
            access_token: String,
            expires_in: u64,
        }
        let token: Token = parse("token", &answer)?;
        let lifetime = Duration::from_secs(token.expires_in);
        let early = (lifetime / 10).min(Duration::from_secs(60));
        tracing::debug!(
            expires_in = token.expires_in,
            "fetched an Auth0 access token"
        );
        Ok(CachedToken {
            value: token.access_token,
            refresh_at: asked_at + (lifetime - early),
        })
    }

    /// Sends `call` until a final answer, under the retry policy.
    pub(crate) async fn send(
        &self,
        deadline: Instant,
        call: &Call,
        bearer: Option<&str>,
    ) -> Result<Answer, IdpError> {
        self.send_timed(deadline, call, bearer, self.inner.config.request_timeout)
            .await
    }

    /// [`Self::send`] with a time for each attempt of its own (a large file
    /// takes longer than an API answer).
    pub(crate) async fn send_timed(
        &self,
        deadline: Instant,
        call: &Call,
        bearer: Option<&str>,
        request_timeout: Duration,
    ) -> Result<Answer, IdpError> {
        let http = self
            .inner
            .http
            .as_ref()
            .map_err(|e| IdpError::Unavailable(e.clone()))?;
        // The export file's location is an absolute (presigned) URL on
        // another host; everything else is a path under the tenant.
        let url = if call.path.starts_with("https://") || call.path.starts_with("http://") {
            call.path.clone()
        } else {
            format!("{}{}", self.inner.config.base_url, call.path)
        };
        let mut attempt = Attempt::new(call, deadline, request_timeout, &self.inner.not_before);
        let budgeted = call.path.starts_with("/api/v2/");
        loop {
            let mut timeout = attempt.before_sending().await?;
            if budgeted && self.spend_budget(call, deadline).await? {
                // Waiting for the budget used up part of this attempt's time.
                timeout = timeout.min(deadline.saturating_duration_since(Instant::now()));
            }
            let request = call.request(&url, bearer).map_err(|e| {
                IdpError::Unavailable(format!("Auth0 {}: building the request: {e}", call.op))
            })?;
            let sent = http.send(request, timeout).await;
            let outcome = match sent {
                Err(SendError::Timeout(_)) => Outcome::Timeout,
                Err(SendError::Connect(_)) => Outcome::Connect,
                Err(SendError::Transport(_)) => Outcome::Transport,
                Ok(response) => {
                    let status = response.status();
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        Outcome::RateLimited(retry::rate_limit_wait(response.headers()))
                    } else if status.is_server_error() {
                        Outcome::ServerError(status)
                    } else {
                        attempt.answered(status);
                        let body = response.into_body().to_vec();
                        return Ok(Answer { status, body });
                    }
                }
            };
            attempt.after_failure(outcome).await?;
        }
    }
}

impl Auth0Client {
    /// Takes one hit of the shared budget, waiting for the next second while
    /// it is spent; `Ok(true)` when it waited. Without a budget, or when the
    /// store cannot count (it is down), the request goes out unpaced: the
    /// 429 handling still protects Auth0, and an outage of the table must
    /// not also stop every Auth0 call.
    async fn spend_budget(&self, call: &Call, deadline: Instant) -> Result<bool, IdpError> {
        let Some(limits) = self.inner.budget.get() else {
            return Ok(false);
        };
        let max = self.inner.config.max_rps;
        let mut waited = false;
        loop {
            let now = time::OffsetDateTime::now_utc();
            let into = Duration::from_nanos(u64::from(now.nanosecond()));
            // Not in the last moments of a second: Auth0 counts a request
            // when it arrives, and one sent at 0.99 s arrives in the next
            // second, on top of that second's budget.
            if into < Duration::from_secs(1) - RATE_BUDGET_GUARD {
                let asked = Instant::now();
                match limits
                    .take_rate_limit(RATE_BUDGET_BUCKET, now, 1, max)
                    .await
                {
                    Ok(true) => {
                        let after = time::OffsetDateTime::now_utc();
                        if after.unix_timestamp() == now.unix_timestamp() {
                            return Ok(waited);
                        }
                        // Counting took us into the next second: that hit is
                        // lost (a request fewer, never one more), take again
                        // — unless the store is too slow to pace at all
                        // (every take would cross again): then unpaced, as
                        // when it cannot count; and never past the deadline.
                        if asked.elapsed() >= SLOW_COUNT {
                            tracing::warn!(
                                op = call.op,
                                took_ms = asked.elapsed().as_millis() as u64,
                                "the shared Auth0 rate budget is too slow to count; calling unpaced"
                            );
                            return Ok(waited);
                        }
                        if Instant::now() >= deadline {
                            return Err(IdpError::Throttled(format!(
                                "Auth0 {}: the Management API rate budget could not be counted before the call deadline",
                                call.op
                            )));
                        }
                        continue;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(
                            op = call.op,
                            error = %e,
                            "the shared Auth0 rate budget cannot be counted; calling unpaced"
                        );
                        return Ok(waited);
                    }
                }
            }
            let next = Duration::from_secs(1).saturating_sub(into);
            if Instant::now() + next >= deadline {
                tracing::warn!(
                    op = call.op,
                    method = %call.method,
                    path = call.template,
                    max_rps = max,
                    "giving up on an Auth0 call: the shared rate budget is spent past the call deadline"
                );
                return Err(IdpError::Throttled(format!(
                    "Auth0 {}: the Management API rate budget ({max}/s) is spent until past the call deadline",
                    call.op
                )));
            }
            waited = true;
            tokio::time::sleep(next).await;
        }
    }
}

/// The [`RateLimits`] bucket of the Management API's budget (one fixed
/// one-second window; the store keys each window apart, so the name need not
/// carry the second).
pub const RATE_BUDGET_BUCKET: &str = "auth0-mgmt";

/// The end of each second in which no request is sent (see
/// [`Auth0Client::with_rate_budget`]).
const RATE_BUDGET_GUARD: Duration = Duration::from_millis(100);

/// A budget count slower than this that ends in the next second means the
/// store cannot pace calls now (a count takes milliseconds).
const SLOW_COUNT: Duration = Duration::from_millis(500);

pub(crate) fn user_path(subject: &str) -> String {
    format!("/api/v2/users/{}", encode_segment(subject))
}

/// Percent-encodes everything but RFC 3986 unreserved characters
/// (`auth0|abc` → `auth0%7Cabc`).
pub(crate) fn encode_segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + 8);
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The body of a successful answer. A body we cannot read is reported
/// without serde's text, which can quote the values it choked on.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    op: &str,
    answer: &Answer,
) -> Result<T, IdpError> {
    serde_json::from_slice(&answer.body).map_err(|_| {
        IdpError::Unavailable(format!(
            "Auth0 {op}: unexpected answer to a {} request",
            answer.status.as_u16()
        ))
    })
}

/// `Rejected` naming the status and Auth0's `errorCode` (or, from the token
/// endpoint, `error`), never the free-text message.
pub(crate) fn rejected(op: &str, answer: &Answer) -> IdpError {
    let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    let code = ["errorCode", "error"]
        .iter()
        .filter_map(|k| body.get(*k).and_then(Value::as_str))
        .find(|c| is_code(c));
    let status = answer.status;
    tracing::warn!(
        op,
        status = status.as_u16(),
        code,
        "Auth0 refused the request"
    );
    match code {
        Some(code) => IdpError::Rejected(format!("Auth0 {op}: {status} ({code})")),
        None => IdpError::Rejected(format!("Auth0 {op}: {status}")),
    }
}

/// A machine code (`inexistent_user`, `auth0_idp_error`), nothing that could
/// carry an address or a name.
fn is_code(raw: &str) -> bool {
    (1..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// 32 random bytes nobody ever sees, plus one character of each class any
/// Auth0 password policy asks for; redrawn in the rare case of three equal
/// characters in a row (the "excellent" policy refuses those).
pub(crate) fn random_password() -> Result<String, IdpError> {
    loop {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|_| {
            IdpError::Unavailable("no randomness for a new login's password".into())
        })?;
        let password = format!("{}aZ7!", URL_SAFE_NO_PAD.encode(bytes));
        let triple = password
            .as_bytes()
            .windows(3)
            .any(|w| w[0] == w[1] && w[1] == w[2]);
        if !triple {
            return Ok(password);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peak_domain::identity::IdentityProvider;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode_segment("auth0|ab12"), "auth0%7Cab12");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn passwords_are_long_random_and_mixed() {
        let a = random_password().unwrap();
        let b = random_password().unwrap();
        assert_ne!(a, b);
        assert!(a.len() >= 40);
        assert!(a.bytes().any(|c| c.is_ascii_lowercase()));
        assert!(a.bytes().any(|c| c.is_ascii_uppercase()));
        assert!(a.bytes().any(|c| c.is_ascii_digit()));
        assert!(a.contains('!'));
    }

    #[tokio::test]
    async fn a_shared_client_that_failed_to_build_makes_calls_unavailable() {
        let config = Auth0Config::new("tenant.example", "id", "secret", "conn");
        let client = Auth0Client::with_http(
            config,
            Err("Auth0: SSL_CERT_FILE /x: no certificate".into()),
        );
        let err = client.get_user("auth0|x").await.unwrap_err();
        assert!(
            matches!(&err, IdpError::Unavailable(m) if m == "Auth0: SSL_CERT_FILE /x: no certificate"),
            "{err:?}"
        );
    }

    #[test]
    fn rejections_name_the_code_not_the_message() {
        let answer = Answer {
            status: StatusCode::BAD_REQUEST,
            body: br#"{"statusCode":400,"error":"Bad Request","message":"jane@example.com is bad","errorCode":"invalid_body"}"#.to_vec(),
        };
        let IdpError::Rejected(msg) = rejected("get_user", &answer) else {
            panic!("not rejected")
        };
        assert_eq!(msg, "Auth0 get_user: 400 Bad Request (invalid_body)");
        let answer = Answer {
            status: StatusCode::FORBIDDEN,
            body: br#"{"error":"jane@example.com"}"#.to_vec(),
        };
        let IdpError::Rejected(msg) = rejected("token", &answer) else {
            panic!("not rejected")
        };
        assert_eq!(msg, "Auth0 token: 403 Forbidden");
    }
}
