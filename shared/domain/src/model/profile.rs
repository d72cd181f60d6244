//! Profiles: named, tenant-defined permission templates.

use crate::catalogue::{Catalogue, Setting};
use crate::error::{Error, FieldError};
use crate::ids::{ProfileId, TenantId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// A profile name: trimmed, 1 to 100 characters, no control characters.
/// Unique per tenant ignoring case (see [`ProfileName::unique_key`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProfileName(String);

impl ProfileName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(FieldError::new("name", "must not be empty"));
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(FieldError::new(
                "name",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(FieldError::new(
                "name",
                "must not contain control characters",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form compared for uniqueness: "VIP Customers" and "vip customers"
    /// are the same name.
    pub fn unique_key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A profile's choice for every catalogue setting, keyed by setting id.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProfileSettings(BTreeMap<String, String>);

impl ProfileSettings {
    /// Every setting at its default: what a new profile starts with.
    pub fn defaults(catalogue: &Catalogue) -> Self {
        Self(
            catalogue
                .settings()
                .map(|s| (s.id.to_owned(), s.default.to_owned()))
                .collect(),
        )
    }

    /// Rebuilds settings read from storage against the current catalogue:
    /// settings added since are at their default; settings or options the
    /// catalogue no longer has are dropped or reset to the default.
    pub fn from_stored(catalogue: &Catalogue, stored: BTreeMap<String, String>) -> Self {
        Self(
            catalogue
                .settings()
                .map(|s| {
                    let chosen = stored
                        .get(s.id)
                        .filter(|v| s.option(v).is_some())
                        .cloned()
                        .unwrap_or_else(|| s.default.to_owned());
                    (s.id.to_owned(), chosen)
                })
                .collect(),
        )
    }

    pub fn get(&self, setting: &Setting) -> &str {
        self.0
            .get(setting.id)
            .map(String::as_str)
            .unwrap_or(setting.default)
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// Applies `changes` (setting id → option id), validated against the
    /// catalogue. Every bad entry is reported, and on any error nothing is
    /// changed.
    pub fn apply(
        &self,
        catalogue: &Catalogue,
        changes: &BTreeMap<String, serde_json::Value>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut next = self.clone();
        let mut errors = Vec::new();
        for (key, value) in changes {
            let field = format!("settings.{key}");
            let Some(setting) = catalogue.setting(key) else {
                errors.push(FieldError::new(field, "unknown setting"));
                continue;
            };
            match value.as_str().and_then(|v| setting.option(v)) {
                Some(option) => {
                    next.0.insert(setting.id.to_owned(), option.id.to_owned());
                }
                None => errors.push(FieldError::new(
                    field,
                    format!("must be one of: {}", setting.option_ids().join(", ")),
                )),
            }
        }
        if errors.is_empty() {
            Ok(next)
        } else {
            Err(errors)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub tenant_id: TenantId,
    pub id: ProfileId,
    pub name: ProfileName,
    pub description: String,
    pub settings: ProfileSettings,
    /// Optimistic concurrency: starts at 1, +1 on every change.
    pub version: u64,
    /// How many users hold this profile (maintained by the store).
    pub holder_count: u64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// What a client sends to create a profile: only a name is needed.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProfile {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// A partial edit: absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub settings: Option<BTreeMap<String, serde_json::Value>>,
}

pub const MAX_DESCRIPTION_CHARS: usize = 500;

pub(crate) fn parse_description(raw: Option<&str>) -> Result<String, FieldError> {
    let text = raw.unwrap_or("").trim();
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(FieldError::new(
            "description",
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(text.to_owned())
}

impl Profile {
    /// Applies a validated patch and returns the next version, or every
    /// invalid field at once.
    pub fn patched(
        &self,
        catalogue: &Catalogue,
        patch: &ProfilePatch,
        now: OffsetDateTime,
    ) -> Result<Profile, Error> {
        let mut errors = Vec::new();
        let mut next = self.clone();
        if let Some(name) = &patch.name {
            match ProfileName::parse(name) {
                Ok(n) => next.name = n,
                Err(e) => errors.push(e),
            }
        }
        if patch.description.is_some() {
            match parse_description(patch.description.as_deref()) {
                Ok(d) => next.description = d,
                Err(e) => errors.push(e),
            }
        }
        if let Some(changes) = &patch.settings {
            match self.settings.apply(catalogue, changes) {
                Ok(s) => next.settings = s,
                Err(mut e) => errors.append(&mut e),
            }
        }
        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
        next.version = self.version + 1;
        next.updated_at = now;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::catalogue;
    use serde_json::json;

    #[test]
    fn names_are_trimmed_bounded_and_compared_ignoring_case() {
        let a = ProfileName::parse("  VIP Customers ").unwrap();
        assert_eq!(a.as_str(), "VIP Customers");
        assert_eq!(
            a.unique_key(),
            ProfileName::parse("vip customers").unwrap().unique_key()
        );
        assert!(ProfileName::parse("   ").is_err());
        assert!(ProfileName::parse(&"x".repeat(101)).is_err());
        assert!(ProfileName::parse("a\u{0}b").is_err());
    }

    #[test]
    fn applying_changes_names_every_bad_field_and_changes_nothing() {
        let c = catalogue();
        let s = ProfileSettings::defaults(c);
        let changes: BTreeMap<String, serde_json::Value> = serde_json::from_value(json!({
            "my_account.payment_methods": "manage",
            "my_account.nonsense": "view",
            "my_cases.view": "manage",
            "pay_invoices.pay": true
        }))
        .unwrap();
        let errs = s.apply(c, &changes).unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "settings.my_account.nonsense",
                "settings.my_cases.view",
                "settings.pay_invoices.pay"
            ]
        );
        assert!(errs[1].reason.contains("hidden, view"));
    }

    #[test]
    fn stored_settings_are_reconciled_with_the_catalogue() {
        let c = catalogue();
        let mut stored = BTreeMap::new();
        stored.insert("my_cases.view".to_owned(), "hidden".to_owned());
        stored.insert("my_cases.edit".to_owned(), "bogus".to_owned());
        stored.insert("retired.setting".to_owned(), "x".to_owned());
        let s = ProfileSettings::from_stored(c, stored);
        assert_eq!(s.as_map()["my_cases.view"], "hidden");
        assert_eq!(s.as_map()["my_cases.edit"], "disabled");
        assert!(!s.as_map().contains_key("retired.setting"));
        assert_eq!(s.as_map().len(), c.settings().count());
    }
}
