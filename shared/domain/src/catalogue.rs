//! The profile settings catalogue: seven tabs of settings, each a choice
//! among fixed "bubble options", with a default and the roles it applies to.
//!
//! This is data, served by the API so a frontend can draw the tabs, and the
//! single source of truth for validating a profile edit. Adding a setting here
//! is enough: stored profiles that lack it read as its default.

use crate::role::Role;
use serde::Serialize;

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Catalogue {
    pub tabs: &'static [Tab],
    /// Named sets of extra permissions granted on top of a profile.
    pub extension_groups: &'static [ExtensionGroup],
}

/// Extra permissions: each grant raises a setting to at least the given
/// option (options are listed least to most permissive), for roles the
/// setting applies to.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ExtensionGroup {
    pub id: &'static str,
    pub label: &'static str,
    pub description: &'static str,
    pub grants: &'static [Grant],
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Grant {
    pub setting: &'static str,
    pub option: &'static str,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Tab {
    pub id: &'static str,
    pub label: &'static str,
    pub description: &'static str,
    pub settings: &'static [Setting],
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Setting {
    /// `<tab>.<setting>`: unique across the catalogue; the key in a profile's
    /// settings map.
    pub id: &'static str,
    pub label: &'static str,
    pub description: &'static str,
    pub options: &'static [BubbleOption],
    pub default: &'static str,
    /// Roles this setting has an effect on; for other roles any choice is
    /// stored but ignored.
    pub applies_to: &'static [Role],
    /// How its options compare when a non-admin gives it to someone else
    /// (the delegation rule: nobody gives more than they hold).
    pub order: Order,
    /// The setting that carries the same power for the roles this one does
    /// not apply to: a sales rep's "customer users" is, for the customers
    /// they serve, what a customer's "account users" is for their colleagues.
    pub counterpart: Option<&'static str>,
}

/// How the options of a setting compare, for the delegation rule.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Order {
    /// Options are listed least to most permissive: holding one covers it
    /// and every option before it.
    Ranked,
    /// Distinct entitlements that do not nest: holding one covers itself,
    /// the `baseline` (which everybody holds) and what `covers` lists for
    /// it (card and bank account covers card, and bank account).
    Entitlements {
        baseline: Option<&'static str>,
        covers: &'static [Covers],
    },
    /// A preference, not a permission (language, which emails): whoever may
    /// give the setting may choose any option.
    Preference,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Covers {
    pub option: &'static str,
    pub covers: &'static [&'static str],
}

const fn covers(option: &'static str, covered: &'static [&'static str]) -> Covers {
    Covers {
        option,
        covers: covered,
    }
}

const HOSTED_PAGE_ORDER: Order = Order::Entitlements {
    baseline: Some("none"),
    covers: &[],
};

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct BubbleOption {
    pub id: &'static str,
    pub label: &'static str,
}

impl Setting {
    pub fn option(&self, id: &str) -> Option<&'static BubbleOption> {
        self.options.iter().find(|o| o.id == id)
    }

    pub fn applies_to(&self, role: Role) -> bool {
        self.applies_to.contains(&role)
    }

    pub fn option_ids(&self) -> Vec<&'static str> {
        self.options.iter().map(|o| o.id).collect()
    }

    /// Position in `options`, which are listed least to most permissive.
    pub fn rank(&self, option: &str) -> Option<usize> {
        self.options.iter().position(|o| o.id == option)
    }

    /// Does holding option `held` (`None`: the setting does not reach the
    /// holder at all) cover giving `given` to someone else?
    pub fn covers(&self, held: Option<&str>, given: &str) -> bool {
        match &self.order {
            Order::Preference => true,
            Order::Ranked => {
                let given = self.rank(given);
                let held = held.and_then(|h| self.rank(h));
                // Not holding the setting covers only its least option.
                match (held, given) {
                    (_, None) => false,
                    (Some(h), Some(g)) => g <= h,
                    (None, Some(g)) => g == 0,
                }
            }
            Order::Entitlements { baseline, covers } => {
                Some(given) == *baseline
                    || held == Some(given)
                    || covers
                        .iter()
                        .any(|c| Some(c.option) == held && c.covers.contains(&given))
            }
        }
    }
}

impl Catalogue {
    pub fn settings(&self) -> impl Iterator<Item = &'static Setting> + '_ {
        self.tabs.iter().flat_map(|t| t.settings.iter())
    }

    pub fn setting(&self, id: &str) -> Option<&'static Setting> {
        self.settings().find(|s| s.id == id)
    }

    pub fn extension_group(&self, id: &str) -> Option<&'static ExtensionGroup> {
        self.extension_groups.iter().find(|g| g.id == id)
    }
}

/// The catalogue this build serves.
pub fn catalogue() -> &'static Catalogue {
    &CATALOGUE
}

const fn opt(id: &'static str, label: &'static str) -> BubbleOption {
    BubbleOption { id, label }
}

const HIDDEN_VIEW_MANAGE: &[BubbleOption] = &[
    opt("hidden", "Hidden"),
    opt("view", "View"),
    opt("manage", "Manage"),
];
const HIDDEN_VIEW: &[BubbleOption] = &[opt("hidden", "Hidden"), opt("view", "View")];
const DISABLED_ENABLED: &[BubbleOption] = &[opt("disabled", "Disabled"), opt("enabled", "Enabled")];
const HOSTED_PAGE: &[BubbleOption] = &[
    opt("none", "None"),
    opt("standard", "Standard hosted page"),
    opt("custom", "Custom hosted page"),
];

const PORTAL_ROLES: &[Role] = &[Role::Customer, Role::SalesRep, Role::Partner];
const ALL_ROLES: &[Role] = &[Role::Admin, Role::SalesRep, Role::Partner, Role::Customer];
const REPS_AND_PARTNERS: &[Role] = &[Role::SalesRep, Role::Partner];
const CUSTOMERS: &[Role] = &[Role::Customer];

const fn grant(setting: &'static str, option: &'static str) -> Grant {
    Grant { setting, option }
}

static CATALOGUE: Catalogue = Catalogue {
    extension_groups: &[
        ExtensionGroup {
            id: "customer_order_entry",
            label: "Customer Order Entry",
            description: "Enter orders: add and update subscriptions for every associated account.",
            grants: &[
                grant("my_subscriptions.subscriptions", "view"),
                grant("my_subscriptions.add", "enabled"),
                grant("my_subscriptions.update", "enabled"),
            ],
        },
        ExtensionGroup {
            id: "billing_manager",
            label: "Billing Manager",
            description: "See and pay invoices and manage saved payment methods.",
            grants: &[
                grant("pay_invoices.view", "view"),
                grant("pay_invoices.pay", "enabled"),
                grant("my_account.payment_methods", "manage"),
            ],
        },
        ExtensionGroup {
            id: "case_manager",
            label: "Case Manager",
            description: "See, create and edit support cases.",
            grants: &[
                grant("my_cases.view", "view"),
                grant("my_cases.create", "enabled"),
                grant("my_cases.edit", "enabled"),
            ],
        },
        ExtensionGroup {
            id: "user_manager",
            label: "User Manager",
            description: "Invite and manage the other users of their own customer accounts.",
            grants: &[
                grant("my_account.account_users", "manage"),
                grant("my_account.invite_users", "enabled"),
            ],
        },
    ],
    tabs: &[
        Tab {
            id: "my_account",
            label: "My Account",
            description: "The user's ability to view and manage their own account in the portal, including payment methods and contact info.",
            settings: &[
                Setting {
                    id: "my_account.account_details",
                    label: "Account details",
                    description: "See the account's company details and balance.",
                    options: HIDDEN_VIEW,
                    default: "view",
                    applies_to: PORTAL_ROLES,
                    order: Order::Ranked,
                    counterpart: None,
                },
                Setting {
                    id: "my_account.contact_info",
                    label: "Contact info",
                    description: "See or change the account's contacts and addresses.",
                    options: HIDDEN_VIEW_MANAGE,
                    default: "view",
                    applies_to: PORTAL_ROLES,
                    order: Order::Ranked,
                    counterpart: None,
                },
                Setting {
                    id: "my_account.payment_methods",
                    label: "Payment methods",
                    description: "See or add, change and remove saved payment methods.",
                    options: HIDDEN_VIEW_MANAGE,
                    default: "view",
                    applies_to: PORTAL_ROLES,
                    order: Order::Ranked,
                    counterpart: None,
                },
                Setting {
                    id: "my_account.account_users",
                    label: "Account users",
                    description: "See or manage (edit, suspend, enable, reset passwords of) the other users of their own customer accounts.",
                    options: HIDDEN_VIEW_MANAGE,
                    default: "hidden",
                    applies_to: CUSTOMERS,
                    order: Order::Ranked,
                    counterpart: Some("my_customers.customer_users"),
                },
                Setting {
                    id: "my_account.invite_users",
                    label: "Invite users",
                    description: "Invite new users to their own customer accounts.",
                    options: DISABLED_ENABLED,
                    default: "disabled",
                    applies_to: CUSTOMERS,
                    order: Order::Ranked,
                    counterpart: Some("my_customers.invite_customer_users"),
                },
            ],
        },
        Tab {
            id: "my_subscriptions",
            label: "My Subscriptions",
            description: "The user's ability to view and manage their own subscriptions in the portal.",
            settings: &[
                Setting {
                    id: "my_subscriptions.subscriptions",
                    label: "Subscriptions",
                    description: "See the account's subscriptions.",
                    options: HIDDEN_VIEW,
                    default: "view",
                    applies_to: PORTAL_ROLES,
                    order: Order::Ranked,
                    counterpart: None,
                },
                Setting {
                    id: "my_subscriptions.update",
                    label: "Update subscriptions",
                    description: "Change quantities or plans of an existing subscription.",
                    options: DISABLED_ENABLED,
                    default: "disabled",
                    applies_to: PORTAL_ROLES,
                    order: Order::Ranked,
                    counterpart: None,
                },
                Setting {
                    id: "my_subscriptions.cancel",
                    label: "Cancel subscriptions",
                    description: "Cancel an existing subscription.",
                    options: DISABLED_ENABLED,
                    default: "disabled",
                    applies_to: PORTAL_ROLES,
                    order: Order::Ranked,
                    counterpart: None,
                },
                Setting {
                    id: "my_subscriptions.renew",
                    label: "Renew subscriptions",
                    description: "Renew a subscription that is due.",
                    options: DISABLED_ENABLED,
                    default: "enabled",
                    applies_to: PORTAL_ROLES,
                    order: Order::Ranked,
                    counterpart: None,
                },
                Setting {
                    id: "my_subscriptions.add",
                    label: "Add subscriptions",
                    description: "Buy a new subscription.",
                    options: DISABLED_ENABLED,
                    default: "disabled",
                    applies_to: PORTAL_ROLES,
                    order: Order::Ranked,
                    counterpart: None,
                },
            ],
        },
        Tab {
            id: "my_customers",
            label: "My Customers",
            description: "Applies only to Account Executives and Partner Account Executives: what power they have over their customers' (child) accounts and subscriptions.",
            settings: &[
                Setting {
                    id: "my_customers.customer_accounts",
                    label: "Customer accounts",
                    description: "See or manage the customer accounts assigned to them.",
                    options: HIDDEN_VIEW_MANAGE,
                    default: "view",
                    applies_to: REPS_AND_PARTNERS,
                    order: Order::Ranked,
                    counterpart: None,
                },
                Setting {
                    id: "my_customers.customer_subscriptions",
                    label: "Customer subscriptions",
                    description: "See or manage the subscriptions of their customer accounts.",
                    options: HIDDEN_VIEW_MANAGE,
                    default: "view",
                    applies_to: REPS_AND_PARTNERS,
                    order: Order::Ranked,
                    counterpart: None,
                },
                Setting {
                    id: "my_customers.customer_users",
                    label: "Customer users",
                    description: "See or manage (edit, suspend, enable, reset passwords of) the users of their customer accounts.",
                    options: HIDDEN_VIEW_MANAGE,
                    default: "hidden",
                    applies_to: REPS_AND_PARTNERS,
                    order: Order::Ranked,
                    counterpart: None,
                },
                Setting {
                    id: "my_customers.invite_customer_users",
                    label: "Invite customer users",
                    description: "Invite new users to their customer accounts.",
                    options: DISABLED_ENABLED,
                    default: "disabled",
                    applies_to: REPS_AND_PARTNERS,
                    order: Order::Ranked,
                    counterpart: None,
                },
            ],
        },
        Tab {
            id: "my_cases",
            label: "My Cases",
            description: "Support cases from the integrated ticketing system: whether the user can see, create or edit them.",
            settings: &[
                Setting {
                    id: "my_cases.view",
                    label: "See cases",
                    description: "See the account's support cases.",
                    options: HIDDEN_VIEW,
                    default: "view",
                    applies_to: PORTAL_ROLES,
                    order: Order::Ranked,
                    counterpart: None,
                },
                Setting {
                    id: "my_cases.create",
                    label: "Create cases",
                    description: "Open a new support case.",
                    options: DISABLED_ENABLED,
                    default: "enabled",
                    applies_to: PORTAL_ROLES,
                    order: Order::Ranked,
                    counterpart: None,
                },
                Setting {
                    id: "my_cases.edit",
                    label: "Edit cases",
                    description: "Comment on, update or close an existing case.",
                    options: DISABLED_ENABLED,
                    default: "disabled",
                    applies_to: PORTAL_ROLES,
                    order: Order::Ranked,
                    counterpart: None,
                },
            ],
        },
        Tab {
            id: "pay_invoices",
            label: "Pay Invoices",
            description: "The user's ability to view and pay their own invoices, and which payment methods they may use.",
            settings: &[
                Setting {
                    id: "pay_invoices.view",
                    label: "See invoices",
                    description: "See the account's invoices.",
                    options: HIDDEN_VIEW,
                    default: "view",
                    applies_to: PORTAL_ROLES,
                    order: Order::Ranked,
                    counterpart: None,
                },
                Setting {
                    id: "pay_invoices.pay",
                    label: "Pay invoices",
                    description: "Pay open invoices online.",
                    options: DISABLED_ENABLED,
                    default: "enabled",
                    applies_to: PORTAL_ROLES,
                    order: Order::Ranked,
                    counterpart: None,
                },
                Setting {
                    id: "pay_invoices.payment_methods",
                    label: "Allowed payment methods",
                    description: "Which payment methods may be used to pay an invoice.",
                    options: &[
                        opt("card", "Card"),
                        opt("bank_account", "Bank account (ACH)"),
                        opt("card_and_bank_account", "Card and bank account"),
                    ],
                    default: "card_and_bank_account",
                    applies_to: PORTAL_ROLES,
                    order: Order::Entitlements {
                        baseline: None,
                        covers: &[covers("card_and_bank_account", &["card", "bank_account"])],
                    },
                    counterpart: None,
                },
            ],
        },
        Tab {
            id: "configurations",
            label: "Configurations",
            description: "Assigned segment, USD hosted pages, language, extra currencies and communication profile.",
            settings: &[
                Setting {
                    id: "configurations.segment",
                    label: "Assigned segment",
                    description: "The catalogue segment the user shops in.",
                    options: &[
                        opt("standard", "Standard"),
                        opt("vip", "VIP"),
                        opt("wholesale", "Wholesale"),
                    ],
                    default: "standard",
                    applies_to: ALL_ROLES,
                    order: Order::Entitlements {
                        baseline: Some("standard"),
                        covers: &[],
                    },
                    counterpart: None,
                },
                Setting {
                    id: "configurations.usd_hosted_page",
                    label: "USD hosted page",
                    description: "The hosted checkout page used for USD.",
                    options: HOSTED_PAGE,
                    default: "standard",
                    applies_to: PORTAL_ROLES,
                    order: HOSTED_PAGE_ORDER,
                    counterpart: None,
                },
                Setting {
                    id: "configurations.language",
                    label: "Language",
                    description: "The portal's language.",
                    options: &[
                        opt("en", "English"),
                        opt("es", "Spanish"),
                        opt("fr", "French"),
                        opt("de", "German"),
                        opt("pt", "Portuguese"),
                        opt("ja", "Japanese"),
                    ],
                    default: "en",
                    applies_to: ALL_ROLES,
                    order: Order::Preference,
                    counterpart: None,
                },
                Setting {
                    id: "configurations.extra_currency_eur",
                    label: "Extra currency: EUR",
                    description: "Offer prices and payment in euros.",
                    options: DISABLED_ENABLED,
                    default: "disabled",
                    applies_to: PORTAL_ROLES,
                    order: Order::Ranked,
                    counterpart: None,
                },
                Setting {
                    id: "configurations.extra_currency_gbp",
                    label: "Extra currency: GBP",
                    description: "Offer prices and payment in pounds sterling.",
                    options: DISABLED_ENABLED,
                    default: "disabled",
                    applies_to: PORTAL_ROLES,
                    order: Order::Ranked,
                    counterpart: None,
                },
                Setting {
                    id: "configurations.extra_currency_cad",
                    label: "Extra currency: CAD",
                    description: "Offer prices and payment in Canadian dollars.",
                    options: DISABLED_ENABLED,
                    default: "disabled",
                    applies_to: PORTAL_ROLES,
                    order: Order::Ranked,
                    counterpart: None,
                },
                Setting {
                    id: "configurations.communication_profile",
                    label: "Communication profile",
                    description: "Which emails the user receives.",
                    options: &[
                        opt("transactional_only", "Transactional only"),
                        opt("standard", "Standard"),
                        opt("marketing", "Standard and marketing"),
                    ],
                    default: "standard",
                    applies_to: ALL_ROLES,
                    order: Order::Preference,
                    counterpart: None,
                },
            ],
        },
        Tab {
            id: "currencies",
            label: "Currencies",
            description: "Hosted pages for the extra currencies assigned in Configurations.",
            settings: &[
                Setting {
                    id: "currencies.eur_hosted_page",
                    label: "EUR hosted page",
                    description: "The hosted checkout page used for EUR (when EUR is enabled).",
                    options: HOSTED_PAGE,
                    default: "none",
                    applies_to: PORTAL_ROLES,
                    order: HOSTED_PAGE_ORDER,
                    counterpart: None,
                },
                Setting {
                    id: "currencies.gbp_hosted_page",
                    label: "GBP hosted page",
                    description: "The hosted checkout page used for GBP (when GBP is enabled).",
                    options: HOSTED_PAGE,
                    default: "none",
                    applies_to: PORTAL_ROLES,
                    order: HOSTED_PAGE_ORDER,
                    counterpart: None,
                },
                Setting {
                    id: "currencies.cad_hosted_page",
                    label: "CAD hosted page",
                    description: "The hosted checkout page used for CAD (when CAD is enabled).",
                    options: HOSTED_PAGE,
                    default: "none",
                    applies_to: PORTAL_ROLES,
                    order: HOSTED_PAGE_ORDER,
                    counterpart: None,
                },
            ],
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn has_the_seven_tabs_of_the_seed_in_order() {
        let labels: Vec<_> = catalogue().tabs.iter().map(|t| t.label).collect();
        assert_eq!(
            labels,
            [
                "My Account",
                "My Subscriptions",
                "My Customers",
                "My Cases",
                "Pay Invoices",
                "Configurations",
                "Currencies"
            ]
        );
    }

    #[test]
    fn every_setting_is_well_formed() {
        let mut ids = HashSet::new();
        for tab in catalogue().tabs {
            assert!(!tab.settings.is_empty(), "{} has no settings", tab.id);
            for s in tab.settings {
                assert!(ids.insert(s.id), "duplicate setting id {}", s.id);
                assert!(
                    s.id.starts_with(&format!("{}.", tab.id)),
                    "{} is not under its tab {}",
                    s.id,
                    tab.id
                );
                assert!(s.options.len() >= 2, "{} offers no choice", s.id);
                assert!(
                    s.option(s.default).is_some(),
                    "{} default is not an option",
                    s.id
                );
                assert!(!s.applies_to.is_empty(), "{} applies to nobody", s.id);
                let opts: HashSet<_> = s.options.iter().map(|o| o.id).collect();
                assert_eq!(opts.len(), s.options.len(), "{} repeats an option", s.id);
            }
        }
    }

    #[test]
    fn extension_groups_grant_real_options() {
        let c = catalogue();
        for g in c.extension_groups {
            assert!(!g.grants.is_empty(), "{}", g.id);
            for gr in g.grants {
                let s = c
                    .setting(gr.setting)
                    .unwrap_or_else(|| panic!("{} grants unknown {}", g.id, gr.setting));
                assert!(
                    s.option(gr.option).is_some(),
                    "{} grants unknown option {}",
                    g.id,
                    gr.option
                );
            }
        }
        assert!(c.extension_group("customer_order_entry").is_some());
    }

    #[test]
    fn my_customers_applies_only_to_sales_reps_and_partners() {
        let tab = catalogue()
            .tabs
            .iter()
            .find(|t| t.id == "my_customers")
            .unwrap();
        for s in tab.settings {
            assert_eq!(s.applies_to, &[Role::SalesRep, Role::Partner], "{}", s.id);
        }
    }

    /// How options compare for the delegation rule: ranked settings nest,
    /// entitlements cover only themselves, the baseline and what they list,
    /// preferences are anyone's to choose, and not holding a ranked setting
    /// covers only its least option.
    #[test]
    fn what_holding_an_option_covers() {
        let c = catalogue();
        let s = |id| c.setting(id).unwrap();
        let users = s("my_account.account_users");
        assert!(users.covers(Some("manage"), "view"));
        assert!(!users.covers(Some("view"), "manage"));
        assert!(users.covers(None, "hidden"));
        assert!(!users.covers(None, "view"));
        let methods = s("pay_invoices.payment_methods");
        assert!(methods.covers(Some("card_and_bank_account"), "card"));
        assert!(methods.covers(Some("card"), "card"));
        assert!(!methods.covers(Some("bank_account"), "card"), "not nested");
        assert!(!methods.covers(Some("card"), "card_and_bank_account"));
        let segment = s("configurations.segment");
        assert!(segment.covers(Some("vip"), "standard"));
        assert!(!segment.covers(Some("vip"), "wholesale"));
        assert!(s("configurations.language").covers(Some("en"), "ja"));
        assert!(!users.covers(Some("manage"), "no-such-option"));
        // Every entitlement names real options.
        for setting in c.settings() {
            if let Order::Entitlements { baseline, covers } = &setting.order {
                for id in baseline.iter().chain(
                    covers
                        .iter()
                        .flat_map(|c| std::iter::once(&c.option).chain(c.covers.iter())),
                ) {
                    assert!(setting.option(id).is_some(), "{}: {id}", setting.id);
                }
            }
            if let Some(other) = setting.counterpart {
                let other = c.setting(other).expect("counterpart exists");
                assert_eq!(setting.option_ids(), other.option_ids(), "{}", setting.id);
            }
        }
    }
}
