//! Throttling never fails an email: SES's own throttling (a sender
//! stand-in in front of moto that answers `TooManyRequestsException`, as
//! moto never throttles) and the account-wide send budget, shared by every
//! mailer instance.
//!
//! Needs `SES_ENDPOINT` (moto), as tests/ses.rs.

mod common;

use async_trait::async_trait;
use common::*;
use peak_domain::outbox::{EmailKind, OutboxClaim};
use peak_domain::ports::OutboxQueue;
use peak_mailer::{Delivery, EmailSender, OutgoingEmail, SendError};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use time::OffsetDateTime;

/// SES throttling the first `throttles` sends, then moto.
struct Throttling<S> {
    inner: S,
    throttles: u32,
    calls: AtomicU32,
}

#[async_trait]
impl<S: EmailSender> EmailSender for Throttling<S> {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.throttles {
            return Err(SendError::Throttled(
                "SES TooManyRequestsException: Maximum sending rate exceeded.".into(),
            ));
        }
        self.inner.send(email).await
    }
}

#[tokio::test]
async fn a_throttled_email_is_retried_and_delivered_never_failed() {
    let (store, t, p) = store().await;
    let to = unique_address("throttled");
    let (_, mail) = user_with_email(&store, &t, &p, &to, EmailKind::Invitation).await;
    // More throttles than the attempts after which an email fails for good.
    let max_attempts = quick_config().max_attempts;
    let sender = Arc::new(Throttling {
        inner: ses().await,
        throttles: max_attempts + 3,
        calls: AtomicU32::new(0),
    });
    let mailer = mailer(store.clone(), sender.clone(), brands());
    let mut throttled = 0;
    let sent = loop {
        match mailer.deliver(&t, &mail.id).await {
            Delivery::Sent { message_id } => break message_id,
            Delivery::Retrying {
                attempts, retry_at, ..
            } => {
                assert_eq!(attempts, 0, "a throttle counts no attempt");
                throttled += 1;
                let wait = retry_at - OffsetDateTime::now_utc();
                tokio::time::sleep(Duration::try_from(wait).unwrap_or_default()).await;
            }
            // deliver waits up to max_wait itself; a retry time further
            // away comes back as Busy.
            Delivery::Busy { until } => {
                let wait = until - OffsetDateTime::now_utc();
                tokio::time::sleep(Duration::try_from(wait).unwrap_or_default()).await;
            }
            other => panic!("throttling must not fail the email: {other:?}"),
        }
    };
    assert!(!sent.is_empty());
    assert_eq!(throttled, max_attempts + 3);
    assert_eq!(messages_to(&to).await.len(), 1, "delivered once, at moto");
    assert!(
        store
            .failed_outbox(100)
            .await
            .unwrap()
            .iter()
            .all(|f| f.email.id != mail.id),
        "never failed for good"
    );
    assert_eq!(
        store
            .claim_outbox(&t, &mail.id, OffsetDateTime::now_utc(), 30)
            .await
            .unwrap(),
        OutboxClaim::AlreadySent
    );
}

/// Records the second (Unix) each send arrived in.
#[derive(Default)]
struct Stamped {
    at: Mutex<Vec<u64>>,
}

#[async_trait]
impl EmailSender for Stamped {
    async fn send(&self, _: &OutgoingEmail) -> Result<String, SendError> {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut at = self.at.lock().unwrap();
        at.push(secs);
        Ok(format!("stamped-{}", at.len()))
    }
}

/// Two mailer instances over one store never send more than the account's
/// rate in a second together, and a send that waits for the budget is not
/// a failed attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_mailers_share_one_send_budget() {
    let (store, t, p) = store().await;
    let mut ids = Vec::new();
    for i in 0..10 {
        let to = format!("budget{i}@acme.example");
        let (_, mail) = user_with_email(&store, &t, &p, &to, EmailKind::Invitation).await;
        ids.push(mail.id);
    }
    let sender = Arc::new(Stamped::default());
    let instance =
        || mailer(store.clone(), sender.clone(), brands()).with_send_budget(store.clone(), 2);
    let (a, b) = (instance(), instance());
    let (first, second) = ids.split_at(5);
    let run = |m: peak_mailer::Mailer, ids: Vec<String>, t: peak_domain::TenantId| async move {
        let mut out = Vec::new();
        for id in ids {
            out.push(m.deliver(&t, &id).await);
        }
        out
    };
    let (ra, rb) = tokio::join!(
        run(a, first.to_vec(), t.clone()),
        run(b, second.to_vec(), t.clone())
    );
    for d in ra.iter().chain(&rb) {
        assert!(matches!(d, Delivery::Sent { .. }), "{d:?}");
    }
    let at = sender.at.lock().unwrap().clone();
    assert_eq!(at.len(), 10);
    let mut per_second = std::collections::BTreeMap::<u64, u32>::new();
    for s in at {
        *per_second.entry(s).or_default() += 1;
    }
    assert!(
        per_second.values().all(|&n| n <= 2),
        "more than the account's rate in a second: {per_second:?}"
    );
    assert!(per_second.len() >= 5, "10 sends at 2/s: {per_second:?}");
}

/// The budget's store answering slower than a second (an overloaded table):
/// every count ends in the next second, so taking again would cross again,
/// forever, with the email held. A store too slow to pace lets the email go
/// out unpaced, as one that cannot count at all.
struct SlowBudget {
    inner: Arc<peak_store_sqlite::SqliteStore>,
    counts: AtomicU32,
}

#[async_trait]
impl peak_domain::ports::RateLimits for SlowBudget {
    async fn take_rate_limit(
        &self,
        bucket: &str,
        now: OffsetDateTime,
        window_secs: u64,
        max: u32,
    ) -> Result<bool, peak_domain::ports::StoreError> {
        self.counts.fetch_add(1, Ordering::SeqCst);
        // Longer than a second: the count always ends in a later second
        // than the one it counted in.
        let taken = self
            .inner
            .take_rate_limit(bucket, now, window_secs, max)
            .await;
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        taken
    }
}

#[tokio::test]
async fn a_budget_too_slow_to_count_does_not_hold_the_email() {
    let (store, t, p) = store().await;
    let to = unique_address("slowbudget");
    let (_, mail) = user_with_email(&store, &t, &p, &to, EmailKind::Invitation).await;
    let budget = Arc::new(SlowBudget {
        inner: store.clone(),
        counts: AtomicU32::new(0),
    });
    let sender = Arc::new(Stamped::default());
    let mailer =
        mailer(store.clone(), sender.clone(), brands()).with_send_budget(budget.clone(), 14);
    let delivery = tokio::time::timeout(Duration::from_secs(20), mailer.deliver(&t, &mail.id))
        .await
        .expect("the delivery ends (before: it took the budget again and again)");
    assert!(matches!(delivery, Delivery::Sent { .. }), "{delivery:?}");
    assert_eq!(sender.at.lock().unwrap().len(), 1, "sent once");
    assert_eq!(
        budget.counts.load(Ordering::SeqCst),
        1,
        "counted once, then sent"
    );
}
