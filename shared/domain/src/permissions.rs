//! Effective permissions: what a user may do, from their role, profile and
//! extension groups.

use crate::catalogue::Catalogue;
use crate::model::profile::ProfileSettings;
use crate::role::Role;
use serde::Serialize;
use std::collections::BTreeMap;

/// For each catalogue setting that applies to the role, the chosen option.
/// Settings that do not apply to the role are absent: whatever the profile
/// says about them has no effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct EffectivePermissions {
    pub role: Role,
    #[schemars(with = "BTreeMap<String, String>")]
    pub settings: BTreeMap<&'static str, String>,
}

impl EffectivePermissions {
    /// The chosen option, or `None` if the setting does not apply to the role
    /// (or does not exist).
    pub fn get(&self, setting_id: &str) -> Option<&str> {
        self.settings.get(setting_id).map(String::as_str)
    }

    /// True when the setting applies and is set to one of `options`.
    pub fn allows(&self, setting_id: &str, options: &[&str]) -> bool {
        self.get(setting_id).is_some_and(|v| options.contains(&v))
    }
}

/// A setting on which what is given exceeds what the giver holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excess {
    pub setting: &'static str,
    pub given: String,
    /// What the giver holds (`None`: the setting does not reach them).
    pub held: Option<String>,
}

/// The settings of `given` (effective permissions for the receiving user's
/// role) that `holder` does not cover. A setting that does not apply to the
/// holder's role counts through its counterpart if that one applies (a
/// sales rep's "customer users" for a customer's "account users"), else as
/// not held.
pub fn exceeding(
    catalogue: &Catalogue,
    holder: &EffectivePermissions,
    given: &EffectivePermissions,
) -> Vec<Excess> {
    given
        .settings
        .iter()
        .filter_map(|(id, option)| {
            let setting = catalogue.setting(id)?;
            let held = holder
                .get(id)
                .or_else(|| setting.counterpart.and_then(|c| holder.get(c)));
            (!setting.covers(held, option)).then(|| Excess {
                setting: setting.id,
                given: option.clone(),
                held: held.map(str::to_owned),
            })
        })
        .collect()
}

pub fn effective_permissions(
    catalogue: &Catalogue,
    role: Role,
    settings: &ProfileSettings,
) -> EffectivePermissions {
    with_extension_groups(catalogue, role, settings, &[])
}

/// The profile's choices, each raised to what the user's extension groups
/// grant (never lowered). Grants on settings that do not apply to the role
/// have no effect, like the settings themselves; unknown group ids are
/// ignored (a retired group grants nothing).
pub fn with_extension_groups(
    catalogue: &Catalogue,
    role: Role,
    settings: &ProfileSettings,
    groups: &[String],
) -> EffectivePermissions {
    let mut eff: BTreeMap<&'static str, String> = catalogue
        .settings()
        .filter(|s| s.applies_to(role))
        .map(|s| (s.id, settings.get(s).to_owned()))
        .collect();
    for group in groups.iter().filter_map(|g| catalogue.extension_group(g)) {
        for grant in group.grants {
            let Some(setting) = catalogue.setting(grant.setting) else {
                continue;
            };
            let Some(current) = eff.get_mut(setting.id) else {
                continue;
            };
            if setting.rank(grant.option) > setting.rank(current) {
                *current = grant.option.to_owned();
            }
        }
    }
    EffectivePermissions {
        role,
        settings: eff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::catalogue;
    use serde_json::Value;

    /// Exhaustive over the catalogue: for every role, every setting and every
    /// option, the effective value is the chosen option exactly when the
    /// setting applies to the role, and absent otherwise; no other setting
    /// moves.
    #[test]
    fn every_option_of_every_setting_for_every_role() {
        let c = catalogue();
        let base = ProfileSettings::defaults(c);
        for role in Role::ALL {
            let base_eff = effective_permissions(c, role, &base);
            for setting in c.settings() {
                for option in setting.options {
                    let changes = [(setting.id.to_owned(), Value::from(option.id))].into();
                    let s = base.apply(c, &changes).expect("catalogue option is valid");
                    let eff = effective_permissions(c, role, &s);
                    if setting.applies_to(role) {
                        assert_eq!(
                            eff.get(setting.id),
                            Some(option.id),
                            "{role} {}",
                            setting.id
                        );
                        assert!(eff.allows(setting.id, &[option.id]));
                    } else {
                        assert_eq!(eff.get(setting.id), None, "{role} {}", setting.id);
                        assert_eq!(eff, base_eff, "{role}: {} must have no effect", setting.id);
                    }
                    for other in c.settings().filter(|o| o.id != setting.id) {
                        assert_eq!(eff.get(other.id), base_eff.get(other.id));
                    }
                }
            }
        }
    }

    #[test]
    fn my_customers_never_reaches_customers_or_admins() {
        let c = catalogue();
        let changes = [(
            "my_customers.customer_users".to_owned(),
            Value::from("manage"),
        )]
        .into();
        let s = ProfileSettings::defaults(c).apply(c, &changes).unwrap();
        assert!(
            effective_permissions(c, Role::SalesRep, &s)
                .allows("my_customers.customer_users", &["manage"])
        );
        assert!(
            effective_permissions(c, Role::Partner, &s)
                .allows("my_customers.customer_users", &["manage"])
        );
        assert!(
            !effective_permissions(c, Role::Customer, &s)
                .allows("my_customers.customer_users", &["manage"])
        );
        assert!(
            !effective_permissions(c, Role::Admin, &s)
                .allows("my_customers.customer_users", &["manage"])
        );
    }

    /// Exhaustive over groups × roles × every option the profile may hold
    /// for a granted setting: the result is the more permissive of the two
    /// when the setting applies to the role, and absent otherwise.
    #[test]
    fn extension_groups_raise_but_never_lower() {
        let c = catalogue();
        for group in c.extension_groups {
            for role in Role::ALL {
                for grant in group.grants {
                    let setting = c.setting(grant.setting).unwrap();
                    for option in setting.options {
                        let changes = [(setting.id.to_owned(), Value::from(option.id))].into();
                        let s = ProfileSettings::defaults(c).apply(c, &changes).unwrap();
                        let eff = with_extension_groups(c, role, &s, &[group.id.to_owned()]);
                        if !setting.applies_to(role) {
                            assert_eq!(eff.get(setting.id), None);
                            continue;
                        }
                        let expected = if setting.rank(grant.option) > setting.rank(option.id) {
                            grant.option
                        } else {
                            option.id
                        };
                        assert_eq!(
                            eff.get(setting.id),
                            Some(expected),
                            "{} {role} {}",
                            group.id,
                            option.id
                        );
                    }
                }
            }
        }
        let base = ProfileSettings::defaults(c);
        assert_eq!(
            with_extension_groups(c, Role::Customer, &base, &["retired_group".into()]),
            effective_permissions(c, Role::Customer, &base)
        );
    }

    #[test]
    fn defaults_apply_for_a_new_profile() {
        let c = catalogue();
        let eff = effective_permissions(c, Role::Customer, &ProfileSettings::defaults(c));
        assert_eq!(
            eff.get("pay_invoices.payment_methods"),
            Some("card_and_bank_account")
        );
        assert_eq!(eff.get("my_subscriptions.cancel"), Some("disabled"));
        let applicable = c
            .settings()
            .filter(|s| s.applies_to(Role::Customer))
            .count();
        assert_eq!(eff.settings.len(), applicable);
    }
}
