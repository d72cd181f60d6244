//! Account use cases: authorize, validate, then the store. See the module
//! page (`accounts`) for who sees and writes what, and why.

use super::model::{Account, AccountName, AccountStatus, AccountUpsert, MAX_DEPTH, search_prefix};
use super::port::{AccountStore, AccountWrite};
use crate::actor::Actor;
use crate::audit::{AuditEvent, FieldChange};
use crate::cursor;
use crate::error::{Error, FieldError};
use crate::ids::TenantId;
use crate::model::user::AccountNumber;
use crate::ports::{Page, PageRequest, StoreError};
use crate::role::Role;
use std::collections::{BTreeMap, BTreeSet};
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;
use time::OffsetDateTime;

const ACCOUNT: &str = "account";
/// How many descendants one move may carry along: they are rewritten in
/// the same atomic write, and DynamoDB takes 100 items per transaction (two
/// per account there, its number and name entries; the moved account, its
/// parent check and its audit event are four more).
pub const MAX_MOVED_DESCENDANTS: usize = 45;
/// Attempts of an upsert without `If-Match` that lost a race (its parent
/// or a descendant moved between the read and the write).
const ATTEMPTS: usize = 3;
/// Cursor list name of a scoped (non-admin) list; the prefix follows.
const SCOPED_LIST: &str = "accounts-scoped:";

/// A client-credentials caller (the billing sync): no user record, only
/// the scopes its token carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineClient {
    pub tenant_id: TenantId,
    /// The token's subject without `@clients` (the Auth0 application id).
    pub client_id: String,
    /// `accounts:read`: the GET routes.
    pub read: bool,
    /// `accounts:write`: `PUT /accounts/{number}`.
    pub write: bool,
}

/// Who calls an account use case.
#[derive(Debug, Clone, Copy)]
pub enum AccountCaller<'a> {
    User(&'a Actor),
    Machine(&'a MachineClient),
}

impl AccountCaller<'_> {
    pub fn tenant(&self) -> &TenantId {
        match self {
            AccountCaller::User(a) => &a.user.tenant_id,
            AccountCaller::Machine(m) => &m.tenant_id,
        }
    }

    /// The audit trail's actor: a user id, or `client:<id>`.
    fn audit_actor(&self) -> String {
        match self {
            AccountCaller::User(a) => a.user.id.as_str().to_owned(),
            AccountCaller::Machine(m) => format!("client:{}", m.client_id),
        }
    }
}

fn store_err(e: StoreError) -> Error {
    Error::from_store(e, ACCOUNT)
}

/// Admins, and machine clients with the write scope.
pub fn may_write(caller: &AccountCaller<'_>) -> Result<(), Error> {
    let allowed = match caller {
        AccountCaller::User(a) => a.user.role == Role::Admin,
        AccountCaller::Machine(m) => m.write,
    };
    allowed
        .then_some(())
        .ok_or(Error::Forbidden("change customer accounts"))
}

/// `None`: the caller reads the whole directory.
fn whole_directory<'a>(caller: &AccountCaller<'a>) -> Result<Option<&'a Actor>, Error> {
    match caller {
        AccountCaller::User(a) if a.user.role == Role::Admin => Ok(None),
        AccountCaller::User(a) => Ok(Some(a)),
        AccountCaller::Machine(m) if m.read => Ok(None),
        AccountCaller::Machine(_) => Err(Error::Forbidden("read customer accounts")),
    }
}

/// Whether a non-admin user reaches `account`: reps and partners through
/// any account they serve at or above it, customers only on their own.
fn reaches(actor: &Actor, account: &Account) -> bool {
    let mine = &actor.user.customer_accounts;
    match actor.user.role {
        Role::Admin => true,
        Role::SalesRep | Role::Partner => mine.iter().any(|a| account.is_within(a)),
        Role::Customer => mine.contains(&account.number),
    }
}

async fn read(
    store: &dyn AccountStore,
    t: &TenantId,
    n: &AccountNumber,
) -> Result<Option<Account>, Error> {
    store.get_account(t, n).await.map_err(store_err)
}

/// Every page of `descendants` of `number` (stopping once more than `cap`
/// are read).
pub(crate) async fn all_descendants(
    store: &dyn AccountStore,
    tenant: &TenantId,
    number: &AccountNumber,
    cap: usize,
) -> Result<Vec<Account>, Error> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    loop {
        let got = store
            .descendant_accounts(tenant, number, &page)
            .await
            .map_err(store_err)?;
        out.extend(got.items);
        match got.next_cursor {
            Some(c) if out.len() <= cap => page.cursor = Some(c),
            _ => return Ok(out),
        }
    }
}

/// The accounts a user reaches, by number: `None` for an admin (all of
/// them). Sales reps and partners: each account they serve and all its
/// descendants (one query per page per served account); customers: their
/// own. Numbers not (yet) in the directory are left out. (The account
/// list's scope; the delegation rule's is [`reach_of`], numbers only.)
pub async fn served_with_descendants(
    store: &dyn AccountStore,
    actor: &Actor,
) -> Result<Option<BTreeMap<AccountNumber, Account>>, Error> {
    let user = &actor.user;
    if user.role == Role::Admin {
        return Ok(None);
    }
    let mut out = BTreeMap::new();
    for number in &user.customer_accounts {
        if out.contains_key(number) {
            continue;
        }
        let Some(account) = read(store, &user.tenant_id, number).await? else {
            continue;
        };
        out.insert(number.clone(), account);
        if matches!(user.role, Role::SalesRep | Role::Partner) {
            for d in all_descendants(store, &user.tenant_id, number, usize::MAX).await? {
                out.insert(d.number.clone(), d);
            }
        }
    }
    Ok(Some(out))
}

/// Refuses (422, one error per bad number, under `field[i]`) accounts
/// that are not in the tenant's directory or are closed: for invites,
/// edits and bulk rows. One batched read, whatever the number of accounts.
pub async fn check_accounts_open(
    store: &dyn AccountStore,
    tenant: &TenantId,
    field: &str,
    accounts: &[AccountNumber],
) -> Result<(), Error> {
    check_added_accounts_open(store, tenant, field, accounts, &[]).await
}

/// [`check_accounts_open`] for an edit: only the accounts of `accounts`
/// that `kept` (the user's accounts before) does not hold are checked, so
/// a user keeps an account closed after they got it; errors are named by
/// their index in `accounts`. Nothing is read when nothing is added.
pub async fn check_added_accounts_open(
    store: &dyn AccountStore,
    tenant: &TenantId,
    field: &str,
    accounts: &[AccountNumber],
    kept: &[AccountNumber],
) -> Result<(), Error> {
    let added: Vec<(usize, &AccountNumber)> = accounts
        .iter()
        .enumerate()
        .filter(|(_, a)| !kept.contains(a))
        .collect();
    if added.is_empty() {
        return Ok(());
    }
    let numbers: Vec<AccountNumber> = added.iter().map(|(_, a)| (*a).clone()).collect();
    let found: BTreeMap<AccountNumber, Account> = store
        .get_accounts(tenant, &numbers)
        .await
        .map_err(store_err)?
        .into_iter()
        .map(|a| (a.number.clone(), a))
        .collect();
    let errors: Vec<FieldError> = added
        .into_iter()
        .filter_map(|(i, number)| {
            let reason = match found.get(number) {
                None => format!("no customer account {} in this tenant", number.as_str()),
                Some(a) if a.status == AccountStatus::Closed => {
                    format!("customer account {} is closed", number.as_str())
                }
                Some(_) => return None,
            };
            Some(FieldError::new(format!("{field}[{i}]"), reason))
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(errors))
    }
}

/// What the delegation rule counts as served by `user` ([`Actor::reach`]):
/// their own accounts and, for a sales rep or partner, every account below
/// each of them in the directory. Cost: the served accounts' subtrees are
/// read at the same time, each its path by key then one `begins_with`
/// Query per 100 descendants — 2 round trips for a rep however many
/// accounts they serve (while each subtree is under 100); nothing for an
/// admin or a customer (customers do not get child accounts: a customer
/// user belongs to the accounts named on them, and a child account is
/// another customer's business).
pub async fn reach_of(
    store: &dyn AccountStore,
    user: &crate::model::user::User,
) -> Result<BTreeSet<AccountNumber>, Error> {
    let mut reach: BTreeSet<AccountNumber> = user.customer_accounts.iter().cloned().collect();
    if !matches!(user.role, Role::SalesRep | Role::Partner) {
        return Ok(reach);
    }
    let subtrees = join_all(
        reach
            .iter()
            .map(|number| all_descendants(store, &user.tenant_id, number, usize::MAX))
            .collect(),
    )
    .await;
    let mut below = Vec::new();
    for subtree in subtrees {
        below.extend(subtree?.into_iter().map(|d| d.number));
    }
    reach.extend(below);
    Ok(reach)
}

/// Every future, polled together (the domain links no async runtime).
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (future, slot) in futures.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

pub async fn get_account(
    store: &dyn AccountStore,
    caller: AccountCaller<'_>,
    raw_number: &str,
) -> Result<Account, Error> {
    let scope = whole_directory(&caller)?;
    let number =
        AccountNumber::parse("number", raw_number).map_err(|_| Error::NotFound(ACCOUNT))?;
    let account = read(store, caller.tenant(), &number)
        .await?
        .ok_or(Error::NotFound(ACCOUNT))?;
    match scope {
        Some(actor) if !reaches(actor, &account) => Err(Error::NotFound(ACCOUNT)),
        _ => Ok(account),
    }
}

/// Accounts whose number or name starts with `q` (case-insensitive), in
/// the caller's reach, ordered by the matching text then number.
pub async fn list_accounts(
    store: &dyn AccountStore,
    caller: AccountCaller<'_>,
    q: Option<&str>,
    page: &PageRequest,
) -> Result<Page<Account>, Error> {
    let scope = whole_directory(&caller)?;
    let prefix = search_prefix(q).map_err(|e| Error::Validation(vec![e]))?;
    let tenant = caller.tenant();
    let Some(actor) = scope else {
        return store
            .search_accounts(tenant, &prefix, page)
            .await
            .map_err(store_err);
    };
    // A non-admin's reach is a few subtrees: read them (one query per page
    // each), then search and page them here.
    let reach = served_with_descendants(store, actor)
        .await?
        .unwrap_or_default();
    let list = format!("{SCOPED_LIST}{prefix}");
    let after = match &page.cursor {
        Some(c) => Some(cursor::decode(tenant, &list, c).map_err(store_err)?),
        None => None,
    };
    let mut matches: Vec<(String, Account)> = reach
        .into_values()
        .filter_map(|a| {
            let key = format!("{}\u{1}{}", a.search_key(&prefix)?, a.number.as_str());
            Some((key, a))
        })
        .filter(|(key, _)| after.as_ref().is_none_or(|after| key > after))
        .collect();
    matches.sort_by(|a, b| a.0.cmp(&b.0));
    let limit = page.limit as usize;
    let next_cursor =
        (matches.len() > limit).then(|| cursor::encode(tenant, &list, &matches[limit - 1].0));
    matches.truncate(limit);
    Ok(Page {
        items: matches.into_iter().map(|(_, a)| a).collect(),
        next_cursor,
    })
}

/// The parsed body of an upsert.
struct Wanted {
    name: AccountName,
    parent: Option<AccountNumber>,
    status: Option<AccountStatus>,
}

fn parse_upsert(raw_number: &str, input: &AccountUpsert) -> Result<(AccountNumber, Wanted), Error> {
    let mut errors = Vec::new();
    let number = AccountNumber::parse("number", raw_number)
        .map_err(|e| errors.push(e))
        .ok();
    let name = AccountName::parse("name", &input.name)
        .map_err(|e| errors.push(e))
        .ok();
    let parent = match input.parent.as_deref() {
        None => Some(None),
        Some(p) => AccountNumber::parse("parent", p)
            .map(Some)
            .map_err(|e| errors.push(e))
            .ok(),
    };
    let status = match input.status.as_deref() {
        None => Some(None),
        Some(s) => AccountStatus::parse("status", s)
            .map(Some)
            .map_err(|e| errors.push(e))
            .ok(),
    };
    match (number, name, parent, status) {
        (Some(number), Some(name), Some(parent), Some(status)) => Ok((
            number,
            Wanted {
                name,
                parent,
                status,
            },
        )),
        _ => Err(Error::Validation(errors)),
    }
}

fn parent_error(reason: String) -> Error {
    Error::Validation(vec![FieldError::new("parent", reason)])
}

/// Creates or replaces the account `number` (closing it is `status:
/// closed`). With `if_match` the account must exist at that version;
/// without, the write applies to whatever is current. Sending what is
/// stored already changes nothing (no new version, no audit): a sync job
/// may resend its whole directory. Answers the account and whether it was
/// created.
pub async fn upsert_account(
    store: &dyn AccountStore,
    caller: AccountCaller<'_>,
    raw_number: &str,
    if_match: Option<u64>,
    input: &AccountUpsert,
    request_id: &str,
    now: OffsetDateTime,
) -> Result<(Account, bool), Error> {
    may_write(&caller)?;
    let (number, wanted) = parse_upsert(raw_number, input)?;
    let tenant = caller.tenant().clone();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let current = read(store, &tenant, &number).await?;
        if let Some(expected) = if_match
            && current.as_ref().is_none_or(|c| c.version != expected)
        {
            return Err(Error::PreconditionFailed(ACCOUNT));
        }
        let parent = match &wanted.parent {
            None => None,
            Some(p) => Some(checked_parent(store, &tenant, &number, p).await?),
        };
        let ancestors = parent.as_ref().map_or_else(Vec::new, |p| {
            let mut a = p.ancestors.clone();
            a.push(p.number.clone());
            a
        });
        let next = Account {
            tenant_id: tenant.clone(),
            number: number.clone(),
            name: wanted.name.clone(),
            parent: wanted.parent.clone(),
            ancestors,
            status: wanted
                .status
                .or(current.as_ref().map(|c| c.status))
                .unwrap_or(AccountStatus::Active),
            version: current.as_ref().map_or(1, |c| c.version + 1),
            created_at: current.as_ref().map_or(now, |c| c.created_at),
            updated_at: now,
        };
        if let Some(c) = &current
            && c.name == next.name
            && c.parent == next.parent
            && c.status == next.status
            && c.ancestors == next.ancestors
        {
            return Ok((c.clone(), false));
        }
        let moved = match &current {
            Some(c) if c.ancestors != next.ancestors => moved_subtree(store, c, &next).await?,
            _ => Vec::new(),
        };
        let audit = [audit_event(
            &caller,
            current.as_ref(),
            &next,
            request_id,
            now,
        )];
        let write = AccountWrite {
            previous: current.as_ref(),
            next: &next,
            parent: parent.as_ref(),
            moved: &moved,
            audit: &audit,
        };
        match store.write_account(write).await {
            Ok(()) => return Ok((next, current.is_none())),
            // Lost a race (the account, its parent or a descendant changed
            // since the read): decide again from fresh reads, unless the
            // caller pinned a version.
            Err(StoreError::VersionMismatch | StoreError::AlreadyExists | StoreError::NotFound)
                if if_match.is_none() && attempt < ATTEMPTS => {}
            Err(StoreError::VersionMismatch | StoreError::NotFound) if if_match.is_some() => {
                return Err(Error::PreconditionFailed(ACCOUNT));
            }
            Err(StoreError::VersionMismatch | StoreError::AlreadyExists | StoreError::NotFound) => {
                return Err(Error::Conflict {
                    code: "account_busy",
                    detail:
                        "the account or its hierarchy kept changing while this was applied; retry"
                            .into(),
                });
            }
            Err(e) => return Err(store_err(e)),
        }
    }
}

/// The parent `p` of `number`, if it may be: in the tenant, not the
/// account itself nor one of its descendants, not too deep.
async fn checked_parent(
    store: &dyn AccountStore,
    tenant: &TenantId,
    number: &AccountNumber,
    p: &AccountNumber,
) -> Result<Account, Error> {
    if p == number {
        return Err(parent_error("an account cannot be its own parent".into()));
    }
    let parent = read(store, tenant, p).await?.ok_or_else(|| {
        parent_error(format!("no customer account {} in this tenant", p.as_str()))
    })?;
    if parent.is_within(number) {
        return Err(parent_error(format!(
            "{} is below {} in the hierarchy: making it the parent would make a cycle",
            p.as_str(),
            number.as_str()
        )));
    }
    if parent.ancestors.len() + 2 > MAX_DEPTH {
        return Err(parent_error(format!(
            "the hierarchy would be deeper than {MAX_DEPTH} levels"
        )));
    }
    Ok(parent)
}

/// `current`'s descendants re-rooted under `next`'s new ancestors.
async fn moved_subtree(
    store: &dyn AccountStore,
    current: &Account,
    next: &Account,
) -> Result<Vec<Account>, Error> {
    let below = all_descendants(
        store,
        &current.tenant_id,
        &current.number,
        MAX_MOVED_DESCENDANTS,
    )
    .await?;
    if below.len() > MAX_MOVED_DESCENDANTS {
        return Err(parent_error(format!(
            "moving an account with more than {MAX_MOVED_DESCENDANTS} accounts below it is not supported; move its children first"
        )));
    }
    let keep = current.ancestors.len();
    below
        .into_iter()
        .map(|mut d| {
            let mut ancestors = next.ancestors.clone();
            ancestors.extend(d.ancestors.drain(keep.min(d.ancestors.len())..));
            if ancestors.len() + 1 > MAX_DEPTH {
                return Err(parent_error(format!(
                    "the hierarchy would be deeper than {MAX_DEPTH} levels"
                )));
            }
            d.ancestors = ancestors;
            Ok(d)
        })
        .collect()
}

fn audit_event(
    caller: &AccountCaller<'_>,
    previous: Option<&Account>,
    next: &Account,
    request_id: &str,
    now: OffsetDateTime,
) -> AuditEvent {
    let action = match previous {
        None => "account.created",
        Some(p) if p.status != next.status && next.status == AccountStatus::Closed => {
            "account.closed"
        }
        Some(_) => "account.updated",
    };
    let change = |field: &str, before: Option<&str>, after: Option<&str>| FieldChange {
        field: field.to_owned(),
        before: before.map(str::to_owned),
        after: after.map(str::to_owned),
    };
    let mut changes = vec![change(
        "account",
        previous.map(|p| p.number.as_str()),
        Some(next.number.as_str()),
    )];
    let before_name = previous.map(|p| p.name.as_str());
    if before_name != Some(next.name.as_str()) {
        changes.push(change("name", before_name, Some(next.name.as_str())));
    }
    let before_parent = previous.and_then(|p| p.parent.as_ref().map(AccountNumber::as_str));
    let after_parent = next.parent.as_ref().map(AccountNumber::as_str);
    if previous.is_none() || before_parent != after_parent {
        changes.push(change("parent", before_parent, after_parent));
    }
    let before_status = previous.map(|p| p.status.as_str());
    if before_status != Some(next.status.as_str()) {
        changes.push(change("status", before_status, Some(next.status.as_str())));
    }
    AuditEvent::new(
        &next.tenant_id,
        caller.audit_actor(),
        action,
        None,
        request_id,
        now,
    )
    .with_changes(changes)
}
