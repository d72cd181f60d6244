//! Users: the people who sign in to a tenant's portal.

use crate::error::FieldError;
use crate::ids::{ProfileId, TenantId};
use crate::role::Role;
use serde::{Deserialize, Serialize};
use std::fmt;
use time::OffsetDateTime;

/// A user's id: a ULID, as text.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    pub fn generate() -> Self {
        Self(crate::ids::monotonic_ulid().to_string())
    }

    pub fn parse(raw: &str) -> Option<Self> {
        ulid::Ulid::from_string(raw)
            .ok()
            .map(|u| Self(u.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address: the login username. Kept as entered (trimmed); compared
/// case-insensitively through [`Email::normalized`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    /// A pragmatic check (one `@`, a dotted domain, no spaces or control
    /// characters, at most 254 bytes); delivery is what proves an address.
    ///
    /// ASCII only: Amazon SES delivers only to addresses whose local part is
    /// 7-bit ASCII and whose domain is in its ASCII (`xn--`) form, and ASCII
    /// leaves one unambiguous comparison (see [`Email::normalized`]) — no
    /// Unicode look-alikes that fold to someone else's address.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let e = raw.trim();
        let bad = |why: &str| Err(FieldError::new("email", why));
        if e.is_empty() {
            return bad("must not be empty");
        }
        if !e.is_ascii() {
            return bad(
                "must be plain ASCII (write an international domain in its xn-- form); \
                 email cannot be delivered to other addresses",
            );
        }
        if e.len() > Self::MAX_LEN {
            return bad("must be at most 254 characters");
        }
        if e.chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\"\\".contains(c))
        {
            return bad("must not contain spaces or special characters");
        }
        let Some((local, domain)) = e.rsplit_once('@') else {
            return bad("must contain @");
        };
        if local.is_empty() || local.len() > 64 || local.contains('@') {
            return bad("is not a valid address");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2
            || labels
                .iter()
                .any(|l| l.is_empty() || l.len() > 63 || l.starts_with('-') || l.ends_with('-'))
        {
            return bad("must have a domain like example.com");
        }
        Ok(Self(e.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The one form compared everywhere (uniqueness, lookups, "is this the
    /// same address"): ASCII lower case, as Auth0 stores a login's email.
    /// Addresses are ASCII, so this folds exactly the letters' case.
    pub fn normalized(&self) -> String {
        self.0.to_ascii_lowercase()
    }

    /// An address read back from a store, as it was accepted when stored
    /// (addresses stored before a stricter [`Email::parse`] stay readable).
    pub fn from_stored(raw: &str) -> Result<Self, FieldError> {
        if raw.contains('@') && raw.len() <= Self::MAX_LEN {
            Ok(Self(raw.to_owned()))
        } else {
            Err(FieldError::new("email", "is not a stored address"))
        }
    }

    /// For logs and audit text: `j***@example.com`.
    pub fn masked(&self) -> String {
        mask_email(&self.0)
    }
}

pub fn mask_email(raw: &str) -> String {
    match raw.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// Debug never prints the address: logs get the masked form.
impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.masked())
    }
}

/// A first or last name: trimmed, 1 to 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let n = raw.trim();
        if n.is_empty() {
            return Err(FieldError::new(field, "must not be empty"));
        }
        if n.chars().count() > 100 {
            return Err(FieldError::new(field, "must be at most 100 characters"));
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
}

/// A customer account number (e.g. `ACME-001`): 1 to 64 of letters, digits,
/// `-`, `_`, `.`. Compared as given.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountNumber(String);

impl AccountNumber {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let a = raw.trim();
        let ok = !a.is_empty()
            && a.len() <= 64
            && a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if ok {
            Ok(Self(a.to_owned()))
        } else {
            Err(FieldError::new(
                field,
                "must be 1 to 64 letters, digits, '-', '_' or '.'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    /// Invited, has not set a password yet.
    Invited,
    Active,
    /// Loses portal access at once; an admin can enable them again.
    Suspended,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Invited => "invited",
            UserStatus::Active => "active",
            UserStatus::Suspended => "suspended",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            UserStatus::Invited,
            UserStatus::Active,
            UserStatus::Suspended,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvitationState {
    Pending,
    Accepted,
    Revoked,
}

/// The user's one live invitation link. Only a hash of the token is stored;
/// the store keeps a lookup from the hash to the user (accepting is public,
/// so the link must find its tenant). A resend replaces it: the old hash
/// stops resolving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// Hex SHA-256 of the token in the link.
    pub token_hash: String,
    pub state: InvitationState,
    pub expires_at: OffsetDateTime,
    pub sent_at: OffsetDateTime,
    /// Set once the invitee opened the accept step (Auth0 account created).
    pub accepted_at: Option<OffsetDateTime>,
}

impl Invitation {
    /// Its link no longer works because its time ran out: pending, or
    /// accepted and still waiting for the password (an accepted link
    /// expires with its invitation).
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.state != InvitationState::Revoked && now >= self.expires_at
    }

    /// Pending and not expired: its link still works.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.state == InvitationState::Pending && now < self.expires_at
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub tenant_id: TenantId,
    pub id: UserId,
    pub email: Email,
    /// A new login email awaiting verification through the link sent to it.
    pub pending_email: Option<PendingEmail>,
    pub first_name: PersonName,
    pub last_name: PersonName,
    /// The user's own account number (billing identity), if any.
    pub account_number: Option<AccountNumber>,
    /// Customer accounts the user acts for; sorted, no duplicates.
    pub customer_accounts: Vec<AccountNumber>,
    pub role: Role,
    pub profile_id: ProfileId,
    /// Extension group ids; sorted, no duplicates.
    pub extension_groups: Vec<String>,
    pub status: UserStatus,
    /// The identity provider's user id (`auth0|…`), once the user accepted.
    pub idp_subject: Option<String>,
    pub invitation: Option<Invitation>,
    pub version: u64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// The last sign-in the identity provider reported (Post Login Action).
    /// Not part of `version`: recording a login never makes an admin's
    /// edit stale.
    pub last_login_at: Option<OffsetDateTime>,
}

/// An email change waiting for the owner of the new address to confirm it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEmail {
    pub email: Email,
    /// Hex SHA-256 of the verification token.
    pub token_hash: String,
    pub expires_at: OffsetDateTime,
}

impl User {
    /// The order lists use: last name, first name, then id (stable).
    pub fn name_key(&self) -> String {
        format!(
            "{} {}",
            self.last_name.as_str().to_lowercase(),
            self.first_name.as_str().to_lowercase()
        )
    }

    pub fn full_name(&self) -> String {
        format!("{} {}", self.first_name.as_str(), self.last_name.as_str())
    }
}

/// Filters for listing users. Every filter is served by a key or index in
/// both stores; `name_prefix` matches the start of "last first", lowercased;
/// `email_prefix` the start of the normalized email (and orders by email).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserQuery {
    pub status: Option<UserStatus>,
    pub role: Option<Role>,
    pub profile: Option<ProfileId>,
    pub account: Option<AccountNumber>,
    /// Users on at least one of these accounts (`GET /users?under=` and a
    /// non-admin's whole reach); with `account` too, both must hold (see
    /// [`UserQuery::account_set`]). An empty set matches nobody.
    pub accounts: Option<std::collections::BTreeSet<AccountNumber>>,
    pub name_prefix: Option<String>,
    pub email_prefix: Option<String>,
}

impl UserQuery {
    /// The accounts a listed user must be on (any of them): `None` when the
    /// list is not limited by account. What the stores read: `account` and
    /// `accounts` together are their intersection.
    pub fn account_set(&self) -> Option<std::collections::BTreeSet<AccountNumber>> {
        match (&self.account, &self.accounts) {
            (None, None) => None,
            (Some(a), None) => Some([a.clone()].into()),
            (None, Some(set)) => Some(set.clone()),
            (Some(a), Some(set)) => Some(set.iter().filter(|x| *x == a).cloned().collect()),
        }
    }

    pub fn matches(&self, u: &User) -> bool {
        self.status.is_none_or(|s| s == u.status)
            && self.role.is_none_or(|r| r == u.role)
            && self.profile.as_ref().is_none_or(|p| *p == u.profile_id)
            && self
                .account_set()
                .is_none_or(|set| u.customer_accounts.iter().any(|a| set.contains(a)))
            && self
                .name_prefix
                .as_ref()
                .is_none_or(|p| u.name_key().starts_with(&p.to_lowercase()))
            && self
                .email_prefix
                .as_ref()
                .is_none_or(|p| u.email.normalized().starts_with(&p.to_lowercase()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the stores read: `account` and `accounts` together are their
    /// intersection; an empty set is nobody, no account filter is anyone.
    #[test]
    fn the_account_set_is_both_filters_at_once() {
        let n = |s: &str| AccountNumber::parse("a", s).unwrap();
        let set = |xs: &[&str]| Some(xs.iter().map(|x| n(x)).collect());
        let q = |account: Option<&str>, accounts| UserQuery {
            account: account.map(n),
            accounts,
            ..Default::default()
        };
        assert_eq!(q(None, None).account_set(), None);
        assert_eq!(q(Some("A"), None).account_set(), set(&["A"]));
        assert_eq!(q(None, set(&["A", "B"])).account_set(), set(&["A", "B"]));
        assert_eq!(q(Some("A"), set(&["A", "B"])).account_set(), set(&["A"]));
        assert_eq!(q(Some("C"), set(&["A", "B"])).account_set(), set(&[]));
    }

    /// One comparison everywhere: ASCII case only. Addresses that only
    /// Unicode case folding would make equal (the Kelvin sign folds to
    /// `k`, dotted capital I to `i̇`) cannot exist, so a "case-only
    /// correction" is always the same mailbox.
    #[test]
    fn emails_are_ascii_with_one_comparison() {
        for raw in [
            "\u{212A}im@example.com",
            "j\u{00f6}rg@example.com",
            "ada@b\u{00fc}cher.example",
            "\u{0130}nci@example.com",
        ] {
            let e = Email::parse(raw).unwrap_err();
            assert!(e.reason.contains("ASCII"), "{raw}: {}", e.reason);
        }
        assert_eq!(
            Email::parse("Kim@xn--bcher-kva.example")
                .unwrap()
                .normalized(),
            "kim@xn--bcher-kva.example"
        );
        // What a store held before stays readable.
        assert_eq!(
            Email::from_stored("j\u{00f6}rg@example.com")
                .unwrap()
                .as_str(),
            "j\u{00f6}rg@example.com"
        );
    }

    #[test]
    fn emails_are_checked_compared_ignoring_case_and_masked() {
        let e = Email::parse("  Jane.Doe@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "Jane.Doe@Example.COM");
        assert_eq!(e.normalized(), "jane.doe@example.com");
        assert_eq!(e.masked(), "J***@Example.COM");
        assert!(!format!("{e:?}").contains("Jane.Doe"));
        for bad in [
            "",
            "jane",
            "jane@",
            "@example.com",
            "jane@example",
            "ja ne@example.com",
            "jane@@example.com",
            "<a>@example.com",
            "jane@-x.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_and_accounts_are_validated() {
        assert!(PersonName::parse("first_name", " Ada ").is_ok());
        assert_eq!(
            PersonName::parse("first_name", "").unwrap_err().field,
            "first_name"
        );
        assert!(AccountNumber::parse("account_number", "ACME-001").is_ok());
        assert!(AccountNumber::parse("customer_accounts[0]", "ACME#1").is_err());
    }
}
