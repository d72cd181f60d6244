//! The columns a bulk file has, and how header cells name them. Each job
//! kind reads its own [`Sheet`]: the columns it takes, those it requires,
//! and what its header cells may say.

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
    /// A user's id (bulk update: names the user instead of the email).
    Id,
    /// Bulk update: `suspend` or `enable`; account import: `active` or
    /// `closed`.
    Status,
    /// Account import: the account's number.
    Number,
    /// Account import: the account's name.
    Name,
    /// Account import: the parent account's number.
    Parent,
}

/// Columns of every sheet (a row keeps a value for each).
pub(crate) const COLUMN_COUNT: usize = 12;

/// The file layout of one job kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sheet {
    /// People to invite (`POST /bulk-invites`).
    Invite,
    /// Users to change (`POST /bulk-updates`): a user named by email or
    /// id, and the fields to change.
    Update,
    /// Customer accounts to create or replace (`POST /account-imports`).
    AccountImport,
}

impl Sheet {
    /// The columns this sheet takes, in template order.
    pub fn columns(self) -> &'static [Column] {
        match self {
            Sheet::Invite => &Column::ALL,
            Sheet::Update => &[
                Column::Email,
                Column::Id,
                Column::FirstName,
                Column::LastName,
                Column::Role,
                Column::Profile,
                Column::ExtensionGroups,
                Column::CustomerAccounts,
                Column::Status,
            ],
            Sheet::AccountImport => &[Column::Number, Column::Name, Column::Parent, Column::Status],
        }
    }

    /// Columns a file of this sheet must have. (A bulk update needs the
    /// email or the id column: checked apart, see [`Header::parse`].)
    pub fn required(self, column: Column) -> bool {
        match self {
            Sheet::Invite => column.required(),
            Sheet::Update => false,
            Sheet::AccountImport => matches!(column, Column::Number | Column::Name),
        }
    }

    /// The column a header cell names in this sheet.
    pub fn column(self, raw: &str) -> Option<Column> {
        let key = squash(raw);
        let found = match (self, key.as_str()) {
            (Sheet::Update, "id" | "userid") => Some(Column::Id),
            (Sheet::Update, "status" | "action" | "statusaction") => Some(Column::Status),
            (
                Sheet::AccountImport,
                "number"
                | "accountnumber"
                | "account"
                | "accountno"
                | "customernumber"
                | "customeraccount"
                | "customeraccountnumber",
            ) => Some(Column::Number),
            (Sheet::AccountImport, "name" | "accountname" | "customername") => Some(Column::Name),
            (
                Sheet::AccountImport,
                "parent" | "parentaccount" | "parentnumber" | "parentaccountnumber",
            ) => Some(Column::Parent),
            (Sheet::AccountImport, "status" | "accountstatus") => Some(Column::Status),
            (Sheet::AccountImport, _) => None,
            _ => Column::from_header(raw),
        };
        found.filter(|c| self.columns().contains(c))
    }
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

    /// Every column of every sheet, in storage order.
    pub const EVERY: [Column; COLUMN_COUNT] = [
        Column::FirstName,
        Column::LastName,
        Column::Email,
        Column::Role,
        Column::Profile,
        Column::ExtensionGroups,
        Column::CustomerAccounts,
        Column::Id,
        Column::Status,
        Column::Number,
        Column::Name,
        Column::Parent,
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
            Column::Id => "id",
            Column::Status => "status",
            Column::Number => "number",
            Column::Name => "name",
            Column::Parent => "parent",
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
            Column::Id => "Id",
            Column::Status => "Status",
            Column::Number => "Number",
            Column::Name => "Name",
            Column::Parent => "Parent",
        }
    }

    /// A bulk-invite file without this column is refused as a whole.
    pub fn required(self) -> bool {
        !matches!(
            self,
            Column::ExtensionGroups
                | Column::CustomerAccounts
                | Column::Id
                | Column::Status
                | Column::Number
                | Column::Name
                | Column::Parent
        )
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The column a bulk-invite header cell names: compared ignoring case and anything
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

    /// Maps header cells to the sheet's columns. Unknown, duplicate and
    /// missing required columns are a file error that names them all.
    pub(crate) fn parse<'s>(
        sheet: Sheet,
        cells: impl IntoIterator<Item = &'s str>,
    ) -> Result<Self, FileError> {
        let mut slots = Vec::new();
        let mut unknown = Vec::new();
        let mut duplicate = Vec::new();
        for cell in cells {
            let cell = cell.trim();
            if cell.is_empty() {
                slots.push(None);
                continue;
            }
            match sheet.column(cell) {
                Some(c) if slots.contains(&Some(c)) => duplicate.push(shorten(cell, 60)),
                Some(c) => slots.push(Some(c)),
                None => {
                    unknown.push(shorten(cell, 60));
                    slots.push(None);
                }
            }
        }
        let mut missing: Vec<&'static str> = sheet
            .columns()
            .iter()
            .filter(|c| sheet.required(**c) && !slots.contains(&Some(**c)))
            .map(|c| c.name())
            .collect();
        if sheet == Sheet::Update
            && !slots.contains(&Some(Column::Email))
            && !slots.contains(&Some(Column::Id))
        {
            missing.push("email (or id)");
        }
        if missing.is_empty() && unknown.is_empty() && duplicate.is_empty() {
            Ok(Self { slots })
        } else {
            Err(FileError::BadHeader {
                sheet,
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
        let err = Header::parse(Sheet::Invite, ["First name", "Email", "email", "Phone", ""])
            .unwrap_err();
        let FileError::BadHeader {
            missing,
            unknown,
            duplicate,
            ..
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

    #[test]
    fn each_sheet_reads_its_own_columns() {
        let update = Header::parse(Sheet::Update, ["E-mail", "Status", "Last name"]).unwrap();
        assert_eq!(update.slot(1), Some(Column::Status));
        let by_id = Header::parse(Sheet::Update, ["User id", "Customer accounts"]).unwrap();
        assert_eq!(by_id.slot(0), Some(Column::Id));
        let err = Header::parse(Sheet::Update, ["First name", "Number"]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("email (or id)") && msg.contains("\"Number\"") && msg.contains("Status"),
            "{msg}"
        );
        let import = Header::parse(
            Sheet::AccountImport,
            ["Account number", "Name", "Parent", "Status"],
        )
        .unwrap();
        assert_eq!(
            (0..4).map(|i| import.slot(i)).collect::<Vec<_>>(),
            [Column::Number, Column::Name, Column::Parent, Column::Status].map(Some)
        );
        let err = Header::parse(Sheet::AccountImport, ["Number", "Email"]).unwrap_err();
        assert!(err.to_string().contains("name") && err.to_string().contains("\"Email\""));
        // An invite file takes none of the other sheets' columns.
        assert!(Header::parse(Sheet::Invite, ["Id"]).is_err());
    }
}
