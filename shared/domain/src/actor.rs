//! Who is acting: the signed-in user (or the user a job runs for) with
//! their effective permissions and the accounts they reach. Its own module
//! so that the account directory, which the context carries, can name the
//! actor without an import circle.

use crate::model::user::{AccountNumber, User};
use crate::permissions::EffectivePermissions;
use std::collections::BTreeSet;

/// The signed-in user, with their effective permissions and the customer
/// accounts they reach.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: User,
    pub permissions: EffectivePermissions,
    /// The accounts the actor serves, as the delegation rule counts them:
    /// their own `customer_accounts` and, for a sales rep or partner, every
    /// account below one of them in the directory (a child account is
    /// served as if it were assigned). Computed when the actor is loaded
    /// (`users::signed_in`, `users::actor`), so the pure policy can ask
    /// [`Actor::serves`]. An admin's is their own list (unused: admins
    /// reach every account).
    pub reach: BTreeSet<AccountNumber>,
}

impl Actor {
    /// `user` acting with `permissions`, reaching their own accounts only
    /// (customers, admins, and whoever's descendants are not looked up).
    pub fn new(user: User, permissions: EffectivePermissions) -> Self {
        let reach = user.customer_accounts.iter().cloned().collect();
        Actor {
            user,
            permissions,
            reach,
        }
    }

    /// Whether the actor serves `account` (directly or above it).
    pub fn serves(&self, account: &AccountNumber) -> bool {
        self.reach.contains(account)
    }
}
