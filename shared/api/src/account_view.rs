//! What clients receive for a customer account.

use peak_domain::accounts::{Account, AccountStatus};
use serde::Serialize;
use time::OffsetDateTime;

#[derive(Serialize, schemars::JsonSchema)]
pub struct AccountView<'a> {
    pub number: &'a str,
    pub name: &'a str,
    /// The parent account's number; null for a root account.
    pub parent: Option<&'a str>,
    /// Every account above this one, root first (the last is `parent`).
    pub ancestors: Vec<&'a str>,
    pub status: AccountStatus,
    pub version: u64,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub updated_at: OffsetDateTime,
}

impl<'a> From<&'a Account> for AccountView<'a> {
    fn from(a: &'a Account) -> Self {
        Self {
            number: a.number.as_str(),
            name: a.name.as_str(),
            parent: a.parent.as_ref().map(|p| p.as_str()),
            ancestors: a.ancestors.iter().map(|p| p.as_str()).collect(),
            status: a.status,
            version: a.version,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}
