//! Roles: the general experience a user gets.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// System administrators and marketing users.
    Admin,
    /// Account Executive.
    SalesRep,
    /// Partner Account Executive.
    Partner,
    Customer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::SalesRep, Role::Partner, Role::Customer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::SalesRep => "sales_rep",
            Role::Partner => "partner",
            Role::Customer => "customer",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
