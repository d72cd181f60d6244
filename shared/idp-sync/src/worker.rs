//! The owed-work worker.

use peak_domain::TenantId;
use peak_domain::identity::{IdentityProvider, IdpError, IdpUserState};
use peak_domain::idp_work::{IdpOp, IdpWork, STUCK_AFTER_ATTEMPTS, retry_delay};
use peak_domain::ports::{StoreError, UserStore};
use peak_domain::user::UserId;
use std::sync::Arc;
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy)]
pub struct WorkerConfig {
    /// How long a worker holds work it took: longer than one call to the
    /// provider can take (the client bounds each call, retries included).
    pub lease_secs: u64,
    /// How many due records one sweep takes.
    pub batch: u32,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            lease_secs: 60,
            batch: 100,
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
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepSummary {
    pub done: u32,
    pub failed: u32,
    pub skipped: u32,
}

pub struct Worker {
    store: Arc<dyn UserStore>,
    idp: Arc<dyn IdentityProvider>,
    config: WorkerConfig,
}

impl Worker {
    pub fn new(store: Arc<dyn UserStore>, idp: Arc<dyn IdentityProvider>) -> Self {
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
            Ok(()) => {
                let removed = self.store.complete_idp_work(work).await?;
                tracing::info!(
                    tenant = %work.tenant_id, user_id = %work.user_id, op = work.op.as_str(),
                    seq = work.seq, attempts = item.attempts, superseded = !removed,
                    "identity-provider work done"
                );
                Ok(if removed {
                    Outcome::Done
                } else {
                    Outcome::Superseded
                })
            }
            Err(e) => {
                let attempts = item.attempts + 1;
                let retry_at = now + retry_delay(item.attempts);
                let reason = match &e {
                    IdpError::Unavailable(m) => format!("unavailable: {m}"),
                    IdpError::Rejected(m) => format!("rejected: {m}"),
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

    /// Pushes the user's *current* state (or deletes the login).
    async fn perform(&self, work: &IdpWork) -> Result<(), IdpError> {
        match work.op {
            IdpOp::Delete => self.idp.delete_user(&work.subject).await,
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
                    return Ok(());
                };
                let found = self
                    .idp
                    .update_user(&work.subject, &IdpUserState::of(&user))
                    .await?;
                if !found {
                    tracing::warn!(
                        tenant = %work.tenant_id, user_id = %work.user_id,
                        "the user's login is missing at the identity provider; reconciliation reports it"
                    );
                }
                Ok(())
            }
        }
    }

    /// Performs every due record (at most `batch`), one after another (the
    /// provider's rate limit is shared; the client waits out 429s).
    pub async fn run_due(&self, now: OffsetDateTime) -> Result<SweepSummary, StoreError> {
        let due = self.store.pending_idp_work(self.config.batch, now).await?;
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
            }
        }
        Ok(summary)
    }
}
