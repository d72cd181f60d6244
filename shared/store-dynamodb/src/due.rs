//! Work waiting in GSI2 (pending emails, owed identity provider work and
//! deliveries, runnable bulk jobs): the sort key starts with the time the
//! item is due, so "due now" is one key-bounded Query per partition, read
//! in order across pages until the limit.
//!
//! Pending emails and owed identity-provider work are each spread over
//! [`PENDING_SHARDS`] partitions (`OUTBOX#PENDING#<k>`, `IDPWORK#PENDING#<k>`,
//! `k` from a hash of the item's id): one partition holding every tenant's
//! pending work, with ever-increasing sort keys, takes every write at its
//! end, where DynamoDB cannot split it for heat, so one tenant's big import
//! throttled every tenant's invitations and suspensions. Readers query all
//! shards at once and merge them by sort key ([`DynamoStore::pending_items`]).

use crate::DynamoStore;
use crate::error::sdk;
use crate::item::{Item, get_s, s};
use crate::user_item::index;
use futures_util::future::try_join_all;
use peak_domain::ports::StoreError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The partitions pending emails (and, separately, owed identity-provider
/// work) are spread over. Why 16: one index partition takes about 1,000
/// WCU/s, and an email costs about 4 index writes on its way (queued,
/// claimed, settled: a claim moves its sort key, a delete plus a put), so
/// one partition carried about 250 emails/s for every tenant together;
/// sixteen carry about 4,000/s, above any SES account's send rate and the
/// rate a bulk job stages rows. A reader pays one Query per shard, sent at
/// once (one round trip; an empty partition costs 0.5 RCU), so more shards
/// would cost every sweep more for throughput nothing here can use.
pub const PENDING_SHARDS: u32 = 16;

/// How long a store that found an unsharded (pre-sharding) pending
/// partition empty stops reading it. Nothing writes there any more but a
/// version still running during a deployment, whose items then wait at
/// most this long (or for a fresh process).
const LEGACY_RECHECK: Duration = Duration::from_secs(600);

pub use crate::shard::shard_of;

/// The pending partition of the item with id `key`: `<base>#<k>`.
pub fn pending_pk(base: &str, key: &str) -> String {
    format!("{base}#{}", shard_of(key, PENDING_SHARDS))
}

/// The GSI2 sort key of a pending outbox email: its due time (Unix ms,
/// zero-padded to 13 digits, so text order is time order until the year
/// 2286), then its id. A fresh email is due at 0: fresh emails come first,
/// in creation (ULID) order. Emails stored before due times existed have
/// the bare id as sort key; a ULID starts with `0` and sorts below every
/// time since 2001, so they count as due.
pub fn outbox_due_sk(due_ms: i64, id: &str) -> String {
    format!("{:013}#{id}", due_ms.max(0))
}

/// The exclusive upper bound of the pending sort keys due at `now_ms`.
pub fn outbox_due_bound(now_ms: i64) -> String {
    format!("{:013}", now_ms.max(0).saturating_add(1))
}

/// When each unsharded pending partition of this store was last found
/// empty (shared by the clones of a store).
#[derive(Debug, Default, Clone)]
pub(crate) struct LegacyPending(Arc<Mutex<HashMap<&'static str, Instant>>>);

impl LegacyPending {
    fn skip(&self, base: &'static str) -> bool {
        self.0
            .lock()
            .map(|m| m.get(base).is_some_and(|at| at.elapsed() < LEGACY_RECHECK))
            .unwrap_or(false)
    }

    fn found_empty(&self, base: &'static str) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(base, Instant::now());
        }
    }
}

/// One partition being read by [`DynamoStore::pending_items`].
struct Source {
    pk: String,
    /// The unsharded partition: read without the key bound, so an empty
    /// answer means empty (its not-yet-due items are dropped here).
    legacy: bool,
    start: Option<Item>,
    last_sk: Option<String>,
    done: bool,
}

impl DynamoStore {
    /// Up to `limit` items of GSI2 partition `partition`, in sort-key order;
    /// with `due_before`, only those whose sort key sorts before it.
    pub(crate) async fn gsi2_items<T>(
        &self,
        what: &'static str,
        partition: &str,
        due_before: Option<String>,
        limit: u32,
        read: impl Fn(&Item) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let limit = limit as usize;
        let mut found = Vec::new();
        let mut start = None;
        while found.len() < limit {
            let want = i32::try_from(limit - found.len()).unwrap_or(i32::MAX);
            let (items, next) = self
                .query_gsi2_page(what, partition, due_before.clone(), want, start)
                .await?;
            for item in &items {
                found.push(read(item)?);
            }
            start = next;
            if start.is_none() {
                break;
            }
        }
        found.truncate(limit);
        Ok(found)
    }

    /// Up to `limit` items of the sharded pending partitions of `base`
    /// (and of the unsharded `base` itself, where items written before the
    /// sharding wait), in sort-key order across all of them: the first
    /// `limit` that one partition would have given.
    ///
    /// Round after round, every shard that could still hold one of the
    /// first `limit` is read at once (one Query each, `Limit` an equal
    /// share of what is missing): a shard is done when its partition ends,
    /// or when its last key read sorts after the `limit`-th key found. A
    /// sweep of evenly spread work takes one round; the items read beyond
    /// `limit` are at most one share per shard.
    pub(crate) async fn pending_items<T>(
        &self,
        what: &'static str,
        base: &'static str,
        due_before: Option<String>,
        limit: u32,
        read: impl Fn(&Item) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let limit = limit as usize;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let source = |pk: String, legacy: bool| Source {
            pk,
            legacy,
            start: None,
            last_sk: None,
            done: false,
        };
        let mut sources: Vec<Source> = (0..PENDING_SHARDS)
            .map(|k| source(format!("{base}#{k}"), false))
            .collect();
        if !self.legacy_pending.skip(base) {
            sources.push(source(base.to_owned(), true));
        }
        let sk_attr = index::GSI2.2;
        let mut found: Vec<(String, T)> = Vec::new();
        let mut legacy_read_nothing = true;
        loop {
            found.sort_by(|a, b| a.0.cmp(&b.0));
            let cutoff = (found.len() >= limit).then(|| found[limit - 1].0.clone());
            let active: Vec<usize> = (0..sources.len())
                .filter(|&i| {
                    let src = &sources[i];
                    !src.done
                        && match (&cutoff, &src.last_sk) {
                            (Some(c), Some(last)) => last < c,
                            _ => true,
                        }
                })
                .collect();
            if active.is_empty() {
                break;
            }
            let missing = limit.saturating_sub(found.len()).max(1);
            let share = i32::try_from(missing.div_ceil(active.len())).unwrap_or(i32::MAX);
            let queries = active.iter().map(|&i| {
                let src = &sources[i];
                let bound = if src.legacy { None } else { due_before.clone() };
                self.query_gsi2_page(what, &src.pk, bound, share, src.start.clone())
            });
            let pages = try_join_all(queries).await?;
            for (&i, (items, next)) in active.iter().zip(pages) {
                let src = &mut sources[i];
                src.start = next;
                src.done = src.start.is_none();
                if src.legacy && !items.is_empty() {
                    legacy_read_nothing = false;
                }
                for item in &items {
                    let sk = get_s(item, sk_attr)?.to_owned();
                    if src.legacy && due_before.as_ref().is_some_and(|b| &sk >= b) {
                        // Not due yet, nor is anything after it.
                        src.done = true;
                        break;
                    }
                    src.last_sk = Some(sk.clone());
                    found.push((sk, read(item)?));
                }
            }
        }
        if legacy_read_nothing && sources.last().is_some_and(|s| s.legacy) {
            self.legacy_pending.found_empty(base);
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found.truncate(limit);
        Ok(found.into_iter().map(|(_, t)| t).collect())
    }

    /// One Query page of GSI2 partition `pk` (sort keys below `due_before`
    /// when given): its items and where the next page starts.
    async fn query_gsi2_page(
        &self,
        what: &'static str,
        pk: &str,
        due_before: Option<String>,
        limit: i32,
        start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let (name, pk_attr, sk_attr) = index::GSI2;
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(name)
            .expression_attribute_names("#kpk", pk_attr)
            .expression_attribute_values(":kpk", s(pk))
            .scan_index_forward(true)
            .limit(limit.max(1))
            .set_exclusive_start_key(start);
        q = match due_before {
            Some(b) => q
                .key_condition_expression("#kpk = :kpk AND #ksk < :due")
                .expression_attribute_names("#ksk", sk_attr)
                .expression_attribute_values(":due", s(b)),
            None => q.key_condition_expression("#kpk = :kpk"),
        };
        let out = q.send().await.map_err(|e| sdk(what, &e))?;
        let next = out.last_evaluated_key.filter(|k| !k.is_empty());
        Ok((out.items.unwrap_or_default(), next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        // Pinned: an item's shard must never change between versions.
        assert_eq!(pending_pk("OUTBOX#PENDING", "a"), "OUTBOX#PENDING#12");
        let mut counts = [0u32; PENDING_SHARDS as usize];
        for i in 0..16_000 {
            counts[shard_of(&ulid_like(i), PENDING_SHARDS) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }

    fn ulid_like(i: u32) -> String {
        format!("01JF{i:022}")
    }
}
