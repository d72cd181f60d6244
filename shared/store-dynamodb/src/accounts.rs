//! The customer-account directory in the single table. Two items per
//! account, in the account's own partition:
//!
//! | item       | PK                             | SK        | index keys |
//! |------------|--------------------------------|-----------|------------|
//! | account    | `TENANT#<t>#DIRECTORY#<number>` | `ACCOUNT` | GSI1 `TENANT#<t>#ACCOUNTS` / `<number lowercased>␁<number>`; GSI3 `TENANT#<t>#ACCOUNTS#CHILDREN#<parent>` / `<number>` (not for a root); GSI4 `TENANT#<t>#ACCOUNTS` / `<path key>` |
//! | name entry | `TENANT#<t>#DIRECTORY#<number>` | `NAME`    | GSI1 `TENANT#<t>#ACCOUNTS` / `<name lowercased>␁<number>` |
//!
//! Both carry the account as JSON (`body`), so every list is answered from
//! the index alone. The search (`GET /accounts?q=`) is one `begins_with`
//! query of GSI1's `TENANT#<t>#ACCOUNTS` partition, where each account is
//! listed under its number and under its name: one sorted stream, one
//! cursor, one Query per page. A name entry whose account's number also
//! matches is skipped (its number entry is in the same stream), so each
//! account comes once. Children are GSI3's partition of their parent;
//! descendants a `begins_with` range of GSI4 from the account's path key.
//! The partition is not `TENANT#<t>#ACCOUNT#<n>`: that one holds users'
//! account memberships.

use crate::item::{Item, PK, SK, n, s};
use crate::record_item::audit_item;
use crate::user_item::{KEY_SEP, index};
use crate::{DynamoStore, TxError, build_error, names};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};
use peak_domain::accounts::{Account, AccountStore, AccountWrite};
use peak_domain::cursor;
use peak_domain::ids::TenantId;
use peak_domain::model::user::AccountNumber;
use peak_domain::ports::{Page, PageRequest, StoreError};
use std::collections::HashMap;

const ACCOUNT_SK: &str = "ACCOUNT";
const NAME_SK: &str = "NAME";
const ACCOUNT_ENTITY: &str = "account";
const NAME_ENTITY: &str = "account_name";
/// Cursor tags: which entry a search page ended on.
const NUMBER_TAG: char = 'N';
const NAME_TAG: char = 'M';

fn account_pk(tenant: &TenantId, number: &str) -> String {
    format!("TENANT#{}#DIRECTORY#{number}", tenant.as_str())
}

fn accounts_pk(tenant: &TenantId) -> String {
    format!("TENANT#{}#ACCOUNTS", tenant.as_str())
}

fn children_pk(tenant: &TenantId, parent: &str) -> String {
    format!("TENANT#{}#ACCOUNTS#CHILDREN#{parent}", tenant.as_str())
}

fn key(tenant: &TenantId, number: &str, sk: &str) -> Item {
    HashMap::from([
        (PK.to_owned(), s(account_pk(tenant, number))),
        (SK.to_owned(), s(sk)),
    ])
}

fn body(a: &Account) -> Result<AttributeValue, StoreError> {
    serde_json::to_string(a)
        .map(s)
        .map_err(|e| StoreError::Backend(format!("cannot encode an account: {e}")))
}

fn account_item(a: &Account) -> Result<Item, StoreError> {
    let t = &a.tenant_id;
    let number = a.number.as_str();
    let mut item = key(t, number, ACCOUNT_SK);
    item.insert("entity".into(), s(ACCOUNT_ENTITY));
    item.insert("body".into(), body(a)?);
    item.insert("version".into(), n(a.version));
    item.insert(index::GSI1.1.into(), s(accounts_pk(t)));
    item.insert(
        index::GSI1.2.into(),
        s(format!("{}{KEY_SEP}{number}", a.number_key())),
    );
    if let Some(parent) = &a.parent {
        item.insert(index::GSI3.1.into(), s(children_pk(t, parent.as_str())));
        item.insert(index::GSI3.2.into(), s(number));
    }
    item.insert(index::GSI4.1.into(), s(accounts_pk(t)));
    item.insert(index::GSI4.2.into(), s(a.path_key()));
    Ok(item)
}

fn name_item(a: &Account) -> Result<Item, StoreError> {
    let t = &a.tenant_id;
    let number = a.number.as_str();
    let mut item = key(t, number, NAME_SK);
    item.insert("entity".into(), s(NAME_ENTITY));
    item.insert("body".into(), body(a)?);
    item.insert("number_key".into(), s(a.number_key()));
    item.insert(index::GSI1.1.into(), s(accounts_pk(t)));
    item.insert(
        index::GSI1.2.into(),
        s(format!("{}{KEY_SEP}{number}", a.name.search_key())),
    );
    Ok(item)
}

fn decode(item: &Item) -> Result<Account, StoreError> {
    match item.get("body") {
        Some(AttributeValue::S(body)) => serde_json::from_str(body)
            .map_err(|e| StoreError::Backend(format!("a stored account cannot be read: {e}"))),
        _ => Err(crate::error::malformed("account without a body")),
    }
}

fn string<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

impl DynamoStore {
    fn account_put(
        &self,
        item: Item,
        expected: Option<Option<u64>>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut put = Put::builder().table_name(self.table()).set_item(Some(item));
        match expected {
            None => {}
            Some(None) => put = put.condition_expression("attribute_not_exists(PK)"),
            Some(Some(v)) => {
                put = put
                    .condition_expression("#version = :expected")
                    .set_expression_attribute_names(Some(names(&["version"])))
                    .expression_attribute_values(":expected", n(v));
            }
        }
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(build_error)?)
            .build())
    }

    /// One page of a GSI query (`Limit` = `limit` items read), resuming
    /// after `start`. With `drop_names_of`, the server leaves out name
    /// entries whose account number starts with it (they come back as
    /// number entries), so the page carries only what is kept.
    #[allow(clippy::too_many_arguments)]
    async fn account_query(
        &self,
        op: &str,
        (index, pk_attr, sk_attr): index::Index,
        pk: String,
        begins_with: Option<&str>,
        start: Option<Item>,
        limit: u32,
        drop_names_of: Option<&str>,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let mut condition = format!("#{pk_attr} = :pk");
        let mut query = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(index)
            .expression_attribute_values(":pk", s(pk))
            .set_exclusive_start_key(start)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        let mut attrs = vec![pk_attr];
        if let Some(prefix) = begins_with.filter(|p| !p.is_empty()) {
            condition.push_str(&format!(" AND begins_with(#{sk_attr}, :prefix)"));
            attrs.push(sk_attr);
            query = query.expression_attribute_values(":prefix", s(prefix));
        }
        if let Some(prefix) = drop_names_of {
            attrs.push("entity");
            query = query.expression_attribute_values(":account", s(ACCOUNT_ENTITY));
            // (DynamoDB Local refuses an empty string value: every number
            // starts with "", so then every name entry goes.)
            if prefix.is_empty() {
                query = query.filter_expression("#entity = :account");
            } else {
                attrs.push("number_key");
                query = query
                    .filter_expression("#entity = :account OR NOT begins_with(#number_key, :drop)")
                    .expression_attribute_values(":drop", s(prefix));
            }
        }
        let out = query
            .key_condition_expression(condition)
            .set_expression_attribute_names(Some(names(&attrs)))
            .send()
            .await
            .map_err(|e| crate::error::sdk(op, &e))?;
        Ok((out.items.unwrap_or_default(), out.last_evaluated_key))
    }

    /// Pages through a plain (every item kept) account index: `limit + 1`
    /// read so the page knows whether another follows.
    #[allow(clippy::too_many_arguments)]
    async fn account_page(
        &self,
        op: &str,
        idx: index::Index,
        pk: String,
        begins_with: Option<&str>,
        start: Option<Item>,
        limit: u32,
        position: impl Fn(&Account) -> String,
        list: &str,
        tenant: &TenantId,
    ) -> Result<Page<Account>, StoreError> {
        let mut items = Vec::new();
        let mut start = start;
        loop {
            let want = limit + 1 - items.len() as u32;
            let (got, next) = self
                .account_query(op, idx, pk.clone(), begins_with, start.take(), want, None)
                .await?;
            for item in &got {
                items.push(decode(item)?);
            }
            if items.len() > limit as usize || next.is_none() {
                break;
            }
            // A page cut short by DynamoDB's 1 MB: go on from where it ended.
            start = next;
        }
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next_cursor = more
            .then(|| {
                items
                    .last()
                    .map(|a| cursor::encode(tenant, list, &position(a)))
            })
            .flatten();
        Ok(Page { items, next_cursor })
    }
}

#[async_trait]
impl AccountStore for DynamoStore {
    async fn get_account(
        &self,
        tenant: &TenantId,
        number: &AccountNumber,
    ) -> Result<Option<Account>, StoreError> {
        self.get_item("get account", key(tenant, number.as_str(), ACCOUNT_SK))
            .await?
            .as_ref()
            .map(decode)
            .transpose()
    }

    async fn get_accounts(
        &self,
        tenant: &TenantId,
        numbers: &[AccountNumber],
    ) -> Result<Vec<Account>, StoreError> {
        let mut wanted: Vec<&str> = numbers.iter().map(AccountNumber::as_str).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut out = Vec::new();
        // BatchGetItem takes 100 keys; a user holds at most 25 accounts.
        for chunk in wanted.chunks(100) {
            let keys = chunk.iter().map(|n| key(tenant, n, ACCOUNT_SK)).collect();
            for item in self.batch_get("get accounts", keys).await? {
                out.push(decode(&item)?);
            }
        }
        Ok(out)
    }

    async fn write_account(&self, write: AccountWrite<'_>) -> Result<(), StoreError> {
        let tenant = &write.next.tenant_id;
        let all = write
            .previous
            .into_iter()
            .chain(write.parent)
            .chain(write.moved)
            .chain(std::iter::once(write.next));
        for a in all {
            if &a.tenant_id != tenant {
                return Err(StoreError::Backend("an account of another tenant".into()));
            }
        }
        let mut items = vec![
            self.account_put(
                account_item(write.next)?,
                Some(write.previous.map(|p| p.version)),
            )?,
            self.account_put(name_item(write.next)?, None)?,
        ];
        if let Some(parent) = write.parent {
            let check = ConditionCheck::builder()
                .table_name(self.table())
                .set_key(Some(key(tenant, parent.number.as_str(), ACCOUNT_SK)))
                .condition_expression("#version = :expected")
                .set_expression_attribute_names(Some(names(&["version"])))
                .expression_attribute_values(":expected", n(parent.version))
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().condition_check(check).build());
        }
        for d in write.moved {
            items.push(self.account_put(account_item(d)?, Some(Some(d.version)))?);
            items.push(self.account_put(name_item(d)?, None)?);
        }
        for e in write.audit {
            if &e.tenant_id != tenant {
                return Err(StoreError::Backend(
                    "an audit event of another tenant".into(),
                ));
            }
            let put = Put::builder()
                .table_name(self.table())
                .set_item(Some(audit_item(e)?))
                .condition_expression("attribute_not_exists(PK)")
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        if items.len() > crate::MAX_TRANSACTION_ITEMS {
            return Err(StoreError::Backend(format!(
                "an account write of {} items is over DynamoDB's transaction limit",
                items.len()
            )));
        }
        match self.transact("write account", items).await {
            Ok(()) => Ok(()),
            Err(TxError::Cancelled(r)) if TxError::condition_failed(&r, 0) => {
                match (
                    write.previous,
                    self.get_account(tenant, &write.next.number).await?,
                ) {
                    (None, _) => Err(StoreError::AlreadyExists),
                    (Some(_), None) => Err(StoreError::NotFound),
                    (Some(_), Some(_)) => Err(StoreError::VersionMismatch),
                }
            }
            // The parent or a moved descendant changed since it was read.
            Err(TxError::Cancelled(r)) if r.iter().any(|c| c == "ConditionalCheckFailed") => {
                Err(StoreError::VersionMismatch)
            }
            Err(TxError::Cancelled(r)) => Err(TxError::into_store_error(&r, "write account")),
            Err(TxError::Failed(e)) => Err(e),
        }
    }

    async fn search_accounts(
        &self,
        tenant: &TenantId,
        prefix: &str,
        page: &PageRequest,
    ) -> Result<Page<Account>, StoreError> {
        let list = format!("accounts:{prefix}");
        let pk = accounts_pk(tenant);
        let (_, pk_attr, sk_attr) = index::GSI1;
        let mut start = match &page.cursor {
            None => None,
            Some(c) => {
                let after = cursor::decode(tenant, &list, c)?;
                let mut chars = after.chars();
                let sk = match chars.next() {
                    Some(NUMBER_TAG) => ACCOUNT_SK,
                    Some(NAME_TAG) => NAME_SK,
                    _ => return Err(StoreError::InvalidCursor),
                };
                let position = chars.as_str();
                let (_, number) = position
                    .split_once(KEY_SEP)
                    .ok_or(StoreError::InvalidCursor)?;
                if !position.starts_with(prefix) {
                    return Err(StoreError::InvalidCursor);
                }
                let mut k = key(tenant, number, sk);
                k.insert(pk_attr.into(), s(pk.clone()));
                k.insert(sk_attr.into(), s(position));
                Some(k)
            }
        };
        let limit = page.limit as usize;
        // (account, its cursor position) of each kept entry.
        let mut kept: Vec<(Account, String)> = Vec::new();
        loop {
            // Name entries of number matches are dropped (by the server's
            // filter, after `Limit` counts them), so read more than is left
            // to fill: twice as much, and at least 100 entries.
            let want = (2 * (limit + 1 - kept.len())).max(100) as u32;
            let (got, next) = self
                .account_query(
                    "search accounts",
                    index::GSI1,
                    pk.clone(),
                    Some(prefix),
                    start.take(),
                    want,
                    Some(prefix),
                )
                .await?;
            for item in &got {
                let position = string(item, sk_attr).unwrap_or_default();
                let tag = if string(item, "entity") == Some(NAME_ENTITY) {
                    // (The server's filter has dropped these already.)
                    if string(item, "number_key").is_some_and(|k| k.starts_with(prefix)) {
                        continue;
                    }
                    NAME_TAG
                } else {
                    NUMBER_TAG
                };
                kept.push((decode(item)?, format!("{tag}{position}")));
                if kept.len() > limit {
                    break;
                }
            }
            if kept.len() > limit || next.is_none() {
                break;
            }
            start = next;
        }
        let more = kept.len() > limit;
        kept.truncate(limit);
        let next_cursor = more
            .then(|| kept.last().map(|(_, p)| cursor::encode(tenant, &list, p)))
            .flatten();
        Ok(Page {
            items: kept.into_iter().map(|(a, _)| a).collect(),
            next_cursor,
        })
    }

    async fn child_accounts(
        &self,
        tenant: &TenantId,
        number: &AccountNumber,
        page: &PageRequest,
    ) -> Result<Page<Account>, StoreError> {
        let list = format!("account-children:{}", number.as_str());
        let pk = children_pk(tenant, number.as_str());
        let (_, pk_attr, sk_attr) = index::GSI3;
        let start = match &page.cursor {
            None => None,
            Some(c) => {
                let after = cursor::decode(tenant, &list, c)?;
                let child = AccountNumber::parse("cursor", &after)
                    .map_err(|_| StoreError::InvalidCursor)?;
                let mut k = key(tenant, child.as_str(), ACCOUNT_SK);
                k.insert(pk_attr.into(), s(pk.clone()));
                k.insert(sk_attr.into(), s(child.as_str()));
                Some(k)
            }
        };
        self.account_page(
            "list child accounts",
            index::GSI3,
            pk,
            None,
            start,
            page.limit,
            |a| a.number.as_str().to_owned(),
            &list,
            tenant,
        )
        .await
    }

    async fn descendant_accounts(
        &self,
        tenant: &TenantId,
        number: &AccountNumber,
        page: &PageRequest,
    ) -> Result<Page<Account>, StoreError> {
        let list = format!("account-descendants:{}", number.as_str());
        let Some(root) = self.get_account(tenant, number).await? else {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        };
        let path = root.path_key();
        // Start after the last listed descendant, or after the account
        // itself (the first item of its own range).
        let after = match &page.cursor {
            None => path.clone(),
            Some(c) => cursor::decode(tenant, &list, c)?,
        };
        if !after.starts_with(&path) {
            return Err(StoreError::InvalidCursor);
        }
        let last = after
            .trim_end_matches(peak_domain::accounts::model::PATH_SEP)
            .rsplit(peak_domain::accounts::model::PATH_SEP)
            .next()
            .unwrap_or_default();
        let (_, pk_attr, sk_attr) = index::GSI4;
        let mut start = key(tenant, last, ACCOUNT_SK);
        start.insert(pk_attr.into(), s(accounts_pk(tenant)));
        start.insert(sk_attr.into(), s(after.as_str()));
        self.account_page(
            "list descendant accounts",
            index::GSI4,
            accounts_pk(tenant),
            Some(&path),
            Some(start),
            page.limit,
            Account::path_key,
            &list,
            tenant,
        )
        .await
    }
}
