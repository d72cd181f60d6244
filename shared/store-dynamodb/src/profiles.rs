//! [`ProfileStore`] on the single table: the profile at
//! `TENANT#<tenant>` / `PROFILE#<id>` and its name guard at
//! `PROFILENAME#<lowercased name>`, written together in one transaction;
//! its holder count spread over shard items right after it (src/item.rs).

use crate::error::sdk;
use crate::item;
use crate::item::{
    HOLDER_SHARDS, Item, PROFILE_PREFIX, ProfileItem, ProfileRead, attr, get_s, get_u64,
    holder_shard, holder_shard_key, n, name_guard, name_guard_key, profile_key, profile_sk, s,
    tenant_pk,
};
use crate::{DynamoStore, TxError, build_error, names};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ConditionCheck, Delete, Put, TransactWriteItem, Update};
use peak_domain::cursor;
use peak_domain::ids::{ProfileId, TenantId};
use peak_domain::model::profile::Profile;
use peak_domain::ports::{Page, PageRequest, ProfileStore, StoreError};
use std::collections::HashMap;

/// The list name profile cursors are issued for.
const PROFILES_LIST: &str = "profiles";
/// Attempts of a delete whose item changes between its read and its write.
const DELETE_ATTEMPTS: usize = 3;

impl DynamoStore {
    pub(crate) fn put(&self, item: Item, condition: &str) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Deletes a name guard unless it belongs to another profile (a missing
    /// guard is tolerated, so a damaged item can still be deleted).
    pub(crate) fn delete_guard(
        &self,
        tenant: &TenantId,
        name_key: &str,
        owner: &ProfileId,
    ) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(name_guard_key(tenant, name_key)))
            .condition_expression("attribute_not_exists(PK) OR #profile_id = :owner")
            .set_expression_attribute_names(Some(names(&[attr::PROFILE_ID])))
            .expression_attribute_values(":owner", s(owner.as_str()))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// A profile and its holder shards: one strongly consistent Query of
    /// the items whose sort key starts with `PROFILE#<id>` (ids have one
    /// length, so no other profile's).
    pub(crate) async fn read_profile(
        &self,
        op: &str,
        tenant: &TenantId,
        id: &ProfileId,
    ) -> Result<ProfileRead, StoreError> {
        let id_sk = profile_sk(id);
        let mut read = ProfileRead::default();
        let mut start = None;
        loop {
            let out = self
                .partition_query(tenant_pk(tenant), Some(&id_sk), start)
                .send()
                .await
                .map_err(|e| sdk(op, &e))?;
            for item in out.items.unwrap_or_default() {
                read.add(&id_sk, item)?;
            }
            start = out.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                return Ok(read);
            }
        }
    }

    /// Makes sure holder shard `k` of a profile exists: created (count 0)
    /// in a transaction that checks the profile exists, so a shard never
    /// outlives a delete it raced with. `false` if the profile is gone.
    pub(crate) async fn ensure_holder_shard(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
        k: u32,
    ) -> Result<bool, StoreError> {
        const OP: &str = "create a profile holder shard";
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(profile_key(tenant, id)))
            .condition_expression("attribute_exists(PK)")
            .build()
            .map_err(build_error)?;
        let items = vec![
            TransactWriteItem::builder().condition_check(check).build(),
            self.put(holder_shard(tenant, id, k), "attribute_not_exists(PK)")?,
        ];
        match self.transact(OP, items).await {
            Ok(()) => Ok(true),
            Err(TxError::Failed(e)) => Err(e),
            Err(TxError::Cancelled(r)) if TxError::condition_failed(&r, 0) => Ok(false),
            // Created meanwhile by another write, or a conflict: the
            // caller's write is tried again.
            Err(TxError::Cancelled(_)) => {
                Ok(self.get_item(OP, profile_key(tenant, id)).await?.is_some())
            }
        }
    }

    /// Decides between `NotFound` and `VersionMismatch` after a write
    /// conditioned on `expected` was refused.
    pub(crate) async fn stale_or_missing(
        &self,
        op: &str,
        tenant: &TenantId,
        id: &ProfileId,
        expected: u64,
    ) -> Result<StoreError, StoreError> {
        match self.get_item(op, profile_key(tenant, id)).await? {
            None => Ok(StoreError::NotFound),
            Some(item) if get_u64(&item, attr::VERSION)? != expected => {
                Ok(StoreError::VersionMismatch)
            }
            // Same version again: it changed and changed back in between,
            // or a concurrent write conflicted. Worth a retry.
            Some(_) => Ok(StoreError::Unavailable(format!(
                "{op}: concurrent change, retry"
            ))),
        }
    }

    /// Whether `name_key` is reserved in `tenant` by a profile other than
    /// `except`.
    pub(crate) async fn name_taken(
        &self,
        op: &str,
        tenant: &TenantId,
        name_key: &str,
        except: Option<&ProfileId>,
    ) -> Result<bool, StoreError> {
        Ok(
            match self.get_item(op, name_guard_key(tenant, name_key)).await? {
                None => false,
                Some(guard) => except.is_none_or(|id| {
                    get_s(&guard, attr::PROFILE_ID).map_or(true, |owner| owner != id.as_str())
                }),
            },
        )
    }
}

#[async_trait]
impl ProfileStore for DynamoStore {
    async fn insert_profile(&self, profile: &Profile) -> Result<(), StoreError> {
        const OP: &str = "insert profile";
        let item = ProfileItem::try_from(profile)?;
        let mut items = vec![
            self.put(item.0, "attribute_not_exists(PK)")?,
            self.put(name_guard(profile), "attribute_not_exists(PK)")?,
        ];
        // Its holder shards at once, so the first writes of a bulk job on
        // a new profile do not each find their shard missing (profiles
        // from before the shards get theirs as writes need them).
        for k in 0..HOLDER_SHARDS {
            let shard = holder_shard(&profile.tenant_id, &profile.id, k);
            items.push(self.put(shard, "attribute_not_exists(PK)")?);
        }
        let reasons = match self.transact(OP, items).await {
            Ok(()) => return Ok(()),
            Err(TxError::Failed(e)) => return Err(e),
            Err(TxError::Cancelled(reasons)) => reasons,
        };
        if TxError::condition_failed(&reasons, 0) {
            return Err(StoreError::AlreadyExists);
        }
        if TxError::condition_failed(&reasons, 1) {
            return Err(StoreError::NameTaken);
        }
        if !reasons.is_empty() {
            return Err(TxError::into_store_error(&reasons, OP));
        }
        // No reasons given: find out by reading.
        let key = profile_key(&profile.tenant_id, &profile.id);
        if self.get_item(OP, key).await?.is_some() {
            return Err(StoreError::AlreadyExists);
        }
        let name_key = profile.name.unique_key();
        if self
            .name_taken(OP, &profile.tenant_id, &name_key, None)
            .await?
        {
            return Err(StoreError::NameTaken);
        }
        Err(StoreError::Unavailable(format!(
            "{OP}: transaction cancelled, retry"
        )))
    }

    async fn get_profile(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
    ) -> Result<Option<Profile>, StoreError> {
        self.read_profile("get profile", tenant, id)
            .await?
            .profile()
    }

    async fn list_profiles(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<Profile>, StoreError> {
        const OP: &str = "list profiles";
        let mut start = match &page.cursor {
            None => None,
            Some(raw) => {
                let after = cursor::decode(tenant, PROFILES_LIST, raw)?;
                let after = ProfileId::parse(&after).ok_or(StoreError::InvalidCursor)?;
                Some(profile_key(tenant, &after))
            }
        };
        let limit = page.limit as usize;
        // One more than asked: if it comes, there is a next page. Each
        // profile is followed by its holder shards: reading on to the
        // next profile's item means the last one's count is complete.
        let want = limit + 1;
        let per_profile = 1 + HOLDER_SHARDS as usize;
        let mut reads: Vec<(String, ProfileRead)> = Vec::with_capacity(want);
        loop {
            let out = self
                .partition_query(tenant_pk(tenant), Some(PROFILE_PREFIX), start)
                .limit(
                    i32::try_from((want - reads.len().min(limit)) * per_profile)
                        .unwrap_or(i32::MAX),
                )
                .send()
                .await
                .map_err(|e| sdk(OP, &e))?;
            for item in out.items.unwrap_or_default() {
                let sk = get_s(&item, crate::item::SK)?.to_owned();
                let added = match reads.last_mut() {
                    Some((id_sk, read)) => read.add(id_sk, item.clone())?,
                    None => false,
                };
                // Not the last profile's shard: a profile (or the shards
                // of the one the cursor names, which are skipped).
                if !added && !sk.contains(crate::item::HOLDER_SHARD_INFIX) {
                    let mut read = ProfileRead::default();
                    read.add(&sk, item)?;
                    reads.push((sk, read));
                }
            }
            // A page can also end at 1 MB before the limit: keep reading.
            start = out.last_evaluated_key.filter(|k| !k.is_empty());
            if reads.len() >= want || start.is_none() {
                break;
            }
        }
        let more = reads.len() > limit;
        reads.truncate(limit);
        let profiles = reads
            .into_iter()
            .filter_map(|(_, read)| read.profile().transpose())
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = match (more, profiles.last()) {
            (true, Some(last)) => Some(cursor::encode(tenant, PROFILES_LIST, last.id.as_str())),
            _ => None,
        };
        Ok(Page {
            items: profiles,
            next_cursor,
        })
    }

    async fn update_profile(
        &self,
        previous: &Profile,
        updated: &Profile,
    ) -> Result<(), StoreError> {
        const OP: &str = "update profile";
        if previous.tenant_id != updated.tenant_id || previous.id != updated.id {
            return Err(StoreError::Backend(format!(
                "{OP}: tenant and id cannot change"
            )));
        }
        let (tenant, id) = (&updated.tenant_id, &updated.id);
        let ProfileItem(mut item) = ProfileItem::try_from(updated)?;
        item.remove(item::PK);
        item.remove(item::SK);
        // The holder count is the store's, not the caller's.
        item.remove(attr::HOLDER_COUNT);

        let mut attrs: Vec<String> = item.keys().cloned().collect();
        attrs.sort();
        let mut expression = format!(
            "SET {}",
            attrs
                .iter()
                .map(|a| format!("#{a} = :{a}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut expr_names: HashMap<String, String> =
            attrs.iter().map(|a| (format!("#{a}"), a.clone())).collect();
        if !item.contains_key(attr::DESCRIPTION) {
            expression.push_str(&format!(" REMOVE #{}", attr::DESCRIPTION));
            expr_names.extend(names(&[attr::DESCRIPTION]));
        }
        let mut values: Item = item
            .into_iter()
            .map(|(k, v)| (format!(":{k}"), v))
            .collect();
        values.insert(":expected".to_owned(), n(previous.version));
        expr_names.extend(names(&[attr::VERSION]));
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(profile_key(tenant, id)))
            .update_expression(expression)
            .condition_expression(format!(
                "attribute_exists(PK) AND #{} = :expected",
                attr::VERSION
            ))
            .set_expression_attribute_names(Some(expr_names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(build_error)?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];

        let (old_key, new_key) = (previous.name.unique_key(), updated.name.unique_key());
        let renamed = old_key != new_key;
        if renamed {
            items.push(self.delete_guard(tenant, &old_key, id)?);
            items.push(self.put(name_guard(updated), "attribute_not_exists(PK)")?);
        }

        let reasons = match self.transact(OP, items).await {
            Ok(()) => return Ok(()),
            Err(TxError::Failed(e)) => return Err(e),
            Err(TxError::Cancelled(reasons)) => reasons,
        };
        // A stale or missing profile wins over a taken name: the name may
        // well be taken by the very edit this one is late for.
        if TxError::condition_failed(&reasons, 0) {
            return Err(self
                .stale_or_missing(OP, tenant, id, previous.version)
                .await?);
        }
        if TxError::condition_failed(&reasons, 2) {
            return Err(StoreError::NameTaken);
        }
        if TxError::condition_failed(&reasons, 1) {
            return Err(StoreError::Backend(format!(
                "{OP}: the old name is reserved by another profile"
            )));
        }
        if !reasons.is_empty() {
            return Err(TxError::into_store_error(&reasons, OP));
        }
        // No reasons given: find out by reading.
        let verdict = self
            .stale_or_missing(OP, tenant, id, previous.version)
            .await?;
        if matches!(verdict, StoreError::Unavailable(_))
            && renamed
            && self.name_taken(OP, tenant, &new_key, Some(id)).await?
        {
            return Err(StoreError::NameTaken);
        }
        Err(verdict)
    }

    /// Reads the profile with its holder shards (one Query): refused while
    /// their sum is above zero. Otherwise one transaction deletes the
    /// profile, its name guard and every shard, each conditioned on what
    /// was read (a shard not read must still be absent): a user write that
    /// took the profile up in between changed a shard, so the delete is
    /// cancelled and reads again; one after it finds its shard gone and is
    /// refused (`ProfileMissing`, see src/user_write.rs).
    async fn delete_profile(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError> {
        const OP: &str = "delete profile";
        for _ in 0..DELETE_ATTEMPTS {
            let read = self.read_profile(OP, tenant, id).await?;
            let Some(current) = read.item.clone() else {
                return Err(StoreError::NotFound);
            };
            let version = get_u64(&current, attr::VERSION)?;
            if expected_version.is_some_and(|v| v != version) {
                return Err(StoreError::VersionMismatch);
            }
            let own = get_u64(&current, attr::HOLDER_COUNT)?;
            let shards = read.shards.clone();
            let holders = read.profile()?.map_or(0, |p| p.holder_count);
            if holders > 0 {
                return Err(StoreError::InUse { holders });
            }
            let name_key = get_s(&current, attr::NAME_KEY)?;
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(profile_key(tenant, id)))
                .condition_expression(format!(
                    "#{} = :version AND #{} = :own",
                    attr::VERSION,
                    attr::HOLDER_COUNT
                ))
                .set_expression_attribute_names(Some(names(&[attr::VERSION, attr::HOLDER_COUNT])))
                .expression_attribute_values(":version", n(version))
                .expression_attribute_values(":own", n(own))
                .build()
                .map_err(build_error)?;
            let mut items = vec![
                TransactWriteItem::builder().delete(delete).build(),
                self.delete_guard(tenant, name_key, id)?,
            ];
            for k in 0..HOLDER_SHARDS {
                let b = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(holder_shard_key(tenant, id, k)));
                let b = match shards.iter().find(|(i, _)| *i == k) {
                    Some((_, count)) => b
                        .condition_expression(format!("#{} = :count", attr::HOLDERS))
                        .set_expression_attribute_names(Some(names(&[attr::HOLDERS])))
                        .expression_attribute_values(":count", n(*count)),
                    None => b.condition_expression("attribute_not_exists(PK)"),
                };
                let delete = b.build().map_err(build_error)?;
                items.push(TransactWriteItem::builder().delete(delete).build());
            }
            match self.transact(OP, items).await {
                Ok(()) => return Ok(()),
                Err(TxError::Failed(e)) => return Err(e),
                Err(TxError::Cancelled(reasons)) => {
                    if TxError::condition_failed(&reasons, 1) {
                        return Err(StoreError::Backend(format!(
                            "{OP}: the name is reserved by another profile"
                        )));
                    }
                    let ours = reasons.is_empty()
                        || reasons.iter().any(|r| r == crate::CONDITION_FAILED)
                        || reasons.iter().any(|r| r == "TransactionConflict");
                    if !ours {
                        return Err(TxError::into_store_error(&reasons, OP));
                    }
                    // The profile or a shard changed since it was read:
                    // read again, which reports the right error or tries
                    // again.
                }
            }
        }
        Err(StoreError::Unavailable(format!(
            "{OP}: the profile keeps changing, retry"
        )))
    }

    /// `ADD holders <delta>` on the profile's first shard, conditioned on
    /// the count read (so the sum never goes below zero), with the profile
    /// checked in the same transaction. For operators and tests: user
    /// writes change their own shard (src/user_write.rs).
    async fn change_profile_holders(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
        delta: i64,
    ) -> Result<(), StoreError> {
        const OP: &str = "change profile holders";
        for _ in 0..DELETE_ATTEMPTS {
            let read = self.read_profile(OP, tenant, id).await?;
            if read.item.is_none() {
                return Err(StoreError::NotFound);
            }
            let first = read.shards.iter().find(|(k, _)| *k == 0).map(|(_, c)| *c);
            let total = read.profile()?.map_or(0, |p| p.holder_count);
            if i64::try_from(total)
                .unwrap_or(i64::MAX)
                .saturating_add(delta)
                < 0
            {
                return Err(StoreError::Backend(format!(
                    "{OP}: the holder count cannot go below zero"
                )));
            }
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(profile_key(tenant, id)))
                .condition_expression("attribute_exists(PK)")
                .build()
                .map_err(build_error)?;
            let b = Update::builder()
                .table_name(&self.table)
                .set_key(Some(holder_shard_key(tenant, id, 0)))
                .update_expression(format!(
                    "SET #{} = :entity ADD #{} :delta",
                    attr::ENTITY,
                    attr::HOLDERS
                ))
                .set_expression_attribute_names(Some(names(&[attr::ENTITY, attr::HOLDERS])))
                .expression_attribute_values(":entity", s(crate::item::HOLDER_SHARD_ENTITY))
                .expression_attribute_values(":delta", n(delta));
            let b = match first {
                Some(count) => b
                    .condition_expression(format!("#{} = :count", attr::HOLDERS))
                    .expression_attribute_values(":count", n(count)),
                None => b.condition_expression("attribute_not_exists(PK)"),
            };
            let update = b.build().map_err(build_error)?;
            let items = vec![
                TransactWriteItem::builder().condition_check(check).build(),
                TransactWriteItem::builder().update(update).build(),
            ];
            match self.transact(OP, items).await {
                Ok(()) => return Ok(()),
                Err(TxError::Failed(e)) => return Err(e),
                Err(TxError::Cancelled(r)) if TxError::condition_failed(&r, 0) => {
                    return Err(StoreError::NotFound);
                }
                // The shard changed since it was read: again.
                Err(TxError::Cancelled(_)) => {}
            }
        }
        Err(StoreError::Unavailable(format!(
            "{OP}: the count keeps changing, retry"
        )))
    }
}
