//! Tenant use cases: an operator creates, lists, changes, closes and purges
//! tenants (`peak-admin`); a tenant's admins read and change its settings
//! (`GET/PATCH /settings`); every authenticated request is admitted only
//! while its tenant is open ([`crate::context::Ctx::admitted`]).

use crate::audit::{AuditEvent, FieldChange};
use crate::catalogue::Catalogue;
use crate::context::Actor;
use crate::context::Ctx;
use crate::error::Error;
use crate::ids::TenantId;
use crate::model::profile::{NewProfile, Profile};
use crate::model::tenant::{NewTenant, SettingsPatch, Tenant, TenantStatus};
use crate::model::user::{Email, PersonName, User, UserId, UserQuery, UserStatus};
use crate::ports::{PageRequest, ProfileStore, StoreError, UserWrite};
use crate::role::Role;
use crate::users::wire::InviteRequest;
use time::OffsetDateTime;

pub use crate::ports::TenantStore;

const TENANT: &str = "tenant";
/// The actor operators' changes are audited as.
pub const OPERATOR: &str = "system:operator";

fn store_err(e: StoreError) -> Error {
    match e {
        StoreError::AlreadyExists => Error::Conflict {
            code: "tenant_exists",
            detail: "a tenant with this id already exists; nothing was changed".into(),
        },
        other => Error::from_store(other, TENANT),
    }
}

/// Creates the tenant and its `Standard` profile. A second create of the
/// same id is `tenant_exists` and changes nothing.
pub async fn create_tenant(
    tenants: &dyn TenantStore,
    profiles: &dyn ProfileStore,
    catalogue: &'static Catalogue,
    new: NewTenant,
    now: OffsetDateTime,
) -> Result<Tenant, Error> {
    let tenant = new.validate(now)?;
    tenants.create_tenant(&tenant).await.map_err(store_err)?;
    standard_profile(profiles, catalogue, &tenant.id, now).await?;
    Ok(tenant)
}

/// The tenant's `Standard` profile (every setting at its default), created
/// if it has none.
pub async fn standard_profile(
    profiles: &dyn ProfileStore,
    catalogue: &'static Catalogue,
    tenant: &TenantId,
    now: OffsetDateTime,
) -> Result<Profile, Error> {
    let existing = profiles
        .list_profiles(tenant, &PageRequest::first(100))
        .await
        .map_err(|e| Error::from_store(e, "profile"))?;
    if let Some(p) = existing
        .items
        .into_iter()
        .find(|p| p.name.unique_key() == "standard")
    {
        return Ok(p);
    }
    // The operator creates it: nobody of the tenant could yet.
    crate::profiles::insert_new(
        profiles,
        catalogue,
        tenant,
        NewProfile {
            name: "Standard".into(),
            description: Some("Every setting at its default".into()),
        },
        now,
    )
    .await
}

/// The operator, acting as an admin of `tenant` that is nobody's user: the
/// first admin can only be invited by someone outside the tenant.
fn operator_actor(ctx: &Ctx<'_>, tenant: &TenantId, profile: &Profile) -> Result<Actor, Error> {
    let name = |f: &str, v: &str| PersonName::parse(f, v).map_err(|e| Error::Validation(vec![e]));
    let user = User {
        tenant_id: tenant.clone(),
        id: UserId::generate(),
        email: Email::parse("operator@peakcommerce.invalid")
            .map_err(|e| Error::Validation(vec![e]))?,
        pending_email: None,
        first_name: name("first_name", "PeakCommerce")?,
        last_name: name("last_name", "Operator")?,
        account_number: None,
        customer_accounts: Vec::new(),
        role: Role::Admin,
        profile_id: profile.id.clone(),
        extension_groups: Vec::new(),
        status: UserStatus::Active,
        idp_subject: None,
        invitation: None,
        version: 1,
        created_at: ctx.now,
        updated_at: ctx.now,
        last_login_at: None,
    };
    let permissions = crate::permissions::with_extension_groups(
        ctx.catalogue,
        Role::Admin,
        &profile.settings,
        &[],
    );
    Ok(Actor::new(user, permissions))
}

/// Invites the tenant's first (or another) admin through the normal
/// invitation path: the user stored as `invited`, the invitation email in
/// the outbox in the same write; they accept as anyone invited does.
pub async fn invite_admin(
    ctx: &Ctx<'_>,
    tenant: &TenantId,
    first_name: &str,
    last_name: &str,
    email: &str,
) -> Result<User, Error> {
    let ctx = &ctx.admitted(tenant).await?;
    let profile = standard_profile(ctx.profiles, ctx.catalogue, tenant, ctx.now).await?;
    let actor = operator_actor(ctx, tenant, &profile)?;
    crate::users::invite(
        ctx,
        &actor,
        InviteRequest {
            first_name: first_name.into(),
            last_name: last_name.into(),
            email: email.into(),
            role: Role::Admin.as_str().into(),
            profile_id: profile.id.as_str().into(),
            extension_groups: Vec::new(),
            customer_accounts: Vec::new(),
            account_number: None,
        },
    )
    .await
}

/// A tenant's record, or `not_found`.
pub async fn get_tenant(tenants: &dyn TenantStore, id: &TenantId) -> Result<Tenant, Error> {
    tenants
        .get_tenant(id)
        .await
        .map_err(store_err)?
        .ok_or(Error::NotFound(TENANT))
}

/// The signed-in admin's tenant settings. A tenant without a record answers
/// `not_found`: its settings are the operator's deployment configuration.
pub async fn settings_of(tenants: &dyn TenantStore, actor: &Actor) -> Result<Tenant, Error> {
    require_admin(actor)?;
    get_tenant(tenants, &actor.user.tenant_id).await
}

fn require_admin(actor: &Actor) -> Result<(), Error> {
    if actor.user.role == Role::Admin {
        Ok(())
    } else {
        Err(Error::Forbidden("read or change the tenant's settings"))
    }
}

/// A tenant admin changes their settings (`If-Match`), audited with what
/// changed.
pub async fn update_settings(
    tenants: &dyn TenantStore,
    actor: &Actor,
    patch: &SettingsPatch,
    if_match: Option<u64>,
    request_id: &str,
    now: OffsetDateTime,
) -> Result<Tenant, Error> {
    require_admin(actor)?;
    let if_match = if_match.ok_or(Error::PreconditionRequired("settings"))?;
    let current = get_tenant(tenants, &actor.user.tenant_id).await?;
    if current.version != if_match {
        return Err(Error::PreconditionFailed("settings"));
    }
    let settings = patch.apply(&current.settings)?;
    change(
        tenants,
        current,
        |t| t.settings = settings,
        actor.user.id.as_str(),
        "tenant.settings_updated",
        request_id,
        now,
    )
    .await
}

/// What an operator may change besides the admins' settings.
#[derive(Debug, Clone, Default)]
pub struct OperatorPatch {
    pub display_name: Option<String>,
    pub portal_url: Option<String>,
    pub sender_address: Option<String>,
    pub settings: SettingsPatch,
}

/// An operator changes a tenant (any field, the portal URL included).
pub async fn operator_update(
    tenants: &dyn TenantStore,
    id: &TenantId,
    patch: OperatorPatch,
    now: OffsetDateTime,
) -> Result<Tenant, Error> {
    let current = get_tenant(tenants, id).await?;
    let settings = patch.settings.apply(&current.settings)?;
    // Re-validated as a whole, as a new tenant would be.
    let checked = NewTenant {
        id: current.id.as_str().into(),
        display_name: patch
            .display_name
            .unwrap_or_else(|| current.display_name.clone()),
        portal_url: patch
            .portal_url
            .unwrap_or_else(|| current.portal_url.clone()),
        sender_address: patch
            .sender_address
            .unwrap_or_else(|| current.sender_address.as_str().into()),
        reply_to: None,
        invitation_ttl_days: settings.invitation_ttl_days,
    }
    .validate(now)?;
    change(
        tenants,
        current,
        |t| {
            t.display_name = checked.display_name;
            t.portal_url = checked.portal_url;
            t.sender_address = checked.sender_address;
            t.settings = settings;
        },
        OPERATOR,
        "tenant.updated",
        "operator",
        now,
    )
    .await
}

/// Closes the tenant: its users are refused from the next request on. Data
/// is kept until [`purge_tenant`].
pub async fn close_tenant(
    tenants: &dyn TenantStore,
    id: &TenantId,
    now: OffsetDateTime,
) -> Result<Tenant, Error> {
    let current = get_tenant(tenants, id).await?;
    if current.status != TenantStatus::Active {
        return Ok(current);
    }
    change(
        tenants,
        current,
        |t| t.status = TenantStatus::Closed,
        OPERATOR,
        "tenant.closed",
        "operator",
        now,
    )
    .await
}

/// Erases a closed tenant's users as user deletion does (their personal
/// data removed from their past audit events, their logins deleted at the
/// identity provider by the owed-work worker). Answers how many users were
/// deleted. Safe to run again after a crash.
pub async fn purge_tenant(
    ctx: &Ctx<'_>,
    tenants: &dyn TenantStore,
    id: &TenantId,
) -> Result<u64, Error> {
    let current = get_tenant(tenants, id).await?;
    if current.status == TenantStatus::Active {
        return Err(Error::Conflict {
            code: "tenant_open",
            detail: "close the tenant before purging it".into(),
        });
    }
    let mut deleted = 0;
    loop {
        let page = ctx
            .users
            .list_users(id, &UserQuery::default(), &PageRequest::first(100))
            .await
            .map_err(|e| Error::from_store(e, "user"))?;
        if page.items.is_empty() {
            break;
        }
        for user in &page.items {
            let audit = [AuditEvent::new(
                id,
                OPERATOR,
                "user.deleted",
                Some(&user.id),
                ctx.request_id,
                ctx.now,
            )];
            match ctx
                .users
                .write_user(UserWrite {
                    previous: Some(user),
                    next: None,
                    audit: &audit,
                    outbox: &[],
                })
                .await
            {
                Ok(()) => deleted += 1,
                // Changed or deleted meanwhile: the next page shows it again.
                Err(StoreError::VersionMismatch | StoreError::NotFound) => {}
                Err(e) => return Err(Error::from_store(e, "user")),
            }
        }
    }
    if current.status != TenantStatus::Purged {
        change(
            tenants,
            current,
            |t| t.status = TenantStatus::Purged,
            OPERATOR,
            "tenant.purged",
            ctx.request_id,
            ctx.now,
        )
        .await?;
    }
    Ok(deleted)
}

async fn change(
    tenants: &dyn TenantStore,
    current: Tenant,
    f: impl FnOnce(&mut Tenant),
    actor: &str,
    action: &str,
    request_id: &str,
    now: OffsetDateTime,
) -> Result<Tenant, Error> {
    let mut next = current.clone();
    f(&mut next);
    next.version = current.version + 1;
    next.updated_at = now;
    let mut event = AuditEvent::new(&current.id, actor, action, None, request_id, now);
    event.changes = changes(&current, &next);
    tenants
        .update_tenant(current.version, &next, &[event])
        .await
        .map_err(store_err)?;
    Ok(next)
}

/// Field by field, what a tenant change changed (settings as
/// `settings.<name>`).
fn changes(before: &Tenant, after: &Tenant) -> Vec<FieldChange> {
    fn flat(t: &Tenant) -> Vec<(String, String)> {
        let text = |v: serde_json::Value| match v {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        let mut out = vec![
            ("display_name".to_owned(), t.display_name.clone()),
            ("portal_url".to_owned(), t.portal_url.clone()),
            (
                "sender_address".to_owned(),
                t.sender_address.as_str().into(),
            ),
            (
                "status".to_owned(),
                text(serde_json::to_value(t.status).unwrap_or_default()),
            ),
        ];
        if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&t.settings) {
            out.extend(
                map.into_iter()
                    .map(|(k, v)| (format!("settings.{k}"), text(v))),
            );
        }
        out
    }
    flat(before)
        .into_iter()
        .zip(flat(after))
        .filter(|((_, a), (_, b))| a != b)
        .map(|((field, before), (_, after))| FieldChange {
            field,
            before: Some(before),
            after: Some(after),
        })
        .collect()
}
