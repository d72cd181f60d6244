//! Request bodies as they arrive (`InviteRequest`, `UserPatch`,
//! `SelfPatch`), and their conversion into checked values with `TryFrom`:
//! every field's error at once (one 400 listing them), nothing written.

use crate::catalogue::Catalogue;
use crate::error::{Error, FieldError};
use crate::ids::TenantId;
use crate::model::user::{AccountNumber, Email, PersonName};
use crate::role::Role;
use serde::Deserialize;

pub const MAX_ACCOUNTS: usize = 25;
pub const MAX_GROUPS: usize = 10;

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    #[schemars(length(min = 1, max = 100))]
    pub first_name: String,
    #[schemars(length(min = 1, max = 100))]
    pub last_name: String,
    #[schemars(length(min = 1, max = 254), email)]
    pub email: String,
    pub role: String,
    pub profile_id: String,
    #[serde(default)]
    pub extension_groups: Vec<String>,
    #[serde(default)]
    pub customer_accounts: Vec<String>,
    #[serde(default)]
    pub account_number: Option<String>,
}

/// An edit: absent fields stay as they are. `account_number: null` clears it.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default)]
    #[schemars(length(min = 1, max = 100))]
    pub first_name: Option<String>,
    #[serde(default)]
    #[schemars(length(min = 1, max = 100))]
    pub last_name: Option<String>,
    #[serde(default)]
    #[schemars(length(min = 1, max = 254), email)]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "double_option::deserialize")]
    #[schemars(with = "Option<String>")]
    pub account_number: Option<Option<String>>,
    #[serde(default)]
    pub customer_accounts: Option<Vec<String>>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub profile_id: Option<String>,
    #[serde(default)]
    pub extension_groups: Option<Vec<String>>,
}

/// What a user may change about themselves (`PATCH /me`).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SelfPatch {
    #[serde(default)]
    #[schemars(length(min = 1, max = 100))]
    pub first_name: Option<String>,
    #[serde(default)]
    #[schemars(length(min = 1, max = 100))]
    pub last_name: Option<String>,
    #[serde(default)]
    #[schemars(length(min = 1, max = 254), email)]
    pub email: Option<String>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

fn parse_role(raw: &str, errors: &mut Vec<FieldError>) -> Option<Role> {
    let r = Role::parse(raw.trim());
    if r.is_none() {
        errors.push(FieldError::new(
            "role",
            "must be one of: admin, sales_rep, partner, customer",
        ));
    }
    r
}

fn parse_accounts(raw: &[String], errors: &mut Vec<FieldError>) -> Vec<AccountNumber> {
    if raw.len() > MAX_ACCOUNTS {
        errors.push(FieldError::new(
            "customer_accounts",
            format!("at most {MAX_ACCOUNTS} accounts"),
        ));
        return Vec::new();
    }
    let mut out: Vec<AccountNumber> = raw
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            AccountNumber::parse(&format!("customer_accounts[{i}]"), a)
                .map_err(|e| errors.push(e))
                .ok()
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn parse_groups(
    catalogue: &Catalogue,
    raw: &[String],
    errors: &mut Vec<FieldError>,
) -> Vec<String> {
    if raw.len() > MAX_GROUPS {
        errors.push(FieldError::new(
            "extension_groups",
            format!("at most {MAX_GROUPS} groups"),
        ));
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, g) in raw.iter().enumerate() {
        match catalogue.extension_group(g.trim()) {
            Some(group) => out.push(group.id.to_owned()),
            None => errors.push(FieldError::new(
                format!("extension_groups[{i}]"),
                "unknown extension group",
            )),
        }
    }
    out.sort();
    out.dedup();
    out
}

fn parse_account_number(raw: Option<&str>, errors: &mut Vec<FieldError>) -> Option<AccountNumber> {
    let raw = raw.map(str::trim).filter(|r| !r.is_empty())?;
    AccountNumber::parse("account_number", raw)
        .map_err(|e| errors.push(e))
        .ok()
}

fn keep<T>(r: Result<T, FieldError>, errors: &mut Vec<FieldError>) -> Option<T> {
    r.map_err(|e| errors.push(e)).ok()
}

pub(crate) fn customer_needs_account(role: Role, accounts: &[AccountNumber]) -> Result<(), Error> {
    if role == Role::Customer && accounts.is_empty() {
        return Err(Error::invalid(
            "customer_accounts",
            "a customer must be associated with at least one customer account",
        ));
    }
    Ok(())
}

/// An invitation as requested, checked: every field well formed. Whether
/// the actor may grant it (role, profile, accounts, groups) is the use
/// case's to decide.
#[derive(Debug, Clone)]
pub struct Invitee {
    pub first_name: PersonName,
    pub last_name: PersonName,
    pub email: Email,
    pub role: Role,
    /// As sent: its existence is a store question (`existing_profile`).
    pub profile_id: String,
    pub extension_groups: Vec<String>,
    pub customer_accounts: Vec<AccountNumber>,
    pub account_number: Option<AccountNumber>,
}

/// Extension groups are checked against the settings catalogue, so the
/// conversion takes it along (`(request, ctx.catalogue).try_into()`).
impl TryFrom<(InviteRequest, &Catalogue)> for Invitee {
    type Error = Error;

    fn try_from((req, catalogue): (InviteRequest, &Catalogue)) -> Result<Self, Error> {
        let mut errors = Vec::new();
        let first = keep(
            PersonName::parse("first_name", &req.first_name),
            &mut errors,
        );
        let last = keep(PersonName::parse("last_name", &req.last_name), &mut errors);
        let email = keep(Email::parse(&req.email), &mut errors);
        let role = parse_role(&req.role, &mut errors);
        let accounts = parse_accounts(&req.customer_accounts, &mut errors);
        let groups = parse_groups(catalogue, &req.extension_groups, &mut errors);
        let account_number = parse_account_number(req.account_number.as_deref(), &mut errors);
        let (Some(first_name), Some(last_name), Some(email), Some(role), true) =
            (first, last, email, role, errors.is_empty())
        else {
            return Err(Error::Validation(errors));
        };
        Ok(Invitee {
            first_name,
            last_name,
            email,
            role,
            profile_id: req.profile_id,
            extension_groups: groups,
            customer_accounts: accounts,
            account_number,
        })
    }
}

/// An edit, checked: each field present is well formed; absent ones stay
/// as they are (`account_number: Some(None)` clears it).
#[derive(Debug, Clone, Default)]
pub struct UserEdit {
    pub first_name: Option<PersonName>,
    pub last_name: Option<PersonName>,
    pub email: Option<Email>,
    pub account_number: Option<Option<AccountNumber>>,
    pub customer_accounts: Option<Vec<AccountNumber>>,
    pub role: Option<Role>,
    /// As sent: its existence is a store question.
    pub profile_id: Option<String>,
    pub extension_groups: Option<Vec<String>>,
}

impl TryFrom<(UserPatch, &Catalogue)> for UserEdit {
    type Error = Error;

    fn try_from((patch, catalogue): (UserPatch, &Catalogue)) -> Result<Self, Error> {
        let mut errors = Vec::new();
        let edit = UserEdit {
            first_name: patch
                .first_name
                .as_deref()
                .and_then(|f| keep(PersonName::parse("first_name", f), &mut errors)),
            last_name: patch
                .last_name
                .as_deref()
                .and_then(|l| keep(PersonName::parse("last_name", l), &mut errors)),
            email: patch
                .email
                .as_deref()
                .and_then(|e| keep(Email::parse(e), &mut errors)),
            account_number: patch
                .account_number
                .as_ref()
                .map(|a| parse_account_number(a.as_deref(), &mut errors)),
            customer_accounts: patch
                .customer_accounts
                .as_deref()
                .map(|a| parse_accounts(a, &mut errors)),
            role: patch
                .role
                .as_deref()
                .and_then(|r| parse_role(r, &mut errors)),
            profile_id: patch.profile_id,
            extension_groups: patch
                .extension_groups
                .as_deref()
                .map(|g| parse_groups(catalogue, g, &mut errors)),
        };
        if errors.is_empty() {
            Ok(edit)
        } else {
            Err(Error::Validation(errors))
        }
    }
}

/// `PATCH /me` is an edit of these three fields only.
impl From<SelfPatch> for UserPatch {
    fn from(patch: SelfPatch) -> Self {
        UserPatch {
            first_name: patch.first_name,
            last_name: patch.last_name,
            email: patch.email,
            ..UserPatch::default()
        }
    }
}

/// The signed-out "forgot password" form, checked.
#[derive(Debug, Clone)]
pub struct ResetRequest {
    pub tenant: TenantId,
    pub email: Email,
}

/// The form's two fields as sent: `(tenant, email)`.
impl TryFrom<(&str, &str)> for ResetRequest {
    type Error = Error;

    fn try_from((tenant_raw, email_raw): (&str, &str)) -> Result<Self, Error> {
        let mut errors = Vec::new();
        let tenant = TenantId::parse(tenant_raw.trim());
        if tenant.is_none() {
            errors.push(FieldError::new("tenant", "is not a valid tenant id"));
        }
        let email = keep(Email::parse(email_raw), &mut errors);
        let (Some(tenant), Some(email)) = (tenant, email) else {
            return Err(Error::Validation(errors));
        };
        Ok(ResetRequest { tenant, email })
    }
}
