//! The store contract: one suite of behaviour that every adapter of the
//! domain's store ports must show, one module per port (`caller`, `profiles`, `users`,
//! `audit`, `outbox`, `idempotency`, `idp_work`, `logins`, `deliveries`,
//! `rate_limits`, `jobs`, `tenants`). Each adapter's tests expand
//! [`profile_store_contract!`], [`user_store_contract!`],
//! [`job_store_contract!`] and [`caller_store_contract!`] with a way to build a store; every case uses
//! fresh random tenants, so the cases can share one database or table.

pub mod accounts;
pub mod audit;
pub mod caller;
pub mod deliveries;
mod fixtures;
pub mod idempotency;
pub mod idp_work;
pub mod jobs;
pub mod logins;
pub mod outbox;
pub mod profiles;
pub mod rate_limits;
pub mod tenants;
pub mod users;

use peak_domain::TenantId;
use peak_domain::catalogue::catalogue;
use peak_domain::ids::ProfileId;
use peak_domain::model::profile::{Profile, ProfileName, ProfileSettings};
use time::OffsetDateTime;

/// Expands to one `#[tokio::test]` per contract case. `$make` is an async
/// expression yielding something that derefs to `dyn ProfileStore`.
#[macro_export]
macro_rules! profile_store_contract {
    ($make:expr) => {
        $crate::profile_store_contract!(@cases $make;
            create_then_get_round_trips,
            same_id_twice_is_refused,
            names_are_unique_per_tenant_ignoring_case,
            update_with_current_version_succeeds,
            stale_update_is_refused_and_changes_nothing,
            rename_frees_the_old_name_and_respects_taken_ones,
            delete_respects_version_and_holders,
            pagination_is_stable_complete_and_opaque,
            tenants_are_isolated,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let store = $make.await;
                $crate::profiles::$case(&*store).await;
            }
        )*
    };
}

/// Expands to one `#[tokio::test]` per user-store case. `$make` is an async
/// expression yielding an `Arc` of a store serving both ports.
#[macro_export]
macro_rules! user_store_contract {
    ($make:expr) => {
        $crate::user_store_contract!(@cases $make;
            users::user_round_trips_with_its_lookups,
            users::missing_profile_is_refused_and_nothing_is_written,
            users::emails_are_unique_per_tenant_ignoring_case,
            users::stale_writes_are_refused_and_change_nothing,
            users::changes_move_the_lookups_and_holder_counts,
            users::delete_removes_the_user_and_personal_data,
            users::lists_filter_by_index_in_a_stable_order,
            users::lists_over_a_set_of_accounts_give_each_user_once,
            audit::audit_lists_newest_first_per_user_and_tenant,
            outbox::outbox_is_written_with_the_change_and_claimed_once,
            outbox::completed_outbox_email_is_never_sent_again,
            outbox::transient_outbox_failure_is_retried_after_its_time,
            outbox::deferred_outbox_email_counts_no_attempt,
            outbox::permanent_outbox_failure_is_listed_and_not_pending,
            outbox::expired_outbox_lease_can_be_claimed_again,
            outbox::failed_emails_are_listed_per_tenant_and_retired,
            idempotency::idempotency_keys_claim_replay_and_release,
            idempotency::idempotency_claims_left_by_a_crash_free_themselves,
            rate_limits::rate_limits_count_per_bucket_and_window,
            idp_work::owed_idp_work_follows_the_user_and_completes_only_its_own_seq,
            idp_work::owed_idp_work_is_listed_per_tenant_and_retried_now,
            deliveries::deliveries_are_recorded_once_and_applied_from_the_record,
            logins::sign_ins_are_recorded_newest_wins_without_a_new_version,
        );
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn concurrent_creates_of_one_email_make_one_user() {
            let store: std::sync::Arc<dyn $crate::users::FullStore> = $make.await;
            $crate::users::concurrent_creates_of_one_email_make_one_user(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn a_profile_is_never_deleted_under_a_user_taking_it_up() {
            let store: std::sync::Arc<dyn $crate::users::FullStore> = $make.await;
            $crate::users::a_profile_is_never_deleted_under_a_user_taking_it_up(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn concurrent_edits_of_one_version_let_one_win() {
            let store: std::sync::Arc<dyn $crate::users::FullStore> = $make.await;
            $crate::users::concurrent_edits_of_one_version_let_one_win(store).await;
        }
    };
    (@cases $make:expr; $($port:ident :: $case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let store = $make.await;
                $crate::$port::$case(&*store).await;
            }
        )*
    };
}

/// Expands to one `#[tokio::test]` per job-store case (bulk-invite jobs and
/// their reports). `$make` is an async expression yielding something that
/// derefs to a [`JobStore`](peak_domain::ports::JobStore).
#[macro_export]
macro_rules! job_store_contract {
    ($make:expr) => {
        $crate::job_store_contract!(@cases $make;
            job_round_trips_and_ids_are_unique,
            job_updates_check_the_version,
            runnable_jobs_are_queued_or_past_their_lease,
            report_entries_page_in_row_order_and_replace,
            jobs_and_reports_are_tenant_isolated,
            finished_jobs_are_forgotten_after_retention,
            bad_job_input_is_refused,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let store = $make.await;
                $crate::jobs::$case(&*store).await;
            }
        )*
    };
}

/// Expands to one `#[tokio::test]` per tenant-store case. `$make` is an
/// async expression yielding something that derefs to a store serving the
/// tenant and user ports.
#[macro_export]
macro_rules! tenant_store_contract {
    ($make:expr) => {
        $crate::tenant_store_contract!(@cases $make;
            tenant_is_created_once_and_reads_back,
            tenant_updates_check_the_version_and_write_their_audit,
            tenants_list_in_id_order_through_every_page,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let store = $make.await;
                $crate::tenants::$case(&*store).await;
            }
        )*
    };
}

/// A tenant no other case uses.
pub fn fresh_tenant() -> TenantId {
    TenantId::parse(&format!("t{}", ulid::Ulid::new())).expect("valid tenant id")
}

pub(crate) fn now() -> OffsetDateTime {
    // Millisecond precision: what every adapter must round-trip exactly.
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .expect("valid nanosecond")
}

pub fn sample_profile(tenant: &TenantId, name: &str) -> Profile {
    let t = now();
    Profile {
        tenant_id: tenant.clone(),
        id: ProfileId::generate(),
        name: ProfileName::parse(name).expect("valid name"),
        description: format!("{name} description"),
        settings: ProfileSettings::defaults(catalogue()),
        version: 1,
        holder_count: 0,
        created_at: t,
        updated_at: t,
    }
}
