//! What every request's handler can reach, built once at cold start (by
//! `functions/` in Lambda, by `local/` for the local server). The settings
//! it is built from are read by `config`.

use crate::config::WebhookConfig;
use peak_auth::JwtVerifier;
use peak_domain::catalogue::Catalogue;
use peak_domain::identity::IdentityProvider;
use peak_domain::ports::{ProfileStore, UserStore};
use peak_domain::{Ctx, UserSettings};
use std::sync::Arc;

/// Everything a handler needs, built once at cold start.
#[derive(Clone)]
pub struct AppState {
    pub profiles: Arc<dyn ProfileStore>,
    pub users: Arc<dyn UserStore>,
    /// Tenant records: each request's tenant is admitted (open) and its record
    /// carried by that request's `Ctx` (`Ctx::admitted`).
    pub tenants: Arc<dyn peak_domain::tenants::TenantStore>,
    /// The customer-account directory.
    pub accounts: Arc<dyn peak_domain::accounts::AccountStore>,
    /// Each request's caller: tenant admission and the user, read together
    /// (`peak_domain::users::signed_in`).
    pub callers: Arc<dyn peak_domain::ports::CallerStore>,
    pub idp: Arc<dyn IdentityProvider>,
    pub verifier: Arc<JwtVerifier>,
    pub catalogue: &'static Catalogue,
    pub settings: Arc<UserSettings>,
    /// How identity-provider webhooks are authenticated; `None`: the
    /// webhook route answers 503 (not configured).
    pub webhooks: Option<Arc<WebhookConfig>>,
    /// Bulk-invite jobs and their reports.
    pub jobs: Arc<dyn peak_domain::ports::JobStore>,
    /// Uploaded files (S3 in AWS, a folder locally).
    pub files: Arc<dyn peak_domain::ports::FileStore>,
    /// Each tenant's brand (name, colour, portal URL): the pages our links
    /// open look like the emails that carried them.
    pub brands: Arc<peak_email::Brands>,
}

/// Brands for a deployment that configures none (`EMAIL_BRANDS` unset in
/// a function that shows pages, the benchmarks, the event tests): every
/// tenant's pages are "Customer portal", linking to `portal_url`. Such
/// brands send no email (no sender).
pub fn portal_brands(portal_url: &str) -> peak_email::Brands {
    peak_email::Brands::new(peak_email::Brand {
        name: "Customer portal".into(),
        sender: String::new(),
        reply_to: None,
        portal_url: portal_url.to_owned(),
        accent_color: None,
    })
}

impl AppState {
    /// The use-case context for one request.
    pub fn ctx<'a>(&'a self, request_id: &'a str) -> Ctx<'a> {
        Ctx {
            users: self.users.as_ref(),
            profiles: self.profiles.as_ref(),
            tenants: self.tenants.as_ref(),
            accounts: self.accounts.as_ref(),
            catalogue: self.catalogue,
            settings: &self.settings,
            now: time::OffsetDateTime::now_utc(),
            request_id,
            tenant: None,
        }
    }
}
