//! Who may do what with profiles and the settings catalogue. Each profile
//! use case asks [`authorize`] first, before it reads a body or touches
//! state: a caller who may not act gets 403 whatever they sent. (User use
//! cases decide with `users::policy`; public routes — links, the signed-out
//! reset, the webhook — have no caller.) The tenant is never an input here:
//! it is the actor's, from the verified token, and every store call is
//! scoped to it.

use crate::context::Actor;
use crate::error::Error;
use crate::role::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileAction {
    ViewCatalogue,
    ListProfiles,
    ViewProfile,
    CreateProfile,
    EditProfile,
    DeleteProfile,
}

impl ProfileAction {
    pub const ALL: [ProfileAction; 6] = [
        ProfileAction::ViewCatalogue,
        ProfileAction::ListProfiles,
        ProfileAction::ViewProfile,
        ProfileAction::CreateProfile,
        ProfileAction::EditProfile,
        ProfileAction::DeleteProfile,
    ];

    fn describe(self) -> &'static str {
        match self {
            ProfileAction::ViewCatalogue => "view the profile settings catalogue",
            ProfileAction::ListProfiles => "list profiles",
            ProfileAction::ViewProfile => "view profiles",
            ProfileAction::CreateProfile => "create profiles",
            ProfileAction::EditProfile => "edit profiles",
            ProfileAction::DeleteProfile => "delete profiles",
        }
    }
}

/// Admins manage profiles; everyone in the tenant may read the catalogue.
pub fn authorize(actor: &Actor, action: ProfileAction) -> Result<(), Error> {
    let allowed = match action {
        ProfileAction::ViewCatalogue => true,
        ProfileAction::ListProfiles
        | ProfileAction::ViewProfile
        | ProfileAction::CreateProfile
        | ProfileAction::EditProfile
        | ProfileAction::DeleteProfile => actor.user.role == Role::Admin,
    };
    if allowed {
        Ok(())
    } else {
        Err(Error::Forbidden(action.describe()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::catalogue;
    use crate::ids::{ProfileId, TenantId};
    use crate::model::profile::ProfileSettings;
    use crate::model::user::{Email, PersonName, User, UserId, UserStatus};
    use crate::permissions::with_extension_groups;

    fn actor(role: Role) -> Actor {
        let now = time::OffsetDateTime::now_utc();
        let user = User {
            tenant_id: TenantId::parse("t1").unwrap(),
            id: UserId::generate(),
            email: Email::parse("a@example.com").unwrap(),
            pending_email: None,
            first_name: PersonName::parse("f", "Ada").unwrap(),
            last_name: PersonName::parse("l", "Lovelace").unwrap(),
            account_number: None,
            customer_accounts: vec![],
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
        };
        let settings = ProfileSettings::defaults(catalogue());
        let permissions = with_extension_groups(catalogue(), role, &settings, &[]);
        Actor::new(user, permissions)
    }

    #[test]
    fn role_by_action_table() {
        use ProfileAction::*;
        // (action, admin, sales_rep, partner, customer)
        let table = [
            (ViewCatalogue, true, true, true, true),
            (ListProfiles, true, false, false, false),
            (ViewProfile, true, false, false, false),
            (CreateProfile, true, false, false, false),
            (EditProfile, true, false, false, false),
            (DeleteProfile, true, false, false, false),
        ];
        assert_eq!(table.len(), ProfileAction::ALL.len());
        for (action, admin, rep, partner, customer) in table {
            for (role, expected) in [
                (Role::Admin, admin),
                (Role::SalesRep, rep),
                (Role::Partner, partner),
                (Role::Customer, customer),
            ] {
                let actor = actor(role);
                assert_eq!(
                    authorize(&actor, action).is_ok(),
                    expected,
                    "{role} {action:?}"
                );
            }
        }
    }
}
