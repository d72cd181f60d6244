//! The outbox mailer: claim, render, send, then complete or fail.

use crate::{EmailSender, OutgoingEmail, RateLimiter, SendError, redact_emails};
use peak_domain::TenantId;
use peak_domain::identity::{IdentityProvider, IdpError, SetupLink};
use peak_domain::model::tenant::TenantStatus;
use peak_domain::outbox::{EmailKind, OutboxClaim, OutboxEmail};
use peak_domain::ports::{OutboxQueue, RateLimits, StoreError, TenantStore, UserRecords};
use peak_email::Brands;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// How the mailer paces and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailerConfig {
    /// How long a claim holds an email: longer than one delivery can take
    /// (the rate wait, the identity provider, the send); after it another
    /// mailer may take the email again.
    pub lease: Duration,
    /// Attempts before a transiently failing email counts as failed for
    /// good.
    pub max_attempts: u32,
    /// The wait before retry n is about `backoff_base · 2ⁿ` (jittered),
    /// at most `backoff_cap`.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// `deliver` waits this long at most for an email that is not due yet
    /// (leased, or waiting for its retry) before it reports `Busy`.
    pub max_wait: Duration,
    /// The SES configuration set for every email (`SES_CONFIGURATION_SET`).
    pub configuration_set: Option<String>,
}

impl Default for MailerConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(120),
            max_attempts: 8,
            backoff_base: Duration::from_secs(2),
            backoff_cap: Duration::from_secs(15 * 60),
            max_wait: Duration::from_secs(10),
            configuration_set: None,
        }
    }
}

impl MailerConfig {
    /// The defaults, with `SES_CONFIGURATION_SET` and `MAILER_MAX_ATTEMPTS`
    /// from the environment when set.
    pub fn from_env() -> Self {
        let mut config = Self {
            configuration_set: std::env::var("SES_CONFIGURATION_SET")
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty()),
            ..Self::default()
        };
        if let Some(n) = std::env::var("MAILER_MAX_ATTEMPTS")
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|n| *n >= 1)
        {
            config.max_attempts = n;
        }
        config
    }
}

/// What one `deliver` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Sent now; the record says so.
    Sent { message_id: String },
    /// Sent before: nothing sent now.
    AlreadySent,
    /// No such email, or it had failed for good: nothing sent.
    Gone,
    /// Another mailer holds it, or it waits for a retry time further away
    /// than `max_wait`: nothing sent now; it is due again at `until`.
    Busy { until: OffsetDateTime },
    /// A transient failure, recorded: due again at `retry_at`.
    Retrying {
        attempts: u32,
        retry_at: OffsetDateTime,
        error: String,
    },
    /// Failed for good (refused, user deleted, out of attempts): listed by
    /// the store's `failed_outbox`.
    Failed { reason: String },
    /// The store failed before anything could be recorded; the lease (if
    /// taken) runs out and the email is due again then.
    Unavailable(String),
}

impl Delivery {
    /// Worth another try soon (a stream record to report as failed).
    pub fn needs_retry(&self) -> bool {
        matches!(self, Self::Retrying { .. } | Self::Unavailable(_))
    }
}

/// What one `drain_once` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainSummary {
    pub sent: usize,
    /// Already sent, gone, or busy elsewhere.
    pub skipped: usize,
    pub retrying: usize,
    pub failed: usize,
    pub unavailable: usize,
}

impl DrainSummary {
    fn count(&mut self, d: &Delivery) {
        match d {
            Delivery::Sent { .. } => self.sent += 1,
            Delivery::AlreadySent | Delivery::Gone | Delivery::Busy { .. } => self.skipped += 1,
            Delivery::Retrying { .. } => self.retrying += 1,
            Delivery::Failed { .. } => self.failed += 1,
            Delivery::Unavailable(_) => self.unavailable += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.sent + self.skipped + self.retrying + self.failed + self.unavailable
    }
}

/// About how long a throttled email waits before it is due again (half of
/// it fixed, half random).
const THROTTLE_WAIT: Duration = Duration::from_secs(2);

/// How a time-boxed drain ([`Mailer::drain_until`]) went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainRun {
    pub batches: u32,
    /// Stopped for time, with email possibly still due (the next run's).
    pub stopped_for_time: bool,
}

/// The wait before the retry that follows `attempts` earlier failures:
/// `min(cap, base · 2^attempts)`, half of it fixed and half random
/// ("equal jitter"), so waits grow and mailers that failed together do not
/// retry together.
pub fn backoff(attempts: u32, base: Duration, cap: Duration) -> Duration {
    let exp = base
        .checked_mul(1u32.checked_shl(attempts.min(31)).unwrap_or(u32::MAX))
        .unwrap_or(cap)
        .min(cap);
    let half = exp / 2;
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    let jitter = match getrandom::u64() {
        Ok(r) if nanos > 0 => Duration::from_nanos(r % nanos),
        _ => half / 2,
    };
    half + jitter
}

/// Why one attempt did not send.
enum Failure {
    Transient(String),
    Permanent(String),
    /// Not sent because sending is throttled (SES's rate, or the account's
    /// send budget spent): retried soon without counting an attempt.
    Throttled(String),
}

/// The [`RateLimits`] bucket of the account's SES send budget (one fixed
/// one-second window; the store keys each window apart).
pub const SES_BUDGET_BUCKET: &str = "ses";

/// The end of each second in which no email is sent under the budget: SES
/// counts a send when it arrives, and one sent at 0.99 s arrives in the next
/// second, on top of that second's budget.
const BUDGET_GUARD: Duration = Duration::from_millis(100);

/// A budget count slower than this that ends in the next second means the
/// store cannot pace sends now (a count takes milliseconds).
const SLOW_COUNT: Duration = Duration::from_millis(500);

/// Delivers outbox emails. See the crate docs.
pub struct Mailer {
    /// The emails to send, and their settling.
    outbox: Arc<dyn OutboxQueue>,
    /// The recipients: an email is checked against its user before it goes.
    users: Arc<dyn UserRecords>,
    /// Tenant records: a tenant's own sender, reply-to and portal URL win
    /// over its brand's.
    tenants: Arc<dyn TenantStore>,
    sender: Arc<dyn EmailSender>,
    brands: Arc<Brands>,
    idp: Arc<dyn IdentityProvider>,
    rate: RateLimiter,
    /// The account's send rate, shared with every other mailer instance.
    budget: Option<(Arc<dyn RateLimits>, u32)>,
    config: MailerConfig,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("rate", &self.rate.rate())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// With the send rate from `SES_MAX_SEND_RATE` and
    /// [`MailerConfig::from_env`].
    /// `outbox` and `users` are usually one store (an `Arc<dyn UserStore>`
    /// or an adapter) passed twice: the mailer uses these two ports only.
    pub fn new(
        outbox: Arc<dyn OutboxQueue>,
        users: Arc<dyn UserRecords>,
        tenants: Arc<dyn TenantStore>,
        sender: Arc<dyn EmailSender>,
        brands: Brands,
        idp: Arc<dyn IdentityProvider>,
    ) -> Self {
        Self {
            outbox,
            users,
            tenants,
            sender,
            brands: Arc::new(brands),
            idp,
            rate: RateLimiter::from_env(),
            budget: None,
            config: MailerConfig::from_env(),
        }
    }

    pub fn with_rate(mut self, rate: RateLimiter) -> Self {
        self.rate = rate;
        self
    }

    /// Sends at most `per_second` emails a second across every mailer over
    /// the same `limits` (every instance over the table): SES's maximum send
    /// rate is per account and region, so a per-instance rate exceeds it as
    /// soon as several instances run (one per stream shard, plus the
    /// sweeper). A send that finds the second's budget spent waits for the
    /// next second (at most [`MailerConfig::max_wait`]); past that the email
    /// is put back without counting an attempt.
    pub fn with_send_budget(mut self, limits: Arc<dyn RateLimits>, per_second: u32) -> Self {
        self.budget = Some((limits, per_second.max(1)));
        self
    }

    pub fn with_config(mut self, config: MailerConfig) -> Self {
        self.config = config;
        self
    }

    pub fn config(&self) -> &MailerConfig {
        &self.config
    }

    /// Sends what is due now, at most `limit` emails, one after another
    /// (the local worker loop and the scheduled sweeper call this).
    pub async fn drain_once(&self, limit: u32) -> Result<DrainSummary, StoreError> {
        let due = self
            .outbox
            .pending_outbox(limit, OffsetDateTime::now_utc())
            .await?;
        let mut summary = DrainSummary::default();
        for email in due {
            let delivery = self.deliver(&email.tenant_id, &email.id).await;
            summary.count(&delivery);
        }
        Ok(summary)
    }

    /// [`Mailer::drain_once`] batch after batch until nothing more is due,
    /// or until `remaining()` (the invocation's time left: the Lambda
    /// context's deadline) is less than `margin` or than the longest batch
    /// of this run. Stopping between batches, not being cut off by the
    /// timeout mid-batch, matters here: an email sent whose record was not
    /// yet completed is sent again once its lease ends. Whatever is left is
    /// the next run's. One batch of 100 per 5-minute run drained 1,200
    /// emails an hour; this drains at the send rate.
    pub async fn drain_until(
        &self,
        limit: u32,
        margin: Duration,
        remaining: impl Fn() -> Duration,
    ) -> Result<(DrainSummary, DrainRun), StoreError> {
        let mut total = DrainSummary::default();
        let mut run = DrainRun::default();
        let mut margin = margin;
        loop {
            if remaining() < margin {
                run.stopped_for_time = true;
                break;
            }
            let started = std::time::Instant::now();
            let batch = self.drain_once(limit).await?;
            run.batches += 1;
            margin = margin.max(started.elapsed());
            // A short batch took everything due; one that settled nothing
            // (all held by other mailers, or the store failing) would only
            // find the same emails again.
            let more =
                batch.total() >= limit as usize && batch.sent + batch.retrying + batch.failed > 0;
            total.sent += batch.sent;
            total.skipped += batch.skipped;
            total.retrying += batch.retrying;
            total.failed += batch.failed;
            total.unavailable += batch.unavailable;
            if !more {
                break;
            }
        }
        Ok((total, run))
    }

    /// One delivery attempt of one outbox email. Safe to call any number of
    /// times, from any number of mailers: only a claim sends, and a sent
    /// email is never sent again.
    pub async fn deliver(&self, tenant: &TenantId, outbox_id: &str) -> Delivery {
        let lease_secs = self.config.lease.as_secs().max(1);
        let mut waits = 0;
        let (email, attempts) = loop {
            let now = OffsetDateTime::now_utc();
            match self
                .outbox
                .claim_outbox(tenant, outbox_id, now, lease_secs)
                .await
            {
                Ok(OutboxClaim::Claimed { email, attempts }) => break (email, attempts),
                Ok(OutboxClaim::AlreadySent) => return Delivery::AlreadySent,
                Ok(OutboxClaim::Gone) => return Delivery::Gone,
                Ok(OutboxClaim::Busy { until }) => {
                    let wait = Duration::try_from(until - now).unwrap_or(Duration::ZERO);
                    if waits >= 2 || wait > self.config.max_wait {
                        return Delivery::Busy { until };
                    }
                    waits += 1;
                    // A little past the due time: the store compares in ms.
                    tokio::time::sleep(wait + Duration::from_millis(5)).await;
                }
                Err(e) => {
                    tracing::warn!(tenant = %tenant, outbox_id, error = %e, "cannot claim an email");
                    return Delivery::Unavailable(e.to_string());
                }
            }
        };
        let kind = email.kind.as_str();
        match self.attempt(&email).await {
            Ok(message_id) => {
                self.complete(&email, &message_id).await;
                tracing::info!(
                    tenant = %tenant,
                    outbox_id,
                    kind,
                    to = %email.to.masked(),
                    attempts = attempts + 1,
                    "email sent"
                );
                peak_metrics::count(peak_metrics::Metric::EmailsSent, 1);
                if matches!(
                    email.kind,
                    EmailKind::Invitation | EmailKind::InvitationResent
                ) {
                    peak_metrics::count(peak_metrics::Metric::InvitationsSent, 1);
                }
                Delivery::Sent { message_id }
            }
            Err(Failure::Permanent(reason)) => self.give_up(&email, reason).await,
            Err(Failure::Throttled(error)) => {
                // Not a failure of this email: no attempt counted (8 of
                // them would fail it for good and remove its link). Due
                // again in a second or two, jittered so the mailers that
                // were throttled together do not come back together.
                let wait = backoff(0, THROTTLE_WAIT, THROTTLE_WAIT);
                let retry_at = OffsetDateTime::now_utc() + wait;
                match self
                    .outbox
                    .defer_outbox(tenant, outbox_id, &error, retry_at)
                    .await
                {
                    Ok(()) => {
                        tracing::info!(
                            tenant = %tenant,
                            outbox_id,
                            kind,
                            attempts,
                            retry_in_ms = wait.as_millis() as u64,
                            error = %error,
                            "email throttled, put back without counting an attempt"
                        );
                        Delivery::Retrying {
                            attempts,
                            retry_at,
                            error,
                        }
                    }
                    Err(e) => {
                        tracing::warn!(tenant = %tenant, outbox_id, error = %e, "cannot put back a throttled email");
                        Delivery::Unavailable(e.to_string())
                    }
                }
            }
            Err(Failure::Transient(error)) => {
                let attempts = attempts.saturating_add(1);
                if attempts >= self.config.max_attempts {
                    return self
                        .give_up(
                            &email,
                            format!("gave up after {attempts} attempts: {error}"),
                        )
                        .await;
                }
                let wait = backoff(
                    attempts - 1,
                    self.config.backoff_base,
                    self.config.backoff_cap,
                );
                let retry_at = OffsetDateTime::now_utc() + wait;
                match self
                    .outbox
                    .fail_outbox(tenant, outbox_id, &error, false, retry_at)
                    .await
                {
                    Ok(()) => {
                        tracing::warn!(
                            tenant = %tenant,
                            outbox_id,
                            kind,
                            to = %email.to.masked(),
                            attempts,
                            retry_in_ms = wait.as_millis() as u64,
                            error = %error,
                            "email not sent, will retry"
                        );
                        Delivery::Retrying {
                            attempts,
                            retry_at,
                            error,
                        }
                    }
                    Err(e) => {
                        tracing::warn!(tenant = %tenant, outbox_id, error = %e, "cannot record a failed attempt");
                        Delivery::Unavailable(e.to_string())
                    }
                }
            }
        }
    }

    /// Everything between the claim and the record of the outcome.
    async fn attempt(&self, email: &OutboxEmail) -> Result<String, Failure> {
        let user = self
            .users
            .get_user(&email.tenant_id, &email.user_id)
            .await
            .map_err(|e| Failure::Transient(format!("cannot read the user: {e}")))?;
        let Some(user) = user else {
            return Err(Failure::Permanent("user deleted".to_owned()));
        };
        let link = match email.kind {
            EmailKind::PasswordReset => {
                let Some(subject) = user.idp_subject.as_deref() else {
                    return Err(Failure::Permanent(
                        "the user has no login at the identity provider yet".to_owned(),
                    ));
                };
                // The reset email's portal (its tenant's): the ticket
                // returns the person to its sign-in.
                let portal_url = email
                    .data
                    .get("portal_url")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default();
                let setup = SetupLink {
                    portal_url,
                    valid_for: None,
                };
                let link = self
                    .idp
                    .password_setup_link(&user, subject, &setup)
                    .await
                    .map_err(|e| match e {
                        IdpError::Unavailable(m) => Failure::Transient(redact_emails(&format!(
                            "identity provider unavailable: {m}"
                        ))),
                        IdpError::Rejected(m) => Failure::Permanent(redact_emails(&format!(
                            "identity provider refused the password link: {m}"
                        ))),
                        // The shared Auth0 budget, like SES's: not an attempt.
                        IdpError::Throttled(m) => Failure::Throttled(redact_emails(&format!(
                            "identity provider call not sent: {m}"
                        ))),
                    })?;
                Some(link)
            }
            _ => None,
        };
        let record = self
            .tenants
            .get_tenant(&email.tenant_id)
            .await
            .map_err(|e| Failure::Transient(format!("cannot read the tenant: {e}")))?;
        let deployment_brand = self.brands.for_tenant(&email.tenant_id);
        let brand = match &record {
            Some(t) if t.status != TenantStatus::Active => {
                return Err(Failure::Permanent("the tenant is closed".to_owned()));
            }
            Some(t) => std::borrow::Cow::Owned(deployment_brand.under(t)),
            None => std::borrow::Cow::Borrowed(deployment_brand),
        };
        let rendered = peak_email::render(email, &brand, link.as_deref())
            .map_err(|e| Failure::Permanent(format!("cannot render the email: {e}")))?;
        let outgoing = OutgoingEmail {
            from: brand.sender.clone(),
            reply_to: brand.reply_to.clone(),
            to: email.to.clone(),
            subject: rendered.subject,
            html: rendered.html,
            text: rendered.text,
            configuration_set: self.config.configuration_set.clone(),
            idempotency_id: email.id.clone(),
            kind: Some(email.kind.as_str().to_owned()),
        };
        self.rate.acquire().await;
        self.spend_budget().await?;
        self.sender.send(&outgoing).await.map_err(|e| match e {
            SendError::Transient(m) => Failure::Transient(redact_emails(&m)),
            SendError::Permanent(m) => Failure::Permanent(redact_emails(&m)),
            SendError::Throttled(m) => Failure::Throttled(redact_emails(&m)),
        })
    }

    /// One send of the account's budget, waiting for the next second while
    /// it is spent (at most `max_wait`). Without a budget, or when the store
    /// cannot count, the send goes out unpaced: SES's own throttling is
    /// still put back without counting an attempt.
    async fn spend_budget(&self) -> Result<(), Failure> {
        let Some((limits, max)) = &self.budget else {
            return Ok(());
        };
        let give_up = tokio::time::Instant::now() + self.config.max_wait;
        loop {
            let now = OffsetDateTime::now_utc();
            let into = Duration::from_nanos(u64::from(now.nanosecond()));
            if into < Duration::from_secs(1) - BUDGET_GUARD {
                let asked = tokio::time::Instant::now();
                match limits
                    .take_rate_limit(SES_BUDGET_BUCKET, now, 1, *max)
                    .await
                {
                    Ok(true) => {
                        if OffsetDateTime::now_utc().unix_timestamp() == now.unix_timestamp() {
                            return Ok(());
                        }
                        // Counting took us into the next second: that hit
                        // is lost (a send fewer, never one more). A store
                        // this slow cannot pace sends: taking again would
                        // cross again, every time, and the email would sit
                        // claimed until its lease ran out (seen with an
                        // overloaded DynamoDB Local). Send unpaced, as when
                        // it cannot count at all.
                        if asked.elapsed() >= SLOW_COUNT {
                            tracing::warn!(
                                took_ms = asked.elapsed().as_millis() as u64,
                                "the shared send budget is too slow to count; sending unpaced"
                            );
                            return Ok(());
                        }
                        if tokio::time::Instant::now() >= give_up {
                            return Err(Failure::Throttled(format!(
                                "the account's send budget ({max}/s) could not be counted in time"
                            )));
                        }
                        continue;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "the shared send budget cannot be counted; sending unpaced");
                        return Ok(());
                    }
                }
            }
            let next = Duration::from_secs(1).saturating_sub(into);
            if tokio::time::Instant::now() + next > give_up {
                return Err(Failure::Throttled(format!(
                    "the account's send budget ({max}/s) is spent"
                )));
            }
            tokio::time::sleep(next).await;
        }
    }

    /// Records the sending, retrying a little: the email is out, and a
    /// record left pending would be sent again once the lease ends.
    async fn complete(&self, email: &OutboxEmail, message_id: &str) {
        for attempt in 0..3u32 {
            match self
                .outbox
                .complete_outbox(&email.tenant_id, &email.id, message_id)
                .await
            {
                Ok(()) => return,
                Err(e) => {
                    tracing::error!(
                        tenant = %email.tenant_id,
                        outbox_id = %email.id,
                        attempt,
                        error = %e,
                        "email sent but not recorded as sent"
                    );
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
            }
        }
    }

    async fn give_up(&self, email: &OutboxEmail, reason: String) -> Delivery {
        match self
            .outbox
            .fail_outbox(
                &email.tenant_id,
                &email.id,
                &reason,
                true,
                OffsetDateTime::now_utc(),
            )
            .await
        {
            Ok(()) => {
                tracing::warn!(
                    tenant = %email.tenant_id,
                    outbox_id = %email.id,
                    kind = email.kind.as_str(),
                    to = %email.to.masked(),
                    reason = %reason,
                    "email failed for good"
                );
                peak_metrics::count(peak_metrics::Metric::EmailsFailed, 1);
                Delivery::Failed { reason }
            }
            Err(e) => {
                tracing::warn!(
                    tenant = %email.tenant_id,
                    outbox_id = %email.id,
                    error = %e,
                    "cannot record a failed email"
                );
                Delivery::Unavailable(e.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_up_to_the_cap() {
        let base = Duration::from_secs(2);
        let cap = Duration::from_secs(60);
        for attempts in 0..40 {
            let exp = (base * 2u32.saturating_pow(attempts.min(20))).min(cap);
            let wait = backoff(attempts, base, cap);
            assert!(
                wait >= exp / 2 && wait <= exp,
                "{attempts}: {wait:?} vs {exp:?}"
            );
        }
        // Jittered: a handful of draws are not all equal.
        let draws: std::collections::BTreeSet<_> = (0..8).map(|_| backoff(3, base, cap)).collect();
        assert!(draws.len() > 1);
    }
}
