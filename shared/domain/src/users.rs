//! User use cases. Each one: validate input, decide with the policy, then
//! one atomic store write carrying its audit event and emails.

use crate::audit::{AuditEvent, FieldChange};
use crate::catalogue::Catalogue;
use crate::error::{Error, FieldError};
use crate::identity::{
    IdentityProvider, IdpAccount, IdpError, SetupLink, hash_link_token, new_link_token, sha256_hex,
};
use crate::idp_work::IdpOp;
use crate::ids::{ProfileId, TenantId};
use crate::outbox::{EmailKind, OutboxEmail};
use crate::permissions::EffectivePermissions;
use crate::permissions::with_extension_groups;
use crate::ports::{
    Page, PageRequest, ProfileStore, StoreError, TenantStore, UserStore, UserWrite,
};
use crate::profile::ProfileSettings;
use crate::role::Role;
use crate::tenant::{Tenant, TenantStatus};
use crate::user::{
    AccountNumber, Email, Invitation, InvitationState, PendingEmail, PersonName, User, UserId,
    UserQuery, UserStatus,
};
use crate::user_policy::{
    Actor, Holding, UserAction, authorize_invite, authorize_user, check_account_number,
    check_email_change, check_grant, check_reach, list_scope,
};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

const USER: &str = "user";
pub const MAX_ACCOUNTS: usize = 25;
pub const MAX_GROUPS: usize = 10;

/// Deployment settings for user flows.
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

    /// Reads `INVITATION_TTL_DAYS` (all tenants) and
    /// `INVITATION_TTL_DAYS_BY_TENANT` (`acme=14,globex=3`) from the given
    /// lookup (the environment), refusing malformed values.
    pub fn with_invitation_ttls(
        mut self,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        if let Some(days) = get("INVITATION_TTL_DAYS") {
            self.invitation_ttl = parse_days(&days)?;
        }
        if let Some(list) = get("SUSPENSION_NOTICE_TENANTS") {
            for t in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                let tenant = TenantId::parse(t)
                    .ok_or_else(|| format!("SUSPENSION_NOTICE_TENANTS: bad tenant `{t}`"))?;
                self.suspension_notice_tenants.insert(tenant);
            }
        }
        for (var, budget) in [
            (
                "DELEGATED_INVITATIONS_PER_HOUR",
                &mut self.delegated_invitations_per_hour,
            ),
            ("EMAIL_CHANGES_PER_HOUR", &mut self.email_changes_per_hour),
        ] {
            if let Some(raw) = get(var) {
                *budget = Budget::parse(&raw).ok_or_else(|| {
                    format!("{var}: `{raw}` is not <per actor>,<per tenant> (whole numbers)")
                })?;
            }
        }
        if let Some(map) = get("INVITATION_TTL_DAYS_BY_TENANT") {
            for pair in map.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (tenant, days) = pair.split_once('=').ok_or_else(|| {
                    format!("INVITATION_TTL_DAYS_BY_TENANT: `{pair}` is not tenant=days")
                })?;
                let tenant = TenantId::parse(tenant.trim()).ok_or_else(|| {
                    format!("INVITATION_TTL_DAYS_BY_TENANT: bad tenant `{tenant}`")
                })?;
                self.invitation_ttl_by_tenant
                    .insert(tenant, parse_days(days)?);
            }
        }
        Ok(self)
    }
}

fn parse_days(raw: &str) -> Result<Duration, String> {
    match raw.trim().parse::<i64>() {
        Ok(d) if (1..=90).contains(&d) => Ok(Duration::days(d)),
        _ => Err(format!("invitation lifetime `{raw}` must be 1 to 90 days")),
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

impl Budget {
    /// `per_actor,per_tenant`, e.g. `100,1000`.
    pub fn parse(raw: &str) -> Option<Budget> {
        let (a, t) = raw.split_once(',')?;
        Some(Budget {
            per_actor: a.trim().parse().ok()?,
            per_tenant: t.trim().parse().ok()?,
        })
    }
}

/// Spends one of `kind` from the actor's and the tenant's hourly budgets;
/// 429 with the seconds until the window turns when either is used up.
async fn spend(ctx: &Ctx<'_>, kind: &str, actor: &User, budget: Budget) -> Result<(), Error> {
    const HOUR: u64 = 3600;
    let tenant = actor.tenant_id.as_str();
    for (bucket, max) in [
        (format!("{kind}:{tenant}:{}", actor.id), budget.per_actor),
        (format!("{kind}:{tenant}"), budget.per_tenant),
    ] {
        let allowed = ctx
            .users
            .take_rate_limit(&bucket, ctx.now, HOUR, max)
            .await
            .map_err(store_err)?;
        if !allowed {
            return Err(Error::TooManyRequests {
                retry_after_secs: HOUR - ctx.now.unix_timestamp().rem_euclid(HOUR as i64) as u64,
            });
        }
    }
    Ok(())
}

async fn spend_invitation(ctx: &Ctx<'_>, actor: &Actor) -> Result<(), Error> {
    if actor.user.role == Role::Admin {
        return Ok(());
    }
    spend(
        ctx,
        "invitations",
        &actor.user,
        ctx.settings.delegated_invitations_per_hour,
    )
    .await
}

/// What every use case works with: one request's (or one job's) view.
#[derive(Clone)]
pub struct Ctx<'a> {
    pub users: &'a dyn UserStore,
    pub profiles: &'a dyn ProfileStore,
    pub tenants: &'a dyn TenantStore,
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

fn store_err(e: StoreError) -> Error {
    Error::from_store(e, USER)
}

// ---------------------------------------------------------------- the caller

/// The signed-in user behind a verified token: must exist in the token's
/// tenant and be active. Checked on every request, so a suspension is
/// effective at once, whatever the token's lifetime.
pub async fn resolve_actor(
    ctx: &Ctx<'_>,
    tenant: &TenantId,
    subject: &str,
) -> Result<Actor, Error> {
    let user = ctx
        .users
        .find_user_by_subject(tenant, subject)
        .await
        .map_err(store_err)?
        .ok_or_else(|| Error::AccessDenied {
            code: "unknown_user",
            detail: "your sign-in is valid but you are not a user of this portal".into(),
        })?;
    actor_of(ctx, user).await
}

/// The user with this id acting, as [`resolve_actor`] checks them (work
/// done later on their behalf, e.g. a bulk-invite job, is allowed only while
/// they still may).
pub async fn actor_for_user(ctx: &Ctx<'_>, tenant: &TenantId, id: &UserId) -> Result<Actor, Error> {
    let user = ctx
        .users
        .get_user(tenant, id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| Error::AccessDenied {
            code: "unknown_user",
            detail: "the user who started this is no longer a user of this portal".into(),
        })?;
    actor_of(ctx, user).await
}

async fn actor_of(ctx: &Ctx<'_>, user: User) -> Result<Actor, Error> {
    let tenant = &user.tenant_id.clone();
    crate::signed_in::ensure_active(&user)?;
    let settings = profile_settings(ctx, tenant, &user.profile_id).await?;
    let permissions =
        with_extension_groups(ctx.catalogue, user.role, &settings, &user.extension_groups);
    Ok(Actor { user, permissions })
}

/// A held profile's settings.
pub(crate) async fn profile_settings(
    ctx: &Ctx<'_>,
    tenant: &TenantId,
    id: &ProfileId,
) -> Result<ProfileSettings, Error> {
    match ctx.profiles.get_profile(tenant, id).await {
        Ok(Some(p)) => Ok(p.settings),
        // A profile cannot be deleted while held, so this is a race with a
        // brand-new store; fall back to defaults rather than lock the user out.
        Ok(None) => Ok(ProfileSettings::defaults(ctx.catalogue)),
        Err(e) => Err(Error::from_store(e, "profile")),
    }
}

/// What `user` may do: their profile raised by their extension groups.
async fn permissions_of(ctx: &Ctx<'_>, user: &User) -> Result<EffectivePermissions, Error> {
    let settings = profile_settings(ctx, &user.tenant_id, &user.profile_id).await?;
    Ok(with_extension_groups(
        ctx.catalogue,
        user.role,
        &settings,
        &user.extension_groups,
    ))
}

/// The user `id`, loaded for `action` by `actor`: visible to them,
/// changeable by them, and (the delegation rule) holding no more than they
/// do.
async fn authorized(
    ctx: &Ctx<'_>,
    actor: &Actor,
    action: UserAction,
    id: &UserId,
) -> Result<User, Error> {
    let user = load(ctx, &actor.user.tenant_id, id).await?;
    authorize_user(actor, action, &user)?;
    ensure_reach(ctx, actor, action, &user).await?;
    Ok(user)
}

async fn ensure_reach(
    ctx: &Ctx<'_>,
    actor: &Actor,
    action: UserAction,
    user: &User,
) -> Result<(), Error> {
    if action == UserAction::View || actor.user.role == Role::Admin || actor.user.id == user.id {
        return Ok(());
    }
    let permissions = permissions_of(ctx, user).await?;
    check_reach(ctx.catalogue, actor, &Holding::of(user, &permissions))
}

// ------------------------------------------------------------------- input

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

/// The profile named by `raw`, with its settings.
async fn existing_profile(
    ctx: &Ctx<'_>,
    tenant: &TenantId,
    raw: &str,
) -> Result<(ProfileId, ProfileSettings), Error> {
    let id = ProfileId::parse(raw.trim())
        .ok_or_else(|| Error::invalid("profile_id", "no such profile"))?;
    match ctx.profiles.get_profile(tenant, &id).await {
        Ok(Some(p)) => Ok((id, p.settings)),
        Ok(None) => Err(Error::invalid("profile_id", "no such profile")),
        Err(e) => Err(Error::from_store(e, "profile")),
    }
}

fn customer_needs_account(role: Role, accounts: &[AccountNumber]) -> Result<(), Error> {
    if role == Role::Customer && accounts.is_empty() {
        return Err(Error::invalid(
            "customer_accounts",
            "a customer must be associated with at least one customer account",
        ));
    }
    Ok(())
}

// ------------------------------------------------------------------- audit

fn list(v: &[impl AsRef<str>]) -> String {
    v.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(",")
}

/// Field-by-field changes from `before` to `after`.
pub fn changes(before: Option<&User>, after: Option<&User>) -> Vec<FieldChange> {
    fn fields(u: &User) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("email", Some(u.email.as_str().to_owned())),
            (
                "pending_email",
                u.pending_email
                    .as_ref()
                    .map(|p| p.email.as_str().to_owned()),
            ),
            ("first_name", Some(u.first_name.as_str().to_owned())),
            ("last_name", Some(u.last_name.as_str().to_owned())),
            (
                "account_number",
                u.account_number.as_ref().map(|a| a.as_str().to_owned()),
            ),
            (
                "customer_accounts",
                Some(list(
                    &u.customer_accounts
                        .iter()
                        .map(|a| a.as_str())
                        .collect::<Vec<_>>(),
                )),
            ),
            ("role", Some(u.role.as_str().to_owned())),
            ("profile_id", Some(u.profile_id.as_str().to_owned())),
            ("extension_groups", Some(list(&u.extension_groups))),
            ("status", Some(u.status.as_str().to_owned())),
        ]
    }
    let b = before.map(fields);
    let a = after.map(fields);
    let names = b
        .as_ref()
        .or(a.as_ref())
        .map(|f| f.iter().map(|(n, _)| *n).collect::<Vec<_>>())
        .unwrap_or_default();
    names
        .into_iter()
        .enumerate()
        .filter_map(|(i, field)| {
            let before = b.as_ref().and_then(|f| f[i].1.clone());
            let after = a.as_ref().and_then(|f| f[i].1.clone());
            (before != after).then(|| FieldChange {
                field: field.to_owned(),
                before,
                after,
            })
        })
        .collect()
}

/// The audit event for a change of `before` into `after` (same user).
fn event(
    ctx: &Ctx<'_>,
    actor: &str,
    action: &str,
    before: Option<&User>,
    after: &User,
) -> AuditEvent {
    AuditEvent::new(
        &after.tenant_id,
        actor,
        action,
        Some(&after.id),
        ctx.request_id,
        ctx.now,
    )
    .with_changes(changes(before, Some(after)))
}

fn mail(
    ctx: &Ctx<'_>,
    user: &User,
    to: &Email,
    kind: EmailKind,
    data: serde_json::Value,
) -> OutboxEmail {
    OutboxEmail {
        tenant_id: user.tenant_id.clone(),
        id: crate::ids::monotonic_ulid().to_string(),
        kind,
        to: to.clone(),
        user_id: user.id.clone(),
        data,
        created_at: ctx.now,
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn invitation_mail(
    ctx: &Ctx<'_>,
    inviter: &User,
    user: &User,
    token: &str,
    kind: EmailKind,
) -> OutboxEmail {
    let expires = user
        .invitation
        .as_ref()
        .map(|i| rfc3339(i.expires_at))
        .unwrap_or_default();
    mail(
        ctx,
        user,
        &user.email,
        kind,
        json!({
            "first_name": user.first_name.as_str(),
            "inviter_name": inviter.full_name(),
            "tenant": user.tenant_id.as_str(),
            "link": format!("{}/{token}", ctx.settings.invitation_url.trim_end_matches('/')),
            "expires_at": expires,
            "portal_url": ctx.settings.portal_url,
        }),
    )
}

fn fresh_invitation(ctx: &Ctx<'_>, tenant: &TenantId) -> (String, Invitation) {
    let (token, token_hash) = new_link_token();
    (
        token,
        Invitation {
            token_hash,
            state: InvitationState::Pending,
            expires_at: ctx.now + ctx.invitation_ttl(tenant),
            sent_at: ctx.now,
            accepted_at: None,
        },
    )
}

async fn write(
    ctx: &Ctx<'_>,
    previous: Option<&User>,
    next: Option<&User>,
    audit: &[AuditEvent],
    outbox: &[OutboxEmail],
) -> Result<(), Error> {
    ctx.users
        .write_user(UserWrite {
            previous,
            next,
            audit,
            outbox,
        })
        .await
        .map_err(store_err)
}

fn bump(u: &User, now: OffsetDateTime) -> User {
    let mut n = u.clone();
    n.version += 1;
    n.updated_at = now;
    n
}

// ------------------------------------------------------------------ invite

/// Invites one user: stored as `invited` with an invitation link that
/// expires, and the invitation email queued in the same write. An address
/// already in the tenant is a conflict — unless its owner is an invited user
/// whose invitation expired or was revoked: then this is a fresh invite.
pub async fn invite(ctx: &Ctx<'_>, actor: &Actor, req: InviteRequest) -> Result<User, Error> {
    invite_with_id(ctx, actor, req, None)
        .await
        .map(|(user, _)| user)
}

/// Whether [`invite_with_id`] invited now or found its own earlier invite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invited {
    Now,
    /// The user with this id already exists for this address: invited by
    /// an earlier run of the same work (a bulk job resumed after a crash).
    Before,
}

/// [`invite`] with the new user's id chosen by the caller (a bulk job
/// derives it from the job and the row): if the address already belongs to
/// the user with that id, nothing is written and the answer is
/// [`Invited::Before`], so redoing the work never invites twice.
pub async fn invite_with_id(
    ctx: &Ctx<'_>,
    actor: &Actor,
    req: InviteRequest,
    id: Option<UserId>,
) -> Result<(User, Invited), Error> {
    let tenant = &actor.user.tenant_id;
    let mut errors = Vec::new();
    let first = keep(
        PersonName::parse("first_name", &req.first_name),
        &mut errors,
    );
    let last = keep(PersonName::parse("last_name", &req.last_name), &mut errors);
    let email = keep(Email::parse(&req.email), &mut errors);
    let role = parse_role(&req.role, &mut errors);
    let accounts = parse_accounts(&req.customer_accounts, &mut errors);
    let groups = parse_groups(ctx.catalogue, &req.extension_groups, &mut errors);
    let account_number = parse_account_number(req.account_number.as_deref(), &mut errors);
    let (Some(first), Some(last), Some(email), Some(role), true) =
        (first, last, email, role, errors.is_empty())
    else {
        return Err(Error::Validation(errors));
    };
    customer_needs_account(role, &accounts)?;
    if account_number.is_some() {
        check_account_number(actor)?;
    }
    let profile_id = check_invite(ctx, actor, role, &req.profile_id, &accounts, &groups).await?;

    let existing = ctx
        .users
        .find_user_by_email(tenant, &email)
        .await
        .map_err(store_err)?;
    if let (Some(found), Some(wanted)) = (&existing, &id)
        && &found.id == wanted
    {
        return Ok((found.clone(), Invited::Before));
    }
    if let Some(found) = &existing {
        reinvitable(ctx, actor, found).await?;
    }
    let (token, invitation) = fresh_invitation(ctx, tenant);
    let user = User {
        tenant_id: tenant.clone(),
        id: existing
            .as_ref()
            .map(|u| u.id.clone())
            .or(id)
            .unwrap_or_else(UserId::generate),
        email,
        pending_email: None,
        first_name: first,
        last_name: last,
        account_number,
        customer_accounts: accounts,
        role,
        profile_id,
        extension_groups: groups,
        status: UserStatus::Invited,
        idp_subject: None,
        invitation: Some(invitation),
        version: existing.as_ref().map(|u| u.version + 1).unwrap_or(1),
        created_at: existing.as_ref().map(|u| u.created_at).unwrap_or(ctx.now),
        updated_at: ctx.now,
        last_login_at: None,
    };
    let action = if existing.is_some() {
        "user.reinvited"
    } else {
        "user.invited"
    };
    let audit = [event(
        ctx,
        actor.user.id.as_str(),
        action,
        existing.as_ref(),
        &user,
    )];
    let outbox = [invitation_mail(
        ctx,
        &actor.user,
        &user,
        &token,
        EmailKind::Invitation,
    )];
    spend_invitation(ctx, actor).await?;
    write(ctx, existing.as_ref(), Some(&user), &audit, &outbox).await?;
    Ok((user, Invited::Now))
}

/// May `actor` invite someone with this role, profile, accounts and
/// groups? The delegation rule, as [`invite`] applies it (a bulk dry run asks
/// the same). Answers the profile's id.
pub async fn check_invite(
    ctx: &Ctx<'_>,
    actor: &Actor,
    role: Role,
    profile: &str,
    accounts: &[AccountNumber],
    groups: &[String],
) -> Result<ProfileId, Error> {
    authorize_invite(actor)?;
    let (profile_id, settings) = existing_profile(ctx, &actor.user.tenant_id, profile).await?;
    let permissions = with_extension_groups(ctx.catalogue, role, &settings, groups);
    check_grant(
        ctx.catalogue,
        actor,
        &Holding {
            role,
            customer_accounts: accounts,
            extension_groups: groups,
            permissions: &permissions,
        },
    )?;
    Ok(profile_id)
}

/// How a bulk dry run reports an address that belongs to a user already:
/// `true` when inviting it would be refused as taken. A user the actor
/// cannot see is not revealed: that row reads as invitable (and the job
/// then reports it as taken, as a single invite answers 409).
pub async fn address_taken_for(ctx: &Ctx<'_>, actor: &Actor, existing: &User) -> bool {
    crate::user_policy::can_see(actor, existing) && reinvitable(ctx, actor, existing).await.is_err()
}

/// May the address of `existing` be invited afresh by `actor`? Only an
/// invited user whose invitation expired or was revoked — or, for an
/// admin, one who accepted but has not set a password yet — and only by an
/// actor who may resend that user's invitation. Anything else is the same
/// 409 `email_taken`, whether or not the actor can see the user.
async fn reinvitable(ctx: &Ctx<'_>, actor: &Actor, existing: &User) -> Result<(), Error> {
    let admin = actor.user.role == Role::Admin;
    let dead = existing.status == UserStatus::Invited
        && match &existing.invitation {
            None => true,
            Some(i) => match i.state {
                InvitationState::Pending => i.is_expired(ctx.now),
                InvitationState::Revoked => true,
                InvitationState::Accepted => admin,
            },
        };
    let may = dead
        && authorize_user(actor, UserAction::ResendInvitation, existing).is_ok()
        && ensure_reach(ctx, actor, UserAction::ResendInvitation, existing)
            .await
            .is_ok();
    if may { Ok(()) } else { Err(email_taken()) }
}

fn email_taken() -> Error {
    Error::Conflict {
        code: "email_taken",
        detail: "a user with this email address already exists in this tenant".into(),
    }
}

/// A new link (the old one stops working) with a fresh expiry.
pub async fn resend_invitation(ctx: &Ctx<'_>, actor: &Actor, id: &UserId) -> Result<User, Error> {
    let current = authorized(ctx, actor, UserAction::ResendInvitation, id).await?;
    if current.status != UserStatus::Invited {
        return Err(Error::Conflict {
            code: "not_invited",
            detail: "this user has already accepted their invitation".into(),
        });
    }
    let (token, invitation) = fresh_invitation(ctx, &current.tenant_id);
    let mut next = bump(&current, ctx.now);
    next.invitation = Some(invitation);
    next.idp_subject = current.idp_subject.clone();
    let audit = [event(
        ctx,
        actor.user.id.as_str(),
        "invitation.resent",
        Some(&current),
        &next,
    )];
    let outbox = [invitation_mail(
        ctx,
        &actor.user,
        &next,
        &token,
        EmailKind::InvitationResent,
    )];
    spend_invitation(ctx, actor).await?;
    write(ctx, Some(&current), Some(&next), &audit, &outbox).await?;
    Ok(next)
}

/// The link stops working and says it was revoked. The invited user stays
/// (so their details are kept for a later resend) until deleted. An
/// invitation already accepted (the person has a login but has not set a
/// password yet) can be revoked too: the login it created is deleted (owed
/// work, see [`crate::idp_work::owed_work`]), so a password set on it later
/// activates nobody.
pub async fn revoke_invitation(ctx: &Ctx<'_>, actor: &Actor, id: &UserId) -> Result<User, Error> {
    let current = authorized(ctx, actor, UserAction::RevokeInvitation, id).await?;
    let revocable = current.invitation.as_ref().is_some_and(|i| {
        matches!(
            i.state,
            InvitationState::Pending | InvitationState::Accepted
        )
    });
    if current.status != UserStatus::Invited || !revocable {
        return Err(Error::Conflict {
            code: "no_pending_invitation",
            detail: "this user has no pending invitation to revoke".into(),
        });
    }
    let mut next = bump(&current, ctx.now);
    if let Some(inv) = next.invitation.as_mut() {
        inv.state = InvitationState::Revoked;
    }
    next.idp_subject = None;
    let audit = [event(
        ctx,
        actor.user.id.as_str(),
        "invitation.revoked",
        Some(&current),
        &next,
    )];
    write(ctx, Some(&current), Some(&next), &audit, &[]).await?;
    Ok(next)
}

/// Where an invitation link stands when someone opens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Usable: accepting it leads to the password page (also after an
    /// accept whose password was never set).
    Pending,
    /// Past its date: the invitee asks for a new one.
    Expired,
    /// Withdrawn by an administrator.
    Revoked,
    /// Accepted and the password set: the invitee signs in instead.
    Used,
}

impl LinkState {
    /// What accepting a link in this state answers: `None` when it works.
    pub fn refusal(self) -> Option<Error> {
        match self {
            LinkState::Pending => None,
            LinkState::Revoked => Some(Error::Gone {
                code: "invitation_revoked",
                detail: "this invitation was revoked; ask your administrator for a new one".into(),
            }),
            LinkState::Used => Some(Error::Gone {
                code: "invitation_used",
                detail: "this invitation was already used; sign in with your email and password"
                    .into(),
            }),
            LinkState::Expired => Some(Error::Gone {
                code: "invitation_expired",
                detail: "this invitation has expired; ask your administrator to send a new one"
                    .into(),
            }),
        }
    }
}

/// What an invitation link shows before anyone acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationView {
    pub tenant: TenantId,
    pub state: LinkState,
    pub first_name: String,
    pub masked_email: String,
    pub expires_at: OffsetDateTime,
    /// Who sent the invitation (the newest invite or resend), while they
    /// are an active user of the tenant; `None` otherwise, and for a used
    /// link (nobody needs to be asked for anything).
    pub inviter_name: Option<String>,
}

fn link_state(user: &User, inv: &Invitation, now: OffsetDateTime) -> LinkState {
    match inv.state {
        InvitationState::Revoked => LinkState::Revoked,
        InvitationState::Accepted if user.status != UserStatus::Invited => LinkState::Used,
        // An accepted link (password not set yet) expires with its
        // invitation too.
        _ if inv.is_expired(now) => LinkState::Expired,
        _ => LinkState::Pending,
    }
}

/// The user whose current invitation link this is (a replaced link finds
/// nobody).
async fn invitation_holder(ctx: &Ctx<'_>, token: &str) -> Result<Option<User>, Error> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let user = ctx
        .users
        .find_user_by_invitation(&hash_link_token(token))
        .await
        .map_err(store_err)?;
    Ok(user.filter(|u| u.invitation.is_some()))
}

/// The invited user behind a live link, and the context admitted to their
/// tenant (its own settings and portal apply from here on).
async fn invitation_user<'a>(ctx: &Ctx<'a>, token: &str) -> Result<(User, Ctx<'a>), Error> {
    let user = invitation_holder(ctx, token)
        .await?
        .ok_or_else(invitation_not_found)?;
    // A closed tenant's invitations cannot be accepted.
    let admitted = ctx.admitted(&user.tenant_id).await?;
    let state = user
        .invitation
        .as_ref()
        .map_or(LinkState::Pending, |inv| link_state(&user, inv, ctx.now));
    match state.refusal() {
        Some(e) => Err(e),
        None => Ok((user, admitted)),
    }
}

/// Unknown, or replaced by a newer link: the same answer for both.
pub fn invitation_not_found() -> Error {
    Error::NotFound("invitation")
}

/// The name of who sent the user's invitation, from the audit trail (the
/// newest invite, re-invite or resend), if they are still an active user.
/// Best effort: a failed lookup shows no name rather than no page.
async fn inviter_name(ctx: &Ctx<'_>, user: &User) -> Option<String> {
    let events = ctx
        .users
        .list_audit(&user.tenant_id, Some(&user.id), &PageRequest::first(25))
        .await
        .ok()?;
    let actor = events
        .items
        .iter()
        .find(|e| {
            matches!(
                e.action.as_str(),
                "user.invited" | "user.reinvited" | "invitation.resent"
            )
        })
        .and_then(|e| UserId::parse(&e.actor))?;
    let inviter = ctx.users.get_user(&user.tenant_id, &actor).await.ok()??;
    (inviter.status == UserStatus::Active).then(|| inviter.full_name())
}

/// Opening the link: reads only, so a mail scanner following it consumes
/// nothing. `None`: no such link (never issued, or replaced by a newer
/// one) — one answer for both, so it reveals nothing.
pub async fn view_invitation(ctx: &Ctx<'_>, token: &str) -> Result<Option<InvitationView>, Error> {
    let Some(user) = invitation_holder(ctx, token).await? else {
        return Ok(None);
    };
    let Some(inv) = user.invitation.as_ref() else {
        return Ok(None);
    };
    // A closed tenant's link offers nothing to accept.
    ctx.admitted(&user.tenant_id).await?;
    let state = link_state(&user, inv, ctx.now);
    let inviter_name = match state {
        LinkState::Used => None,
        _ => inviter_name(ctx, &user).await,
    };
    Ok(Some(InvitationView {
        tenant: user.tenant_id.clone(),
        state,
        first_name: user.first_name.as_str().to_owned(),
        masked_email: user.email.masked(),
        expires_at: inv.expires_at,
        inviter_name,
    }))
}

/// Accepting (an explicit POST): creates or finds the login at the identity
/// provider — the first time the provider hears of this person — and
/// returns where they set their password. Accepting again before the
/// password is set gives a fresh link. The link works no longer than the
/// invitation, and returns the person to their portal's sign-in.
pub async fn accept_invitation(
    ctx: &Ctx<'_>,
    idp: &dyn IdentityProvider,
    token: &str,
) -> Result<String, Error> {
    let (current, admitted) = invitation_user(ctx, token).await?;
    let ctx = &admitted;
    let subject = match &current.idp_subject {
        Some(s) => s.clone(),
        None => login_for(ctx, idp, &current).await?,
    };
    let mut next = bump(&current, ctx.now);
    next.idp_subject = Some(subject.clone());
    if let Some(inv) = next.invitation.as_mut() {
        inv.state = InvitationState::Accepted;
        inv.accepted_at.get_or_insert(ctx.now);
    }
    if next != bump(&current, ctx.now) || current.idp_subject.is_none() {
        let audit = [event(
            ctx,
            "anonymous:invitee",
            "invitation.accepted",
            Some(&current),
            &next,
        )];
        write(ctx, Some(&current), Some(&next), &audit, &[]).await?;
    }
    let valid_for = next
        .invitation
        .as_ref()
        .map(|i| i.expires_at - ctx.now)
        .filter(|d| d.is_positive());
    idp.password_setup_link(
        &next,
        &subject,
        &SetupLink {
            portal_url: ctx.portal_url(&next.tenant_id),
            valid_for,
        },
    )
    .await
    .map_err(idp_err)
}

/// The invitee's login: the one their address has, or a new one.
///
/// A login that names an earlier user record of this tenant (the person was
/// deleted and invited again) is relinked to this one, unless that login is
/// still about to be deleted (its delete is owed: relinking it would lose
/// this user's login with it; the person tries again once the delete is
/// done), or the earlier user still exists and holds it (an email change
/// not yet pushed to the provider: it is theirs).
async fn login_for(
    ctx: &Ctx<'_>,
    idp: &dyn IdentityProvider,
    user: &User,
) -> Result<String, Error> {
    // Twice: a login created concurrently (another accept) is found the
    // second time round.
    for _ in 0..2 {
        if let Some(login) = idp.find_login(user).await.map_err(idp_err)? {
            if delete_owed(ctx, user, &login).await? {
                return Err(Error::Unavailable(
                    "the previous login of this address is still being removed; try again in a minute"
                        .into(),
                ));
            }
            if login.user_id.as_deref() == Some(user.id.as_str()) {
                return Ok(login.subject);
            }
            if let Some(owner) = login.user_id.as_deref().and_then(UserId::parse)
                && let Some(other) = ctx
                    .users
                    .get_user(&user.tenant_id, &owner)
                    .await
                    .map_err(store_err)?
                && other.idp_subject.as_deref() == Some(login.subject.as_str())
            {
                return Err(Error::Conflict {
                    code: "login_in_use",
                    detail: "this address's login still belongs to another user of this portal"
                        .into(),
                });
            }
            if idp
                .relink_login(&login.subject, user)
                .await
                .map_err(idp_err)?
            {
                return Ok(login.subject);
            }
            continue;
        }
        if let Some(subject) = idp.create_login(user).await.map_err(idp_err)? {
            return Ok(subject);
        }
    }
    Err(Error::Unavailable(
        "the login for this address is not visible yet; try again".into(),
    ))
}

/// Whether `login` has a delete owed (by the user it names).
async fn delete_owed(ctx: &Ctx<'_>, user: &User, login: &IdpAccount) -> Result<bool, Error> {
    let Some(owner) = login.user_id.as_deref().and_then(UserId::parse) else {
        return Ok(false);
    };
    let record = ctx
        .users
        .idp_work_of(&user.tenant_id, &owner)
        .await
        .map_err(store_err)?;
    Ok(record
        .is_some_and(|r| !r.done && r.work.op == IdpOp::Delete && r.work.subject == login.subject))
}

fn idp_err(e: IdpError) -> Error {
    match e {
        IdpError::Unavailable(m) => Error::Unavailable(m),
        IdpError::Rejected(m) => Error::Internal(format!("identity provider rejected: {m}")),
    }
}

// -------------------------------------------------------------- read paths

async fn load(ctx: &Ctx<'_>, tenant: &TenantId, id: &UserId) -> Result<User, Error> {
    ctx.users
        .get_user(tenant, id)
        .await
        .map_err(store_err)?
        .ok_or(Error::NotFound(USER))
}

/// Where a user's login stands with the identity provider
/// (`GET /users/{id}/identity`): read from the owed-work record the user's
/// writes keep (see `idp_work`), changing nothing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct LoginSync {
    /// The login (`auth0|…`); null until the invitation is accepted.
    pub subject: Option<String>,
    /// `no_login` (not accepted yet: the provider has not heard of them),
    /// `in_sync` (nothing owed), `pending` (owed, not yet failed) or
    /// `retrying` (failed before; due again at `due_at`).
    pub state: &'static str,
    /// What is owed: `sync` (push the user's state) or `delete`.
    pub owed: Option<&'static str>,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When a retry is due (RFC 3339); null when nothing is owed or it is
    /// due now.
    pub due_at: Option<String>,
    /// Steps of the last finished work the provider does not offer on this
    /// tenant's plan or grant (e.g. `sessions not revoked: …`): the login is
    /// otherwise in sync.
    pub notes: Vec<String>,
}

/// A user's login sync state; admins only (it names the login and the
/// provider's errors).
pub async fn login_sync(ctx: &Ctx<'_>, actor: &Actor, id: &UserId) -> Result<LoginSync, Error> {
    if actor.user.role != Role::Admin {
        return Err(Error::Forbidden("see a user's login sync state"));
    }
    let tenant = &actor.user.tenant_id;
    let user = load(ctx, tenant, id).await?;
    let record = ctx.users.idp_work_of(tenant, id).await.map_err(store_err)?;
    // A finished record stays as the user's sync state (with its notes).
    let notes = record
        .as_ref()
        .filter(|r| r.done && user.idp_subject.as_deref() == Some(r.work.subject.as_str()))
        .map(|r| r.notes.clone())
        .unwrap_or_default();
    let owed = record.filter(|r| !r.done);
    let state = match (&user.idp_subject, &owed) {
        (_, Some(item)) if item.attempts > 0 => "retrying",
        (_, Some(_)) => "pending",
        (None, None) => "no_login",
        (Some(_), None) => "in_sync",
    };
    Ok(LoginSync {
        subject: user.idp_subject.clone(),
        state,
        owed: owed.as_ref().map(|i| i.work.op.as_str()),
        attempts: owed.as_ref().map_or(0, |i| i.attempts),
        last_error: owed.as_ref().and_then(|i| i.last_error.clone()),
        due_at: owed
            .as_ref()
            .filter(|i| i.due_at > ctx.now)
            .map(|i| rfc3339(i.due_at)),
        notes,
    })
}

pub async fn get_user(ctx: &Ctx<'_>, actor: &Actor, id: &UserId) -> Result<User, Error> {
    let user = load(ctx, &actor.user.tenant_id, id).await?;
    authorize_user(actor, UserAction::View, &user)?;
    Ok(user)
}

/// A page of the users the actor may see. Non-admins list one of their own
/// accounts at a time (`account`; optional when they have exactly one), and
/// see only customer users.
pub async fn list_users(
    ctx: &Ctx<'_>,
    actor: &Actor,
    mut query: UserQuery,
    page: &PageRequest,
) -> Result<Page<User>, Error> {
    if let Some(mine) = list_scope(actor)? {
        match &query.account {
            Some(a) if mine.contains(a) => {}
            Some(_) => return Err(Error::Forbidden("list users of accounts you do not serve")),
            None if mine.len() == 1 => query.account = mine.first().cloned(),
            None => {
                return Err(Error::invalid(
                    "account",
                    "choose one of your customer accounts to list",
                ));
            }
        }
        match query.role {
            None | Some(Role::Customer) => query.role = Some(Role::Customer),
            Some(_) => {
                return Ok(Page {
                    items: Vec::new(),
                    next_cursor: None,
                });
            }
        }
    }
    ctx.users
        .list_users(&actor.user.tenant_id, &query, page)
        .await
        .map_err(store_err)
}

/// Audit events, newest first: one user's history or the tenant's. Admins
/// only. A user id follows the same rule as every `/users/{id}` route — 404
/// when the caller cannot see that user — except that an admin still reads
/// the history of a user who was deleted (while the tenant holds events for
/// that id).
pub async fn list_audit(
    ctx: &Ctx<'_>,
    actor: &Actor,
    user: Option<&UserId>,
    page: &PageRequest,
) -> Result<Page<AuditEvent>, Error> {
    let tenant = &actor.user.tenant_id;
    let Some(id) = user else {
        if actor.user.role != Role::Admin {
            return Err(Error::Forbidden("read audit trails"));
        }
        return ctx
            .users
            .list_audit(tenant, None, page)
            .await
            .map_err(store_err);
    };
    let exists = match ctx.users.get_user(tenant, id).await.map_err(store_err)? {
        Some(target) => {
            authorize_user(actor, UserAction::ViewAudit, &target)?;
            true
        }
        None if actor.user.role == Role::Admin => false,
        None => return Err(Error::NotFound(USER)),
    };
    let events = ctx
        .users
        .list_audit(tenant, Some(id), page)
        .await
        .map_err(store_err)?;
    if !exists && events.items.is_empty() && page.cursor.is_none() {
        return Err(Error::NotFound(USER));
    }
    Ok(events)
}

// ---------------------------------------------------------------- changes

fn check_version(current: &User, if_match: Option<u64>, required: bool) -> Result<(), Error> {
    match if_match {
        None if required => Err(Error::PreconditionRequired(USER)),
        Some(v) if v != current.version => Err(Error::PreconditionFailed(USER)),
        _ => Ok(()),
    }
}

/// Starts an email change: the new address must be confirmed through the
/// link sent to it; the old address is told. Same address in another case
/// is just a correction and applies at once.
fn change_email(
    ctx: &Ctx<'_>,
    current: &User,
    next: &mut User,
    new: Email,
    outbox: &mut Vec<OutboxEmail>,
) {
    if new.normalized() == current.email.normalized() {
        next.email = new;
        return;
    }
    let (random, token_hash) = new_link_token();
    // The token names its user so that verification needs no extra index.
    let token = format!("{}.{}.{}", current.tenant_id, current.id, random);
    next.pending_email = Some(PendingEmail {
        email: new.clone(),
        token_hash,
        expires_at: ctx.now + ctx.settings.email_change_ttl,
    });
    let link = format!(
        "{}/{token}",
        ctx.settings.email_verification_url.trim_end_matches('/')
    );
    outbox.push(mail(
        ctx,
        current,
        &new,
        EmailKind::EmailChangeVerification,
        json!({
            "first_name": current.first_name.as_str(),
            "link": link,
            "portal_url": ctx.settings.portal_url,
        }),
    ));
    outbox.push(mail(
        ctx,
        current,
        &current.email,
        EmailKind::EmailChangeNotice,
        json!({
            "first_name": current.first_name.as_str(),
            "new_email_masked": new.masked(),
            "portal_url": ctx.settings.portal_url,
        }),
    ));
}

/// Edits a user; `If-Match` is required and a stale version is refused.
pub async fn edit_user(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &UserId,
    if_match: Option<u64>,
    patch: UserPatch,
) -> Result<User, Error> {
    let tenant = &actor.user.tenant_id;
    let current = authorized(ctx, actor, UserAction::Edit, id).await?;
    check_version(&current, if_match, true)?;

    let mut errors = Vec::new();
    let mut next = bump(&current, ctx.now);
    if let Some(f) = &patch.first_name {
        next.first_name =
            keep(PersonName::parse("first_name", f), &mut errors).unwrap_or(next.first_name);
    }
    if let Some(l) = &patch.last_name {
        next.last_name =
            keep(PersonName::parse("last_name", l), &mut errors).unwrap_or(next.last_name);
    }
    let email = patch
        .email
        .as_deref()
        .and_then(|e| keep(Email::parse(e), &mut errors));
    if let Some(a) = &patch.account_number {
        next.account_number = parse_account_number(a.as_deref(), &mut errors);
    }
    if let Some(accts) = &patch.customer_accounts {
        next.customer_accounts = parse_accounts(accts, &mut errors);
    }
    if let Some(r) = &patch.role
        && let Some(role) = parse_role(r, &mut errors)
    {
        next.role = role;
    }
    if let Some(g) = &patch.extension_groups {
        next.extension_groups = parse_groups(ctx.catalogue, g, &mut errors);
    }
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    let new_profile = match &patch.profile_id {
        Some(p) => Some(existing_profile(ctx, tenant, p).await?),
        None => None,
    };
    customer_needs_account(next.role, &next.customer_accounts)?;
    if actor.user.id == current.id && next.role != current.role {
        return Err(Error::Conflict {
            code: "cannot_act_on_self",
            detail: "you cannot change your own role; ask another admin".into(),
        });
    }
    if next.account_number != current.account_number {
        check_account_number(actor)?;
    }
    if let Some(e) = &email
        && e.as_str() != current.email.as_str()
    {
        check_email_change(actor, &current)?;
    }
    let admin = actor.user.role == Role::Admin;
    let settings = match new_profile {
        Some((id, settings)) => {
            next.profile_id = id;
            Some(settings)
        }
        None if !admin => Some(profile_settings(ctx, tenant, &next.profile_id).await?),
        None => None,
    };
    if let (Some(settings), false) = (settings, admin) {
        let permissions =
            with_extension_groups(ctx.catalogue, next.role, &settings, &next.extension_groups);
        check_grant(ctx.catalogue, actor, &Holding::of(&next, &permissions))?;
    }
    let mut outbox = Vec::new();
    if let Some(e) = email {
        if e.normalized() != current.email.normalized()
            && let Some(owner) = ctx
                .users
                .find_user_by_email(tenant, &e)
                .await
                .map_err(store_err)?
            && owner.id != current.id
        {
            return Err(email_taken());
        }
        if e.normalized() != current.email.normalized() {
            spend(
                ctx,
                "email-changes",
                &actor.user,
                ctx.settings.email_changes_per_hour,
            )
            .await?;
        }
        change_email(ctx, &current, &mut next, e, &mut outbox);
    }
    let audit = [event(
        ctx,
        actor.user.id.as_str(),
        "user.updated",
        Some(&current),
        &next,
    )];
    write(ctx, Some(&current), Some(&next), &audit, &outbox).await?;
    Ok(next)
}

/// `PATCH /me`: first and last name, and the login email (verified).
pub async fn edit_self(
    ctx: &Ctx<'_>,
    actor: &Actor,
    if_match: Option<u64>,
    patch: SelfPatch,
) -> Result<User, Error> {
    let as_user_patch = UserPatch {
        first_name: patch.first_name,
        last_name: patch.last_name,
        email: patch.email,
        ..UserPatch::default()
    };
    let current = load(ctx, &actor.user.tenant_id, &actor.user.id).await?;
    check_version(&current, if_match, true)?;
    // Changing one's own names and email needs no permission beyond being
    // signed in: edit as if with full rights, over these three fields only.
    let elevated = Actor {
        user: User {
            role: Role::Admin,
            ..actor.user.clone()
        },
        permissions: actor.permissions.clone(),
    };
    edit_user(ctx, &elevated, &current.id, if_match, as_user_patch)
        .await
        .map_err(|e| match e {
            Error::Conflict {
                code: "cannot_act_on_self",
                ..
            } => Error::Forbidden("change your own role"),
            other => other,
        })
}

/// Where an email-change link stands when someone opens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationState {
    Pending,
    Expired,
}

/// What an email-change link shows before anyone confirms it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailVerificationView {
    pub tenant: TenantId,
    pub state: VerificationState,
    pub first_name: String,
    /// The address that becomes the login email, masked.
    pub new_email_masked: String,
    pub expires_at: OffsetDateTime,
}

impl VerificationState {
    /// What confirming answers in this state: `None` when it works.
    pub fn refusal(self) -> Option<Error> {
        match self {
            VerificationState::Pending => None,
            VerificationState::Expired => Some(Error::Gone {
                code: "verification_expired",
                detail: "this link has expired; change your email again to get a new one".into(),
            }),
        }
    }
}

/// The tenant an email-change link names (the token carries it in the
/// clear, so naming it reveals nothing the link does not).
pub fn email_verification_tenant(token: &str) -> Option<TenantId> {
    TenantId::parse(token.split('.').next()?)
}

fn verification_used() -> Error {
    Error::Gone {
        code: "verification_used",
        detail: "this link was already used or replaced".into(),
    }
}

/// The user and the pending change this link confirms, whatever its expiry.
async fn verification_target(ctx: &Ctx<'_>, token: &str) -> Result<(User, PendingEmail), Error> {
    let mut parts = token.splitn(3, '.');
    let (Some(t), Some(u), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Error::NotFound("email verification"));
    };
    let (Some(tenant), Some(id)) = (TenantId::parse(t), UserId::parse(u)) else {
        return Err(Error::NotFound("email verification"));
    };
    let current = ctx
        .users
        .get_user(&tenant, &id)
        .await
        .map_err(store_err)?
        .ok_or(Error::NotFound("email verification"))?;
    let Some(pending) = current.pending_email.clone() else {
        return Err(verification_used());
    };
    if !constant_time_eq(
        pending.token_hash.as_bytes(),
        hash_link_token(token.rsplit('.').next().unwrap_or("")).as_bytes(),
    ) {
        return Err(verification_used());
    }
    // A working link of a closed tenant confirms nothing.
    ctx.admitted(&current.tenant_id).await?;
    Ok((current, pending))
}

fn verification_state(pending: &PendingEmail, now: OffsetDateTime) -> VerificationState {
    if now >= pending.expires_at {
        VerificationState::Expired
    } else {
        VerificationState::Pending
    }
}

/// Opening the link sent to a new address: reads only (mail scanners
/// follow links). A link that is unknown, used or replaced is an error, as
/// confirming it would be; an expired one is shown as expired.
pub async fn view_email_verification(
    ctx: &Ctx<'_>,
    token: &str,
) -> Result<EmailVerificationView, Error> {
    let (user, pending) = verification_target(ctx, token).await?;
    Ok(EmailVerificationView {
        tenant: user.tenant_id.clone(),
        state: verification_state(&pending, ctx.now),
        first_name: user.first_name.as_str().to_owned(),
        new_email_masked: pending.email.masked(),
        expires_at: pending.expires_at,
    })
}

/// Following the link sent to a new address makes it the login email.
pub async fn verify_email(ctx: &Ctx<'_>, token: &str) -> Result<User, Error> {
    let (current, pending) = verification_target(ctx, token).await?;
    if let Some(refused) = verification_state(&pending, ctx.now).refusal() {
        return Err(refused);
    }
    let mut next = bump(&current, ctx.now);
    next.email = pending.email;
    next.pending_email = None;
    let audit = [event(
        ctx,
        current.id.as_str(),
        "user.email_verified",
        Some(&current),
        &next,
    )];
    write(ctx, Some(&current), Some(&next), &audit, &[]).await?;
    Ok(next)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn set_status(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &UserId,
    if_match: Option<u64>,
    action: UserAction,
) -> Result<User, Error> {
    let current = authorized(ctx, actor, action, id).await?;
    check_version(&current, if_match, false)?;
    let (from, to, name) = match action {
        UserAction::Suspend => (UserStatus::Active, UserStatus::Suspended, "user.suspended"),
        _ => (UserStatus::Suspended, UserStatus::Active, "user.enabled"),
    };
    if current.status == to {
        return Ok(current);
    }
    if current.status != from {
        return Err(Error::Conflict {
            code: "invalid_status",
            detail: format!(
                "a user who is {} cannot be {}",
                current.status.as_str(),
                if to == UserStatus::Suspended {
                    "suspended"
                } else {
                    "enabled"
                }
            ),
        });
    }
    let mut next = bump(&current, ctx.now);
    next.status = to;
    let audit = [event(
        ctx,
        actor.user.id.as_str(),
        name,
        Some(&current),
        &next,
    )];
    let mut outbox = Vec::new();
    if to == UserStatus::Suspended && ctx.suspension_notice(&current.tenant_id) {
        let data = json!({
            "first_name": current.first_name.as_str(),
            "portal_url": ctx.settings.portal_url,
        });
        outbox.push(mail(
            ctx,
            &current,
            &current.email,
            EmailKind::SuspensionNotice,
            data,
        ));
    }
    write(ctx, Some(&current), Some(&next), &audit, &outbox).await?;
    Ok(next)
}

/// Active → suspended: refused by this API from this moment.
pub async fn suspend_user(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &UserId,
    if_match: Option<u64>,
) -> Result<User, Error> {
    set_status(ctx, actor, id, if_match, UserAction::Suspend).await
}

/// Suspended → active again.
pub async fn enable_user(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &UserId,
    if_match: Option<u64>,
) -> Result<User, Error> {
    set_status(ctx, actor, id, if_match, UserAction::Enable).await
}

/// Removes the user, their lookups, invitation and pending emails; the
/// audit trail keeps what happened without who they were.
pub async fn delete_user(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &UserId,
    if_match: Option<u64>,
) -> Result<(), Error> {
    let current = authorized(ctx, actor, UserAction::Delete, id).await?;
    check_version(&current, if_match, false)?;
    let audit = [AuditEvent::new(
        &current.tenant_id,
        actor.user.id.as_str(),
        "user.deleted",
        Some(&current.id),
        ctx.request_id,
        ctx.now,
    )];
    write(ctx, Some(&current), None, &audit, &[]).await
}

fn reset_mail(ctx: &Ctx<'_>, user: &User, initiated_by: &str) -> OutboxEmail {
    mail(
        ctx,
        user,
        &user.email,
        EmailKind::PasswordReset,
        json!({
            "first_name": user.first_name.as_str(),
            "initiated_by": initiated_by,
            "portal_url": ctx.settings.portal_url,
        }),
    )
}

/// Queues a password-reset email; the mailer gets the password-change link
/// from the identity provider when it sends.
pub async fn reset_password(ctx: &Ctx<'_>, actor: &Actor, id: &UserId) -> Result<(), Error> {
    let current = authorized(ctx, actor, UserAction::ResetPassword, id).await?;
    if current.status != UserStatus::Active || current.idp_subject.is_none() {
        return Err(Error::Conflict {
            code: "invalid_status",
            detail: "only an active user can reset their password; an invited user sets it from the invitation (resend it)".into(),
        });
    }
    let initiated_by = if actor.user.id == current.id {
        "self"
    } else {
        "admin"
    };
    // Written with the user unchanged (same version): asking for a reset is
    // not an edit, and must not make anyone's If-Match stale.
    let audit = [event(
        ctx,
        actor.user.id.as_str(),
        "user.password_reset_requested",
        Some(&current),
        &current,
    )];
    write(
        ctx,
        Some(&current),
        Some(&current),
        &audit,
        &[reset_mail(ctx, &current, initiated_by)],
    )
    .await
}

/// The login page's "forgot password": the same answer whether or not the
/// address exists; rate-limited per address (hashed) per hour.
pub async fn request_password_reset(
    ctx: &Ctx<'_>,
    tenant_raw: &str,
    email_raw: &str,
) -> Result<(), Error> {
    let mut errors = Vec::new();
    let tenant = TenantId::parse(tenant_raw.trim());
    if tenant.is_none() {
        errors.push(FieldError::new("tenant", "is not a valid tenant id"));
    }
    let email = keep(Email::parse(email_raw), &mut errors);
    let (Some(tenant), Some(email)) = (tenant, email) else {
        return Err(Error::Validation(errors));
    };
    let bucket = format!(
        "reset:{}",
        sha256_hex(&format!("{}|{}", tenant, email.normalized()))
    );
    let allowed = ctx
        .users
        .take_rate_limit(&bucket, ctx.now, 3600, ctx.settings.reset_requests_per_hour)
        .await
        .map_err(store_err)?;
    if !allowed {
        return Err(Error::TooManyRequests {
            retry_after_secs: 3600 - (ctx.now.unix_timestamp().rem_euclid(3600)) as u64,
        });
    }
    let Some(user) = ctx
        .users
        .find_user_by_email(&tenant, &email)
        .await
        .map_err(store_err)?
    else {
        return Ok(());
    };
    if user.status != UserStatus::Active || user.idp_subject.is_none() {
        return Ok(());
    }
    // The user is written unchanged (same version): a stranger asking for a
    // reset must not make an admin's If-Match stale.
    let audit = [event(
        ctx,
        "anonymous",
        "user.password_reset_requested",
        Some(&user),
        &user,
    )];
    match write(
        ctx,
        Some(&user),
        Some(&user),
        &audit,
        &[reset_mail(ctx, &user, "self")],
    )
    .await
    {
        // A concurrent change: the answer is the same either way.
        Ok(()) | Err(Error::PreconditionFailed(_)) => Ok(()),
        Err(e) => Err(e),
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
        let s = UserSettings::default()
            .with_invitation_ttls(env(&[
                ("INVITATION_TTL_DAYS", "5"),
                ("INVITATION_TTL_DAYS_BY_TENANT", "acme=14, globex=2"),
            ]))
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
            UserSettings::default()
                .with_invitation_ttls(env(&[("INVITATION_TTL_DAYS", "0")]))
                .is_err()
        );
        assert!(
            UserSettings::default()
                .with_invitation_ttls(env(&[("INVITATION_TTL_DAYS_BY_TENANT", "acme")]))
                .is_err()
        );
    }

    #[test]
    fn changes_list_only_what_moved() {
        let now = OffsetDateTime::now_utc();
        let t = TenantId::parse("t").unwrap();
        let u = User {
            tenant_id: t,
            id: UserId::generate(),
            email: Email::parse("a@example.com").unwrap(),
            pending_email: None,
            first_name: PersonName::parse("f", "Ada").unwrap(),
            last_name: PersonName::parse("l", "Lovelace").unwrap(),
            account_number: None,
            customer_accounts: vec![],
            role: Role::Admin,
            profile_id: ProfileId::generate(),
            extension_groups: vec![],
            status: UserStatus::Active,
            idp_subject: None,
            invitation: None,
            version: 1,
            created_at: now,
            updated_at: now,
            last_login_at: None,
        };
        let mut v = u.clone();
        v.status = UserStatus::Suspended;
        assert_eq!(
            changes(Some(&u), Some(&v)),
            vec![FieldChange {
                field: "status".into(),
                before: Some("active".into()),
                after: Some("suspended".into())
            }]
        );
        assert_eq!(
            changes(None, Some(&u)).len(),
            8,
            "a creation lists every field with a value"
        );
    }
}
