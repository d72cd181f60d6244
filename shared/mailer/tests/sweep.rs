//! The time-boxed outbox sweep (`Mailer::drain_until`): batch after batch
//! until the invocation's time is nearly up, losing nothing when it stops
//! early. The deadline is a fake (`remaining` is a closure).

mod common;

use common::*;
use peak_domain::outbox::EmailKind;
use peak_domain::ports::OutboxQueue;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use time::OffsetDateTime;

const MARGIN: Duration = Duration::from_secs(30);

async fn owed_emails(n: usize) -> Arc<peak_store_sqlite::SqliteStore> {
    let (store, t, p) = store().await;
    for i in 0..n {
        user_with_email(
            &store,
            &t,
            &p,
            &format!("sweep{i}@acme.example"),
            EmailKind::Invitation,
        )
        .await;
    }
    store
}

async fn due(store: &peak_store_sqlite::SqliteStore) -> usize {
    store
        .pending_outbox(1000, OffsetDateTime::now_utc())
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn a_sweep_with_time_sends_everything_due_in_one_run() {
    let store = owed_emails(350).await;
    let sender = Arc::new(MemorySender::default());
    let mailer = mailer(store.clone(), sender.clone(), brands());
    let (summary, run) = mailer
        .drain_until(100, MARGIN, || Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(summary.sent, 350, "{summary:?}");
    assert_eq!(run.batches, 4, "100 + 100 + 100 + 50");
    assert!(!run.stopped_for_time);
    assert_eq!(sender.sent.lock().unwrap().len(), 350);
    assert_eq!(due(&store).await, 0);
}

#[tokio::test]
async fn a_sweep_out_of_time_stops_between_batches_and_loses_nothing() {
    let store = owed_emails(350).await;
    let sender = Arc::new(MemorySender::default());
    let mailer = mailer(store.clone(), sender.clone(), brands());
    // Time for the first batch only.
    let asked = AtomicU32::new(0);
    let remaining = || {
        if asked.fetch_add(1, Ordering::Relaxed) == 0 {
            Duration::from_secs(300)
        } else {
            Duration::from_secs(5)
        }
    };
    let (summary, run) = mailer.drain_until(100, MARGIN, remaining).await.unwrap();
    assert_eq!((summary.sent, run.batches), (100, 1), "{summary:?}");
    assert!(run.stopped_for_time);
    assert_eq!(due(&store).await, 250, "the rest still due, none claimed");

    let (summary, run) = mailer
        .drain_until(100, MARGIN, || Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        (summary.total(), run.batches),
        (0, 0),
        "no time: nothing started"
    );

    let (summary, _) = mailer
        .drain_until(100, MARGIN, || Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(summary.sent, 250, "{summary:?}");
    let sent = sender.sent.lock().unwrap();
    let distinct: std::collections::HashSet<_> =
        sent.iter().map(|(m, _)| m.idempotency_id.clone()).collect();
    assert_eq!((sent.len(), distinct.len()), (350, 350), "each email once");
}
