//! Row-by-row validation: a [`Row`] becomes a typed [`Candidate`] or the
//! list of everything wrong with it.

use crate::columns::{column_letters, shorten, squash};
use crate::{Column, Limits, Row};
use peak_domain::catalogue::Catalogue;
use peak_domain::model::user::{AccountNumber, Email, PersonName};
use peak_domain::users::{InviteRequest, MAX_ACCOUNTS, MAX_GROUPS};
use peak_domain::{ProfileId, Role};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The `code` of every [`Issue`].
pub mod codes {
    /// A cell over [`crate::Limits::max_cell_chars`].
    pub const TOO_LONG: &str = "too_long";
    /// A required cell is empty.
    pub const REQUIRED: &str = "required";
    pub const INVALID_NAME: &str = "invalid_name";
    pub const INVALID_EMAIL: &str = "invalid_email";
    pub const UNKNOWN_ROLE: &str = "unknown_role";
    pub const UNKNOWN_PROFILE: &str = "unknown_profile";
    pub const UNKNOWN_EXTENSION_GROUP: &str = "unknown_extension_group";
    pub const TOO_MANY_EXTENSION_GROUPS: &str = "too_many_extension_groups";
    pub const INVALID_ACCOUNT: &str = "invalid_account";
    pub const TOO_MANY_ACCOUNTS: &str = "too_many_accounts";
    /// Role customer with no customer account.
    pub const ACCOUNT_REQUIRED: &str = "account_required";
    /// A value under no header.
    pub const UNNAMED_COLUMN: &str = "unnamed_column";
    /// The address appeared on an earlier row of the file (skipped).
    pub const DUPLICATE_EMAIL: &str = "duplicate_email";
    /// The tenant already has a user with this address (skipped).
    pub const USER_EXISTS: &str = "user_exists";
    /// A bulk-update row with neither an id nor an email.
    pub const USER_REQUIRED: &str = "user_required";
    pub const INVALID_ID: &str = "invalid_id";
    /// A bulk-update row that changes nothing (skipped).
    pub const NO_CHANGE: &str = "no_change";
    pub const UNKNOWN_ACTION: &str = "unknown_action";
    pub const INVALID_STATUS: &str = "invalid_status";
    /// The account number appeared on an earlier row (skipped).
    pub const DUPLICATE_ACCOUNT: &str = "duplicate_account";
}

/// One thing wrong with a row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub row: u32,
    /// [`Column::name`], or the letter of an unnamed column; `None` for the
    /// row as a whole.
    pub column: Option<String>,
    /// One of [`codes`].
    pub code: &'static str,
    /// For the person who uploaded the file.
    pub reason: String,
}

impl Issue {
    pub fn new(
        row: u32,
        column: Option<Column>,
        code: &'static str,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            row,
            column: column.map(|c| c.name().to_owned()),
            code,
            reason: reason.into(),
        }
    }

    /// For a caller that checks existing users itself.
    pub fn user_exists(row: u32) -> Self {
        Self::new(
            row,
            Some(Column::Email),
            codes::USER_EXISTS,
            "a user with this email address already exists",
        )
    }

    /// Duplicates and existing users make a row *skipped*, not *failed*.
    pub fn is_skip(&self) -> bool {
        matches!(
            self.code,
            codes::DUPLICATE_EMAIL
                | codes::USER_EXISTS
                | codes::DUPLICATE_ACCOUNT
                | codes::NO_CHANGE
        )
    }
}

/// A row that passed every check: what an invite needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub row: u32,
    pub first_name: PersonName,
    pub last_name: PersonName,
    pub email: Email,
    pub role: Role,
    pub profile_id: ProfileId,
    /// Catalogue extension group ids; sorted, no duplicates.
    pub extension_groups: Vec<String>,
    /// Sorted, no duplicates.
    pub customer_accounts: Vec<AccountNumber>,
}

impl Candidate {
    /// The request [`peak_domain::users::invite`] takes (it checks again,
    /// with the inviter's permissions and the store).
    pub fn invite_request(&self) -> InviteRequest {
        InviteRequest {
            first_name: self.first_name.as_str().to_owned(),
            last_name: self.last_name.as_str().to_owned(),
            email: self.email.as_str().to_owned(),
            role: self.role.as_str().to_owned(),
            profile_id: self.profile_id.as_str().to_owned(),
            extension_groups: self.extension_groups.clone(),
            customer_accounts: self
                .customer_accounts
                .iter()
                .map(|a| a.as_str().to_owned())
                .collect(),
            account_number: None,
        }
    }
}

/// A row that did not pass, with everything wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub row: u32,
    /// The email cell as written (trimmed, cut to 254 characters), for the
    /// report.
    pub email: String,
    /// Never empty.
    pub issues: Vec<Issue>,
}

impl Rejected {
    /// Only duplicate or existing-user issues: the row is skipped.
    pub fn is_skip(&self) -> bool {
        self.issues.iter().all(Issue::is_skip)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowOutcome {
    Valid(Candidate),
    Invalid(Rejected),
}

impl RowOutcome {
    pub fn row(&self) -> u32 {
        match self {
            RowOutcome::Valid(c) => c.row,
            RowOutcome::Invalid(r) => r.row,
        }
    }
}

/// Checks rows one at a time. Keeps 16 bytes (a SHA-256 prefix of the
/// normalized address) and a row number per distinct email, to find
/// duplicates within the file.
pub struct Validator<'a> {
    /// (squashed id, squashed label, id) of each extension group.
    groups: Vec<(String, String, &'static str)>,
    /// Lowercased trimmed profile name → id; also each id → itself.
    profiles: HashMap<String, ProfileId>,
    max_cell_chars: usize,
    seen: HashMap<u128, u32>,
    exists: Option<ExistsCheck<'a>>,
}

/// See [`Validator::with_exists_check`].
type ExistsCheck<'a> = Box<dyn FnMut(&Email) -> bool + Send + 'a>;

impl std::fmt::Debug for Validator<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("profiles", &self.profiles.len())
            .field("seen", &self.seen.len())
            .field("exists_check", &self.exists.is_some())
            .finish()
    }
}

impl<'a> Validator<'a> {
    /// `profiles`: the tenant's profiles as (name, id); names are matched
    /// ignoring case and surrounding spaces (as profile names are unique),
    /// and a cell holding one of the ids is accepted too.
    pub fn new<S: AsRef<str>>(
        catalogue: &'a Catalogue,
        profiles: impl IntoIterator<Item = (S, ProfileId)>,
        limits: &Limits,
    ) -> Self {
        let groups = catalogue
            .extension_groups
            .iter()
            .map(|g| (squash(g.id), squash(g.label), g.id))
            .collect();
        let mut by_name = HashMap::new();
        for (name, id) in profiles {
            by_name
                .entry(id.as_str().to_owned())
                .or_insert_with(|| id.clone());
            by_name.insert(name.as_ref().trim().to_lowercase(), id);
        }
        Self {
            groups,
            profiles: by_name,
            max_cell_chars: limits.max_cell_chars,
            seen: HashMap::new(),
            exists: None,
        }
    }

    /// "Is there already a user with this address?" asked for rows that pass
    /// every other check; `true` makes the row a skipped `user_exists`.
    /// Synchronous: pass a lookup over data fetched beforehand (e.g. the
    /// tenant's normalized emails). A user whose invitation expired or was
    /// revoked may be invited again, so such users should answer `false`.
    pub fn with_exists_check(mut self, exists: impl FnMut(&Email) -> bool + Send + 'a) -> Self {
        self.exists = Some(Box::new(exists));
        self
    }

    pub(crate) fn max_cell_chars(&self) -> usize {
        self.max_cell_chars
    }

    pub(crate) fn person_name(
        &self,
        n: u32,
        c: Column,
        raw: &str,
        issues: &mut Vec<Issue>,
    ) -> Option<PersonName> {
        name(n, c, raw, issues)
    }

    pub(crate) fn role_of(&self, n: u32, raw: &str, issues: &mut Vec<Issue>) -> Option<Role> {
        role(n, raw, issues)
    }

    pub(crate) fn profile_of(
        &self,
        n: u32,
        raw: &str,
        issues: &mut Vec<Issue>,
    ) -> Option<ProfileId> {
        self.profile(n, raw, issues)
    }

    pub(crate) fn groups_of(
        &self,
        n: u32,
        raw: &str,
        issues: &mut Vec<Issue>,
    ) -> Option<Vec<String>> {
        self.groups(n, raw, issues)
    }

    pub(crate) fn accounts_of(
        &self,
        n: u32,
        raw: &str,
        issues: &mut Vec<Issue>,
    ) -> Option<Vec<AccountNumber>> {
        accounts(n, raw, issues)
    }

    /// Distinct addresses seen so far.
    pub fn distinct_emails(&self) -> usize {
        self.seen.len()
    }

    pub fn check(&mut self, row: &Row) -> RowOutcome {
        let n = row.row;
        let mut issues = Vec::new();
        if let Some(col) = row.stray_column {
            let letter = column_letters(col);
            issues.push(Issue {
                row: n,
                column: Some(letter.clone()),
                code: codes::UNNAMED_COLUMN,
                reason: format!(
                    "there is a value in column {letter}, which has no header: remove it or name the column"
                ),
            });
        }
        // Over-long cells are reported once, and not checked further.
        let max = self.max_cell_chars;
        let cell = |c: Column, issues: &mut Vec<Issue>| -> Option<&str> {
            let v = row.get(c).trim();
            if v.chars().count() > max {
                issues.push(Issue::new(
                    n,
                    Some(c),
                    codes::TOO_LONG,
                    format!("is longer than {max} characters"),
                ));
                None
            } else {
                Some(v)
            }
        };
        let first = cell(Column::FirstName, &mut issues);
        let last = cell(Column::LastName, &mut issues);
        let email_raw = cell(Column::Email, &mut issues);
        let role_raw = cell(Column::Role, &mut issues);
        let profile_raw = cell(Column::Profile, &mut issues);
        let groups_raw = cell(Column::ExtensionGroups, &mut issues);
        let accounts_raw = cell(Column::CustomerAccounts, &mut issues);

        let first = first.and_then(|v| name(n, Column::FirstName, v, &mut issues));
        let last = last.and_then(|v| name(n, Column::LastName, v, &mut issues));
        let email = email_raw.and_then(|v| self.email(n, v, &mut issues));
        let role = role_raw.and_then(|v| role(n, v, &mut issues));
        let profile = profile_raw.and_then(|v| self.profile(n, v, &mut issues));
        let groups = groups_raw.map(|v| self.groups(n, v, &mut issues));
        let accounts = accounts_raw.map(|v| accounts(n, v, &mut issues));
        if let (Some(Role::Customer), Some(Some(accounts))) = (role, &accounts)
            && accounts.is_empty()
        {
            issues.push(Issue::new(
                n,
                Some(Column::CustomerAccounts),
                codes::ACCOUNT_REQUIRED,
                "a customer must be associated with at least one customer account",
            ));
        }

        match (first, last, email, role, profile, groups, accounts) {
            (
                Some(first_name),
                Some(last_name),
                Some(email),
                Some(role),
                Some(profile_id),
                Some(Some(extension_groups)),
                Some(Some(customer_accounts)),
            ) if issues.is_empty() => {
                if self.exists.as_mut().is_some_and(|exists| exists(&email)) {
                    return RowOutcome::Invalid(Rejected {
                        row: n,
                        email: email.as_str().to_owned(),
                        issues: vec![Issue::user_exists(n)],
                    });
                }
                RowOutcome::Valid(Candidate {
                    row: n,
                    first_name,
                    last_name,
                    email,
                    role,
                    profile_id,
                    extension_groups,
                    customer_accounts,
                })
            }
            _ => RowOutcome::Invalid(Rejected {
                row: n,
                email: shorten(row.get(Column::Email).trim(), Email::MAX_LEN),
                issues,
            }),
        }
    }

    fn email(&mut self, n: u32, raw: &str, issues: &mut Vec<Issue>) -> Option<Email> {
        if raw.is_empty() {
            issues.push(required(n, Column::Email));
            return None;
        }
        let email = match Email::parse(raw) {
            Ok(e) => e,
            Err(e) => {
                issues.push(Issue::new(
                    n,
                    Some(Column::Email),
                    codes::INVALID_EMAIL,
                    e.reason,
                ));
                return None;
            }
        };
        let digest = Sha256::digest(email.normalized().as_bytes());
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        let first_row = *self.seen.entry(u128::from_be_bytes(key)).or_insert(n);
        if first_row != n {
            issues.push(Issue::new(
                n,
                Some(Column::Email),
                codes::DUPLICATE_EMAIL,
                format!("the same email address is on row {first_row}"),
            ));
            return None;
        }
        Some(email)
    }

    fn profile(&self, n: u32, raw: &str, issues: &mut Vec<Issue>) -> Option<ProfileId> {
        if raw.is_empty() {
            issues.push(required(n, Column::Profile));
            return None;
        }
        let found = self
            .profiles
            .get(&raw.to_lowercase())
            .or_else(|| {
                ProfileId::parse(raw)
                    .and_then(|id| self.profiles.get(id.as_str()))
                    .filter(|id| id.as_str().eq_ignore_ascii_case(raw))
            })
            .cloned();
        if found.is_none() {
            issues.push(Issue::new(
                n,
                Some(Column::Profile),
                codes::UNKNOWN_PROFILE,
                format!("there is no profile named \"{}\"", shorten(raw, 60)),
            ));
        }
        found
    }

    /// `None` if any item is bad (issues pushed); empty if the cell is.
    fn groups(&self, n: u32, raw: &str, issues: &mut Vec<Issue>) -> Option<Vec<String>> {
        let items = split_list(raw);
        if items.len() > MAX_GROUPS {
            issues.push(Issue::new(
                n,
                Some(Column::ExtensionGroups),
                codes::TOO_MANY_EXTENSION_GROUPS,
                format!("at most {MAX_GROUPS} extension groups"),
            ));
            return None;
        }
        let mut out = Vec::new();
        let mut unknown = Vec::new();
        for item in items {
            let key = squash(item);
            match self.groups.iter().find(|(id, label, _)| {
                !key.is_empty() && (id.as_str() == key || label.as_str() == key)
            }) {
                Some((_, _, id)) => out.push((*id).to_owned()),
                None => unknown.push(format!("\"{}\"", shorten(item, 60))),
            }
        }
        if !unknown.is_empty() {
            let known: Vec<&str> = self.groups.iter().map(|(_, _, id)| *id).collect();
            issues.push(Issue::new(
                n,
                Some(Column::ExtensionGroups),
                codes::UNKNOWN_EXTENSION_GROUP,
                format!(
                    "unknown extension group {}; the groups are: {}",
                    unknown.join(", "),
                    known.join(", ")
                ),
            ));
            return None;
        }
        out.sort();
        out.dedup();
        Some(out)
    }
}

fn required(n: u32, c: Column) -> Issue {
    Issue::new(n, Some(c), codes::REQUIRED, "must not be empty")
}

fn name(n: u32, c: Column, raw: &str, issues: &mut Vec<Issue>) -> Option<PersonName> {
    if raw.is_empty() {
        issues.push(required(n, c));
        return None;
    }
    PersonName::parse(c.name(), raw)
        .map_err(|e| issues.push(Issue::new(n, Some(c), codes::INVALID_NAME, e.reason)))
        .ok()
}

fn role(n: u32, raw: &str, issues: &mut Vec<Issue>) -> Option<Role> {
    if raw.is_empty() {
        issues.push(required(n, Column::Role));
        return None;
    }
    let r = match squash(raw).as_str() {
        "admin" | "administrator" => Some(Role::Admin),
        "salesrep" | "accountexecutive" => Some(Role::SalesRep),
        "partner" | "partneraccountexecutive" => Some(Role::Partner),
        "customer" => Some(Role::Customer),
        _ => None,
    };
    if r.is_none() {
        issues.push(Issue::new(
            n,
            Some(Column::Role),
            codes::UNKNOWN_ROLE,
            format!(
                "unknown role \"{}\": use admin, sales_rep, partner or customer",
                shorten(raw, 60)
            ),
        ));
    }
    r
}

/// `None` if any item is bad (issues pushed); empty if the cell is.
fn accounts(n: u32, raw: &str, issues: &mut Vec<Issue>) -> Option<Vec<AccountNumber>> {
    let items = split_list(raw);
    if items.len() > MAX_ACCOUNTS {
        issues.push(Issue::new(
            n,
            Some(Column::CustomerAccounts),
            codes::TOO_MANY_ACCOUNTS,
            format!("at most {MAX_ACCOUNTS} customer accounts"),
        ));
        return None;
    }
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for item in items {
        match AccountNumber::parse(Column::CustomerAccounts.name(), item) {
            Ok(a) => out.push(a),
            Err(_) => bad.push(format!("\"{}\"", shorten(item, 60))),
        }
    }
    if !bad.is_empty() {
        issues.push(Issue::new(
            n,
            Some(Column::CustomerAccounts),
            codes::INVALID_ACCOUNT,
            format!(
                "{}: an account number is 1 to 64 letters, digits, '-', '_' or '.'",
                bad.join(", ")
            ),
        ));
        return None;
    }
    out.sort();
    out.dedup();
    Some(out)
}

/// A list cell: items separated by `;`, `,`, `|` or line breaks.
fn split_list(raw: &str) -> Vec<&str> {
    raw.split([';', ',', '|', '\n', '\r'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use peak_domain::catalogue::catalogue;

    fn profile() -> ProfileId {
        ProfileId::parse("01J0000000000000000000000A").unwrap()
    }

    fn validator() -> Validator<'static> {
        Validator::new(
            catalogue(),
            [
                ("Standard", profile()),
                ("VIP Customers", ProfileId::generate()),
            ],
            &Limits::default(),
        )
    }

    fn row(n: u32, cells: [&str; 7]) -> Row {
        let mut r = Row::new(n);
        for (c, v) in Column::ALL.into_iter().zip(cells) {
            r.set(c, v);
        }
        r
    }

    fn good(n: u32, email: &str) -> Row {
        row(
            n,
            [
                " Ada ",
                "Lovelace",
                email,
                "Customer",
                "standard",
                "Customer Order Entry; billing_manager|billing_manager",
                "ACME-002, ACME-001",
            ],
        )
    }

    fn codes_of(o: &RowOutcome) -> Vec<(&str, Option<&str>)> {
        match o {
            RowOutcome::Valid(_) => vec![],
            RowOutcome::Invalid(r) => r
                .issues
                .iter()
                .map(|i| (i.code, i.column.as_deref()))
                .collect(),
        }
    }

    #[test]
    fn a_good_row_becomes_a_typed_candidate() {
        let mut v = validator();
        let RowOutcome::Valid(c) = v.check(&good(2, "Ada@Example.com")) else {
            panic!()
        };
        assert_eq!(c.row, 2);
        assert_eq!(c.first_name.as_str(), "Ada");
        assert_eq!(c.email.as_str(), "Ada@Example.com");
        assert_eq!(c.role, Role::Customer);
        assert_eq!(c.profile_id, profile());
        assert_eq!(
            c.extension_groups,
            ["billing_manager", "customer_order_entry"]
        );
        let accounts: Vec<&str> = c.customer_accounts.iter().map(|a| a.as_str()).collect();
        assert_eq!(accounts, ["ACME-001", "ACME-002"]);
        let req = c.invite_request();
        assert_eq!(req.role, "customer");
        assert_eq!(req.profile_id, profile().as_str());
    }

    #[test]
    fn roles_accept_ids_and_labels() {
        for (raw, want) in [
            ("sales_rep", Role::SalesRep),
            ("Sales Rep", Role::SalesRep),
            ("Account Executive", Role::SalesRep),
            ("Partner Account Executive", Role::Partner),
            ("ADMIN", Role::Admin),
        ] {
            let mut issues = vec![];
            assert_eq!(role(2, raw, &mut issues), Some(want), "{raw}");
        }
    }

    #[test]
    fn profiles_match_by_name_ignoring_case_or_by_id() {
        let mut v = validator();
        let mut r = good(2, "a@example.com");
        r.set(Column::Profile, " VIP CUSTOMERS ");
        assert!(matches!(v.check(&r), RowOutcome::Valid(_)));
        let mut r = good(3, "b@example.com");
        r.set(Column::Profile, profile().as_str().to_lowercase());
        assert!(matches!(v.check(&r), RowOutcome::Valid(_)));
        let mut r = good(4, "c@example.com");
        r.set(Column::Profile, "Gold");
        assert_eq!(
            codes_of(&v.check(&r)),
            [(codes::UNKNOWN_PROFILE, Some("profile"))]
        );
    }

    #[test]
    fn every_bad_cell_is_named() {
        let mut v = validator();
        let out = v.check(&row(
            7,
            [
                "",
                "L\u{7}",
                "not-an-email",
                "boss",
                "",
                "Superpowers",
                "ACME#1",
            ],
        ));
        assert_eq!(
            codes_of(&out),
            [
                (codes::REQUIRED, Some("first_name")),
                (codes::INVALID_NAME, Some("last_name")),
                (codes::INVALID_EMAIL, Some("email")),
                (codes::UNKNOWN_ROLE, Some("role")),
                (codes::REQUIRED, Some("profile")),
                (codes::UNKNOWN_EXTENSION_GROUP, Some("extension_groups")),
                (codes::INVALID_ACCOUNT, Some("customer_accounts")),
            ]
        );
        let RowOutcome::Invalid(r) = out else {
            panic!()
        };
        assert_eq!(r.row, 7);
        assert_eq!(r.email, "not-an-email");
        assert!(!r.is_skip());
        assert!(r.issues.iter().all(|i| i.row == 7));
        assert!(r.issues[5].reason.contains("\"Superpowers\""));
    }

    #[test]
    fn customers_need_an_account_others_do_not() {
        let mut v = validator();
        let mut r = good(2, "a@example.com");
        r.set(Column::CustomerAccounts, " ; ");
        assert_eq!(
            codes_of(&v.check(&r)),
            [(codes::ACCOUNT_REQUIRED, Some("customer_accounts"))]
        );
        let mut r = good(3, "b@example.com");
        r.set(Column::CustomerAccounts, "");
        r.set(Column::Role, "admin");
        r.set(Column::ExtensionGroups, "");
        let RowOutcome::Valid(c) = v.check(&r) else {
            panic!()
        };
        assert!(c.customer_accounts.is_empty() && c.extension_groups.is_empty());
    }

    #[test]
    fn list_sizes_follow_the_single_invite_limits() {
        let mut v = validator();
        let mut r = good(2, "a@example.com");
        r.set(
            Column::CustomerAccounts,
            (0..=MAX_ACCOUNTS)
                .map(|i| format!("A{i}"))
                .collect::<Vec<_>>()
                .join(";"),
        );
        r.set(
            Column::ExtensionGroups,
            ["case_manager"; MAX_GROUPS + 1].join("|"),
        );
        assert_eq!(
            codes_of(&v.check(&r)),
            [
                (codes::TOO_MANY_EXTENSION_GROUPS, Some("extension_groups")),
                (codes::TOO_MANY_ACCOUNTS, Some("customer_accounts")),
            ]
        );
    }

    #[test]
    fn later_copies_of_an_address_are_skipped_naming_the_first_row() {
        let mut v = validator();
        assert!(matches!(
            v.check(&good(2, "ada@example.com")),
            RowOutcome::Valid(_)
        ));
        let out = v.check(&good(9, " ADA@example.COM "));
        assert_eq!(codes_of(&out), [(codes::DUPLICATE_EMAIL, Some("email"))]);
        let RowOutcome::Invalid(r) = &out else {
            panic!()
        };
        assert!(r.is_skip());
        assert!(
            r.issues[0].reason.contains("row 2"),
            "{}",
            r.issues[0].reason
        );
        // An invalid first occurrence still counts as the first.
        let mut bad = good(10, "grace@example.com");
        bad.set(Column::Role, "boss");
        v.check(&bad);
        let out = v.check(&good(11, "grace@example.com"));
        assert!(matches!(&out, RowOutcome::Invalid(r) if r.issues[0].reason.contains("row 10")));
        assert_eq!(v.distinct_emails(), 2);
    }

    #[test]
    fn the_exists_hook_is_asked_only_for_otherwise_valid_rows() {
        let mut asked = Vec::new();
        {
            let mut v = validator().with_exists_check(|e| {
                asked.push(e.normalized());
                e.normalized() == "taken@example.com"
            });
            let out = v.check(&good(2, "Taken@example.com"));
            assert_eq!(codes_of(&out), [(codes::USER_EXISTS, Some("email"))]);
            assert!(matches!(&out, RowOutcome::Invalid(r) if r.is_skip()));
            assert!(matches!(
                v.check(&good(3, "free@example.com")),
                RowOutcome::Valid(_)
            ));
            let mut bad = good(4, "other@example.com");
            bad.set(Column::Role, "");
            v.check(&bad);
        }
        assert_eq!(asked, ["taken@example.com", "free@example.com"]);
    }

    #[test]
    fn over_long_cells_are_reported_once_and_values_under_no_header_too() {
        let mut v = validator();
        let mut r = good(2, "a@example.com");
        r.set(Column::FirstName, "x".repeat(1001));
        r.stray_column = Some(7);
        assert_eq!(
            codes_of(&v.check(&r)),
            [
                (codes::UNNAMED_COLUMN, Some("H")),
                (codes::TOO_LONG, Some("first_name")),
            ]
        );
        let mut r = good(3, "b@example.com");
        r.set(Column::FirstName, "x".repeat(101));
        assert_eq!(
            codes_of(&v.check(&r)),
            [(codes::INVALID_NAME, Some("first_name"))]
        );
    }
}
