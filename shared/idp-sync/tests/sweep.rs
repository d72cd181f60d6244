//! The time-boxed sweep: batch after batch until the invocation's time is
//! nearly up, losing nothing when it stops early. The deadline is a fake
//! (`remaining` is a closure), so nothing here depends on timing.

use async_trait::async_trait;
use peak_domain::identity::{
    IdentityProvider, IdpAccount, IdpError, IdpUserState, SetupLink, StepOutcome,
};
use peak_domain::model::user::User;
use peak_domain::ports::{IdpWorkQueue, UserRecords, UserWrite};
use peak_idp_sync::Worker;
use peak_store_contract::fresh_tenant;
use peak_store_contract::users::{profile, sample_user};
use peak_store_sqlite::SqliteStore;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use time::OffsetDateTime;

/// Every login is already gone: each owed delete is one `get_user` (404),
/// done.
struct GoneLogins {
    lookups: AtomicU32,
    /// Lookups answered before the shared rate budget "runs out" (then
    /// every call is `Throttled`).
    budget: AtomicU32,
}

#[async_trait]
impl IdentityProvider for GoneLogins {
    async fn find_login(&self, _: &User) -> Result<Option<IdpAccount>, IdpError> {
        unreachable!("not used by a sweep of deletes")
    }
    async fn create_login(&self, _: &User) -> Result<Option<String>, IdpError> {
        unreachable!("not used by a sweep of deletes")
    }
    async fn relink_login(&self, _: &str, _: &User) -> Result<bool, IdpError> {
        unreachable!("not used by a sweep of deletes")
    }
    async fn password_setup_link(
        &self,
        _: &User,
        _: &str,
        _: &SetupLink<'_>,
    ) -> Result<String, IdpError> {
        unreachable!("not used by a sweep of deletes")
    }
    async fn update_user(&self, _: &str, _: &IdpUserState) -> Result<bool, IdpError> {
        unreachable!("not used by a sweep of deletes")
    }
    async fn delete_user(&self, _: &str) -> Result<(), IdpError> {
        Ok(())
    }
    async fn get_user(&self, _: &str) -> Result<Option<IdpAccount>, IdpError> {
        let left = self.budget.load(Ordering::Relaxed);
        if left == 0 {
            return Err(IdpError::Throttled("budget spent".into()));
        }
        self.budget.store(left - 1, Ordering::Relaxed);
        self.lookups.fetch_add(1, Ordering::Relaxed);
        Ok(None)
    }
    async fn revoke_sessions(&self, _: &str) -> Result<StepOutcome, IdpError> {
        Ok(StepOutcome::Done)
    }
    async fn revoke_refresh_tokens(&self, _: &str) -> Result<StepOutcome, IdpError> {
        Ok(StepOutcome::Done)
    }
    async fn clear_login_block(&self, _: &str) -> Result<StepOutcome, IdpError> {
        Ok(StepOutcome::Done)
    }
}

/// A store owing `n` login deletes (users with a login, deleted here).
async fn owing(n: usize) -> Arc<SqliteStore> {
    let store = Arc::new(SqliteStore::open_in_memory().expect("store"));
    let t = fresh_tenant();
    let p = profile(&*store, &t, "Standard").await;
    for i in 0..n {
        let mut user = sample_user(&t, &p, "Ada", "Lovelace", &format!("u{i}@acme.example"));
        user.idp_subject = Some(format!("auth0|{i:024}"));
        store
            .write_user(UserWrite {
                previous: None,
                next: Some(&user),
                audit: &[],
                outbox: &[],
            })
            .await
            .expect("create");
        store
            .write_user(UserWrite {
                previous: Some(&user),
                next: None,
                audit: &[],
                outbox: &[],
            })
            .await
            .expect("delete");
    }
    assert_eq!(store.list_idp_work(1000).await.unwrap().len(), n);
    store
}

fn worker(store: &Arc<SqliteStore>) -> (Worker, Arc<GoneLogins>) {
    let idp = Arc::new(GoneLogins {
        lookups: AtomicU32::new(0),
        budget: AtomicU32::new(u32::MAX),
    });
    (Worker::new(store.clone(), idp.clone()), idp)
}

#[tokio::test]
async fn a_sweep_with_time_drains_everything_owed_in_one_run() {
    let store = owing(350).await;
    let (worker, idp) = worker(&store);
    let summary = worker
        .sweep_until(OffsetDateTime::now_utc(), || Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(summary.done, 350, "{summary:?}");
    assert_eq!(summary.batches, 4, "100 + 100 + 100 + 50");
    assert!(!summary.stopped_for_time);
    assert_eq!(idp.lookups.load(Ordering::Relaxed), 350);
    assert!(store.list_idp_work(1000).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_sweep_out_of_time_stops_between_batches_and_loses_nothing() {
    let store = owing(350).await;
    let (worker, idp) = worker(&store);
    // Time for the first batch only: after it, less than a batch is left.
    let asked = AtomicU32::new(0);
    let remaining = || {
        if asked.fetch_add(1, Ordering::Relaxed) == 0 {
            Duration::from_secs(300)
        } else {
            Duration::from_secs(5)
        }
    };
    let summary = worker
        .sweep_until(OffsetDateTime::now_utc(), remaining)
        .await
        .unwrap();
    assert_eq!((summary.done, summary.batches), (100, 1), "{summary:?}");
    assert!(summary.stopped_for_time);
    let left = store.list_idp_work(1000).await.unwrap();
    assert_eq!(left.len(), 250, "the rest still owed");
    assert!(
        left.iter()
            .all(|w| !w.done && w.attempts == 0 && w.due_at <= OffsetDateTime::now_utc()),
        "untouched: not claimed, not failed"
    );

    // No time at all: nothing is started.
    let summary = worker
        .sweep_until(OffsetDateTime::now_utc(), || Duration::ZERO)
        .await
        .unwrap();
    assert_eq!((summary.done, summary.batches), (0, 0));

    // The next run takes the rest.
    let summary = worker
        .sweep_until(OffsetDateTime::now_utc(), || Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(summary.done, 250, "{summary:?}");
    assert_eq!(idp.lookups.load(Ordering::Relaxed), 350, "each once");
    assert!(store.list_idp_work(1000).await.unwrap().is_empty());
}

/// The shared Auth0 budget spent (by other instances, a busy hour): the
/// work that could not be sent is not a failed attempt, so nothing drifts
/// towards "stuck"; the sweep stops there (the budget is in full use) and
/// the work is due again when its claim lapses.
#[tokio::test]
async fn a_spent_rate_budget_defers_work_without_counting_an_attempt() {
    let store = owing(30).await;
    let (worker, idp) = worker(&store);
    idp.budget.store(10, Ordering::Relaxed);
    let now = OffsetDateTime::now_utc();
    let summary = worker
        .sweep_until(now, || Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(
        (summary.done, summary.deferred, summary.failed),
        (10, 1, 0),
        "{summary:?}"
    );
    let left = store.list_idp_work(1000).await.unwrap();
    assert_eq!(left.len(), 20);
    assert!(
        left.iter()
            .all(|w| w.attempts == 0 && w.last_error.is_none()),
        "{left:?}"
    );
    let later: Vec<_> = left.iter().filter(|w| w.due_at > now).collect();
    assert_eq!(later.len(), 1, "only the deferred one waits, for its lease");

    // The budget back, after the lease: everything is done, each once.
    idp.budget.store(u32::MAX, Ordering::Relaxed);
    let summary = worker
        .sweep_until(now + time::Duration::seconds(61), || {
            Duration::from_secs(3600)
        })
        .await
        .unwrap();
    assert_eq!(summary.done, 20, "{summary:?}");
    assert_eq!(idp.lookups.load(Ordering::Relaxed), 30);
    assert!(store.list_idp_work(1000).await.unwrap().is_empty());
}
