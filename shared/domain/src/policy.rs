//! Who may do what with profiles and the settings catalogue: the profile
//! and catalogue routes ask [`authorize`] before reading a body or touching
//! state (the API's dispatch does, and the profile use cases again). User
//! routes are decided by `user_policy` inside their use cases; public
//! routes (links, the signed-out reset, the webhook) have no caller.
//! The tenant is never an input here: it is the caller's, from the verified
//! token, and every store call is scoped to it.

use crate::error::Error;
use crate::ids::TenantId;
use crate::role::Role;

/// The verified caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub tenant_id: TenantId,
    /// The identity provider's subject (`sub`).
    pub subject: String,
    pub role: Role,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ViewCatalogue,
    ListProfiles,
    ViewProfile,
    CreateProfile,
    EditProfile,
    DeleteProfile,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::ViewCatalogue,
        Action::ListProfiles,
        Action::ViewProfile,
        Action::CreateProfile,
        Action::EditProfile,
        Action::DeleteProfile,
    ];

    fn describe(self) -> &'static str {
        match self {
            Action::ViewCatalogue => "view the profile settings catalogue",
            Action::ListProfiles => "list profiles",
            Action::ViewProfile => "view profiles",
            Action::CreateProfile => "create profiles",
            Action::EditProfile => "edit profiles",
            Action::DeleteProfile => "delete profiles",
        }
    }
}

/// Admins manage profiles; everyone in the tenant may read the catalogue.
pub fn authorize(caller: &Caller, action: Action) -> Result<(), Error> {
    let allowed = match action {
        Action::ViewCatalogue => true,
        Action::ListProfiles
        | Action::ViewProfile
        | Action::CreateProfile
        | Action::EditProfile
        | Action::DeleteProfile => caller.role == Role::Admin,
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

    #[test]
    fn role_by_action_table() {
        use Action::*;
        // (action, admin, sales_rep, partner, customer)
        let table = [
            (ViewCatalogue, true, true, true, true),
            (ListProfiles, true, false, false, false),
            (ViewProfile, true, false, false, false),
            (CreateProfile, true, false, false, false),
            (EditProfile, true, false, false, false),
            (DeleteProfile, true, false, false, false),
        ];
        assert_eq!(table.len(), Action::ALL.len());
        for (action, admin, rep, partner, customer) in table {
            for (role, expected) in [
                (Role::Admin, admin),
                (Role::SalesRep, rep),
                (Role::Partner, partner),
                (Role::Customer, customer),
            ] {
                let caller = Caller {
                    tenant_id: TenantId::parse("t1").unwrap(),
                    subject: "auth0|x".into(),
                    role,
                };
                assert_eq!(
                    authorize(&caller, action).is_ok(),
                    expected,
                    "{role} {action:?}"
                );
            }
        }
    }
}
