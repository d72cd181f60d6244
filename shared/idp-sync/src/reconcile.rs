//! Reconciliation: the provider's logins against our users.
//!
//! Our store is the source of truth for who exists, their name, email and
//! whether they may sign in. For every login we created (it records our
//! tenant and user id in its metadata):
//!
//! - our user is gone → the login is deleted (a lost delete);
//! - our user holds this login and the login's name, email or blocked state
//!   differs → the login is updated (a lost sync, or a dashboard edit);
//! - our user exists but is not linked to this login (the accept that
//!   created it failed before linking) → left alone: the person's next
//!   accept finds the login by email and links it;
//! - logins without our metadata (made by hand in the dashboard) are
//!   counted and left alone.
//!
//! It reads every login from a complete listing ([`LoginDirectory`]: for
//! Auth0 a users-export job — the user search stops at 1,000 and is
//! eventually consistent) and reports what it changed. A failure of one
//! login is counted and the run goes on; a listing that could not be read
//! to its end is reported as not complete.

use peak_domain::TenantId;
use peak_domain::identity::{IdentityProvider, IdpAccount, IdpUserState, LoginDirectory};
use peak_domain::model::user::UserId;
use peak_domain::ports::UserRecords;
use serde::Serialize;

/// What one run saw and did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    pub logins_seen: u32,
    pub in_step: u32,
    /// Logins updated to our state.
    pub repaired: u32,
    /// Logins whose user is gone here, deleted.
    pub deleted_orphans: u32,
    /// Logins of an existing user not linked to them (left for the next accept).
    pub unlinked: u32,
    /// Logins without our metadata (left alone).
    pub foreign: u32,
    /// Logins that could not be checked or repaired this time.
    pub errors: u32,
    /// Lines of the listing that could not be read (each one a login that
    /// was not checked).
    pub unreadable: u32,
    /// Where the logins came from (`export`).
    pub source: String,
    /// Whether the whole listing was read (every login checked or counted
    /// in `errors`).
    pub complete: bool,
}

pub async fn reconcile(
    store: &dyn UserRecords,
    idp: &dyn IdentityProvider,
    directory: &dyn LoginDirectory,
) -> ReconcileReport {
    let mut report = ReconcileReport::default();
    let listing = match directory.all_logins().await {
        Ok(listing) => listing,
        Err(e) => {
            tracing::error!(error = %e, "reconciliation stopped: cannot list logins");
            return report;
        }
    };
    report.source = listing.source.to_owned();
    for account in listing.accounts {
        match account {
            Ok(account) => {
                report.logins_seen += 1;
                check(store, idp, &account, &mut report).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "reconciliation: a login could not be read");
                report.unreadable += 1;
            }
        }
    }
    report.complete = report.unreadable == 0;
    tracing::info!(
        source = %report.source,
        complete = report.complete,
        unreadable = report.unreadable,
        logins_seen = report.logins_seen,
        in_step = report.in_step,
        repaired = report.repaired,
        deleted_orphans = report.deleted_orphans,
        unlinked = report.unlinked,
        foreign = report.foreign,
        errors = report.errors,
        "reconciliation done"
    );
    report
}

async fn check(
    store: &dyn UserRecords,
    idp: &dyn IdentityProvider,
    account: &IdpAccount,
    report: &mut ReconcileReport,
) {
    let ours = account
        .tenant
        .as_deref()
        .and_then(TenantId::parse)
        .zip(account.user_id.as_deref().and_then(UserId::parse));
    let Some((tenant, user_id)) = ours else {
        report.foreign += 1;
        return;
    };
    let user = match store.get_user(&tenant, &user_id).await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(tenant = %tenant, user_id = %user_id, error = %e, "reconciliation: store unavailable");
            report.errors += 1;
            return;
        }
    };
    let Some(user) = user else {
        match idp.delete_user(&account.subject).await {
            Ok(()) => {
                tracing::info!(tenant = %tenant, user_id = %user_id, "reconciliation: orphan login deleted");
                report.deleted_orphans += 1;
            }
            Err(e) => {
                tracing::warn!(tenant = %tenant, user_id = %user_id, error = %e, "reconciliation: delete failed");
                report.errors += 1;
            }
        }
        return;
    };
    if user.idp_subject.as_deref() != Some(account.subject.as_str()) {
        report.unlinked += 1;
        return;
    }
    let want = IdpUserState::of(&user);
    let holds = IdpUserState {
        email: account.email.clone(),
        given_name: account.given_name.clone().unwrap_or_default(),
        family_name: account.family_name.clone().unwrap_or_default(),
        blocked: account.blocked,
    };
    if holds.email.eq_ignore_ascii_case(&want.email)
        && holds.given_name == want.given_name
        && holds.family_name == want.family_name
        && holds.blocked == want.blocked
    {
        report.in_step += 1;
        return;
    }
    match idp.update_user(&account.subject, &want).await {
        Ok(_) => {
            tracing::info!(
                tenant = %tenant, user_id = %user_id,
                blocked_drift = holds.blocked != want.blocked,
                "reconciliation: login repaired"
            );
            report.repaired += 1;
        }
        Err(e) => {
            tracing::warn!(tenant = %tenant, user_id = %user_id, error = %e, "reconciliation: update failed");
            report.errors += 1;
        }
    }
}
