//! What every use case works with: [`Ctx`], one request's (or one job's)
//! view of the stores and settings, and [`Actor`], who is acting. Users,
//! profiles and tenants share them; the API builds one per request.

use crate::accounts::AccountStore;
pub use crate::actor::Actor;
use crate::catalogue::Catalogue;
use crate::error::Error;
use crate::ids::TenantId;
use crate::model::tenant::{Tenant, TenantStatus};
use crate::ports::{ProfileStore, TenantStore, UserStore};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// Deployment settings for user flows: plain values. Where they come from
/// (the environment, Secrets Manager, a test) is the process's business:
/// `peak_api::config` reads them where a process starts.
#[derive(Debug, Clone)]
pub struct UserSettings {
    /// How long an invitation link works (7 days by default).
    pub invitation_ttl: Duration,
    /// Tenants whose invitations last another time than `invitation_ttl`.
    pub invitation_ttl_by_tenant: std::collections::HashMap<TenantId, Duration>,
    /// How long an email-change verification link works.
    pub email_change_ttl: Duration,
    /// Invitation links are `{invitation_url}/{token}`.
    pub invitation_url: String,
    /// Email verification links are `{email_verification_url}/{token}`.
    pub email_verification_url: String,
    /// The portal users sign in to (for email text).
    pub portal_url: String,
    /// Signed-out reset requests per address per hour.
    pub reset_requests_per_hour: u32,
    /// Invitations (new and resent) a non-admin may send per hour, and all
    /// non-admins of a tenant together: a compromised delegated account
    /// cannot make the tenant's sender spam. Admins are not limited (bulk
    /// invites are theirs).
    pub delegated_invitations_per_hour: Budget,
    /// Email-change verification mails per hour, per user who asks (self
    /// or admin) and per tenant.
    pub email_changes_per_hour: Budget,
    /// Tenants whose suspended users are told by email
    /// (`SUSPENSION_NOTICE_TENANTS=acme,globex`).
    pub suspension_notice_tenants: std::collections::HashSet<TenantId>,
}

impl UserSettings {
    /// The deployment's default invitation lifetime for `tenant` (a tenant
    /// with a record has its own: [`Ctx::invitation_ttl`]).
    pub fn invitation_ttl_for(&self, tenant: &TenantId) -> Duration {
        self.invitation_ttl_by_tenant
            .get(tenant)
            .copied()
            .unwrap_or(self.invitation_ttl)
    }

    /// The deployment's default: whether a suspended user of `tenant` is
    /// told by email.
    pub fn suspension_notice_for(&self, tenant: &TenantId) -> bool {
        self.suspension_notice_tenants.contains(tenant)
    }
}

impl Default for UserSettings {
    fn default() -> Self {
        Self {
            invitation_ttl: Duration::days(7),
            invitation_ttl_by_tenant: std::collections::HashMap::new(),
            email_change_ttl: Duration::hours(24),
            invitation_url: "http://127.0.0.1:3000/invitations".into(),
            email_verification_url: "http://127.0.0.1:3000/email-verifications".into(),
            portal_url: "http://127.0.0.1:3000".into(),
            reset_requests_per_hour: 5,
            delegated_invitations_per_hour: Budget {
                per_actor: 100,
                per_tenant: 1_000,
            },
            email_changes_per_hour: Budget {
                per_actor: 10,
                per_tenant: 200,
            },
            suspension_notice_tenants: std::collections::HashSet::new(),
        }
    }
}

/// An hourly allowance of email-sending actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub per_actor: u32,
    pub per_tenant: u32,
}

/// What every use case works with: one request's (or one job's) view.
#[derive(Clone)]
pub struct Ctx<'a> {
    pub users: &'a dyn UserStore,
    pub profiles: &'a dyn ProfileStore,
    pub tenants: &'a dyn TenantStore,
    /// The customer-account directory: invites and edits check the
    /// accounts they give, sign-in finds a rep's child accounts.
    pub accounts: &'a dyn AccountStore,
    pub catalogue: &'static Catalogue,
    pub settings: &'a UserSettings,
    pub now: OffsetDateTime,
    pub request_id: &'a str,
    /// The tenant this request was admitted to, as read for it
    /// ([`Ctx::admitted`]); `None` before admission or for a tenant without
    /// a record. Its settings win over the deployment's defaults, and only
    /// for its own users: nothing is shared between requests.
    pub tenant: Option<Arc<Tenant>>,
}

impl<'a> Ctx<'a> {
    /// This context admitted to `tenant`: its record read now (one read), so
    /// a closed tenant is refused at once (403 `tenant_closed`) and a
    /// settings change applies to the next request. A tenant without a
    /// record (one from before tenants were data) is open, with the
    /// deployment's defaults.
    pub async fn admitted(&self, tenant: &TenantId) -> Result<Ctx<'a>, Error> {
        let found = self
            .tenants
            .get_tenant(tenant)
            .await
            .map_err(|e| Error::from_store(e, "tenant"))?;
        if let Some(t) = &found
            && t.status != TenantStatus::Active
        {
            return Err(tenant_closed());
        }
        Ok(Ctx {
            tenant: found.map(Arc::new),
            ..self.clone()
        })
    }

    /// The admitted tenant's record, if it is `tenant`'s.
    pub fn tenant_record(&self, tenant: &TenantId) -> Option<&Tenant> {
        self.tenant.as_deref().filter(|t| &t.id == tenant)
    }

    /// The portal `tenant`'s people sign in to: its own, else the
    /// deployment's default.
    pub fn portal_url(&self, tenant: &TenantId) -> &str {
        match self.tenant_record(tenant) {
            Some(t) => &t.portal_url,
            None => &self.settings.portal_url,
        }
    }

    /// How long an invitation of `tenant` works: its own setting, else the
    /// deployment's default.
    pub fn invitation_ttl(&self, tenant: &TenantId) -> Duration {
        match self.tenant_record(tenant) {
            Some(t) => Duration::days(i64::from(t.settings.invitation_ttl_days)),
            None => self.settings.invitation_ttl_for(tenant),
        }
    }

    /// Whether a suspended user of `tenant` is told by email: its own
    /// setting, else the deployment's default.
    pub fn suspension_notice(&self, tenant: &TenantId) -> bool {
        match self.tenant_record(tenant) {
            Some(t) => t.settings.suspension_notice,
            None => self.settings.suspension_notice_for(tenant),
        }
    }
}

/// A closed (or purged) tenant: its users and links are refused.
pub fn tenant_closed() -> Error {
    Error::AccessDenied {
        code: "tenant_closed",
        detail: "this portal is closed".into(),
    }
}
