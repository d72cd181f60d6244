//! [`UserRecords`] on the single table: the write (see `user_write.rs`), the
//! lookups through the guards, and the lists. See docs/dynamodb.md for every
//! access pattern and src/user_item.rs for the item layout.

use crate::error::{LOOKUP_ATTEMPTS, WRITE_ATTEMPTS, backoff, malformed, sdk};
use crate::item::{Item, PK, SK, get_s, s};
use crate::user_item::{self as ui, attr, index};
use crate::user_write::{Verdict, plan_user_write};
use crate::{DynamoStore, build_error, names};
use async_trait::async_trait;
use futures_util::future::try_join_all;
use peak_domain::cursor;
use peak_domain::ids::TenantId;
use peak_domain::model::user::{AccountNumber, Email, User, UserId, UserQuery};
use peak_domain::ports::{Page, PageRequest, StoreError, UserRecords, UserWrite};
use std::collections::{BTreeSet, HashMap};
use time::OffsetDateTime;

/// The list name user cursors are issued for.
const USERS_LIST: &str = "users";
/// Cursor tags: which order the sort key in a user cursor belongs to.
const BY_NAME: &str = "name:";
const BY_EMAIL: &str = "email:";
/// Items read per request when a filter expression may drop some.
const FILTERED_BATCH: usize = 100;
/// At most this many users are read (evaluated by the filter expression)
/// for one page of a filtered list, whatever matched. Without a bound, a
/// filter the key cannot serve (`role=…&status=…` in a tenant of a million
/// users where few match) reads the tenant 100 items at a time until the
/// page fills: thousands of read units per request, past the function's
/// timeout into a bare 5xx, and two such searches saturate an index
/// partition. With it, a page may come back short (even empty) with a
/// `next_cursor` that resumes where the reading stopped; the client asks
/// again (OpenAPI and README say so). 1,000 items is 10 Queries of 100, about
/// 125 read units (≈1 KB items, eventually consistent) and tens of
/// milliseconds per request.
pub(crate) const FILTERED_READ_BOUND: usize = 1_000;

/// Lowercased, and `None` when empty (an empty prefix filters nothing).
fn prefix(raw: Option<&String>) -> Option<String> {
    raw.map(|p| p.to_lowercase()).filter(|p| !p.is_empty())
}

/// Where a user list reads from and what is left to filter.
struct ListPlan {
    /// `None`: the table itself (account memberships).
    index: Option<&'static str>,
    pk_attr: &'static str,
    sk_attr: &'static str,
    pk: String,
    by_email: bool,
    /// `begins_with` on the sort key.
    key_prefix: Option<String>,
    filter: Option<String>,
    names: HashMap<String, String>,
    values: Item,
}

/// The sources a user list reads, merged in sort order: one per account
/// when the list covers a set of accounts (each account's memberships are
/// its own partition, all sorted by the same name key), else one (see
/// [`list_plan`]). In email order a set of accounts is a filter on the one
/// email-ordered source (memberships are not in email order). Empty when
/// nothing can match.
fn list_plans(tenant: &TenantId, q: &UserQuery) -> Vec<ListPlan> {
    match q.account_set() {
        Some(set) if q.email_prefix.is_none() => set
            .iter()
            .filter_map(|a| list_plan(tenant, q, Some(a), None))
            .collect(),
        set => list_plan(tenant, q, None, set.as_ref())
            .into_iter()
            .collect(),
    }
}

/// Picks the most selective source for `q`: `source`'s memberships, then
/// the profile, role and status indexes, then all users by name (GSI1); any
/// email prefix needs the email order (GSI2). The name prefix narrows the
/// key of every name-ordered source; the other filters (`any_of`: users on
/// one of these accounts) become a filter expression. `None` when nothing
/// can match.
fn list_plan(
    tenant: &TenantId,
    q: &UserQuery,
    source: Option<&AccountNumber>,
    any_of: Option<&BTreeSet<AccountNumber>>,
) -> Option<ListPlan> {
    if any_of.is_some_and(BTreeSet::is_empty) {
        return None;
    }
    let name_prefix = prefix(q.name_prefix.as_ref());
    let email_prefix = prefix(q.email_prefix.as_ref());
    // Stored keys hold no control characters (and KEY_SEP is one).
    let impossible =
        |p: &Option<String>| p.as_ref().is_some_and(|p| p.chars().any(char::is_control));
    if impossible(&name_prefix) || impossible(&email_prefix) {
        return None;
    }
    let (mut status, mut role, mut profile, mut account) =
        (q.status, q.role, q.profile.as_ref(), source);
    let mut table_source = false;
    let (index, pk) = if let Some(a) = account.take().filter(|_| q.email_prefix.is_none()) {
        table_source = true;
        (("", PK, SK), ui::account_pk(tenant, a))
    } else if q.email_prefix.is_some() {
        (index::GSI2, ui::users_pk(tenant))
    } else if let Some(p) = profile.take() {
        (index::GSI5, ui::profile_users_pk(tenant, p))
    } else if let Some(r) = role.take() {
        (index::GSI4, ui::role_pk(tenant, r))
    } else if let Some(st) = status.take() {
        (index::GSI3, ui::status_pk(tenant, st))
    } else {
        (index::GSI1, ui::users_pk(tenant))
    };
    let by_email = q.email_prefix.is_some();
    let (key_prefix, mut name_filter) = if by_email {
        (email_prefix, name_prefix)
    } else {
        (name_prefix, None)
    };

    let mut filters = Vec::new();
    let mut expr_names = HashMap::new();
    let mut values = Item::new();
    let mut add = |expression: String, attr_name: &str, placeholder: &str, v| {
        filters.push(expression);
        expr_names.extend(names(&[attr_name]));
        values.insert(placeholder.to_owned(), v);
    };
    if let Some(st) = status {
        add(
            format!("#{} = :status", attr::STATUS),
            attr::STATUS,
            ":status",
            s(st.as_str()),
        );
    }
    if let Some(r) = role {
        add(
            format!("#{} = :role", attr::ROLE),
            attr::ROLE,
            ":role",
            s(r.as_str()),
        );
    }
    if let Some(p) = profile {
        add(
            format!("#{} = :profile", attr::PROFILE_ID),
            attr::PROFILE_ID,
            ":profile",
            s(p.as_str()),
        );
    }
    let any_of: Vec<&AccountNumber> = account
        .into_iter()
        .chain(any_of.into_iter().flatten())
        .collect();
    if let [a] = any_of[..] {
        add(
            format!("contains(#{}, :account)", attr::CUSTOMER_ACCOUNTS),
            attr::CUSTOMER_ACCOUNTS,
            ":account",
            s(a.as_str()),
        );
    }
    if let Some(p) = name_filter.take() {
        add(
            format!("begins_with(#{}, :name_prefix)", attr::NAME_KEY),
            attr::NAME_KEY,
            ":name_prefix",
            s(p),
        );
    }
    if any_of.len() > 1 {
        let mut any = Vec::new();
        for (i, a) in any_of.iter().enumerate() {
            any.push(format!(
                "contains(#{}, :account{i})",
                attr::CUSTOMER_ACCOUNTS
            ));
            values.insert(format!(":account{i}"), s(a.as_str()));
        }
        expr_names.extend(names(&[attr::CUSTOMER_ACCOUNTS]));
        filters.push(format!("({})", any.join(" OR ")));
    }
    Some(ListPlan {
        index: (!table_source).then_some(index.0),
        pk_attr: index.1,
        sk_attr: index.2,
        pk,
        by_email,
        key_prefix,
        filter: (!filters.is_empty()).then(|| filters.join(" AND ")),
        names: expr_names,
        values,
    })
}

impl ListPlan {
    fn tag(&self) -> &'static str {
        if self.by_email { BY_EMAIL } else { BY_NAME }
    }

    /// The key to resume after, from a cursor of this list and order.
    fn start_key(&self, tenant: &TenantId, raw: &str) -> Result<Item, StoreError> {
        let after = cursor::decode(tenant, USERS_LIST, raw)?;
        let sk = after
            .strip_prefix(self.tag())
            .ok_or(StoreError::InvalidCursor)?;
        let (_, id) = ui::split_sort_key(sk).ok_or(StoreError::InvalidCursor)?;
        // A start key outside the key condition is refused by DynamoDB.
        if self
            .key_prefix
            .as_ref()
            .is_some_and(|p| !sk.starts_with(p.as_str()))
        {
            return Err(StoreError::InvalidCursor);
        }
        let mut key = Item::from([
            (self.pk_attr.to_owned(), s(&self.pk)),
            (self.sk_attr.to_owned(), s(sk)),
        ]);
        if self.index.is_some() {
            key.extend(ui::user_key(tenant, &id));
        }
        Ok(key)
    }
}

impl DynamoStore {
    /// The user a guard points to, if it still holds the guarded value
    /// (`holds`). Retries when the guard moves between the two reads.
    pub(crate) async fn find_by_guard(
        &self,
        op: &str,
        guard_key: Item,
        tenant: Option<&TenantId>,
        holds: impl Fn(&User) -> bool + Send + Sync,
    ) -> Result<Option<User>, StoreError> {
        for _ in 0..LOOKUP_ATTEMPTS {
            let Some(guard) = self.get_item(op, guard_key.clone()).await? else {
                return Ok(None);
            };
            let guard_tenant = match tenant {
                Some(t) => t.clone(),
                None => TenantId::parse(get_s(&guard, attr::TENANT_ID)?)
                    .ok_or_else(|| malformed("invalid `tenant_id`"))?,
            };
            let id = UserId::parse(get_s(&guard, attr::USER_ID)?)
                .ok_or_else(|| malformed("invalid `user_id`"))?;
            if let Some(user) = self.read_user(op, &guard_tenant, &id).await?
                && holds(&user)
            {
                return Ok(Some(user));
            }
        }
        Ok(None)
    }

    /// The user and their last sign-in: one consistent query of the user's
    /// partition (the user item and the small sign-in item).
    pub(crate) async fn read_user(
        &self,
        op: &str,
        tenant: &TenantId,
        id: &UserId,
    ) -> Result<Option<User>, StoreError> {
        let out = self
            .partition_query(ui::user_pk(tenant, id), None, None)
            .send()
            .await
            .map_err(|e| sdk(op, &e))?;
        let mut user = None;
        let mut last_login = None;
        for item in out.items() {
            match get_s(item, "SK")? {
                ui::USER_SK => user = Some(ui::user_from_item(item)?),
                ui::LOGIN_SK => last_login = ui::login_from_item(item)?,
                _ => {}
            }
        }
        Ok(user.map(|mut u| {
            u.last_login_at = last_login;
            u
        }))
    }

    /// Fills in the last sign-ins of a page of users (one BatchGetItem of
    /// their sign-in items).
    pub(crate) async fn with_last_logins(&self, users: &mut [User]) -> Result<(), StoreError> {
        const OP: &str = "read last sign-ins";
        if users.is_empty() {
            return Ok(());
        }
        let mut keys: Vec<Item> = users
            .iter()
            .map(|u| ui::login_key(&u.tenant_id, &u.id))
            .collect();
        let mut found: HashMap<String, OffsetDateTime> = HashMap::new();
        for attempt in 0..WRITE_ATTEMPTS {
            if keys.is_empty() {
                break;
            }
            let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut keys)))
                .consistent_read(true)
                .build()
                .map_err(build_error)?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| sdk(OP, &e))?;
            for item in out
                .responses()
                .and_then(|r| r.get(&self.table))
                .into_iter()
                .flatten()
            {
                if let Some(at) = ui::login_from_item(item)? {
                    found.insert(get_s(item, "PK")?.to_owned(), at);
                }
            }
            keys = out
                .unprocessed_keys()
                .and_then(|u| u.get(&self.table))
                .map(|k| k.keys().to_vec())
                .unwrap_or_default();
            if !keys.is_empty() {
                tokio::time::sleep(backoff(attempt)).await;
            }
        }
        if !keys.is_empty() {
            return Err(StoreError::Unavailable(format!(
                "{OP}: {} keys left unprocessed",
                keys.len()
            )));
        }
        for u in users {
            u.last_login_at = found.get(&ui::user_pk(&u.tenant_id, &u.id)).copied();
        }
        Ok(())
    }
}

#[async_trait]
impl UserRecords for DynamoStore {
    async fn write_user(&self, write: UserWrite<'_>) -> Result<(), StoreError> {
        let plan = plan_user_write(&self.table, &write)?;
        if let (Some(prev), None) = (write.previous, write.next) {
            // Delete: refuse a stale or missing user before touching its
            // audit trail, then remove personal data from it. A concurrent
            // write that adds events bumps the version, so the delete
            // below fails rather than leave them behind; a retried delete
            // scrubs again.
            if let Verdict::Refused(e) = self.user_stale_or_missing(prev, prev.version).await? {
                return Err(e);
            }
            self.scrub_audit(&prev.tenant_id, &prev.id).await?;
        }
        self.run_user_write(&write, &plan).await
    }

    async fn get_user(&self, tenant: &TenantId, id: &UserId) -> Result<Option<User>, StoreError> {
        self.read_user("get user", tenant, id).await
    }

    async fn find_user_by_email(
        &self,
        tenant: &TenantId,
        email: &Email,
    ) -> Result<Option<User>, StoreError> {
        let normalized = email.normalized();
        let key = ui::email_guard_key(tenant, &normalized);
        self.find_by_guard("find user by email", key, Some(tenant), |u| {
            u.email.normalized() == normalized
        })
        .await
    }

    async fn find_user_by_subject(
        &self,
        tenant: &TenantId,
        subject: &str,
    ) -> Result<Option<User>, StoreError> {
        if subject.is_empty() {
            return Ok(None);
        }
        let key = ui::subject_guard_key(tenant, subject);
        self.find_by_guard("find user by subject", key, Some(tenant), |u| {
            u.idp_subject.as_deref() == Some(subject)
        })
        .await
    }

    async fn find_user_by_invitation(&self, token_hash: &str) -> Result<Option<User>, StoreError> {
        if token_hash.is_empty() {
            return Ok(None);
        }
        let key = ui::invitation_guard_key(token_hash);
        self.find_by_guard("find user by invitation", key, None, |u| {
            u.invitation
                .as_ref()
                .is_some_and(|i| i.token_hash == token_hash)
        })
        .await
    }

    async fn list_users(
        &self,
        tenant: &TenantId,
        query: &UserQuery,
        page: &PageRequest,
    ) -> Result<Page<User>, StoreError> {
        let plans = list_plans(tenant, query);
        let limit = page.limit as usize;
        let cursor_of =
            |tag: &str, sk: String| cursor::encode(tenant, USERS_LIST, &format!("{tag}{sk}"));
        let (found, next_cursor) = match &plans[..] {
            [] => {
                // Still refuse a foreign or broken cursor.
                if let Some(raw) = &page.cursor {
                    cursor::decode(tenant, USERS_LIST, raw)?;
                }
                return Ok(Page {
                    items: Vec::new(),
                    next_cursor: None,
                });
            }
            [plan] => {
                let start = page
                    .cursor
                    .as_deref()
                    .map(|raw| plan.start_key(tenant, raw))
                    .transpose()?;
                let read = self
                    .read_source(plan, start, limit + 1, self.filtered_read_bound)
                    .await?;
                let stop = read.stop(plan)?;
                let mut found = read.found;
                let more = found.len() > limit;
                found.truncate(limit);
                let resume_at = match found.last() {
                    Some((sk, _)) if more => Some(sk.clone()),
                    // The read bound stopped the page short: resume after
                    // the last item read, matched or not.
                    _ => stop,
                };
                (found, resume_at.map(|sk| cursor_of(plan.tag(), sk)))
            }
            plans => {
                let (found, resume_at) = self.merge_sources(tenant, plans, page).await?;
                (found, resume_at.map(|sk| cursor_of(BY_NAME, sk)))
            }
        };
        let mut items: Vec<User> = found.into_iter().map(|(_, u)| u).collect();
        self.with_last_logins(&mut items).await?;
        Ok(Page { items, next_cursor })
    }
}

/// What one source gave for a page: items with their sort keys, where
/// reading stopped, and whether the read bound stopped it.
struct SourceRead {
    found: Vec<(String, User)>,
    rest: Option<Item>,
    bounded: bool,
}

impl SourceRead {
    /// The sort key the read bound stopped this source at (every item up
    /// to it was read), if it did.
    fn stop(&self, plan: &ListPlan) -> Result<Option<String>, StoreError> {
        match &self.rest {
            Some(key) if self.bounded => Ok(Some(get_s(key, plan.sk_attr)?.to_owned())),
            _ => Ok(None),
        }
    }
}

impl DynamoStore {
    /// Up to `want` items of `plan` after `start`, reading (evaluating) at
    /// most `bound` items when a filter expression may drop some.
    async fn read_source(
        &self,
        plan: &ListPlan,
        mut start: Option<Item>,
        want: usize,
        bound: usize,
    ) -> Result<SourceRead, StoreError> {
        const OP: &str = "list users";
        let mut found: Vec<(String, User)> = Vec::with_capacity(want);
        let mut key_condition = "#kpk = :kpk".to_owned();
        let mut expr_names = plan.names.clone();
        expr_names.insert("#kpk".into(), plan.pk_attr.into());
        let mut values = plan.values.clone();
        values.insert(":kpk".into(), s(&plan.pk));
        if let Some(p) = &plan.key_prefix {
            key_condition.push_str(" AND begins_with(#ksk, :ksk)");
            expr_names.insert("#ksk".into(), plan.sk_attr.into());
            values.insert(":ksk".into(), s(p));
        }
        let mut evaluated = 0usize;
        let mut bounded = false;
        loop {
            let batch = if plan.filter.is_some() {
                (want - found.len())
                    .max(FILTERED_BATCH)
                    .min(bound - evaluated)
            } else {
                want - found.len()
            };
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(plan.index.map(str::to_owned))
                .key_condition_expression(&key_condition)
                .set_filter_expression(plan.filter.clone())
                .set_expression_attribute_names(Some(expr_names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(true)
                // Only the table can be read consistently, not an index.
                .consistent_read(plan.index.is_none())
                .limit(i32::try_from(batch).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk(OP, &e))?;
            for item in out.items() {
                let sk = get_s(item, plan.sk_attr)?.to_owned();
                found.push((sk, ui::user_from_item(item)?));
            }
            evaluated += usize::try_from(out.scanned_count()).unwrap_or(0);
            start = out.last_evaluated_key.filter(|k| !k.is_empty());
            if found.len() >= want || start.is_none() {
                break;
            }
            if plan.filter.is_some() && evaluated >= bound {
                bounded = true;
                break;
            }
        }
        Ok(SourceRead {
            found,
            rest: start,
            bounded,
        })
    }

    /// A page of users from several name-ordered sources (one per account
    /// of the list): each read at the same time from the cursor's sort key
    /// (the same name order in every account's partition, so one key
    /// resumes them all), merged, a user on two accounts kept once, the
    /// first `limit` kept. The read bound is shared between the sources;
    /// when it stops one short, nothing past that point is known of it, so
    /// the page ends at the smallest such point and the cursor resumes
    /// there. Returns the page and the sort key to resume after.
    async fn merge_sources(
        &self,
        tenant: &TenantId,
        plans: &[ListPlan],
        page: &PageRequest,
    ) -> Result<(Vec<(String, User)>, Option<String>), StoreError> {
        let limit = page.limit as usize;
        let bound = (self.filtered_read_bound / plans.len()).max(1);
        let mut reads = Vec::with_capacity(plans.len());
        for plan in plans {
            let start = page
                .cursor
                .as_deref()
                .map(|raw| plan.start_key(tenant, raw))
                .transpose()?;
            reads.push(self.read_source(plan, start, limit + 1, bound));
        }
        let reads = try_join_all(reads).await?;
        let mut stop: Option<String> = None;
        for (read, plan) in reads.iter().zip(plans) {
            if let Some(sk) = read.stop(plan)? {
                stop = Some(match stop {
                    Some(s) if s <= sk => s,
                    _ => sk,
                });
            }
        }
        let mut found: Vec<(String, User)> = reads
            .into_iter()
            .flat_map(|r| r.found)
            .filter(|(sk, _)| stop.as_ref().is_none_or(|s| sk <= s))
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        // The sort key ends with the user id: equal keys are one user.
        found.dedup_by(|a, b| a.0 == b.0);
        let more = found.len() > limit;
        found.truncate(limit);
        let resume_at = match found.last() {
            Some((sk, _)) if more => Some(sk.clone()),
            _ => stop,
        };
        Ok((found, resume_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user_item::KEY_SEP;
    use crate::user_item::USER_SK;
    use peak_domain::ids::ProfileId;
    use peak_domain::model::user::{AccountNumber, UserStatus};
    use peak_domain::role::Role;

    /// The (first) source a list reads.
    fn first_plan(t: &TenantId, q: &UserQuery) -> Option<ListPlan> {
        list_plans(t, q).into_iter().next()
    }

    #[test]
    fn lists_read_the_most_selective_source() {
        let t = TenantId::parse("acme").unwrap();
        let acct = AccountNumber::parse("a", "ACME").unwrap();
        let p = ProfileId::generate();
        let all = UserQuery {
            status: Some(UserStatus::Active),
            role: Some(Role::Customer),
            profile: Some(p.clone()),
            account: Some(acct.clone()),
            accounts: None,
            name_prefix: Some("Lo".into()),
            email_prefix: None,
        };
        let plan = first_plan(&t, &all).unwrap();
        assert_eq!(plan.index, None);
        assert_eq!(plan.pk, "TENANT#acme#ACCOUNT#ACME");
        assert_eq!(plan.key_prefix.as_deref(), Some("lo"));
        let filter = plan.filter.unwrap();
        assert!(
            filter.contains("#status")
                && filter.contains("#role")
                && filter.contains("#profile_id")
        );
        assert!(!filter.contains("customer_accounts"));

        let plan = first_plan(
            &t,
            &UserQuery {
                account: None,
                ..all.clone()
            },
        )
        .unwrap();
        assert_eq!(plan.index, Some("GSI5"));
        let plan = first_plan(
            &t,
            &UserQuery {
                status: Some(UserStatus::Active),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!((plan.index, plan.filter), (Some("GSI3"), None));
        let plan = first_plan(&t, &UserQuery::default()).unwrap();
        assert_eq!((plan.index, plan.key_prefix), (Some("GSI1"), None));

        let by_email = UserQuery {
            email_prefix: Some("A".into()),
            ..all.clone()
        };
        let plan = first_plan(&t, &by_email).unwrap();
        assert_eq!((plan.index, plan.by_email), (Some("GSI2"), true));
        assert_eq!(plan.key_prefix.as_deref(), Some("a"));
        let filter = plan.filter.unwrap();
        assert!(
            filter.contains("contains(#customer_accounts")
                && filter.contains("begins_with(#name_key")
        );

        let nothing = UserQuery {
            name_prefix: Some(format!("lo{KEY_SEP}")),
            ..Default::default()
        };
        assert!(first_plan(&t, &nothing).is_none());
    }

    #[test]
    fn cursors_only_resume_their_own_order_and_prefix() {
        let t = TenantId::parse("acme").unwrap();
        let id = UserId::generate();
        let by_name = first_plan(&t, &UserQuery::default()).unwrap();
        let c = cursor::encode(
            &t,
            USERS_LIST,
            &format!("{BY_NAME}{}", ui::sort_key("lovelace ada", &id)),
        );
        let key = by_name.start_key(&t, &c).unwrap();
        assert_eq!(key["GSI1PK"], s("TENANT#acme#USERS"));
        assert_eq!(key[PK], s(ui::user_pk(&t, &id)));
        assert_eq!(key[SK], s(USER_SK));

        let by_email = first_plan(
            &t,
            &UserQuery {
                email_prefix: Some(String::new()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(by_email.start_key(&t, &c), Err(StoreError::InvalidCursor));
        let prefixed = first_plan(
            &t,
            &UserQuery {
                name_prefix: Some("t".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(prefixed.start_key(&t, &c), Err(StoreError::InvalidCursor));
        let broken = cursor::encode(&t, USERS_LIST, &format!("{BY_NAME}no id"));
        assert_eq!(
            by_name.start_key(&t, &broken),
            Err(StoreError::InvalidCursor)
        );
    }
}
