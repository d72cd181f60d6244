//! The columns a bulk-invite file has, and how header cells name them.

use crate::FileError;
use serde::Serialize;

/// One column of a bulk-invite file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Column {
    FirstName,
    LastName,
    Email,
    Role,
    /// A profile *name* (matched ignoring case).
    Profile,
    /// Catalogue extension group ids or labels, as a list.
    ExtensionGroups,
    /// Customer account numbers, as a list.
    CustomerAccounts,
}

impl Column {
    pub const ALL: [Column; 7] = [
        Column::FirstName,
        Column::LastName,
        Column::Email,
        Column::Role,
        Column::Profile,
        Column::ExtensionGroups,
        Column::CustomerAccounts,
    ];

    /// The name used in issues, reports and the template's documentation.
    pub fn name(self) -> &'static str {
        match self {
            Column::FirstName => "first_name",
            Column::LastName => "last_name",
            Column::Email => "email",
            Column::Role => "role",
            Column::Profile => "profile",
            Column::ExtensionGroups => "extension_groups",
            Column::CustomerAccounts => "customer_accounts",
        }
    }

    /// The header the template uses.
    pub fn label(self) -> &'static str {
        match self {
            Column::FirstName => "First name",
            Column::LastName => "Last name",
            Column::Email => "Email",
            Column::Role => "Role",
            Column::Profile => "Profile",
            Column::ExtensionGroups => "Extension groups",
            Column::CustomerAccounts => "Customer accounts",
        }
    }

    /// A file without this column is refused as a whole.
    pub fn required(self) -> bool {
        !matches!(self, Column::ExtensionGroups | Column::CustomerAccounts)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The column a header cell names: compared ignoring case and anything
    /// but letters and digits ("E-mail", "first_name", "First Name *"), with
    /// a few common aliases.
    pub fn from_header(raw: &str) -> Option<Column> {
        let key = squash(raw);
        let c = match key.as_str() {
            "firstname" | "givenname" | "forename" | "first" => Column::FirstName,
            "lastname" | "surname" | "familyname" | "last" => Column::LastName,
            "email" | "emailaddress" | "mail" => Column::Email,
            "role" | "usergroup" | "usertype" => Column::Role,
            "profile" | "profilename" | "permissionprofile" => Column::Profile,
            "extensiongroups" | "extensiongroup" | "extensions" | "groups" => {
                Column::ExtensionGroups
            }
            "customeraccounts"
            | "customeraccount"
            | "accounts"
            | "account"
            | "accountnumbers"
            | "accountnumber"
            | "customeraccountnumbers"
            | "customerassociation"
            | "customerassociations"
            | "customers" => Column::CustomerAccounts,
            _ => return None,
        };
        Some(c)
    }
}

/// Lowercase letters and digits only: the form headers, roles and extension
/// groups are compared in.
pub(crate) fn squash(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Spreadsheet column letters for a 0-based index: 0 → A, 26 → AA.
pub fn column_letters(index: u32) -> String {
    let mut n = u64::from(index) + 1;
    let mut out = Vec::new();
    while n > 0 {
        let rem = ((n - 1) % 26) as u8;
        out.push(b'A' + rem);
        n = (n - 1) / 26;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// Where each position of the header row goes.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    /// By position: the column it names, or `None` for an empty header cell
    /// (values under it are reported as stray).
    slots: Vec<Option<Column>>,
}

impl Header {
    pub(crate) fn empty() -> Self {
        Self { slots: Vec::new() }
    }

    /// Maps header cells to columns. Unknown, duplicate and missing required
    /// columns are a file error that names them all.
    pub(crate) fn parse<'s>(cells: impl IntoIterator<Item = &'s str>) -> Result<Self, FileError> {
        let mut slots = Vec::new();
        let mut unknown = Vec::new();
        let mut duplicate = Vec::new();
        for cell in cells {
            let cell = cell.trim();
            if cell.is_empty() {
                slots.push(None);
                continue;
            }
            match Column::from_header(cell) {
                Some(c) if slots.contains(&Some(c)) => duplicate.push(shorten(cell, 60)),
                Some(c) => slots.push(Some(c)),
                None => {
                    unknown.push(shorten(cell, 60));
                    slots.push(None);
                }
            }
        }
        let missing: Vec<&'static str> = Column::ALL
            .into_iter()
            .filter(|c| c.required() && !slots.contains(&Some(*c)))
            .map(Column::name)
            .collect();
        if missing.is_empty() && unknown.is_empty() && duplicate.is_empty() {
            Ok(Self { slots })
        } else {
            Err(FileError::BadHeader {
                missing,
                unknown,
                duplicate,
            })
        }
    }

    pub(crate) fn slot(&self, position: usize) -> Option<Column> {
        self.slots.get(position).copied().flatten()
    }
}

/// At most `max` characters of user text, for messages.
pub(crate) fn shorten(raw: &str, max: usize) -> String {
    if raw.chars().count() <= max {
        raw.to_owned()
    } else {
        let mut s: String = raw.chars().take(max).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_match_ignoring_case_spaces_and_punctuation() {
        for (h, c) in [
            ("first name", Column::FirstName),
            ("First_Name", Column::FirstName),
            ("FIRST-NAME *", Column::FirstName),
            ("Surname", Column::LastName),
            ("E-mail", Column::Email),
            ("Email Address", Column::Email),
            ("User Group", Column::Role),
            ("profile", Column::Profile),
            ("Extension Groups", Column::ExtensionGroups),
            ("accounts", Column::CustomerAccounts),
            ("Customer Accounts", Column::CustomerAccounts),
        ] {
            assert_eq!(Column::from_header(h), Some(c), "{h}");
        }
        assert_eq!(Column::from_header("phone"), None);
    }

    #[test]
    fn column_letters_count_like_a_spreadsheet() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(31), "AF");
        assert_eq!(column_letters(16383), "XFD");
        assert!(!column_letters(u32::MAX).is_empty());
    }

    #[test]
    fn a_bad_header_names_every_problem() {
        let err = Header::parse(["First name", "Email", "email", "Phone", ""]).unwrap_err();
        let FileError::BadHeader {
            missing,
            unknown,
            duplicate,
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(missing, &["last_name", "role", "profile"]);
        assert_eq!(unknown, &["Phone"]);
        assert_eq!(duplicate, &["email"]);
        let msg = err.to_string();
        assert!(msg.contains("last_name") && msg.contains("Phone"), "{msg}");
    }
}
