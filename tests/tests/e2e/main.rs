//! Every end-to-end test, in one test binary: each extra binary is another
//! ~70 MB link of the whole stack (AWS SDK included) in `target/`, and the
//! files share no process state (no env vars, no globals), so one process
//! runs them as well as eight. Run one file with e.g.
//! `scripts/test.sh --test e2e users::lifecycle::`.

/// Runs each named case (an `async fn(TestApp)` of the module) once on
/// SQLite and once on DynamoDB Local, as `sqlite::<case>` and
/// `dynamodb::<case>`. Defined before the modules so every one can use it.
macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $case() { super::$case(peak_tests::spawn_sqlite().await).await; })*
        }
        mod dynamodb {
            $(#[tokio::test] async fn $case() { super::$case(peak_tests::spawn_dynamodb().await).await; })*
        }
    };
}

mod account_store_calls;
mod accounts;
mod association;
mod auth0_lifecycle;
mod auth0_sync;
mod auth0_webhooks;
mod batch_drain;
mod browser;
mod bulk_invites;
mod bulk_jobs;
mod delegated_admin;
mod delegation;
mod email_e2e;
mod faults;
mod invitation_expiry;
mod json_bodies;
mod link_pages;
mod profiles_api;
mod store_calls;
mod store_capacity;
mod stuck_work;
mod subtree_lists;
mod tenants;
mod unconditional_writes;
mod users;
