//! Who is acting: the signed-in user behind a token, or the user a job
//! runs for, checked as on every request.

use crate::context::{Actor, Ctx};
use crate::error::Error;
use crate::ids::TenantId;
use crate::model::user::{User, UserId};
use crate::users::access::store_err;

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
    super::signed_in::ensure_active(&user)?;
    super::signed_in::loaded_actor(ctx, user).await
}
