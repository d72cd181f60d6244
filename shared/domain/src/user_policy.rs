//! Who may do what to which user. One pure function decides; the HTTP layer
//! turns its answer into a status.
//!
//! - Admins act on every user of their tenant (not on another tenant: the
//!   store is always queried with the caller's tenant).
//! - Sales reps and partners act on *customer* users of their assigned
//!   customer accounts, as far as their My Customers settings allow.
//! - Customers act on themselves (`/me`), and on the other customer users of
//!   their own accounts as far as their My Account settings allow (the "User
//!   Manager" extension group grants those).
//! - Seeing a user needs a shared account; changing one needs *all* of the
//!   target's accounts to be the actor's, so nobody changes a user who also
//!   belongs to an account they do not serve.
//! - A user the actor cannot even see is reported as not found (404), so
//!   ids from other accounts or tenants reveal nothing; a visible user the
//!   actor may not change is forbidden (403).
//! - Nobody suspends or deletes themselves, or changes their own role.
//! - Deleting users and reading audit trails are admin-only.

use crate::error::Error;
use crate::permissions::EffectivePermissions;
use crate::role::Role;
use crate::user::{AccountNumber, User};

/// The signed-in user, with their effective permissions.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: User,
    pub permissions: EffectivePermissions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserAction {
    View,
    Edit,
    Suspend,
    Enable,
    Delete,
    ResetPassword,
    ResendInvitation,
    RevokeInvitation,
    ViewAudit,
}

impl UserAction {
    pub const ALL: [UserAction; 9] = [
        UserAction::View,
        UserAction::Edit,
        UserAction::Suspend,
        UserAction::Enable,
        UserAction::Delete,
        UserAction::ResetPassword,
        UserAction::ResendInvitation,
        UserAction::RevokeInvitation,
        UserAction::ViewAudit,
    ];

    fn describe(self) -> &'static str {
        match self {
            UserAction::View => "view this user",
            UserAction::Edit => "edit this user",
            UserAction::Suspend => "suspend this user",
            UserAction::Enable => "enable this user",
            UserAction::Delete => "delete users",
            UserAction::ResetPassword => "reset this user's password",
            UserAction::ResendInvitation => "resend this user's invitation",
            UserAction::RevokeInvitation => "revoke this user's invitation",
            UserAction::ViewAudit => "read audit trails",
        }
    }
}

/// The setting that governs other users for a non-admin role, if any.
fn users_setting(role: Role) -> Option<&'static str> {
    match role {
        Role::SalesRep | Role::Partner => Some("my_customers.customer_users"),
        Role::Customer => Some("my_account.account_users"),
        Role::Admin => None,
    }
}

fn invite_setting(role: Role) -> Option<&'static str> {
    match role {
        Role::SalesRep | Role::Partner => Some("my_customers.invite_customer_users"),
        Role::Customer => Some("my_account.invite_users"),
        Role::Admin => None,
    }
}

fn shares_an_account(actor: &User, target: &User) -> bool {
    target
        .customer_accounts
        .iter()
        .any(|a| actor.customer_accounts.contains(a))
}

fn serves_all_accounts(actor: &User, accounts: &[AccountNumber]) -> bool {
    !accounts.is_empty() && accounts.iter().all(|a| actor.customer_accounts.contains(a))
}

/// May `actor` see `target` at all? (Used for lists too.)
pub fn can_see(actor: &Actor, target: &User) -> bool {
    if actor.user.tenant_id != target.tenant_id {
        return false;
    }
    if actor.user.id == target.id || actor.user.role == Role::Admin {
        return true;
    }
    let allowed = users_setting(actor.user.role)
        .is_some_and(|s| actor.permissions.allows(s, &["view", "manage"]));
    allowed && target.role == Role::Customer && shares_an_account(&actor.user, target)
}

pub fn authorize_user(actor: &Actor, action: UserAction, target: &User) -> Result<(), Error> {
    if !can_see(actor, target) {
        return Err(Error::NotFound("user"));
    }
    let myself = actor.user.id == target.id;
    if myself && matches!(action, UserAction::Suspend | UserAction::Delete) {
        return Err(Error::Conflict {
            code: "cannot_act_on_self",
            detail: "you cannot suspend or delete your own user; ask another admin".into(),
        });
    }
    if action == UserAction::View {
        return Ok(());
    }
    let role = actor.user.role;
    if role == Role::Admin {
        return Ok(());
    }
    if matches!(action, UserAction::Delete | UserAction::ViewAudit) {
        return Err(Error::Forbidden(action.describe()));
    }
    let manages = users_setting(role).is_some_and(|s| actor.permissions.allows(s, &["manage"]));
    if myself && action == UserAction::ResetPassword {
        return Ok(());
    }
    if manages && !myself && serves_all_accounts(&actor.user, &target.customer_accounts) {
        Ok(())
    } else {
        Err(Error::Forbidden(action.describe()))
    }
}

/// May `actor` invite (or re-invite) a user with this role, these accounts
/// and these extension groups?
pub fn authorize_invite(
    actor: &Actor,
    role: Role,
    accounts: &[AccountNumber],
    groups: &[String],
) -> Result<(), Error> {
    let me = &actor.user;
    if me.role == Role::Admin {
        return Ok(());
    }
    let may_invite =
        invite_setting(me.role).is_some_and(|s| actor.permissions.allows(s, &["enabled"]));
    if !may_invite {
        return Err(Error::Forbidden("invite users"));
    }
    check_delegated_grant(actor, role, accounts, groups)
}

/// What a non-admin may give another user: the customer role, accounts
/// they serve themselves, extension groups they hold themselves.
pub fn check_delegated_grant(
    actor: &Actor,
    role: Role,
    accounts: &[AccountNumber],
    groups: &[String],
) -> Result<(), Error> {
    let me = &actor.user;
    if me.role == Role::Admin {
        return Ok(());
    }
    if role != Role::Customer {
        return Err(Error::Forbidden("give a role other than customer"));
    }
    if !serves_all_accounts(me, accounts) {
        return Err(Error::Forbidden(
            "associate users with accounts you do not serve",
        ));
    }
    if me.role == Role::Customer && !groups.iter().all(|g| me.extension_groups.contains(g)) {
        return Err(Error::Forbidden("grant extension groups you do not hold"));
    }
    Ok(())
}

/// Which accounts a non-admin list may cover; `None` = the whole tenant.
pub fn list_scope(actor: &Actor) -> Result<Option<&[AccountNumber]>, Error> {
    let me = &actor.user;
    if me.role == Role::Admin {
        return Ok(None);
    }
    let allowed =
        users_setting(me.role).is_some_and(|s| actor.permissions.allows(s, &["view", "manage"]));
    if !allowed {
        return Err(Error::Forbidden("list users"));
    }
    Ok(Some(&me.customer_accounts))
}
