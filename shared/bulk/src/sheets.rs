//! The rows of the two other job kinds: a bulk update (users to change) and
//! an account import (customer accounts to create or replace). Like
//! [`Validator::check`](crate::Validator::check) for invites, each row
//! becomes a typed candidate or everything wrong with it; the store and the
//! caller's permissions are checked later, by the use case the single
//! route calls.
//!
//! # Decisions
//!
//! * **A blank cell leaves the field as it is** (a bulk update changes only
//!   what the row says). To empty a list field (customer accounts,
//!   extension groups) write [`CLEAR`] (`-`) alone in the cell: a dash is
//!   not an account number or a group, so it cannot be meant as one.
//!   Names, role and profile cannot be emptied (`PATCH /users/{id}` refuses
//!   that too), so a dash there is an error like any other bad value.
//! * **A row names its user by id or by email**: with an id, a non-blank
//!   email cell is a new login email (as `PATCH` takes it); without one,
//!   the email names the user and changes nothing.
//! * **Repeated users are applied in file order** (no duplicate check): the
//!   last row wins, as the same `PATCH` calls one after the other would.
//! * **Account numbers repeated in an import** are skipped (`duplicate_account`),
//!   like repeated emails in an invite: the first row is the one applied.

use crate::columns::{column_letters, shorten};
use crate::validate::{Issue, Rejected, Validator, codes};
use crate::{Column, Row};
use peak_domain::accounts::{AccountName, AccountStatus, AccountUpsert};
use peak_domain::model::user::{AccountNumber, Email, UserId};
use peak_domain::users::UserPatch;
use std::collections::HashMap;

/// A list cell holding only this empties the list.
pub const CLEAR: &str = "-";

/// The header and an example row of a bulk-update file: change the last
/// name, replace the accounts, suspend.
pub const UPDATE_TEMPLATE_CSV: &str = "Email,Id,First name,Last name,Role,Profile,Extension groups,Customer accounts,Status\r\n\
ada.lovelace@example.com,,,King,,,-,ACME-001;ACME-002,suspend\r\n";

/// The header and two example rows of an account import (a parent may come
/// after its children: see `peak-bulk-jobs`).
pub const ACCOUNT_TEMPLATE_CSV: &str = "Number,Name,Parent,Status\r\n\
ACME-EU,Acme Europe,ACME,active\r\n\
ACME,Acme Corporation,,active\r\n";

/// A bulk update's status action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusAction {
    /// `POST /users/{id}/suspend`.
    Suspend,
    /// `POST /users/{id}/enable`.
    Enable,
}

/// How a bulk-update row names its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserKey {
    Id(UserId),
    Email(Email),
}

/// A bulk-update row that passed the file's checks.
#[derive(Debug, Clone)]
pub struct UpdateCandidate {
    pub row: u32,
    pub user: UserKey,
    /// The id or email cell, for the report.
    pub key: String,
    /// What `PATCH /users/{id}` gets; `None` when the row changes no field.
    pub patch: Option<UserPatch>,
    /// Applied after the patch.
    pub action: Option<StatusAction>,
}

/// An account-import row that passed the file's checks.
#[derive(Debug, Clone)]
pub struct AccountCandidate {
    pub row: u32,
    pub number: AccountNumber,
    /// What `PUT /accounts/{number}` gets.
    pub upsert: AccountUpsert,
}

fn stray(row: &Row, issues: &mut Vec<Issue>) {
    if let Some(col) = row.stray_column {
        let letter = column_letters(col);
        issues.push(Issue {
            row: row.row,
            column: Some(letter.clone()),
            code: codes::UNNAMED_COLUMN,
            reason: format!(
                "there is a value in column {letter}, which has no header: remove it or name the column"
            ),
        });
    }
}

impl Validator<'_> {
    /// Checks one bulk-update row (see the module's decisions).
    pub fn check_update(&mut self, row: &Row) -> Result<UpdateCandidate, Rejected> {
        let n = row.row;
        let mut issues = Vec::new();
        stray(row, &mut issues);
        let max = self.max_cell_chars();
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
        let id_raw = cell(Column::Id, &mut issues).unwrap_or_default();
        let email_raw = cell(Column::Email, &mut issues).unwrap_or_default();
        let key = if id_raw.is_empty() { email_raw } else { id_raw };
        let key = shorten(key, Email::MAX_LEN);
        let parsed_email = |raw: &str, issues: &mut Vec<Issue>| match Email::parse(raw) {
            Ok(e) => Some(e),
            Err(e) => {
                issues.push(Issue::new(
                    n,
                    Some(Column::Email),
                    codes::INVALID_EMAIL,
                    e.reason,
                ));
                None
            }
        };
        let mut patch = UserPatch::default();
        let user = match (id_raw, email_raw) {
            ("", "") => {
                issues.push(Issue::new(
                    n,
                    Some(Column::Email),
                    codes::USER_REQUIRED,
                    "name the user: their email address or their id",
                ));
                None
            }
            ("", email) => parsed_email(email, &mut issues).map(UserKey::Email),
            (id, email) => {
                if !email.is_empty() {
                    patch.email = parsed_email(email, &mut issues).map(|e| e.as_str().to_owned());
                }
                match UserId::parse(id) {
                    Some(id) => Some(UserKey::Id(id)),
                    None => {
                        issues.push(Issue::new(
                            n,
                            Some(Column::Id),
                            codes::INVALID_ID,
                            "is not a user id (26 letters and digits, as GET /users shows it)",
                        ));
                        None
                    }
                }
            }
        };
        for (c, slot) in [
            (Column::FirstName, &mut patch.first_name),
            (Column::LastName, &mut patch.last_name),
        ] {
            if let Some(v) = cell(c, &mut issues).filter(|v| !v.is_empty()) {
                *slot = self
                    .person_name(n, c, v, &mut issues)
                    .map(|p| p.as_str().to_owned());
            }
        }
        if let Some(v) = cell(Column::Role, &mut issues).filter(|v| !v.is_empty()) {
            patch.role = self
                .role_of(n, v, &mut issues)
                .map(|r| r.as_str().to_owned());
        }
        if let Some(v) = cell(Column::Profile, &mut issues).filter(|v| !v.is_empty()) {
            patch.profile_id = self
                .profile_of(n, v, &mut issues)
                .map(|p| p.as_str().to_owned());
        }
        if let Some(v) = cell(Column::ExtensionGroups, &mut issues).filter(|v| !v.is_empty()) {
            patch.extension_groups = if v == CLEAR {
                Some(Vec::new())
            } else {
                self.groups_of(n, v, &mut issues)
            };
        }
        if let Some(v) = cell(Column::CustomerAccounts, &mut issues).filter(|v| !v.is_empty()) {
            patch.customer_accounts = if v == CLEAR {
                Some(Vec::new())
            } else {
                self.accounts_of(n, v, &mut issues)
                    .map(|a| a.iter().map(|a| a.as_str().to_owned()).collect())
            };
        }
        let action = match cell(Column::Status, &mut issues).map(crate::columns::squash) {
            None => None,
            Some(s) => match s.as_str() {
                "" => None,
                "suspend" | "suspended" => Some(StatusAction::Suspend),
                "enable" | "enabled" | "active" | "activate" => Some(StatusAction::Enable),
                _ => {
                    issues.push(Issue::new(
                        n,
                        Some(Column::Status),
                        codes::UNKNOWN_ACTION,
                        "must be suspend or enable (or blank: status unchanged)",
                    ));
                    None
                }
            },
        };
        let changes = patch.first_name.is_some()
            || patch.last_name.is_some()
            || patch.email.is_some()
            || patch.role.is_some()
            || patch.profile_id.is_some()
            || patch.extension_groups.is_some()
            || patch.customer_accounts.is_some();
        if issues.is_empty() && !changes && action.is_none() {
            issues.push(Issue::new(
                n,
                None,
                codes::NO_CHANGE,
                "the row changes nothing: fill in the fields to change (blank cells are left as they are)",
            ));
        }
        match user {
            Some(user) if issues.is_empty() => Ok(UpdateCandidate {
                row: n,
                user,
                key,
                patch: changes.then_some(patch),
                action,
            }),
            _ => Err(Rejected {
                row: n,
                email: key,
                issues,
            }),
        }
    }
}

/// Checks the rows of an account import, remembering the numbers seen.
#[derive(Debug, Default)]
pub struct AccountRows {
    seen: HashMap<String, u32>,
    max_cell_chars: usize,
}

impl AccountRows {
    pub fn new(limits: &crate::Limits) -> Self {
        Self {
            seen: HashMap::new(),
            max_cell_chars: limits.max_cell_chars,
        }
    }

    /// Checks one row: number and name required, parent optional, status
    /// `active` or `closed` (blank: a new account is active, an existing
    /// one keeps its status).
    pub fn check(&mut self, row: &Row) -> Result<AccountCandidate, Rejected> {
        let n = row.row;
        let mut issues = Vec::new();
        stray(row, &mut issues);
        let max = self.max_cell_chars;
        let mut cell = |c: Column| -> Option<&str> {
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
        let (number, name, parent, status) = (
            cell(Column::Number),
            cell(Column::Name),
            cell(Column::Parent),
            cell(Column::Status),
        );
        let key = shorten(row.get(Column::Number).trim(), 64);
        let field = |c: Column, e: peak_domain::FieldError| {
            Issue::new(n, Some(c), codes::INVALID_ACCOUNT, e.reason)
        };
        let number = number.and_then(|v| {
            if v.is_empty() {
                issues.push(Issue::new(
                    n,
                    Some(Column::Number),
                    codes::REQUIRED,
                    "must not be empty",
                ));
                return None;
            }
            AccountNumber::parse("number", v)
                .map_err(|e| issues.push(field(Column::Number, e)))
                .ok()
        });
        let name = name.and_then(|v| {
            AccountName::parse("name", v)
                .map_err(|e| {
                    issues.push(Issue::new(
                        n,
                        Some(Column::Name),
                        codes::INVALID_NAME,
                        e.reason,
                    ))
                })
                .ok()
        });
        let parent = parent.and_then(|v| {
            if v.is_empty() {
                return Some(None);
            }
            AccountNumber::parse("parent", v)
                .map(Some)
                .map_err(|e| issues.push(field(Column::Parent, e)))
                .ok()
        });
        let status = status.and_then(|v| {
            if v.is_empty() {
                return Some(None);
            }
            AccountStatus::parse("status", &v.to_lowercase())
                .map(Some)
                .map_err(|e| {
                    issues.push(Issue::new(
                        n,
                        Some(Column::Status),
                        codes::INVALID_STATUS,
                        e.reason,
                    ))
                })
                .ok()
        });
        if let Some(number) = &number
            && issues.is_empty()
        {
            let first = *self.seen.entry(number.as_str().to_owned()).or_insert(n);
            if first != n {
                return Err(Rejected {
                    row: n,
                    email: key,
                    issues: vec![Issue::new(
                        n,
                        Some(Column::Number),
                        codes::DUPLICATE_ACCOUNT,
                        format!("the same account number is on row {first}"),
                    )],
                });
            }
        }
        match (number, name, parent, status) {
            (Some(number), Some(name), Some(parent), Some(status)) if issues.is_empty() => {
                Ok(AccountCandidate {
                    row: n,
                    number,
                    upsert: AccountUpsert {
                        name: name.as_str().to_owned(),
                        parent: parent.map(|p| p.as_str().to_owned()),
                        status: status.map(|s| s.as_str().to_owned()),
                    },
                })
            }
            _ => Err(Rejected {
                row: n,
                email: key,
                issues,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Limits, Sheet, open_bytes_sheet};
    use peak_domain::ProfileId;
    use peak_domain::catalogue::catalogue;

    fn rows(sheet: Sheet, text: &str) -> Vec<Row> {
        open_bytes_sheet(
            sheet,
            text.as_bytes(),
            Some("f.csv"),
            None,
            &Limits::default(),
        )
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }

    #[test]
    fn update_rows_change_only_what_they_fill_in() {
        let profile = ProfileId::generate();
        let mut v = Validator::new(
            catalogue(),
            [("Standard", profile.clone())],
            &Limits::default(),
        );
        let id = UserId::generate();
        let text = format!(
            "Email,Id,First name,Last name,Role,Profile,Extension groups,Customer accounts,Status\n\
             a@x.example,,,King,,standard,,,\n\
             new@x.example,{id},,,,,-,A-1;A-2,Suspend\n\
             ,,,,,,,,\n\
             b@x.example,,,,,,,,\n\
             c@x.example,,,,boss,Nope,,,pause\n\
             ,,Ann,,,,,,\n"
        );
        let got: Vec<_> = rows(Sheet::Update, &text)
            .iter()
            .map(|r| v.check_update(r))
            .collect();
        assert_eq!(got.len(), 5, "the blank row is skipped");
        let a = got[0].as_ref().unwrap();
        assert_eq!(a.row, 2);
        assert!(matches!(&a.user, UserKey::Email(e) if e.as_str() == "a@x.example"));
        let p = a.patch.as_ref().unwrap();
        assert_eq!(p.last_name.as_deref(), Some("King"));
        assert_eq!(p.profile_id.as_deref(), Some(profile.as_str()));
        assert!(p.first_name.is_none() && p.customer_accounts.is_none() && p.email.is_none());
        assert_eq!(a.action, None);

        let b = got[1].as_ref().unwrap();
        assert_eq!(b.user, UserKey::Id(id.clone()));
        assert_eq!(b.key, id.as_str());
        let p = b.patch.as_ref().unwrap();
        assert_eq!(
            p.email.as_deref(),
            Some("new@x.example"),
            "with an id, the email is a change"
        );
        assert_eq!(p.extension_groups, Some(vec![]), "a dash clears the list");
        assert_eq!(
            p.customer_accounts,
            Some(vec!["A-1".to_owned(), "A-2".to_owned()])
        );
        assert_eq!(b.action, Some(StatusAction::Suspend));

        let none = got[2].as_ref().unwrap_err();
        assert_eq!((none.row, none.issues[0].code), (5, codes::NO_CHANGE));
        let bad = got[3].as_ref().unwrap_err();
        let codes: Vec<_> = bad.issues.iter().map(|i| i.code).collect();
        assert_eq!(
            codes,
            [
                codes::UNKNOWN_ROLE,
                codes::UNKNOWN_PROFILE,
                codes::UNKNOWN_ACTION
            ]
        );
        let nobody = got[4].as_ref().unwrap_err();
        assert_eq!(nobody.issues[0].code, codes::USER_REQUIRED);
    }

    #[test]
    fn account_rows_need_a_number_and_a_name_and_skip_repeats() {
        let mut a = AccountRows::new(&Limits::default());
        let text = "Account number,Name,Parent,Status\n\
                    ACME-EU,Acme Europe,ACME,\n\
                    ACME,Acme,,Closed\n\
                    ACME,Acme again,,\n\
                    ,No number,,\n\
                    bad number,x,,gone\n";
        let got: Vec<_> = rows(Sheet::AccountImport, text)
            .iter()
            .map(|r| a.check(r))
            .collect();
        let eu = got[0].as_ref().unwrap();
        assert_eq!(eu.number.as_str(), "ACME-EU");
        assert_eq!(eu.upsert.parent.as_deref(), Some("ACME"));
        assert_eq!(eu.upsert.status, None, "blank: kept (or active when new)");
        assert_eq!(
            got[1].as_ref().unwrap().upsert.status.as_deref(),
            Some("closed")
        );
        let dup = got[2].as_ref().unwrap_err();
        assert_eq!(dup.issues[0].code, codes::DUPLICATE_ACCOUNT);
        assert!(dup.is_skip());
        assert_eq!(got[3].as_ref().unwrap_err().issues[0].code, codes::REQUIRED);
        let bad = got[4].as_ref().unwrap_err();
        assert_eq!(bad.email, "bad number");
        assert_eq!(bad.issues.len(), 2);
    }

    #[test]
    fn the_templates_read_as_their_sheets() {
        let mut v = Validator::new(
            catalogue(),
            [("Standard", ProfileId::generate())],
            &Limits::default(),
        );
        for r in rows(Sheet::Update, UPDATE_TEMPLATE_CSV) {
            v.check_update(&r).unwrap();
        }
        let mut a = AccountRows::new(&Limits::default());
        for r in rows(Sheet::AccountImport, ACCOUNT_TEMPLATE_CSV) {
            a.check(&r).unwrap();
        }
    }
}
