//! The user use cases, by group. Each one: validate input, decide with the
//! policy, then one atomic store write carrying its audit event and emails.
//!
//! - [`invitations`]: invite, resend, revoke; opening and accepting a link;
//! - [`edits`]: editing a user, and oneself (`/me`);
//! - [`status`]: suspend, enable, delete;
//! - [`passwords`]: password resets, signed in and signed out;
//! - [`email_verification`]: confirming a new login email;
//! - [`identity_events`]: what the identity provider tells us (webhook
//!   deliveries, recorded then applied);
//! - [`queries`]: one user, lists, audit trails, login sync state;
//! - [`stuck_work`]: failed emails and owed identity-provider work, as the
//!   tenant's admins list and retry them;
//! - [`actor`]: who is acting (the signed-in user, or a job's starter);
//! - [`wire`]: request bodies and their `TryFrom` conversions;
//! - [`policy`]: who may do what to whom;
//! - [`batch`]: many of the changes above in one request, each through its
//!   own use case.
//!
//! The user itself is data, in `crate::model::user`. Modules depend one
//! way: `policy` ← `access` (which user, for what) ← `recording` (what a
//! change writes) ← the groups, which never import each other; `wire` is
//! theirs too — except `stuck_work`, which retries an email through the
//! resend of its group (one way: no group calls it); `batch` sits above the
//! groups and calls them. This module only declares and re-exports.

pub(crate) mod access;
pub mod actor;
pub mod batch;
pub mod edits;
pub mod email_verification;
pub mod identity_events;
pub mod invitations;
pub mod passwords;
pub mod policy;
pub mod queries;
pub(crate) mod recording;
pub mod signed_in;
pub mod status;
pub mod stuck_work;
pub mod wire;

pub use crate::context::{Actor, Budget, Ctx, UserSettings, tenant_closed};
pub use actor::{actor_for_user, resolve_actor};
pub use batch::{
    Applied, BATCH_CONCURRENCY, BatchOperation, BatchRequest, MAX_BATCH_OPERATIONS, apply,
    check_batch_size, plan,
};
pub use edits::{edit_self, edit_user};
pub use email_verification::{
    EmailVerificationView, VerificationState, email_verification_tenant, verify_email,
    view_email_verification,
};
pub use invitations::{
    InvitationView, Invited, LinkState, accept_invitation, address_taken_for, check_invite,
    invitation_not_found, invite, invite_with_id, resend_invitation, revoke_invitation,
    view_invitation,
};
pub use passwords::{request_password_reset, reset_password};
pub use queries::{
    LoginSync, UserAccount, get_user, get_user_with_login, list_audit, list_users, login_sync,
    user_accounts,
};
pub use recording::changes;
pub use status::{delete_user, enable_user, suspend_user};
pub use stuck_work::{
    FailedEmailView, IdentityWorkView, RetriedEmail, list_failed_emails, list_identity_work,
    retry_failed_email, retry_identity_work,
};
pub use wire::{InviteRequest, MAX_ACCOUNTS, MAX_GROUPS, SelfPatch, UserPatch};
