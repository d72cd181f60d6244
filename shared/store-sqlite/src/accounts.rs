//! The customer-account directory (migration 10): one row per account, the
//! record as JSON beside the columns its lists are ordered by. A write is
//! one `BEGIN IMMEDIATE` transaction: the account (conditional on its
//! version), its parent's version check, the moved descendants and the
//! audit event.

use crate::SqliteStore;
use crate::sql::{db_error, is_unique_violation};
use async_trait::async_trait;
use peak_domain::accounts::{Account, AccountStore, AccountWrite};
use peak_domain::cursor;
use peak_domain::ids::TenantId;
use peak_domain::model::user::AccountNumber;
use peak_domain::ports::{Page, PageRequest, StoreError};
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

pub(crate) const MIGRATION: &str = "CREATE TABLE accounts (
        tenant_id  TEXT    NOT NULL,
        number     TEXT    NOT NULL,
        -- the number lowercased, and the name lowercased: the search
        number_key TEXT    NOT NULL,
        name_key   TEXT    NOT NULL,
        parent     TEXT,
        -- root/../parent/self/: descendants are a prefix range
        path_key   TEXT    NOT NULL,
        version    INTEGER NOT NULL,
        -- the Account as JSON
        body       TEXT    NOT NULL,
        PRIMARY KEY (tenant_id, number)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX accounts_by_number_key ON accounts (tenant_id, number_key, number);
    CREATE INDEX accounts_by_name_key   ON accounts (tenant_id, name_key, number);
    CREATE INDEX accounts_by_parent     ON accounts (tenant_id, parent, number);
    CREATE INDEX accounts_by_path       ON accounts (tenant_id, path_key);";

/// Key fields within a cursor's position.
const SEP: char = '\u{1}';

struct Row {
    number: String,
    number_key: String,
    name_key: String,
    parent: Option<String>,
    path_key: String,
    version: i64,
    body: String,
}

fn row(a: &Account) -> Result<Row, StoreError> {
    Ok(Row {
        number: a.number.as_str().to_owned(),
        number_key: a.number_key(),
        name_key: a.name.search_key(),
        parent: a.parent.as_ref().map(|p| p.as_str().to_owned()),
        path_key: a.path_key(),
        version: version(a.version)?,
        body: serde_json::to_string(a)
            .map_err(|e| StoreError::Backend(format!("cannot encode an account: {e}")))?,
    })
}

fn version(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Backend("account version out of range".into()))
}

fn decode(body: &str) -> Result<Account, StoreError> {
    serde_json::from_str(body)
        .map_err(|e| StoreError::Backend(format!("a stored account cannot be read: {e}")))
}

fn stored_version(
    tx: &Transaction<'_>,
    tenant: &str,
    number: &str,
) -> Result<Option<i64>, StoreError> {
    tx.query_row(
        "SELECT version FROM accounts WHERE tenant_id = ?1 AND number = ?2",
        params![tenant, number],
        |r| r.get(0),
    )
    .optional()
    .map_err(db_error)
}

/// Replaces a row only at `expected` version.
fn replace(tx: &Transaction<'_>, tenant: &str, r: &Row, expected: i64) -> Result<(), StoreError> {
    let changed = tx
        .execute(
            "UPDATE accounts SET number_key = ?3, name_key = ?4, parent = ?5, path_key = ?6,
                 version = ?7, body = ?8
             WHERE tenant_id = ?1 AND number = ?2 AND version = ?9",
            params![
                tenant,
                r.number,
                r.number_key,
                r.name_key,
                r.parent,
                r.path_key,
                r.version,
                r.body,
                expected
            ],
        )
        .map_err(db_error)?;
    if changed == 1 {
        return Ok(());
    }
    Err(match stored_version(tx, tenant, &r.number)? {
        Some(_) => StoreError::VersionMismatch,
        None => StoreError::NotFound,
    })
}

/// Runs a page query whose rows are (body, position) and whose position
/// is after `?2`.
fn page_of(
    conn: &rusqlite::Connection,
    sql: &str,
    args: &[&dyn rusqlite::ToSql],
    limit: u32,
    cursor_of: impl Fn(&str) -> String,
) -> Result<Page<Account>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_error)?;
    let rows = stmt
        .query_map(args, |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(db_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_error)?;
    let more = rows.len() > limit as usize;
    let mut items = Vec::new();
    let mut last = None;
    for (body, position) in rows.into_iter().take(limit as usize) {
        items.push(decode(&body)?);
        last = Some(position);
    }
    let next_cursor = more.then(|| last.map(|p| cursor_of(&p))).flatten();
    Ok(Page { items, next_cursor })
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn get_account(
        &self,
        tenant: &TenantId,
        number: &AccountNumber,
    ) -> Result<Option<Account>, StoreError> {
        let (tenant, number) = (tenant.as_str().to_owned(), number.as_str().to_owned());
        self.run(move |conn| {
            let body: Option<String> = conn
                .prepare_cached("SELECT body FROM accounts WHERE tenant_id = ?1 AND number = ?2")
                .map_err(db_error)?
                .query_row(params![tenant, number], |r| r.get(0))
                .optional()
                .map_err(db_error)?;
            body.as_deref().map(decode).transpose()
        })
        .await
    }

    async fn get_accounts(
        &self,
        tenant: &TenantId,
        numbers: &[AccountNumber],
    ) -> Result<Vec<Account>, StoreError> {
        let tenant = tenant.as_str().to_owned();
        let mut wanted: Vec<String> = numbers.iter().map(|n| n.as_str().to_owned()).collect();
        wanted.sort_unstable();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        self.run(move |conn| {
            // One statement: `number IN (?, …)` over the primary key.
            let marks = vec!["?"; wanted.len()].join(", ");
            let sql =
                format!("SELECT body FROM accounts WHERE tenant_id = ? AND number IN ({marks})");
            let mut stmt = conn.prepare(&sql).map_err(db_error)?;
            let args = std::iter::once(&tenant).chain(wanted.iter());
            let bodies = stmt
                .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(0))
                .map_err(db_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_error)?;
            bodies.iter().map(|b| decode(b)).collect()
        })
        .await
    }

    async fn write_account(&self, write: AccountWrite<'_>) -> Result<(), StoreError> {
        let tenant = write.next.tenant_id.as_str().to_owned();
        let others = write
            .previous
            .into_iter()
            .chain(write.parent)
            .chain(write.moved)
            .chain(std::iter::once(write.next));
        for a in others {
            if a.tenant_id != write.next.tenant_id {
                return Err(StoreError::Backend("an account of another tenant".into()));
            }
        }
        let next = row(write.next)?;
        let previous = write.previous.map(|p| version(p.version)).transpose()?;
        let parent = write
            .parent
            .map(|p| Ok::<_, StoreError>((p.number.as_str().to_owned(), version(p.version)?)))
            .transpose()?;
        let moved = write
            .moved
            .iter()
            .map(|a| Ok::<_, StoreError>((row(a)?, version(a.version)?)))
            .collect::<Result<Vec<_>, _>>()?;
        let events = write
            .audit
            .iter()
            .map(|e| {
                if e.tenant_id != write.next.tenant_id {
                    return Err(StoreError::Backend(
                        "an audit event of another tenant".into(),
                    ));
                }
                let body = serde_json::to_string(e)
                    .map_err(|_| StoreError::Backend("cannot encode an audit event".into()))?;
                Ok((e.id.clone(), body))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            match previous {
                Some(expected) => replace(&tx, &tenant, &next, expected)?,
                None => {
                    tx.execute(
                        "INSERT INTO accounts (tenant_id, number, number_key, name_key, parent,
                             path_key, version, body)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        params![
                            tenant,
                            next.number,
                            next.number_key,
                            next.name_key,
                            next.parent,
                            next.path_key,
                            next.version,
                            next.body
                        ],
                    )
                    .map_err(|e| {
                        if is_unique_violation(&e)
                            || matches!(&e, rusqlite::Error::SqliteFailure(f, _)
                                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
                        {
                            StoreError::AlreadyExists
                        } else {
                            db_error(e)
                        }
                    })?;
                }
            }
            if let Some((number, expected)) = &parent
                && stored_version(&tx, &tenant, number)? != Some(*expected)
            {
                return Err(StoreError::VersionMismatch);
            }
            for (r, expected) in &moved {
                replace(&tx, &tenant, r, *expected)
                    .map_err(|_| StoreError::VersionMismatch)?;
            }
            for (id, body) in &events {
                tx.execute(
                    "INSERT INTO audit_events (tenant_id, id, target_user, body) VALUES (?1, ?2, NULL, ?3)",
                    params![tenant, id, body],
                )
                .map_err(db_error)?;
            }
            tx.commit().map_err(db_error)
        })
        .await
    }

    async fn search_accounts(
        &self,
        tenant: &TenantId,
        prefix: &str,
        page: &PageRequest,
    ) -> Result<Page<Account>, StoreError> {
        let list = format!("accounts:{prefix}");
        let (after_key, after_number) = match &page.cursor {
            None => (String::new(), String::new()),
            Some(c) => {
                let after = cursor::decode(tenant, &list, c)?;
                let (k, n) = after.split_once(SEP).ok_or(StoreError::InvalidCursor)?;
                (k.to_owned(), n.to_owned())
            }
        };
        let started = page.cursor.is_some();
        let (t, prefix, limit) = (tenant.clone(), prefix.to_owned(), page.limit);
        self.run(move |conn| {
            // Number matches, then name matches of accounts whose number
            // does not match (each account once), merged in one order.
            page_of(
                conn,
                "SELECT body, k || char(1) || number FROM (
                     SELECT body, number_key AS k, number FROM accounts
                      WHERE tenant_id = ?1 AND number_key >= ?2
                        AND substr(number_key, 1, length(?2)) = ?2
                     UNION ALL
                     SELECT body, name_key AS k, number FROM accounts
                      WHERE tenant_id = ?1 AND name_key >= ?2
                        AND substr(name_key, 1, length(?2)) = ?2
                        AND substr(number_key, 1, length(?2)) <> ?2)
                  WHERE ?5 = 0 OR (k, number) > (?3, ?4)
                  ORDER BY k, number LIMIT ?6",
                &[
                    &t.as_str(),
                    &prefix,
                    &after_key,
                    &after_number,
                    &i64::from(started),
                    &(i64::from(limit) + 1),
                ],
                limit,
                |p| cursor::encode(&t, &list, p),
            )
        })
        .await
    }

    async fn child_accounts(
        &self,
        tenant: &TenantId,
        number: &AccountNumber,
        page: &PageRequest,
    ) -> Result<Page<Account>, StoreError> {
        let list = format!("account-children:{}", number.as_str());
        let after = page
            .cursor
            .as_deref()
            .map(|c| cursor::decode(tenant, &list, c))
            .transpose()?
            .unwrap_or_default();
        let (t, parent, limit) = (tenant.clone(), number.as_str().to_owned(), page.limit);
        self.run(move |conn| {
            page_of(
                conn,
                "SELECT body, number FROM accounts
                  WHERE tenant_id = ?1 AND parent = ?3 AND number > ?2
                  ORDER BY number LIMIT ?4",
                &[&t.as_str(), &after, &parent, &(i64::from(limit) + 1)],
                limit,
                |p| cursor::encode(&t, &list, p),
            )
        })
        .await
    }

    async fn descendant_accounts(
        &self,
        tenant: &TenantId,
        number: &AccountNumber,
        page: &PageRequest,
    ) -> Result<Page<Account>, StoreError> {
        let list = format!("account-descendants:{}", number.as_str());
        let after = page
            .cursor
            .as_deref()
            .map(|c| cursor::decode(tenant, &list, c))
            .transpose()?;
        let (t, number, limit) = (tenant.clone(), number.as_str().to_owned(), page.limit);
        self.run(move |conn| {
            let path: Option<String> = conn
                .prepare_cached(
                    "SELECT path_key FROM accounts WHERE tenant_id = ?1 AND number = ?2",
                )
                .map_err(db_error)?
                .query_row(params![t.as_str(), number], |r| r.get(0))
                .optional()
                .map_err(db_error)?;
            let Some(path) = path else {
                return Ok(Page {
                    items: Vec::new(),
                    next_cursor: None,
                });
            };
            // Strictly after the account's own path: itself is not listed.
            let after = after.unwrap_or_else(|| path.clone());
            page_of(
                conn,
                "SELECT body, path_key FROM accounts
                  WHERE tenant_id = ?1 AND path_key > ?2
                    AND substr(path_key, 1, length(?3)) = ?3
                  ORDER BY path_key LIMIT ?4",
                &[&t.as_str(), &after, &path, &(i64::from(limit) + 1)],
                limit,
                |p| cursor::encode(&t, &list, p),
            )
        })
        .await
    }
}
