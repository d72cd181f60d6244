//! Work owed to the identity provider (Auth0).
//!
//! Our store and Auth0 cannot share a transaction, so a user write that
//! changes what Auth0 must hold also records, in the same transaction, that
//! the user owes Auth0 work. There is at most one record per user: the
//! worker pushes the user's *current* state (never a delta), so ten quick
//! edits cost one call, and a retry that runs after a newer change cannot
//! bring an older state back. The record goes only when the work it names
//! is done; a newer write replaces it (a new `seq`) and a worker finishing
//! the older one leaves the newer in place.
//!
//! The store derives the record from previous → next with [`owed_work`]
//! (see [`UserWrite`](crate::ports::UserWrite)), so no flow can forget it.

use crate::identity::IdpUserState;
use crate::ids::TenantId;
use crate::model::user::{User, UserId};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdpOp {
    /// Make the login hold the user's current state (name, email, blocked).
    Sync,
    /// The login goes: the user was deleted, or lost the login (an
    /// invitation revoked after it was accepted). Only a login
    /// that still names this user is deleted.
    Delete,
}

impl IdpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            IdpOp::Sync => "sync",
            IdpOp::Delete => "delete",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "sync" => Some(IdpOp::Sync),
            "delete" => Some(IdpOp::Delete),
            _ => None,
        }
    }
}

/// One-off steps a change asks for on top of pushing the state. A newer
/// change that replaces a record still owed keeps them (the store ORs them
/// in), so a quick edit after a suspension cannot cancel the sign-out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdpSteps {
    /// End the login's sessions and revoke its refresh tokens (suspension,
    /// deletion): signed out everywhere, not at token expiry.
    pub end_sessions: bool,
    /// Lift the provider's brute-force block (enabling): an enabled user can
    /// sign in again.
    pub clear_login_block: bool,
}

impl IdpSteps {
    pub fn union(self, other: Self) -> Self {
        Self {
            end_sessions: self.end_sessions || other.end_sessions,
            clear_login_block: self.clear_login_block || other.clear_login_block,
        }
    }
}

/// What one user owes the identity provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpWork {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    /// The login (`auth0|…`).
    pub subject: String,
    pub op: IdpOp,
    /// The user version that asked for it (for a delete of a deleted user,
    /// one past the last stored version): completing succeeds only while it
    /// is still this.
    pub seq: u64,
    pub steps: IdpSteps,
}

/// A record of one user's work as stored: owed (with its retry state), or
/// done (what the last run could not do stays visible).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpWorkItem {
    pub work: IdpWork,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Why the last attempt failed (no personal data: see the worker).
    pub last_error: Option<String>,
    /// Not before this time (a retry's backoff, or a worker's lease).
    pub due_at: OffsetDateTime,
    /// Done (no longer owed); `notes` say what could not be done.
    pub done: bool,
    /// Steps the provider does not offer here (e.g. session revocation on
    /// a plan without it), as `<step>: <reason>`.
    pub notes: Vec<String>,
}

/// The work a change from `previous` to `next` owes the provider, if any.
///
/// - A user with a login that is deleted: delete the login (ending its
///   sessions first).
/// - A user who keeps existing but loses their login with a revoked
///   invitation: delete that login (a fresh invitation of the same user
///   keeps it: the next accept finds it again).
/// - A user with a login whose name, email or blocked state changes: sync;
///   blocking also ends the sessions, unblocking also lifts the provider's
///   brute-force block.
/// - Nothing for users without a login (invited, not yet accepted: the
///   provider first hears of a person when they accept), nor for the write
///   that links the login (the login was just created with this state).
pub fn owed_work(previous: Option<&User>, next: Option<&User>) -> Option<IdpWork> {
    match (previous, next) {
        (Some(p), None) => p.idp_subject.as_ref().map(|subject| IdpWork {
            tenant_id: p.tenant_id.clone(),
            user_id: p.id.clone(),
            subject: subject.clone(),
            op: IdpOp::Delete,
            seq: p.version + 1,
            steps: IdpSteps {
                end_sessions: true,
                clear_login_block: false,
            },
        }),
        (Some(p), Some(n)) => {
            let old = p.idp_subject.as_ref()?;
            let Some(subject) = n.idp_subject.as_ref() else {
                // A fresh invitation of the same user keeps the login (the
                // next accept finds it again); a revoked one loses it.
                let revoked = n
                    .invitation
                    .as_ref()
                    .is_some_and(|i| i.state == crate::model::user::InvitationState::Revoked);
                if !revoked {
                    return None;
                }
                return Some(IdpWork {
                    tenant_id: n.tenant_id.clone(),
                    user_id: n.id.clone(),
                    subject: old.clone(),
                    op: IdpOp::Delete,
                    seq: n.version,
                    steps: IdpSteps {
                        end_sessions: true,
                        clear_login_block: false,
                    },
                });
            };
            let (before, after) = (IdpUserState::of(p), IdpUserState::of(n));
            if old != subject || before == after {
                return None;
            }
            Some(IdpWork {
                tenant_id: n.tenant_id.clone(),
                user_id: n.id.clone(),
                subject: subject.clone(),
                op: IdpOp::Sync,
                seq: n.version,
                steps: IdpSteps {
                    end_sessions: !before.blocked && after.blocked,
                    clear_login_block: before.blocked && !after.blocked,
                },
            })
        }
        _ => None,
    }
}

/// How long a worker waits before retrying failed work: exponential from
/// 10 s, capped at one hour. Work is never dropped; it keeps retrying at the
/// cap and is reported as stuck (see [`STUCK_AFTER_ATTEMPTS`]).
pub fn retry_delay(attempts: u32) -> time::Duration {
    let secs = 10u64.saturating_mul(1u64 << attempts.min(12)).min(3600);
    time::Duration::seconds(secs as i64)
}

/// After this many failed attempts the work is reported as stuck (an error
/// log line that the deployment's alarm counts).
pub const STUCK_AFTER_ATTEMPTS: u32 = 5;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::user::UserStatus;

    fn user() -> User {
        let now = time::macros::datetime!(2026-11-23 10:00 UTC);
        User {
            tenant_id: TenantId::parse("acme").unwrap(),
            id: UserId::generate(),
            email: crate::model::user::Email::parse("ada@acme.example").unwrap(),
            pending_email: None,
            first_name: crate::model::user::PersonName::parse("first_name", "Ada").unwrap(),
            last_name: crate::model::user::PersonName::parse("last_name", "Lovelace").unwrap(),
            account_number: None,
            customer_accounts: vec![],
            role: crate::Role::Admin,
            profile_id: crate::ProfileId::generate(),
            extension_groups: vec![],
            status: UserStatus::Active,
            idp_subject: Some("auth0|ada".into()),
            invitation: None,
            version: 3,
            created_at: now,
            updated_at: now,
            last_login_at: None,
        }
    }

    #[test]
    fn nothing_is_owed_for_users_without_a_login() {
        let mut p = user();
        p.idp_subject = None;
        let mut n = p.clone();
        n.version += 1;
        n.status = UserStatus::Suspended;
        assert_eq!(owed_work(Some(&p), Some(&n)), None);
        assert_eq!(owed_work(Some(&p), None), None);
        assert_eq!(owed_work(None, Some(&n)), None);
    }

    #[test]
    fn linking_the_login_owes_nothing() {
        let mut p = user();
        p.idp_subject = None;
        let mut n = p.clone();
        n.version += 1;
        n.idp_subject = Some("auth0|x".into());
        assert_eq!(owed_work(Some(&p), Some(&n)), None);
    }

    #[test]
    fn changes_auth0_holds_owe_a_sync_at_the_new_version() {
        let p = user();
        for change in [
            |u: &mut User| u.status = UserStatus::Suspended,
            |u: &mut User| {
                u.first_name = crate::model::user::PersonName::parse("first_name", "Zed").unwrap()
            },
            |u: &mut User| {
                u.last_name = crate::model::user::PersonName::parse("last_name", "Zed").unwrap()
            },
            |u: &mut User| u.email = crate::model::user::Email::parse("new@acme.example").unwrap(),
        ] {
            let mut n = p.clone();
            n.version += 1;
            change(&mut n);
            let w = owed_work(Some(&p), Some(&n)).expect("owed");
            assert_eq!((w.op, w.seq), (IdpOp::Sync, n.version));
            assert_eq!(w.subject, "auth0|ada");
        }
    }

    #[test]
    fn changes_auth0_does_not_hold_owe_nothing() {
        let p = user();
        let mut n = p.clone();
        n.version += 1;
        n.extension_groups = vec!["billing_manager".into()];
        assert_eq!(owed_work(Some(&p), Some(&n)), None);
    }

    #[test]
    fn deleting_a_user_with_a_login_owes_a_delete() {
        let p = user();
        let w = owed_work(Some(&p), None).expect("owed");
        assert_eq!(
            (w.op, w.seq, w.subject.as_str()),
            (IdpOp::Delete, p.version + 1, "auth0|ada")
        );
    }

    #[test]
    fn suspending_ends_sessions_and_enabling_lifts_the_brute_force_block() {
        let active = user();
        let mut suspended = active.clone();
        suspended.version += 1;
        suspended.status = UserStatus::Suspended;
        let w = owed_work(Some(&active), Some(&suspended)).expect("owed");
        assert_eq!(
            w.steps,
            IdpSteps {
                end_sessions: true,
                clear_login_block: false
            }
        );
        let mut enabled = suspended.clone();
        enabled.version += 1;
        enabled.status = UserStatus::Active;
        let w = owed_work(Some(&suspended), Some(&enabled)).expect("owed");
        assert_eq!(
            w.steps,
            IdpSteps {
                end_sessions: false,
                clear_login_block: true
            }
        );
        // A rename asks for neither.
        let mut renamed = enabled.clone();
        renamed.version += 1;
        renamed.first_name = crate::model::user::PersonName::parse("first_name", "Zed").unwrap();
        let w = owed_work(Some(&enabled), Some(&renamed)).expect("owed");
        assert_eq!(w.steps, IdpSteps::default());
        assert!(
            IdpSteps {
                end_sessions: true,
                clear_login_block: false
            }
            .union(w.steps)
            .end_sessions,
            "a newer change keeps the older one's steps"
        );
    }

    #[test]
    fn a_revoked_invitation_owes_the_delete_of_its_login() {
        let p = user();
        let mut n = p.clone();
        n.version += 1;
        n.status = UserStatus::Invited;
        n.idp_subject = None;
        n.invitation = Some(crate::model::user::Invitation {
            token_hash: "h".into(),
            state: crate::model::user::InvitationState::Pending,
            expires_at: p.updated_at,
            sent_at: p.updated_at,
            accepted_at: None,
        });
        assert_eq!(
            owed_work(Some(&p), Some(&n)),
            None,
            "invited afresh: the login stays for the next accept"
        );
        if let Some(i) = n.invitation.as_mut() {
            i.state = crate::model::user::InvitationState::Revoked;
        }
        let w = owed_work(Some(&p), Some(&n)).expect("owed");
        assert_eq!(
            (w.op, w.seq, w.subject.as_str(), w.steps.end_sessions),
            (IdpOp::Delete, n.version, "auth0|ada", true)
        );
    }

    #[test]
    fn retries_back_off_to_an_hour_and_never_stop() {
        assert_eq!(retry_delay(0).whole_seconds(), 10);
        assert_eq!(retry_delay(1).whole_seconds(), 20);
        assert_eq!(retry_delay(9).whole_seconds(), 3600);
        assert_eq!(retry_delay(u32::MAX).whole_seconds(), 3600);
        assert_eq!(IdpOp::parse(IdpOp::Delete.as_str()), Some(IdpOp::Delete));
    }
}
