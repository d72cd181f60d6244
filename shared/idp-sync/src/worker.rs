//! The owed-work worker.

use peak_domain::TenantId;
use peak_domain::identity::{IdentityProvider, IdpError, IdpUserState, StepOutcome};
use peak_domain::idp_work::{IdpOp, IdpWork, STUCK_AFTER_ATTEMPTS, retry_delay};
use peak_domain::model::user::UserId;
use peak_domain::ports::{IdpSyncStore, StoreError};
use peak_domain::users::identity_events::{EventCtx, Processed, process_delivery};
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy)]
pub struct WorkerConfig {
    /// How long a worker holds work it took: longer than one call to the
    /// provider can take (the client bounds each call, retries included).
    pub lease_secs: u64,
    /// How many due records one sweep takes.
    pub batch: u32,
    /// The least time a time-boxed sweep ([`Worker::sweep_until`]) keeps
    /// for one more batch (it keeps the longest batch of the run if more).
    pub batch_margin: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            lease_secs: 60,
            batch: 100,
            // One record's calls are bounded by the client's call deadline
            // (10 s each, a few per record): a batch that starts with less
            // than this left would likely be cut by the Lambda timeout.
            batch_margin: Duration::from_secs(60),
        }
    }
}

/// What happened to one user's owed work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done, and the record removed.
    Done,
    /// Done, but a newer change arrived meanwhile: its record stays and
    /// runs next.
    Superseded,
    /// Nothing to take: no record, another worker holds it, or it waits
    /// for its retry time.
    NotDue,
    /// The provider failed; kept, due again after a backoff.
    Failed { attempts: u32, stuck: bool },
    /// Not sent: the shared rate budget stayed spent. No attempt counted;
    /// the claim's lease runs out and the work is due again then.
    Deferred,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepSummary {
    pub done: u32,
    pub failed: u32,
    pub skipped: u32,
    /// Not sent because the shared rate budget stayed spent (no attempt
    /// counted; the batch stops there, as the budget is in full use).
    pub deferred: u32,
    /// Recorded deliveries from the provider applied by this sweep.
    pub deliveries_applied: u32,
    /// Recorded deliveries that failed again (kept for the next sweep).
    pub deliveries_failed: u32,
    /// Batches a time-boxed sweep ran (0 from [`Worker::run_due`]).
    pub batches: u32,
    /// A time-boxed sweep stopped for time with work possibly still due
    /// (the next run takes it).
    pub stopped_for_time: bool,
}

impl SweepSummary {
    fn add(&mut self, other: &SweepSummary) {
        self.done += other.done;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.deferred += other.deferred;
        self.deliveries_applied += other.deliveries_applied;
        self.deliveries_failed += other.deliveries_failed;
    }
}

pub struct Worker {
    store: Arc<dyn IdpSyncStore>,
    idp: Arc<dyn IdentityProvider>,
    config: WorkerConfig,
}

impl Worker {
    /// `store` is any store with the owed-work and identity-event ports (an
    /// `Arc<dyn UserStore>` converts to it).
    pub fn new(store: Arc<dyn IdpSyncStore>, idp: Arc<dyn IdentityProvider>) -> Self {
        Self {
            store,
            idp,
            config: WorkerConfig::default(),
        }
    }

    pub fn with_config(mut self, config: WorkerConfig) -> Self {
        self.config = config;
        self
    }

    /// Takes and performs one user's owed work, if it is due.
    pub async fn process(
        &self,
        tenant: &TenantId,
        user: &UserId,
        now: OffsetDateTime,
    ) -> Result<Outcome, StoreError> {
        let Some(item) = self
            .store
            .claim_idp_work(tenant, user, now, self.config.lease_secs)
            .await?
        else {
            return Ok(Outcome::NotDue);
        };
        let work = &item.work;
        match self.perform(work).await {
            Ok(notes) => {
                let removed = self.store.complete_idp_work(work, &notes).await?;
                if notes.is_empty() {
                    tracing::info!(
                        tenant = %work.tenant_id, user_id = %work.user_id, op = work.op.as_str(),
                        seq = work.seq, attempts = item.attempts, superseded = !removed,
                        "identity-provider work done"
                    );
                } else {
                    tracing::warn!(
                        tenant = %work.tenant_id, user_id = %work.user_id, op = work.op.as_str(),
                        seq = work.seq, superseded = !removed, degraded = true, notes = ?notes,
                        "identity-provider work done without steps the provider does not offer here"
                    );
                }
                Ok(if removed {
                    Outcome::Done
                } else {
                    Outcome::Superseded
                })
            }
            Err(IdpError::Throttled(reason)) => {
                // Nothing reached the provider: leave the claim to lapse
                // (the lease is the retry delay) rather than count an
                // attempt, so a busy hour cannot make work look stuck.
                tracing::info!(
                    tenant = %work.tenant_id, user_id = %work.user_id, op = work.op.as_str(),
                    attempts = item.attempts, reason = %reason,
                    retry_after_secs = self.config.lease_secs,
                    "identity-provider work deferred: the shared rate budget is spent"
                );
                Ok(Outcome::Deferred)
            }
            Err(e) => {
                let attempts = item.attempts + 1;
                let retry_at = now + retry_delay(item.attempts);
                let reason = match &e {
                    IdpError::Unavailable(m) => format!("unavailable: {m}"),
                    IdpError::Rejected(m) => format!("rejected: {m}"),
                    IdpError::Throttled(m) => format!("throttled: {m}"),
                };
                self.store.fail_idp_work(work, &reason, retry_at).await?;
                let stuck = attempts >= STUCK_AFTER_ATTEMPTS;
                if stuck {
                    peak_metrics::count(peak_metrics::Metric::Auth0WorkStuck, 1);
                    tracing::error!(
                        tenant = %work.tenant_id, user_id = %work.user_id, op = work.op.as_str(),
                        attempts, stuck = true, error = %e, retry_at = %retry_at,
                        "identity-provider work keeps failing"
                    );
                } else {
                    tracing::warn!(
                        tenant = %work.tenant_id, user_id = %work.user_id, op = work.op.as_str(),
                        attempts, error = %e, retry_at = %retry_at,
                        "identity-provider work failed; will retry"
                    );
                }
                Ok(Outcome::Failed { attempts, stuck })
            }
        }
    }

    /// Pushes the user's *current* state (or deletes the login), then the
    /// one-off steps the change asked for. Returns the steps the provider
    /// does not offer here (its plan, or the grant we were given), for the
    /// user's sync state.
    async fn perform(&self, work: &IdpWork) -> Result<Vec<String>, IdpError> {
        match work.op {
            IdpOp::Delete => {
                // Only a login that still names this user: the same
                // address may have been invited again and accepted since.
                match self.idp.get_user(&work.subject).await? {
                    None => return Ok(Vec::new()),
                    Some(login) if login.user_id.as_deref() != Some(work.user_id.as_str()) => {
                        tracing::warn!(
                            tenant = %work.tenant_id, user_id = %work.user_id,
                            "the login names another user now; left in place"
                        );
                        return Ok(Vec::new());
                    }
                    Some(_) => {}
                }
                let notes = self.end_sessions(&work.subject).await?;
                self.idp.delete_user(&work.subject).await?;
                Ok(notes)
            }
            IdpOp::Sync => {
                let user = self
                    .store
                    .get_user(&work.tenant_id, &work.user_id)
                    .await
                    .map_err(|e| IdpError::Unavailable(format!("store: {e}")))?;
                // Gone (its delete work replaced this record) or relinked:
                // nothing of this record is left to do.
                let Some(user) = user.filter(|u| u.idp_subject.as_ref() == Some(&work.subject))
                else {
                    return Ok(Vec::new());
                };
                let state = IdpUserState::of(&user);
                let found = self.idp.update_user(&work.subject, &state).await?;
                if !found {
                    tracing::warn!(
                        tenant = %work.tenant_id, user_id = %work.user_id,
                        "the user's login is missing at the identity provider; reconciliation reports it"
                    );
                    return Ok(Vec::new());
                }
                let mut notes = Vec::new();
                // After the block is pushed, so no new session can start.
                if work.steps.end_sessions {
                    notes.extend(self.end_sessions(&work.subject).await?);
                }
                if work.steps.clear_login_block && !state.blocked {
                    note(
                        &mut notes,
                        "brute-force block not lifted",
                        self.idp.clear_login_block(&work.subject).await?,
                    );
                }
                Ok(notes)
            }
        }
    }

    /// Sessions and refresh tokens: both revoked, or noted as not offered.
    async fn end_sessions(&self, subject: &str) -> Result<Vec<String>, IdpError> {
        let mut notes = Vec::new();
        note(
            &mut notes,
            "sessions not revoked",
            self.idp.revoke_sessions(subject).await?,
        );
        note(
            &mut notes,
            "refresh tokens not revoked",
            self.idp.revoke_refresh_tokens(subject).await?,
        );
        Ok(notes)
    }

    /// Batch after batch of [`Worker::run_due`] until nothing more is due,
    /// or until `remaining()` (the invocation's time left: the Lambda
    /// context's deadline) would not cover one more batch. The margin is
    /// the longest batch of this run, at least
    /// [`WorkerConfig::batch_margin`]: a sweeper cut off mid-batch by its
    /// timeout loses nothing (claimed records come back when their lease
    /// ends), but it leaves them waiting a lease and repeats calls already
    /// made; stopping between batches leaves nothing half done. Work left
    /// is taken by the next run.
    ///
    /// One batch per 5-minute run drained 1,200 records an hour; this
    /// drains as fast as the provider's rate allows (the README's "Auth0
    /// rate limits").
    pub async fn sweep_until(
        &self,
        now: OffsetDateTime,
        remaining: impl Fn() -> Duration,
    ) -> Result<SweepSummary, StoreError> {
        let started = Instant::now();
        let mut total = SweepSummary::default();
        let mut margin = self.config.batch_margin;
        loop {
            if remaining() < margin {
                total.stopped_for_time = true;
                break;
            }
            let batch_started = Instant::now();
            let elapsed = time::Duration::try_from(started.elapsed()).unwrap_or_default();
            let (summary, more) = self.run_batch(now + elapsed).await?;
            total.add(&summary);
            total.batches += 1;
            margin = margin.max(batch_started.elapsed());
            if !more {
                break;
            }
        }
        Ok(total)
    }

    /// Performs every due record (at most `batch`), one after another (the
    /// provider's rate limit is shared; the client waits out 429s), then
    /// applies the provider's recorded deliveries that are due (ones the
    /// webhook could not apply at once, or whose applier died).
    pub async fn run_due(&self, now: OffsetDateTime) -> Result<SweepSummary, StoreError> {
        Ok(self.run_batch(now).await?.0)
    }

    /// One batch; `true` when a full batch was taken and progressed, so
    /// more may be due.
    async fn run_batch(&self, now: OffsetDateTime) -> Result<(SweepSummary, bool), StoreError> {
        let due = self.store.pending_idp_work(self.config.batch, now).await?;
        let full = due.len() >= self.config.batch as usize;
        // What a sweep finds waiting (at most a batch: a lower bound).
        peak_metrics::count(peak_metrics::Metric::Auth0WorkPending, due.len() as u64);
        let mut summary = SweepSummary::default();
        for item in due {
            match self
                .process(&item.work.tenant_id, &item.work.user_id, now)
                .await?
            {
                Outcome::Done | Outcome::Superseded => summary.done += 1,
                Outcome::Failed { .. } => summary.failed += 1,
                Outcome::NotDue => summary.skipped += 1,
                Outcome::Deferred => {
                    summary.deferred += 1;
                    break;
                }
            }
        }
        let deliveries = self
            .store
            .pending_deliveries(self.config.batch, now)
            .await?;
        let deliveries_full = deliveries.len() >= self.config.batch as usize;
        for delivery in deliveries {
            let request_id = format!("sweep-{}", delivery.id);
            let ctx = EventCtx {
                users: self.store.as_ref(),
                now,
                request_id: &request_id,
            };
            match process_delivery(&ctx, self.idp.as_ref(), &delivery.id).await? {
                Processed::Done(outcome) => {
                    tracing::info!(
                        event = delivery.kind.as_str(),
                        result = outcome.as_str(),
                        "identity-provider delivery applied by the sweep"
                    );
                    summary.deliveries_applied += 1;
                }
                Processed::Failed { attempts, error } => {
                    tracing::warn!(
                        event = delivery.kind.as_str(), attempts, error = %error,
                        stuck = attempts >= STUCK_AFTER_ATTEMPTS,
                        "identity-provider delivery still not applied; kept for a retry"
                    );
                    summary.deliveries_failed += 1;
                }
                Processed::NotDue => {}
            }
        }
        // Records held by another worker come back in the next batch
        // unchanged: a batch with no progress ends the sweep.
        let more = (full && summary.deferred == 0 && summary.done + summary.failed > 0)
            || (deliveries_full && summary.deliveries_applied + summary.deliveries_failed > 0);
        Ok((summary, more))
    }
}

fn note(notes: &mut Vec<String>, what: &str, outcome: StepOutcome) {
    if let StepOutcome::Unsupported(why) = outcome {
        notes.push(format!("{what}: {why}"));
    }
}
