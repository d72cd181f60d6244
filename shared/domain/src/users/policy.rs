//! Who may do what to which user. One pure function decides; the HTTP layer
//! turns its answer into a status.
//!
//! - Admins act on every user of their tenant (not on another tenant: the
//!   store is always queried with the caller's tenant).
//! - Sales reps and partners act on *customer* users of their assigned
//!   customer accounts and of every account below them (child accounts,
//!   their children, …: [`Actor::reach`]), as far as their My Customers
//!   settings allow.
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
//!
//! **The delegation rule** ([`check_grant`], [`check_reach`]): a non-admin
//! never leaves anyone holding more than they hold themselves — no role but
//! customer, no customer account they do not serve, no extension group they
//! do not hold, no effective permission (through the profile or the groups,
//! for the receiving user's role) beyond their own — and acts only on users
//! who hold no more than they do. Only admins set `account_number` or change
//! another user's login email.

use crate::catalogue::Catalogue;
pub use crate::context::Actor;
use crate::error::{Error, FieldError};
use crate::model::user::{AccountNumber, User};
use crate::permissions::{EffectivePermissions, exceeding};
use crate::role::Role;
use std::collections::BTreeSet;

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

fn shares_an_account(actor: &Actor, target: &User) -> bool {
    target.customer_accounts.iter().any(|a| actor.serves(a))
}

fn serves_all_accounts(actor: &Actor, accounts: &[AccountNumber]) -> bool {
    !accounts.is_empty() && accounts.iter().all(|a| actor.serves(a))
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
    allowed && target.role == Role::Customer && shares_an_account(actor, target)
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
    if manages && !myself && serves_all_accounts(actor, &target.customer_accounts) {
        Ok(())
    } else {
        Err(Error::Forbidden(action.describe()))
    }
}

/// May `actor` invite users at all? (What each invitation gives is
/// [`check_grant`]'s question.)
pub fn authorize_invite(actor: &Actor) -> Result<(), Error> {
    let me = &actor.user;
    if me.role == Role::Admin {
        return Ok(());
    }
    let may_invite =
        invite_setting(me.role).is_some_and(|s| actor.permissions.allows(s, &["enabled"]));
    if may_invite {
        Ok(())
    } else {
        Err(Error::Forbidden("invite users"))
    }
}

/// What a user holds (or would hold), as the delegation rule sees it.
#[derive(Debug, Clone, Copy)]
pub struct Holding<'a> {
    pub role: Role,
    pub customer_accounts: &'a [AccountNumber],
    pub extension_groups: &'a [String],
    /// Effective for `role`: the profile's settings raised by the groups.
    pub permissions: &'a EffectivePermissions,
}

impl<'a> Holding<'a> {
    pub fn of(user: &'a User, permissions: &'a EffectivePermissions) -> Self {
        Holding {
            role: user.role,
            customer_accounts: &user.customer_accounts,
            extension_groups: &user.extension_groups,
            permissions,
        }
    }
}

/// Where `holding` exceeds the actor, one entry per thing, with the code
/// of the first kind found (role, account, group, then setting).
fn excess(
    catalogue: &Catalogue,
    actor: &Actor,
    holding: &Holding,
) -> Option<(&'static str, Vec<FieldError>)> {
    let me = &actor.user;
    if me.role == Role::Admin {
        return None;
    }
    if holding.role != Role::Customer {
        return Some((
            "role_not_grantable",
            vec![FieldError::new(
                "role",
                format!("only an admin can give the {} role", holding.role.as_str()),
            )],
        ));
    }
    let accounts: Vec<FieldError> = holding
        .customer_accounts
        .iter()
        .filter(|a| !actor.serves(a))
        .map(|a| {
            FieldError::new(
                "customer_accounts",
                format!("{}: you do not serve this account", a.as_str()),
            )
        })
        .collect();
    if holding.customer_accounts.is_empty() {
        return Some((
            "account_not_served",
            vec![FieldError::new(
                "customer_accounts",
                "a user without customer accounts is an admin's to manage",
            )],
        ));
    }
    if !accounts.is_empty() {
        return Some(("account_not_served", accounts));
    }
    let groups: Vec<FieldError> = holding
        .extension_groups
        .iter()
        .filter(|g| !me.extension_groups.contains(g))
        .map(|g| {
            FieldError::new(
                "extension_groups",
                format!("{g}: you do not hold this group"),
            )
        })
        .collect();
    if !groups.is_empty() {
        return Some(("group_not_held", groups));
    }
    let settings: Vec<FieldError> = exceeding(catalogue, &actor.permissions, holding.permissions)
        .into_iter()
        .map(|e| {
            FieldError::new(
                format!("settings.{}", e.setting),
                match e.held {
                    Some(h) => format!("gives {}; you hold {h}", e.given),
                    None => format!("gives {}; you do not hold this setting", e.given),
                },
            )
        })
        .collect();
    (!settings.is_empty()).then_some(("permission_exceeds_yours", settings))
}

/// The delegation rule for what a non-admin gives (an invitation, a bulk
/// row, an edit's result): nothing beyond what they hold. The 403's code
/// says which kind exceeds (`role_not_grantable`, `account_not_served`,
/// `group_not_held`, `permission_exceeds_yours`) and its errors name each
/// role, account, group or setting.
pub fn check_grant(catalogue: &Catalogue, actor: &Actor, holding: &Holding) -> Result<(), Error> {
    match excess(catalogue, actor, holding) {
        None => Ok(()),
        Some((code, errors)) => Err(Error::Exceeds {
            code,
            detail: "this would give more than you hold; see errors".into(),
            errors,
        }),
    }
}

/// The delegation rule for whom a non-admin acts on: nobody holding more
/// than they do (a colleague with stronger permissions is an admin's to
/// manage). 403 `user_holds_more_than_you`, naming what exceeds.
pub fn check_reach(catalogue: &Catalogue, actor: &Actor, target: &Holding) -> Result<(), Error> {
    match excess(catalogue, actor, target) {
        None => Ok(()),
        Some((_, errors)) => Err(Error::Exceeds {
            code: "user_holds_more_than_you",
            detail: "this user holds more than you do; ask an admin".into(),
            errors,
        }),
    }
}

/// Only admins set a user's `account_number` (the billing account it points
/// at is not something a delegated manager can vouch for).
pub fn check_account_number(actor: &Actor) -> Result<(), Error> {
    admin_only(
        actor,
        "account_number_admin_only",
        "account_number",
        "only an admin sets a user's account number",
    )
}

/// Only admins change another user's login email; anybody else asks the
/// user to change it themselves (from their profile, which verifies it).
pub fn check_email_change(actor: &Actor, target: &User) -> Result<(), Error> {
    if actor.user.id == target.id {
        return Ok(());
    }
    admin_only(
        actor,
        "email_change_admin_only",
        "email",
        "only an admin changes another user's login email; ask the user to change it from their profile",
    )
}

fn admin_only(actor: &Actor, code: &'static str, field: &str, reason: &str) -> Result<(), Error> {
    if actor.user.role == Role::Admin {
        return Ok(());
    }
    Err(Error::Exceeds {
        code,
        detail: reason.to_owned(),
        errors: vec![FieldError::new(field, reason)],
    })
}

/// Which accounts a non-admin list may cover (their reach: a rep's served
/// accounts and their descendants); `None` = the whole tenant.
pub fn list_scope(actor: &Actor) -> Result<Option<&BTreeSet<AccountNumber>>, Error> {
    let me = &actor.user;
    if me.role == Role::Admin {
        return Ok(None);
    }
    let allowed =
        users_setting(me.role).is_some_and(|s| actor.permissions.allows(s, &["view", "manage"]));
    if !allowed {
        return Err(Error::Forbidden("list users"));
    }
    Ok(Some(&actor.reach))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::catalogue;
    use crate::ids::{ProfileId, TenantId};
    use crate::model::profile::ProfileSettings;
    use crate::model::user::{Email, PersonName, UserId, UserStatus};
    use crate::permissions::with_extension_groups;

    fn n(s: &str) -> AccountNumber {
        AccountNumber::parse("n", s).unwrap()
    }

    fn user(role: Role, accounts: &[&str]) -> User {
        let now = time::OffsetDateTime::now_utc();
        User {
            tenant_id: TenantId::parse("t1").unwrap(),
            id: UserId::generate(),
            email: Email::parse("a@example.com").unwrap(),
            pending_email: None,
            first_name: PersonName::parse("f", "Ada").unwrap(),
            last_name: PersonName::parse("l", "Lovelace").unwrap(),
            account_number: None,
            customer_accounts: accounts.iter().map(|a| n(a)).collect(),
            role,
            profile_id: ProfileId::generate(),
            extension_groups: vec![],
            status: UserStatus::Active,
            idp_subject: Some("auth0|x".into()),
            invitation: None,
            version: 1,
            created_at: now,
            updated_at: now,
            last_login_at: None,
        }
    }

    /// A manager of `accounts` (a rep: My Customers; a customer: the User
    /// Manager's My Account), reaching `reach`.
    fn manager(role: Role, accounts: &[&str], reach: &[&str]) -> Actor {
        let key = match role {
            Role::Customer => "my_account.account_users",
            _ => "my_customers.customer_users",
        };
        let changes = [(key.to_owned(), serde_json::Value::from("manage"))]
            .into_iter()
            .collect();
        let settings = ProfileSettings::defaults(catalogue())
            .apply(catalogue(), &changes)
            .unwrap();
        let permissions = with_extension_groups(catalogue(), role, &settings, &[]);
        let mut actor = Actor::new(user(role, accounts), permissions);
        actor.reach.extend(reach.iter().map(|a| n(a)));
        actor
    }

    #[test]
    fn a_rep_reaches_child_accounts_as_if_assigned() {
        // A above A1 above A1X; B beside A.
        let rep = manager(Role::SalesRep, &["A"], &["A1", "A1X"]);
        let grandchild = user(Role::Customer, &["A1X"]);
        assert!(can_see(&rep, &grandchild));
        assert!(authorize_user(&rep, UserAction::Edit, &grandchild).is_ok());
        let sibling = user(Role::Customer, &["B"]);
        assert!(matches!(
            authorize_user(&rep, UserAction::View, &sibling),
            Err(Error::NotFound(_))
        ));
        let both = user(Role::Customer, &["A1", "B"]);
        assert!(authorize_user(&rep, UserAction::View, &both).is_ok());
        assert!(matches!(
            authorize_user(&rep, UserAction::Edit, &both),
            Err(Error::Forbidden(_))
        ));
        assert_eq!(
            list_scope(&rep).unwrap().map(|r| r.len()),
            Some(3),
            "A, A1, A1X"
        );
        let permissions = rep.permissions.clone();
        let holding = |accounts| Holding {
            role: Role::Customer,
            customer_accounts: accounts,
            extension_groups: &[],
            permissions: &permissions,
        };
        let child = [n("A1")];
        assert!(check_grant(catalogue(), &rep, &holding(&child)).is_ok());
        let beside = [n("A1"), n("B")];
        let Err(Error::Exceeds { code, errors, .. }) =
            check_grant(catalogue(), &rep, &holding(&beside))
        else {
            panic!("B is not served");
        };
        assert_eq!(code, "account_not_served");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].reason, "B: you do not serve this account");
    }

    #[test]
    fn a_customer_reaches_only_their_own_accounts() {
        let customer = manager(Role::Customer, &["A"], &[]);
        assert!(!can_see(&customer, &user(Role::Customer, &["A1"])));
        assert!(can_see(&customer, &user(Role::Customer, &["A"])));
    }
}
