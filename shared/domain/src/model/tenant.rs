//! Tenants as data: a PeakCommerce merchant, created by an operator, with
//! settings its own admins change (`GET/PATCH /settings`). The deployment's
//! environment variables (`INVITATION_TTL_DAYS`, `SUSPENSION_NOTICE_TENANTS`,
//! `EMAIL_BRANDS`) are only the defaults of tenants that have no record.

use crate::error::{Error, FieldError};
use crate::ids::TenantId;
use crate::model::user::Email;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub const MIN_INVITATION_DAYS: u8 = 1;
pub const MAX_INVITATION_DAYS: u8 = 30;
const MAX_NAME_CHARS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Active,
    /// Users are refused at once; data kept until an operator purges it.
    Closed,
    /// Closed, and every user's personal data erased.
    Purged,
}

/// What a tenant's admins change themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TenantSettings {
    /// How long an invitation link works, 1 to 30 days.
    pub invitation_ttl_days: u8,
    /// Suspended users are told by email.
    pub suspension_notice: bool,
    /// The display name of the sender (the address stays the operator's).
    pub sender_name: String,
    /// Where replies to the tenant's emails go.
    #[schemars(with = "Option<String>")]
    pub reply_to: Option<Email>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub display_name: String,
    /// The portal its users sign in to (operator-only).
    pub portal_url: String,
    /// The sending address (operator-only: its domain must be verified in SES).
    pub sender_address: Email,
    pub settings: TenantSettings,
    pub status: TenantStatus,
    pub version: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Tenant {
    /// `"Sender Name <address>"`, as the mailer sends from.
    pub fn sender(&self) -> String {
        format!(
            "{} <{}>",
            self.settings
                .sender_name
                .replace(['<', '>', '"', '\r', '\n'], ""),
            self.sender_address.as_str()
        )
    }
}

/// An operator's new tenant.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub id: String,
    pub display_name: String,
    pub portal_url: String,
    pub sender_address: String,
    pub reply_to: Option<String>,
    pub invitation_ttl_days: u8,
}

impl NewTenant {
    /// The tenant this describes, or every field that is wrong.
    pub fn validate(self, now: OffsetDateTime) -> Result<Tenant, Error> {
        let mut errors = Vec::new();
        let id = TenantId::parse(&self.id);
        if id.is_none() {
            errors.push(FieldError::new(
                "id",
                "must be 1 to 64 letters, digits, - or _",
            ));
        }
        let name = check_name("display_name", &self.display_name, &mut errors);
        check_url("portal_url", &self.portal_url, &mut errors);
        let sender = Email::parse(&self.sender_address)
            .map_err(|mut e| {
                e.field = "sender_address".into();
                errors.push(e)
            })
            .ok();
        let reply_to = parse_reply_to(self.reply_to.as_deref(), &mut errors);
        check_days(self.invitation_ttl_days, &mut errors);
        match (id, sender, errors.is_empty()) {
            (Some(id), Some(sender_address), true) => Ok(Tenant {
                id,
                display_name: name.clone(),
                portal_url: self.portal_url.trim().to_owned(),
                sender_address,
                settings: TenantSettings {
                    invitation_ttl_days: self.invitation_ttl_days,
                    suspension_notice: false,
                    sender_name: name,
                    reply_to,
                },
                status: TenantStatus::Active,
                version: 1,
                created_at: now,
                updated_at: now,
            }),
            _ => Err(Error::Validation(errors)),
        }
    }
}

/// A change of settings by a tenant admin: absent fields stay.
/// `reply_to: null` clears it. Unknown fields (e.g. `portal_url`) are refused.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    #[serde(default)]
    pub invitation_ttl_days: Option<i64>,
    #[serde(default)]
    pub suspension_notice: Option<bool>,
    #[serde(default)]
    pub sender_name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schemars(with = "Option<String>")]
    pub reply_to: Option<Option<String>>,
}

fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl SettingsPatch {
    /// `settings` with this patch applied, or every field that is wrong.
    pub fn apply(&self, settings: &TenantSettings) -> Result<TenantSettings, Error> {
        let mut errors = Vec::new();
        let mut out = settings.clone();
        if let Some(days) = self.invitation_ttl_days {
            match u8::try_from(days) {
                Ok(d) if (MIN_INVITATION_DAYS..=MAX_INVITATION_DAYS).contains(&d) => {
                    out.invitation_ttl_days = d
                }
                _ => check_days(0, &mut errors),
            }
        }
        if let Some(on) = self.suspension_notice {
            out.suspension_notice = on;
        }
        if let Some(name) = &self.sender_name {
            out.sender_name = check_name("sender_name", name, &mut errors);
        }
        if let Some(reply_to) = &self.reply_to {
            out.reply_to = parse_reply_to(reply_to.as_deref(), &mut errors);
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(Error::Validation(errors))
        }
    }
}

fn check_days(days: u8, errors: &mut Vec<FieldError>) {
    if !(MIN_INVITATION_DAYS..=MAX_INVITATION_DAYS).contains(&days) {
        errors.push(FieldError::new(
            "invitation_ttl_days",
            format!("must be {MIN_INVITATION_DAYS} to {MAX_INVITATION_DAYS} days"),
        ));
    }
}

fn check_name(field: &str, raw: &str, errors: &mut Vec<FieldError>) -> String {
    let name = raw.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name
            .chars()
            .any(|c| c.is_control() || matches!(c, '<' | '>' | '"'))
    {
        errors.push(FieldError::new(
            field,
            format!(
                "must be 1 to {MAX_NAME_CHARS} characters, without < > \" or control characters"
            ),
        ));
    }
    name.to_owned()
}

fn check_url(field: &str, raw: &str, errors: &mut Vec<FieldError>) {
    let url = raw.trim();
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= 2000
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
        && url.split("://").nth(1).is_some_and(|rest| !rest.is_empty());
    if !ok {
        errors.push(FieldError::new(field, "must be an absolute http(s) URL"));
    }
}

fn parse_reply_to(raw: Option<&str>, errors: &mut Vec<FieldError>) -> Option<Email> {
    let raw = raw?.trim();
    if raw.is_empty() {
        return None;
    }
    Email::parse(raw)
        .map_err(|mut e| {
            e.field = "reply_to".into();
            errors.push(e)
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> Tenant {
        NewTenant {
            id: "acme".into(),
            display_name: "Acme Corp".into(),
            portal_url: "https://portal.acme.example".into(),
            sender_address: "no-reply@acme.example".into(),
            reply_to: None,
            invitation_ttl_days: 7,
        }
        .validate(OffsetDateTime::UNIX_EPOCH)
        .expect("valid")
    }

    #[test]
    fn a_new_tenant_names_every_bad_field() {
        let Err(Error::Validation(errors)) = NewTenant {
            id: "Not A Tenant".into(),
            display_name: " ".into(),
            portal_url: "portal.example".into(),
            sender_address: "nope".into(),
            reply_to: Some("also nope".into()),
            invitation_ttl_days: 31,
        }
        .validate(OffsetDateTime::UNIX_EPOCH) else {
            panic!("accepted")
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "id",
                "display_name",
                "portal_url",
                "sender_address",
                "reply_to",
                "invitation_ttl_days"
            ]
        );
    }

    #[test]
    fn a_settings_patch_keeps_what_it_does_not_name_and_refuses_out_of_range_days() {
        let t = tenant();
        let patch: SettingsPatch =
            serde_json::from_str(r#"{"invitation_ttl_days": 14, "reply_to": "help@acme.example"}"#)
                .expect("parse");
        let s = patch.apply(&t.settings).expect("valid");
        assert_eq!(s.invitation_ttl_days, 14);
        assert_eq!(s.sender_name, "Acme Corp");
        assert_eq!(
            s.reply_to.as_ref().map(Email::as_str),
            Some("help@acme.example")
        );
        for days in [0, 31, -1, 300] {
            let patch = SettingsPatch {
                invitation_ttl_days: Some(days),
                ..SettingsPatch::default()
            };
            assert!(patch.apply(&t.settings).is_err(), "{days}");
        }
        let cleared: SettingsPatch = serde_json::from_str(r#"{"reply_to": null}"#).expect("parse");
        assert_eq!(cleared.apply(&s).expect("valid").reply_to, None);
        // The portal URL is the operator's.
        assert!(
            serde_json::from_str::<SettingsPatch>(r#"{"portal_url": "https://evil.example"}"#)
                .is_err()
        );
    }

    #[test]
    fn the_sender_carries_the_display_name_without_header_tricks() {
        let mut t = tenant();
        t.settings.sender_name = "Acme\r\nBcc: x <y>".into();
        assert_eq!(t.sender(), "AcmeBcc: x y <no-reply@acme.example>");
    }
}
