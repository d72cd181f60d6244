//! [`UserRecords`] for [`SqliteStore`]: users with their lookups (email,
//! identity-provider subject, invitation hash), account memberships and the
//! profile holder counts. The other ports live in their own modules
//! (`audit`, `outbox`, `idempotency`, `idp_work`, `logins`, `deliveries`,
//! `rate_limits`); the row mapping in `user_row`, the write in `user_write`.
//!
//! A user is one row of `users`; its customer accounts are also rows of
//! `user_accounts` (the account filter). Every user write is one `BEGIN
//! IMMEDIATE` transaction that checks, then writes the user, its
//! memberships, the holder counts, its audit events and outbox emails: all of
//! it or nothing.
//!
//! Lists use keyset pagination over an index that serves both the filter
//! and the order, so a page costs the same wherever it starts; see
//! [`plan_user_list`].

use crate::SqliteStore;
use crate::sql::{db_error, page_size, to_json};
use crate::user_row::{UserRow, user_columns};
use crate::user_write::{WritePlan, apply_write};
use async_trait::async_trait;
use peak_domain::cursor;
use peak_domain::ids::TenantId;
use peak_domain::model::user::{Email, User, UserId, UserQuery};
use peak_domain::ports::{Page, PageRequest, StoreError, UserRecords, UserWrite};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, ToSql, TransactionBehavior, params_from_iter};

/// Cursor list names. The two user orders get different names, so a cursor
/// of one order is refused by the other.
pub(crate) const USERS_LIST: &str = "users";
pub(crate) const USERS_BY_EMAIL_LIST: &str = "users:email";

pub(crate) fn get_user_where(
    conn: &Connection,
    condition: &str,
    args: &[&dyn ToSql],
) -> Result<Option<User>, StoreError> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {} FROM users WHERE {condition}",
            user_columns("")
        ))
        .map_err(db_error)?
        .query_row(args, UserRow::read)
        .optional()
        .map_err(db_error)?;
    row.map(UserRow::into_user).transpose()
}

/// The index a user list is driven by: it serves the order and the most
/// selective filter (the others are checked on the rows it yields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Driver {
    /// `users_by_email`: email order, `email_prefix` as a range.
    Email,
    /// `user_accounts_by_name`, joined to `users`.
    Account,
    /// `users_by_profile`.
    Profile,
    /// `users_by_role`.
    Role,
    /// `users_by_status`.
    Status,
    /// `users_by_name`.
    Name,
}

impl Driver {
    pub(crate) fn of(q: &UserQuery) -> Self {
        if q.email_prefix.is_some() {
            Driver::Email
        } else if q.account_set().is_some() {
            Driver::Account
        } else if q.profile.is_some() {
            Driver::Profile
        } else if q.role.is_some() {
            Driver::Role
        } else if q.status.is_some() {
            Driver::Status
        } else {
            Driver::Name
        }
    }
}

/// The smallest string greater than every string starting with `prefix`,
/// or `None` when there is none (then the range has no upper end). Text
/// compares as UTF-8 bytes, which is code point order.
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match u32::from(last) + 1 {
            0xD800 => Some('\u{E000}'),
            n => char::from_u32(n),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Bound parameters of a statement built piece by piece.
#[derive(Default)]
pub(crate) struct Args(Vec<Value>);

impl Args {
    /// Adds `value` and returns its placeholder.
    pub(crate) fn push(&mut self, value: impl Into<Value>) -> String {
        self.0.push(value.into());
        format!("?{}", self.0.len())
    }
}

/// Adds "`column` starts with `prefix`" as an index-friendly range; without
/// its lower end unless `lower` (when another condition gives it).
pub(crate) fn push_prefix(
    conditions: &mut Vec<String>,
    args: &mut Args,
    column: &str,
    prefix: &str,
    lower: bool,
) {
    if prefix.is_empty() {
        return;
    }
    if lower {
        conditions.push(format!("{column} >= {}", args.push(prefix.to_owned())));
    }
    if let Some(upper) = prefix_upper_bound(prefix) {
        conditions.push(format!("{column} < {}", args.push(upper)));
    }
}

/// The statement for one page of users: the [`Driver`] index gives the
/// tenant, the driving filter and the order; the keyset `(key, id) > after`
/// resumes after the last item; `fetch` rows at most.
///
/// A set of accounts in name order (`under=`, a non-admin's whole reach) is
/// one bounded index search per account — at most `fetch` memberships each,
/// from the keyset, filtered as one account's list is — merged by `UNION`
/// (which also keeps a user on two of the accounts once) and sorted: a sort
/// of at most `fetch` rows per account, not of every member of the subtree
/// (an `IN (…)` over the memberships would sort them all on every page).
pub(crate) fn plan_user_list(
    tenant: &str,
    q: &UserQuery,
    after: Option<&(String, String)>,
    fetch: i64,
) -> (String, Vec<Value>) {
    let mut args = Args::default();
    let tenant = args.push(tenant.to_owned());
    let sql = match q.account_set() {
        Some(set) if set.len() > 1 && q.email_prefix.is_none() => {
            let parts: Vec<String> = set
                .iter()
                .map(|a| {
                    let one = UserQuery {
                        account: Some(a.clone()),
                        accounts: None,
                        ..q.clone()
                    };
                    let part = select_users(
                        &mut args,
                        &tenant,
                        &one,
                        after,
                        fetch,
                        "a.name_key AS k, a.user_id AS i",
                    );
                    format!("SELECT k, i FROM ({part})")
                })
                .collect();
            let limit = args.push(fetch);
            format!(
                "SELECT {} FROM ({}) AS s CROSS JOIN users AS u
                 WHERE u.tenant_id = {tenant} AND u.id = s.i ORDER BY s.k, s.i LIMIT {limit}",
                user_columns("u."),
                parts.join(" UNION ")
            )
        }
        _ => select_users(&mut args, &tenant, q, after, fetch, &user_columns("u.")),
    };
    (sql, args.0)
}

/// One index search of users (see [`plan_user_list`]), selecting `columns`.
fn select_users(
    args: &mut Args,
    tenant: &str,
    q: &UserQuery,
    after: Option<&(String, String)>,
    fetch: i64,
    columns: &str,
) -> String {
    let driver = Driver::of(q);
    let accounts = q.account_set();
    // `= ?` for one account; `IN (…)` for a set (in email order only).
    let account_in = |args: &mut Args| match &accounts {
        Some(set) if set.len() == 1 => {
            let a = set
                .first()
                .map(|a| a.as_str().to_owned())
                .unwrap_or_default();
            format!("= {}", args.push(a))
        }
        Some(set) => format!(
            "IN ({})",
            set.iter()
                .map(|a| args.push(a.as_str().to_owned()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => String::new(),
    };
    let mut conditions = Vec::new();
    let users_by = |index: &str| format!("users AS u INDEXED BY {index}");
    let (from, key, id) = match driver {
        Driver::Account => {
            conditions.push(format!("a.tenant_id = {tenant}"));
            if accounts.is_some() {
                let account = account_in(args);
                conditions.push(format!("a.account {account}"));
            }
            conditions.push("u.tenant_id = a.tenant_id AND u.id = a.user_id".to_owned());
            // CROSS JOIN keeps the memberships as the outer loop, in order.
            (
                "user_accounts AS a INDEXED BY user_accounts_by_name CROSS JOIN users AS u"
                    .to_owned(),
                "a.name_key",
                "a.user_id",
            )
        }
        Driver::Email => {
            conditions.push(format!("u.tenant_id = {tenant}"));
            (users_by("users_by_email"), "u.email_norm", "u.id")
        }
        Driver::Profile => {
            conditions.push(format!("u.tenant_id = {tenant}"));
            (users_by("users_by_profile"), "u.name_key", "u.id")
        }
        Driver::Role => {
            conditions.push(format!("u.tenant_id = {tenant}"));
            (users_by("users_by_role"), "u.name_key", "u.id")
        }
        Driver::Status => {
            conditions.push(format!("u.tenant_id = {tenant}"));
            (users_by("users_by_status"), "u.name_key", "u.id")
        }
        Driver::Name => {
            conditions.push(format!("u.tenant_id = {tenant}"));
            (users_by("users_by_name"), "u.name_key", "u.id")
        }
    };
    if let Some(profile) = &q.profile {
        let p = args.push(profile.as_str().to_owned());
        conditions.push(format!("u.profile_id = {p}"));
    }
    if let Some(role) = q.role {
        let r = args.push(role.as_str().to_owned());
        conditions.push(format!("u.role = {r}"));
    }
    if let Some(status) = q.status {
        let s = args.push(status.as_str().to_owned());
        conditions.push(format!("u.status = {s}"));
    }
    if driver != Driver::Account && accounts.is_some() {
        let a = account_in(args);
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM user_accounts AS m
                     WHERE m.tenant_id = u.tenant_id AND m.account {a} AND m.user_id = u.id)"
        ));
    }
    // The prefix on the driving index's key, and the other one (the name
    // prefix in email order) as a plain filter.
    let (key_prefix, other_prefix) = if driver == Driver::Email {
        (&q.email_prefix, &q.name_prefix)
    } else {
        (&q.name_prefix, &None)
    };
    if let Some(prefix) = other_prefix {
        push_prefix(
            &mut conditions,
            args,
            "u.name_key",
            &prefix.to_lowercase(),
            true,
        );
    }
    let key_prefix = key_prefix
        .as_deref()
        .map(str::to_lowercase)
        .filter(|p| !p.is_empty());
    // One lower bound on the key, so the index search starts right there:
    // the keyset when it is past the prefix's start, else the prefix (every
    // key in the prefix range is then past the keyset).
    let keyset = after.filter(|(after_key, _)| {
        key_prefix
            .as_deref()
            .is_none_or(|p| after_key.as_str() >= p)
    });
    if let Some(prefix) = &key_prefix {
        push_prefix(&mut conditions, args, key, prefix, keyset.is_none());
    }
    if let Some((after_key, after_id)) = keyset {
        let k = args.push(after_key.clone());
        let i = args.push(after_id.clone());
        conditions.push(format!("({key}, {id}) > ({k}, {i})"));
    }
    let limit = args.push(fetch);
    format!(
        "SELECT {columns} FROM {from} WHERE {} ORDER BY {key}, {id} LIMIT {limit}",
        conditions.join(" AND ")
    )
}

#[async_trait]
impl UserRecords for SqliteStore {
    /// Checks, in this order: the id (`AlreadyExists` on create) or the
    /// version (`NotFound`, `VersionMismatch`), the email (`EmailTaken`),
    /// the new profile (`ProfileMissing`). Audit events and emails must
    /// belong to the user's tenant. Deleting also rewrites the user's past
    /// audit events with [`AuditEvent::without_personal_data`].
    async fn write_user(&self, write: UserWrite<'_>) -> Result<(), StoreError> {
        let plan = WritePlan::new(&write)?;
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            // On error `tx` is dropped, which rolls everything back.
            apply_write(&tx, &plan)?;
            tx.commit().map_err(db_error)
        })
        .await
    }

    async fn get_user(&self, tenant: &TenantId, id: &UserId) -> Result<Option<User>, StoreError> {
        let tenant = tenant.as_str().to_owned();
        let id = id.as_str().to_owned();
        self.run(move |conn| get_user_where(conn, "tenant_id = ?1 AND id = ?2", &[&tenant, &id]))
            .await
    }

    async fn find_user_by_email(
        &self,
        tenant: &TenantId,
        email: &Email,
    ) -> Result<Option<User>, StoreError> {
        let tenant = tenant.as_str().to_owned();
        let email = email.normalized();
        self.run(move |conn| {
            get_user_where(
                conn,
                "tenant_id = ?1 AND email_norm = ?2",
                &[&tenant, &email],
            )
        })
        .await
    }

    async fn find_user_by_subject(
        &self,
        tenant: &TenantId,
        subject: &str,
    ) -> Result<Option<User>, StoreError> {
        let tenant = tenant.as_str().to_owned();
        let subject = subject.to_owned();
        self.run(move |conn| {
            get_user_where(
                conn,
                "tenant_id = ?1 AND idp_subject = ?2",
                &[&tenant, &subject],
            )
        })
        .await
    }

    /// Whatever the invitation's state: the caller decides what a used or
    /// expired invitation means.
    async fn find_user_by_invitation(&self, token_hash: &str) -> Result<Option<User>, StoreError> {
        let token_hash = token_hash.to_owned();
        self.run(move |conn| get_user_where(conn, "invitation_hash = ?1", &[&token_hash]))
            .await
    }

    /// The cursor holds the last item's sort key and id; a cursor of the
    /// name order is refused by the email order and the other way round. A
    /// `limit` outside `1..=PageRequest::MAX_LIMIT` is clamped into it.
    async fn list_users(
        &self,
        tenant: &TenantId,
        query: &UserQuery,
        page: &PageRequest,
    ) -> Result<Page<User>, StoreError> {
        let by_email = query.email_prefix.is_some();
        let list = if by_email {
            USERS_BY_EMAIL_LIST
        } else {
            USERS_LIST
        };
        let after = match &page.cursor {
            Some(raw) => {
                let key = cursor::decode(tenant, list, raw)?;
                Some(
                    serde_json::from_str::<(String, String)>(&key)
                        .map_err(|_| StoreError::InvalidCursor)?,
                )
            }
            None => None,
        };
        if query.account_set().is_some_and(|s| s.is_empty()) {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        let (limit, fetch) = page_size(page);
        let (sql, args) = plan_user_list(tenant.as_str(), query, after.as_ref(), fetch);
        let tenant = tenant.clone();
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached(&sql).map_err(db_error)?;
            let mut rows = stmt
                .query_map(params_from_iter(args.iter()), UserRow::read)
                .map_err(db_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_error)?;
            let more = rows.len() > limit;
            rows.truncate(limit);
            let next_cursor = match rows.last() {
                Some(last) if more => {
                    let key = if by_email {
                        &last.email_norm
                    } else {
                        &last.name_key
                    };
                    let after = to_json(&(key, &last.id), "cursor")?;
                    Some(cursor::encode(&tenant, list, &after))
                }
                _ => None,
            };
            let items = rows
                .into_iter()
                .map(UserRow::into_user)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Page { items, next_cursor })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::migrate;
    use peak_domain::ids::ProfileId;
    use peak_domain::model::user::{AccountNumber, UserStatus};
    use peak_domain::role::Role;

    #[test]
    fn prefix_upper_bounds_cover_exactly_the_prefixed_strings() {
        assert_eq!(prefix_upper_bound("lo").as_deref(), Some("lp"));
        assert_eq!(prefix_upper_bound("a@").as_deref(), Some("aA"));
        assert_eq!(prefix_upper_bound("z\u{10FFFF}").as_deref(), Some("{"));
        assert_eq!(prefix_upper_bound("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
        assert_eq!(prefix_upper_bound(""), None);
        let upper = prefix_upper_bound("lö").unwrap();
        for inside in ["lö", "lövé", "lö\u{10FFFF}"] {
            assert!(inside >= "lö" && inside < upper.as_str(), "{inside}");
        }
        for outside in ["lp", "lo\u{10FFFF}", "l", "m"] {
            assert!(!(outside >= "lö" && outside < upper.as_str()), "{outside}");
        }
    }

    fn all_queries() -> Vec<UserQuery> {
        let account = AccountNumber::parse("a", "ACME").unwrap();
        let profile = ProfileId::generate();
        let mut out = Vec::new();
        let set: std::collections::BTreeSet<_> = ["ACME", "ACME-EU"]
            .iter()
            .map(|a| AccountNumber::parse("a", a).unwrap())
            .collect();
        for mask in 0..128u32 {
            let on = |bit: u32| mask & (1 << bit) != 0;
            out.push(UserQuery {
                status: on(0).then_some(UserStatus::Active),
                role: on(1).then_some(Role::Customer),
                profile: on(2).then(|| profile.clone()),
                account: on(3).then(|| account.clone()),
                name_prefix: on(4).then(|| "lo".to_owned()),
                email_prefix: on(5).then(|| "a".to_owned()),
                accounts: on(6).then(|| set.clone()),
            });
        }
        out
    }

    /// Every combination of filters is served by an index search in list
    /// order: no table scan, no sort.
    #[test]
    fn every_user_list_is_an_index_search_without_a_sort() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let after = ("lovelace ada".to_owned(), UserId::generate().to_string());
        for q in all_queries() {
            for cursor in [None, Some(&after)] {
                let (sql, args) = plan_user_list("t1", &q, cursor, 3);
                let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
                let plan: Vec<String> = stmt
                    .query_map(params_from_iter(args.iter()), |r| r.get::<_, String>(3))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                let text = plan.join("\n");
                let merged =
                    q.email_prefix.is_none() && q.account_set().is_some_and(|s| s.len() > 1);
                if merged {
                    // One bounded search per account (the only scans are
                    // of their at most `fetch` rows each), then a sort of
                    // those rows.
                    let searches = plan
                        .iter()
                        .filter(|l| l.contains("user_accounts_by_name (tenant_id=? AND account=?"))
                        .count();
                    assert_eq!(searches, 2, "{q:?}: one search per account\n{text}");
                    assert!(
                        plan.iter().all(|line| !line.starts_with("SCAN")
                            || line.starts_with("SCAN s")
                            || line.starts_with("SCAN (subquery")),
                        "{q:?}: scans\n{text}"
                    );
                    if cursor.is_some() {
                        assert!(text.contains(")>(?,?)"), "{q:?}: no keyset\n{text}");
                    }
                    continue;
                }
                assert!(!text.contains("TEMP B-TREE"), "{q:?}: sorts\n{text}");
                assert!(
                    plan.iter().all(|line| !line.starts_with("SCAN")),
                    "{q:?}: scans\n{text}"
                );
                let driver = plan.first().unwrap();
                let expected = match Driver::of(&q) {
                    Driver::Email => "users_by_email",
                    Driver::Account => "user_accounts_by_name",
                    Driver::Profile => "users_by_profile",
                    Driver::Role => "users_by_role",
                    Driver::Status => "users_by_status",
                    Driver::Name => "users_by_name",
                };
                assert!(driver.contains(expected), "{q:?}: {text}");
                assert!(
                    driver.contains("tenant_id=?"),
                    "{q:?}: not a tenant search\n{text}"
                );
                if cursor.is_some() {
                    assert!(
                        driver.contains(")>(?,?)"),
                        "{q:?}: the search does not start at the cursor\n{text}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_cursor_before_the_prefix_gives_way_to_the_prefix() {
        let q = UserQuery {
            name_prefix: Some("T".to_owned()),
            ..Default::default()
        };
        let id = UserId::generate().to_string();
        let (sql, args) = plan_user_list("t1", &q, Some(&("a".to_owned(), id.clone())), 3);
        assert!(
            sql.contains("u.name_key >= ?2 AND u.name_key < ?3"),
            "{sql}"
        );
        assert!(!sql.contains(")>("), "{sql}");
        assert_eq!(args[1], Value::Text("t".to_owned()));
        assert_eq!(args[2], Value::Text("u".to_owned()));
        let (sql, _) = plan_user_list("t1", &q, Some(&("tz".to_owned(), id)), 3);
        assert!(!sql.contains("u.name_key >= "), "{sql}");
        assert!(sql.contains("u.name_key < ?2"), "{sql}");
        assert!(sql.contains("(u.name_key, u.id) > (?3, ?4)"), "{sql}");
    }

    #[test]
    fn audit_and_outbox_lists_search_their_indexes() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        for sql in [
            "SELECT seq, body FROM audit_events INDEXED BY audit_events_by_user
             WHERE tenant_id = 't' AND target_user = 'u' AND seq < 5 ORDER BY seq DESC LIMIT 3",
            "SELECT seq, body FROM audit_events INDEXED BY audit_events_by_tenant
             WHERE tenant_id = 't' AND seq < 5 ORDER BY seq DESC LIMIT 3",
            "SELECT body FROM outbox INDEXED BY outbox_due
             WHERE sent_at IS NULL AND failed_at IS NULL AND due_ms <= 5
             ORDER BY due_ms, seq LIMIT 3",
            "SELECT body, failure, attempts, failed_at FROM outbox INDEXED BY outbox_failed
             WHERE failed_at IS NOT NULL AND retried_at IS NULL ORDER BY seq DESC LIMIT 3",
            "SELECT body, failure, attempts, failed_at, id FROM outbox
             INDEXED BY outbox_failed_by_tenant
             WHERE tenant_id = 't' AND id < 'x' AND failed_at IS NOT NULL AND retried_at IS NULL
             ORDER BY id DESC LIMIT 3",
        ] {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let plan: Vec<String> = stmt
                .query_map([], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let text = plan.join("\n");
            assert!(!text.contains("TEMP B-TREE"), "{sql}: {text}");
            assert!(
                text.contains("USING INDEX") || text.contains("COVERING INDEX"),
                "{sql}: {text}"
            );
        }
    }
}
