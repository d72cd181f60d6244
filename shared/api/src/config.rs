//! Settings read where a process starts — the Lambda functions
//! (`peak_functions`), the local server (`peak_local`) and the admin tool —
//! from the environment or any other lookup. The domain takes plain values
//! ([`UserSettings`]); this is the one place their text form is parsed.

use peak_domain::TenantId;
use peak_domain::context::{Budget, UserSettings};
use peak_webhooks::WebhookSecrets;
use time::Duration;

/// User-flow settings for an API served at `api_url` (invitation and
/// email-verification links point there) whose people sign in at
/// `portal_url`, with what `get` (the environment) sets:
/// `INVITATION_TTL_DAYS` (all tenants), `INVITATION_TTL_DAYS_BY_TENANT`
/// (`acme=14,globex=3`), `SUSPENSION_NOTICE_TENANTS` (`acme,globex`),
/// `DELEGATED_INVITATIONS_PER_HOUR` and `EMAIL_CHANGES_PER_HOUR`
/// (`<per actor>,<per tenant>`). A malformed value is an error naming its
/// variable: a process refuses to start rather than run on a guess.
pub fn user_settings(
    api_url: &str,
    portal_url: &str,
    get: impl Fn(&str) -> Option<String>,
) -> Result<UserSettings, String> {
    let api = api_url.trim_end_matches('/');
    let base = UserSettings {
        invitation_url: format!("{api}/invitations"),
        email_verification_url: format!("{api}/email-verifications"),
        portal_url: portal_url.to_owned(),
        ..UserSettings::default()
    };
    with_env(base, get)
}

/// `settings` with what `get` sets (the variables of [`user_settings`]).
pub fn with_env(
    mut settings: UserSettings,
    get: impl Fn(&str) -> Option<String>,
) -> Result<UserSettings, String> {
    if let Some(days) = get("INVITATION_TTL_DAYS") {
        settings.invitation_ttl = parse_days(&days)?;
    }
    if let Some(list) = get("SUSPENSION_NOTICE_TENANTS") {
        for t in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let tenant = TenantId::parse(t)
                .ok_or_else(|| format!("SUSPENSION_NOTICE_TENANTS: bad tenant `{t}`"))?;
            settings.suspension_notice_tenants.insert(tenant);
        }
    }
    for (var, budget) in [
        (
            "DELEGATED_INVITATIONS_PER_HOUR",
            &mut settings.delegated_invitations_per_hour,
        ),
        (
            "EMAIL_CHANGES_PER_HOUR",
            &mut settings.email_changes_per_hour,
        ),
    ] {
        if let Some(raw) = get(var) {
            *budget = parse_budget(&raw).ok_or_else(|| {
                format!("{var}: `{raw}` is not <per actor>,<per tenant> (whole numbers)")
            })?;
        }
    }
    if let Some(map) = get("INVITATION_TTL_DAYS_BY_TENANT") {
        for pair in map.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (tenant, days) = pair.split_once('=').ok_or_else(|| {
                format!("INVITATION_TTL_DAYS_BY_TENANT: `{pair}` is not tenant=days")
            })?;
            let tenant = TenantId::parse(tenant.trim())
                .ok_or_else(|| format!("INVITATION_TTL_DAYS_BY_TENANT: bad tenant `{tenant}`"))?;
            settings
                .invitation_ttl_by_tenant
                .insert(tenant, parse_days(days)?);
        }
    }
    Ok(settings)
}

fn parse_days(raw: &str) -> Result<Duration, String> {
    match raw.trim().parse::<i64>() {
        Ok(d) if (1..=90).contains(&d) => Ok(Duration::days(d)),
        _ => Err(format!("invitation lifetime `{raw}` must be 1 to 90 days")),
    }
}

/// `per_actor,per_tenant`, e.g. `100,1000`.
fn parse_budget(raw: &str) -> Option<Budget> {
    let (a, t) = raw.split_once(',')?;
    Some(Budget {
        per_actor: a.trim().parse().ok()?,
        per_tenant: t.trim().parse().ok()?,
    })
}

/// The webhook credentials, from the environment.
pub struct WebhookConfig {
    pub action_secrets: Option<WebhookSecrets>,
    pub event_stream_tokens: Vec<String>,
}

impl WebhookConfig {
    /// `AUTH0_WEBHOOK_SECRETS` (`whsec_…`, comma/space separated) and
    /// `AUTH0_EVENT_STREAM_TOKENS`; `Ok(None)` when neither is set, an error
    /// naming the variable when one is set but unusable.
    pub fn from_env() -> Result<Option<Self>, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`WebhookConfig::from_env`] over any source of settings (the
    /// functions read these from Secrets Manager).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let secrets = var("AUTH0_WEBHOOK_SECRETS")
            .map(|v| WebhookSecrets::parse(&v))
            .transpose()
            .map_err(|e| format!("AUTH0_WEBHOOK_SECRETS: {e}"))?;
        let tokens = var("AUTH0_EVENT_STREAM_TOKENS")
            .map(|v| peak_webhooks::parse_bearer_tokens(&v))
            .transpose()
            .map_err(|e| format!("AUTH0_EVENT_STREAM_TOKENS: {e}"))?
            .unwrap_or_default();
        if secrets.is_none() && tokens.is_empty() {
            return Ok(None);
        }
        Ok(Some(Self {
            action_secrets: secrets,
            event_stream_tokens: tokens,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn invitation_lifetime_is_configurable_per_tenant() {
        let s = with_env(
            UserSettings::default(),
            env(&[
                ("INVITATION_TTL_DAYS", "5"),
                ("INVITATION_TTL_DAYS_BY_TENANT", "acme=14, globex=2"),
            ]),
        )
        .unwrap();
        let t = |id: &str| TenantId::parse(id).unwrap();
        assert_eq!(s.invitation_ttl_for(&t("acme")), Duration::days(14));
        assert_eq!(s.invitation_ttl_for(&t("globex")), Duration::days(2));
        assert_eq!(s.invitation_ttl_for(&t("initech")), Duration::days(5));
        assert_eq!(
            UserSettings::default().invitation_ttl_for(&t("x")),
            Duration::days(7)
        );
        assert!(
            with_env(
                UserSettings::default(),
                env(&[("INVITATION_TTL_DAYS", "0")])
            )
            .is_err()
        );
        assert!(
            with_env(
                UserSettings::default(),
                env(&[("INVITATION_TTL_DAYS_BY_TENANT", "acme")])
            )
            .is_err()
        );
    }

    #[test]
    fn settings_name_the_variable_they_refuse() {
        let err = with_env(
            UserSettings::default(),
            env(&[("EMAIL_CHANGES_PER_HOUR", "10")]),
        )
        .unwrap_err();
        assert!(err.starts_with("EMAIL_CHANGES_PER_HOUR:"), "{err}");
        let err = with_env(
            UserSettings::default(),
            env(&[("SUSPENSION_NOTICE_TENANTS", "acme,Not A Tenant")]),
        )
        .unwrap_err();
        assert!(err.starts_with("SUSPENSION_NOTICE_TENANTS:"), "{err}");
        let s = user_settings(
            "https://api.example.com/",
            "https://portal.example.com",
            env(&[
                ("DELEGATED_INVITATIONS_PER_HOUR", "3, 30"),
                ("SUSPENSION_NOTICE_TENANTS", "acme"),
            ]),
        )
        .unwrap();
        assert_eq!(s.invitation_url, "https://api.example.com/invitations");
        assert_eq!(
            s.email_verification_url,
            "https://api.example.com/email-verifications"
        );
        assert_eq!(s.portal_url, "https://portal.example.com");
        assert_eq!(
            s.delegated_invitations_per_hour,
            Budget {
                per_actor: 3,
                per_tenant: 30
            }
        );
        assert!(s.suspension_notice_for(&TenantId::parse("acme").unwrap()));
    }
}
