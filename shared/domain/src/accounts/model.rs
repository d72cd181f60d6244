//! A customer account as this service keeps it: a directory entry in step
//! with the billing platform that owns accounts (number, name, optional
//! parent, status), plus the one thing the directory derives itself: the
//! account's ancestor path, so an account's descendants are one key range
//! (see [`Account::path_key`]).

use crate::error::FieldError;
use crate::ids::TenantId;
use crate::model::user::AccountNumber;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// How deep a hierarchy may be (the root is depth 1). Billing hierarchies
/// are a few levels deep; the bound keeps the stored path (every ancestor's
/// number) well inside a DynamoDB sort key (1,024 bytes: 16 × 65).
pub const MAX_DEPTH: usize = 16;

/// Separates the numbers in a path key: account numbers never hold it.
pub const PATH_SEP: char = '/';

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Active,
    /// Closed in billing: offered to nobody, refused on new invites and
    /// edits; users already on it keep working (their status is the
    /// admins' call).
    Closed,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Closed => "closed",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        match raw {
            "active" => Ok(AccountStatus::Active),
            "closed" => Ok(AccountStatus::Closed),
            _ => Err(FieldError::new(field, "must be \"active\" or \"closed\"")),
        }
    }
}

/// An account's display name: 1 to 200 characters, trimmed, no control
/// characters (the list keys separate fields with U+0001).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountName(String);

impl AccountName {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let n = raw.trim();
        if n.is_empty() || n.chars().count() > 200 {
            return Err(FieldError::new(field, "must be 1 to 200 characters"));
        }
        if n.chars().any(char::is_control) {
            return Err(FieldError::new(
                field,
                "must not contain control characters",
            ));
        }
        Ok(Self(n.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name lowercased: the name search compares it.
    pub fn search_key(&self) -> String {
        self.0.to_lowercase()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub tenant_id: TenantId,
    pub number: AccountNumber,
    pub name: AccountName,
    pub parent: Option<AccountNumber>,
    /// The ancestors, root first (empty for a root; the last is `parent`).
    /// Derived by the directory on every write, never sent by a client.
    pub ancestors: Vec<AccountNumber>,
    pub status: AccountStatus,
    pub version: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Account {
    /// `root/…/parent/self/`: every descendant's path key starts with this
    /// account's, and nothing else's does (the trailing separator keeps
    /// `A1` from matching `A10`). Ordered by DynamoDB and SQLite alike
    /// (byte order).
    pub fn path_key(&self) -> String {
        path_key(&self.ancestors, &self.number)
    }

    /// The number lowercased: the number search compares it.
    pub fn number_key(&self) -> String {
        self.number.as_str().to_lowercase()
    }

    /// Whether `number` is this account or one of its ancestors: a user who
    /// serves `number` reaches this account.
    pub fn is_within(&self, number: &AccountNumber) -> bool {
        &self.number == number || self.ancestors.contains(number)
    }

    /// The key this account is listed under for a search by `prefix`
    /// (lowercased): its number when that matches (so an account whose
    /// number and name both match is listed once), else its name; `None`
    /// when neither matches. Both stores order search results by
    /// (this key, number).
    pub fn search_key(&self, prefix: &str) -> Option<String> {
        let number = self.number_key();
        if number.starts_with(prefix) {
            return Some(number);
        }
        let name = self.name.search_key();
        name.starts_with(prefix).then_some(name)
    }
}

pub fn path_key(ancestors: &[AccountNumber], number: &AccountNumber) -> String {
    let mut key = String::new();
    for a in ancestors.iter().chain(std::iter::once(number)) {
        key.push_str(a.as_str());
        key.push(PATH_SEP);
    }
    key
}

/// A search prefix as the stores take it: trimmed, lowercased, at most 100
/// characters, no control characters (they separate key fields).
pub fn search_prefix(raw: Option<&str>) -> Result<String, FieldError> {
    let q = raw.unwrap_or("").trim().to_lowercase();
    if q.chars().count() > 100 {
        return Err(FieldError::new("q", "must be at most 100 characters"));
    }
    if q.chars().any(char::is_control) {
        return Err(FieldError::new("q", "must not contain control characters"));
    }
    Ok(q)
}

/// `PUT /accounts/{number}`: the billing platform's view of one account.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountUpsert {
    /// The account's display name.
    pub name: String,
    /// The parent account's number; absent or null for a root account. It
    /// must exist in the tenant and must not be this account or one of its
    /// descendants.
    #[serde(default)]
    pub parent: Option<String>,
    /// `active` (the default for a new account) or `closed`; absent keeps
    /// an existing account's status.
    #[serde(default)]
    pub status: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> AccountNumber {
        AccountNumber::parse("n", s).unwrap()
    }

    fn account(number: &str, ancestors: &[&str], name: &str) -> Account {
        let t = OffsetDateTime::UNIX_EPOCH;
        Account {
            tenant_id: TenantId::parse("t").unwrap(),
            number: n(number),
            name: AccountName::parse("name", name).unwrap(),
            parent: ancestors.last().map(|a| n(a)),
            ancestors: ancestors.iter().map(|a| n(a)).collect(),
            status: AccountStatus::Active,
            version: 1,
            created_at: t,
            updated_at: t,
        }
    }

    #[test]
    fn path_keys_nest_and_do_not_match_longer_numbers() {
        let a1 = account("A1", &[], "One");
        let child = account("B", &["A1"], "Bee");
        let a10 = account("A10", &[], "Ten");
        assert_eq!(a1.path_key(), "A1/");
        assert_eq!(child.path_key(), "A1/B/");
        assert!(child.path_key().starts_with(&a1.path_key()));
        assert!(!a10.path_key().starts_with(&a1.path_key()));
        assert!(child.is_within(&n("A1")) && child.is_within(&n("B")));
        assert!(!a10.is_within(&n("A1")));
    }

    #[test]
    fn search_key_prefers_the_number_and_ignores_case() {
        let acme = account("ACME-1", &[], "Acme Corp");
        assert_eq!(acme.search_key("acm").as_deref(), Some("acme-1"));
        assert_eq!(acme.search_key("acme c").as_deref(), Some("acme corp"));
        assert_eq!(acme.search_key("globex"), None);
        assert_eq!(acme.search_key("").as_deref(), Some("acme-1"));
    }

    #[test]
    fn names_and_prefixes_are_checked() {
        assert!(AccountName::parse("name", "  ").is_err());
        assert!(AccountName::parse("name", "a\u{1}b").is_err());
        assert!(AccountName::parse("name", &"x".repeat(201)).is_err());
        assert_eq!(search_prefix(Some(" AcMe ")).unwrap(), "acme");
        assert!(search_prefix(Some("a\u{1}")).is_err());
        assert!(search_prefix(Some(&"x".repeat(101))).is_err());
        assert_eq!(
            AccountStatus::parse("s", "closed"),
            Ok(AccountStatus::Closed)
        );
        assert!(AccountStatus::parse("s", "gone").is_err());
    }
}
