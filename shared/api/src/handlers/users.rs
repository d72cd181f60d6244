use super::{empty, json};
use crate::problem::Problem;
use crate::request::{etag, if_match, json_body, page_request, query};
use crate::views::{PageView, UserDetailView, UserView};
use http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use peak_domain::Actor;
use peak_domain::FieldError;
use peak_domain::ids::ProfileId;
use peak_domain::model::user::{AccountNumber, User, UserId, UserQuery, UserStatus};
use peak_domain::role::Role;
use peak_domain::users::{self, Ctx, InviteRequest, UserPatch};

/// A path id that is not a ULID cannot name any user.
pub(crate) fn user_id(raw: Option<&str>) -> Result<UserId, Problem> {
    raw.and_then(UserId::parse)
        .ok_or_else(|| Problem::from(peak_domain::Error::NotFound("user")))
}

pub(crate) fn user_response(status: StatusCode, u: &User) -> Response<Body> {
    let mut resp = json(status, &UserView::from(u));
    resp.headers_mut().insert(header::ETAG, etag(u.version));
    resp
}

/// `?status=&role=&profile=&account=&under=&q=&email=&limit=&cursor=`;
/// `under` apart (the domain expands it into accounts).
fn user_query(req: &Request) -> Result<(UserQuery, Option<AccountNumber>), Problem> {
    let q = query(req);
    let mut errors = Vec::new();
    let mut out = UserQuery::default();
    if let Some(s) = q.get("status") {
        out.status = UserStatus::parse(s);
        if out.status.is_none() {
            errors.push(FieldError::new(
                "status",
                "must be one of: invited, active, suspended",
            ));
        }
    }
    if let Some(r) = q.get("role") {
        out.role = Role::parse(r);
        if out.role.is_none() {
            errors.push(FieldError::new(
                "role",
                "must be one of: admin, sales_rep, partner, customer",
            ));
        }
    }
    if let Some(p) = q.get("profile") {
        out.profile = ProfileId::parse(p);
        if out.profile.is_none() {
            errors.push(FieldError::new("profile", "is not a profile id"));
        }
    }
    if let Some(a) = q.get("account") {
        out.account = AccountNumber::parse("account", a)
            .map_err(|e| errors.push(e))
            .ok();
    }
    let under = q.get("under").and_then(|a| {
        AccountNumber::parse("under", a)
            .map_err(|e| errors.push(e))
            .ok()
    });
    let prefix = |name: &str, errors: &mut Vec<FieldError>| {
        let v = q.get(name)?.trim().to_lowercase();
        if v.is_empty() || v.chars().count() > 100 {
            errors.push(FieldError::new(name, "must be 1 to 100 characters"));
            return None;
        }
        Some(v)
    };
    out.name_prefix = prefix("q", &mut errors);
    out.email_prefix = prefix("email", &mut errors);
    if errors.is_empty() {
        Ok((out, under))
    } else {
        Err(Problem::invalid_fields(errors))
    }
}

pub async fn user_list(
    ctx: &Ctx<'_>,
    actor: &Actor,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let (q, under) = user_query(req)?;
    let page = page_request(req)?;
    let result = users::list_users(ctx, actor, q, under, &page).await?;
    Ok(json(
        StatusCode::OK,
        &PageView {
            items: result.items.iter().map(UserView::from).collect(),
            next_cursor: result.next_cursor,
        },
    ))
}

pub async fn user_invite(
    ctx: &Ctx<'_>,
    actor: &Actor,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let input: InviteRequest = json_body(req)?;
    let user = users::invite(ctx, actor, input).await?;
    let mut resp = user_response(StatusCode::CREATED, &user);
    if let Ok(loc) = HeaderValue::from_str(&format!("/users/{}", user.id)) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}

pub async fn user_get(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: Option<&str>,
) -> Result<Response<Body>, Problem> {
    let (user, login) = users::get_user_with_login(ctx, actor, &user_id(id)?).await?;
    let accounts = users::user_accounts(ctx, actor, &user).await?;
    let mut resp = json(
        StatusCode::OK,
        &UserDetailView {
            user: UserView::from(&user),
            login,
            accounts,
        },
    );
    resp.headers_mut().insert(header::ETAG, etag(user.version));
    Ok(resp)
}

pub async fn user_update(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: Option<&str>,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let id = user_id(id)?;
    let patch: UserPatch = json_body(req)?;
    let user = users::edit_user(ctx, actor, &id, if_match(req).as_version(), patch).await?;
    Ok(user_response(StatusCode::OK, &user))
}

pub async fn user_delete(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: Option<&str>,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    users::delete_user(ctx, actor, &user_id(id)?, if_match(req).as_version()).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn user_suspend(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: Option<&str>,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let user = users::suspend_user(ctx, actor, &user_id(id)?, if_match(req).as_version()).await?;
    Ok(user_response(StatusCode::OK, &user))
}

pub async fn user_enable(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: Option<&str>,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let user = users::enable_user(ctx, actor, &user_id(id)?, if_match(req).as_version()).await?;
    Ok(user_response(StatusCode::OK, &user))
}

pub async fn user_password_reset(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: Option<&str>,
) -> Result<Response<Body>, Problem> {
    users::reset_password(ctx, actor, &user_id(id)?).await?;
    Ok(json(
        StatusCode::ACCEPTED,
        &serde_json::json!({"status": "queued"}),
    ))
}

pub async fn invitation_resend(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: Option<&str>,
) -> Result<Response<Body>, Problem> {
    let user = users::resend_invitation(ctx, actor, &user_id(id)?).await?;
    Ok(user_response(StatusCode::OK, &user))
}

pub async fn invitation_revoke(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: Option<&str>,
) -> Result<Response<Body>, Problem> {
    let user = users::revoke_invitation(ctx, actor, &user_id(id)?).await?;
    Ok(user_response(StatusCode::OK, &user))
}

pub async fn user_audit(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: Option<&str>,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let id = user_id(id)?;
    let page = page_request(req)?;
    let events = users::list_audit(ctx, actor, Some(&id), &page).await?;
    Ok(json(
        StatusCode::OK,
        &PageView {
            items: events.items,
            next_cursor: events.next_cursor,
        },
    ))
}

pub async fn tenant_audit(
    ctx: &Ctx<'_>,
    actor: &Actor,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let page = page_request(req)?;
    let events = users::list_audit(ctx, actor, None, &page).await?;
    Ok(json(
        StatusCode::OK,
        &PageView {
            items: events.items,
            next_cursor: events.next_cursor,
        },
    ))
}

/// `GET /users/{id}/identity`: the user's login sync state.
pub async fn user_identity(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: Option<&str>,
) -> Result<Response<Body>, Problem> {
    let sync = users::login_sync(ctx, actor, &user_id(id)?).await?;
    Ok(json(StatusCode::OK, &sync))
}

crate::dispatch::routes! {
    signed_in UserList |c, a| user_list(&c.ctx(), &a, &c.req).await;
    signed_in UserInvite |c, a| user_invite(&c.ctx(), &a, &c.req).await;
    signed_in UserGet |c, a| user_get(&c.ctx(), &a, c.id()).await;
    signed_in UserUpdate |c, a| user_update(&c.ctx(), &a, c.id(), &c.req).await;
    signed_in UserDelete |c, a| user_delete(&c.ctx(), &a, c.id(), &c.req).await;
    signed_in UserSuspend |c, a| user_suspend(&c.ctx(), &a, c.id(), &c.req).await;
    signed_in UserEnable |c, a| user_enable(&c.ctx(), &a, c.id(), &c.req).await;
    signed_in UserPasswordReset |c, a| user_password_reset(&c.ctx(), &a, c.id()).await;
    signed_in InvitationResend |c, a| invitation_resend(&c.ctx(), &a, c.id()).await;
    signed_in InvitationRevoke |c, a| invitation_revoke(&c.ctx(), &a, c.id()).await;
    signed_in UserIdentity |c, a| user_identity(&c.ctx(), &a, c.id()).await;
    signed_in UserAudit |c, a| user_audit(&c.ctx(), &a, c.id(), &c.req).await;
    signed_in TenantAudit |c, a| tenant_audit(&c.ctx(), &a, &c.req).await;
}
