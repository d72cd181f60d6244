//! Reading users: one user, a page of them, audit trails, and where a
//! user's login stands with the identity provider. Nothing here writes.

use crate::accounts::use_cases::all_descendants;
use crate::audit::AuditEvent;
use crate::context::{Actor, Ctx};
use crate::error::Error;
use crate::idp_work::IdpWorkItem;
use crate::model::user::{AccountNumber, User, UserId, UserQuery};
use crate::ports::{Page, PageRequest};
use crate::role::Role;
use crate::users::access::{USER, load, store_err};
use crate::users::policy::{UserAction, authorize_user, list_scope};
use crate::users::recording::rfc3339;
use crate::users::signed_in::join;
use std::collections::BTreeSet;

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
    Ok(sync_state(ctx, &user, record))
}

/// Where `user`'s login stands, from their owed-work record.
fn sync_state(ctx: &Ctx<'_>, user: &User, record: Option<IdpWorkItem>) -> LoginSync {
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
    LoginSync {
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
    }
}

/// One user as `GET /users/{id}` shows them: to an admin with their login's
/// sync state, read at the same time as the user (one round trip for both);
/// to anyone else without it (it names the login and the provider's
/// errors).
pub async fn get_user_with_login(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &UserId,
) -> Result<(User, Option<LoginSync>), Error> {
    if actor.user.role != Role::Admin {
        return Ok((get_user(ctx, actor, id).await?, None));
    }
    let tenant = &actor.user.tenant_id;
    let (user, record) = join(load(ctx, tenant, id), ctx.users.idp_work_of(tenant, id)).await;
    let user = user?;
    authorize_user(actor, UserAction::View, &user)?;
    let sync = sync_state(ctx, &user, record.map_err(store_err)?);
    Ok((user, Some(sync)))
}

/// One of a user's customer accounts as `GET /users/{id}` shows it: its
/// name and status from the directory, so an admin sees at once that a
/// user sits on a closed account (they keep working; their status is the
/// admins' call).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct UserAccount {
    pub number: String,
    /// The directory's name; null when unknown or not shown.
    pub name: Option<String>,
    /// `active` or `closed`; `unknown` for a number the directory does not
    /// hold (put on the user before the directory existed); null for an
    /// account outside a non-admin caller's reach (what the directory
    /// says about it is not theirs to read).
    pub status: Option<&'static str>,
}

/// `user`'s accounts with their names and statuses, for `actor` (who may
/// see `user`): one batched read of the directory, nothing when the user
/// has no accounts. Lists do not carry this: a page of 100 users would
/// read up to 2,500 accounts (one `BatchGetItem` per 100) on every page of
/// every list, to repeat what a dropdown or `GET /accounts` shows once.
pub async fn user_accounts(
    ctx: &Ctx<'_>,
    actor: &Actor,
    user: &User,
) -> Result<Vec<UserAccount>, Error> {
    let admin = actor.user.role == Role::Admin;
    let shown: Vec<_> = user
        .customer_accounts
        .iter()
        .filter(|a| admin || actor.serves(a))
        .cloned()
        .collect();
    let found = if shown.is_empty() {
        Vec::new()
    } else {
        ctx.accounts
            .get_accounts(&user.tenant_id, &shown)
            .await
            .map_err(|e| Error::from_store(e, "account"))?
    };
    Ok(user
        .customer_accounts
        .iter()
        .map(|number| {
            let account = found.iter().find(|a| &a.number == number);
            let status = match account {
                Some(a) => Some(a.status.as_str()),
                None if shown.contains(number) => Some("unknown"),
                None => None,
            };
            UserAccount {
                number: number.as_str().to_owned(),
                name: account.map(|a| a.name.as_str().to_owned()),
                status,
            }
        })
        .collect())
}

pub async fn get_user(ctx: &Ctx<'_>, actor: &Actor, id: &UserId) -> Result<User, Error> {
    let user = load(ctx, &actor.user.tenant_id, id).await?;
    authorize_user(actor, UserAction::View, &user)?;
    Ok(user)
}

/// At most this many accounts in one user list (`under=` or a non-admin's
/// whole reach). Each account is one Query per page on DynamoDB, all sent
/// at once and merged: 50 Queries of at most 101 items is about 50 × 13
/// read units and one round trip per page, which keeps a page well inside
/// the function's time and memory, and under DynamoDB's per-partition and
/// the SDK client's connection limits (a rep serving hundreds of accounts
/// would otherwise fan out hundreds of Queries on every page). Past it the
/// caller narrows the list with `account` or `under`.
pub const LIST_ACCOUNTS_BOUND: usize = 50;

/// A page of the users the actor may see. `under`: users of that account
/// and of every account below it (an admin may name any account; an
/// unknown one is an empty list, as `account=` is). Non-admins list
/// accounts of their reach only (a rep or partner: the accounts they serve
/// and everything below them; a customer: their own accounts): `account`
/// one of them, `under` one of them with what is below it (within the
/// reach), neither their whole reach — at most [`LIST_ACCOUNTS_BOUND`]
/// accounts in one list, else 422. They see only customer users.
///
/// How a subtree is listed without a scan: the subtree's numbers come from
/// the account directory (one key range per 100 descendants, by ancestor
/// path), then each account's users are one index query (its membership
/// partition), all sent at once and merged in name order by the store (see
/// `UserRecords::list_users`). Keying memberships by the account's path
/// instead would make a subtree one range, but every member of a subtree
/// would be rewritten whenever an account moves; the merge costs one Query
/// per account per page, hence the bound.
pub async fn list_users(
    ctx: &Ctx<'_>,
    actor: &Actor,
    mut query: UserQuery,
    under: Option<AccountNumber>,
    page: &PageRequest,
) -> Result<Page<User>, Error> {
    let scope = list_scope(actor)?;
    if query.account.is_some() && under.is_some() {
        return Err(Error::invalid(
            "under",
            "give `account` or `under`, not both",
        ));
    }
    if let Some(top) = under {
        if scope.is_some_and(|mine| !mine.contains(&top)) {
            return Err(Error::Forbidden("list users of accounts you do not serve"));
        }
        let below = all_descendants(
            ctx.accounts,
            &actor.user.tenant_id,
            &top,
            LIST_ACCOUNTS_BOUND,
        )
        .await?;
        let mut set: BTreeSet<AccountNumber> = below.into_iter().map(|a| a.number).collect();
        set.insert(top);
        // A customer reaches their own accounts, not what is below them.
        if let Some(mine) = scope {
            set.retain(|a| mine.contains(a));
        }
        query.accounts = Some(bounded(set, "under")?);
    } else if let Some(mine) = scope {
        match &query.account {
            Some(a) if mine.contains(a) => {}
            Some(_) => return Err(Error::Forbidden("list users of accounts you do not serve")),
            None => query.accounts = Some(bounded(mine.clone(), "account")?),
        }
    }
    if scope.is_some() {
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

/// `set` when it is within [`LIST_ACCOUNTS_BOUND`], else a 422 on `field`.
fn bounded(set: BTreeSet<AccountNumber>, field: &str) -> Result<BTreeSet<AccountNumber>, Error> {
    if set.len() > LIST_ACCOUNTS_BOUND {
        return Err(Error::invalid(
            field,
            format!(
                "this list would cover more than {LIST_ACCOUNTS_BOUND} accounts: \
                 choose one with `account`, or a smaller subtree with `under`"
            ),
        ));
    }
    Ok(set)
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
