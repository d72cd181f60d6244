//! An in-memory [`ProfileStore`] + [`UserStore`](peak_domain::ports::UserStore) (each of its ports) for the
//! handler benchmarks.
//!
//! **A benchmark harness, not a product store.** It exists so a benchmark
//! measures the CPU a handler spends (routing, token verification, actor
//! resolution, use case, JSON) with no store I/O at all. It is not run
//! against `peak-store-contract` and must not be used to serve requests.
//!
//! Fidelity is what the benchmarked routes need, and no more:
//!
//! - users by id, by identity-provider subject and by normalized email
//!   (hash lookups, as the real stores' keys and indexes are);
//! - `list_users` in (name key, id) order, or (normalized email, id) order
//!   with `email_prefix`, filtered by [`UserQuery::matches`], resumed from a
//!   cursor, from an ordered index (so a page does not sort the tenant);
//! - `write_user` creates or replaces (version check, email guard, subject
//!   index, profile holder counts); a delete, and the audit events and
//!   outbox emails of a write, are only counted, not kept;
//! - profiles by id and `insert_profile` (name unique ignoring case);
//! - idempotency keys (claim, complete, release; expiry honoured).
//!
//! Owed identity-provider work is not recorded (no benchmarked route reads it).
//!
//! Anything else answers `StoreError::Backend("not used by the benchmarks")`.
//! One `std::sync::Mutex` guards everything; no call awaits while holding it.

use async_trait::async_trait;
use peak_domain::audit::AuditEvent;
use peak_domain::cursor;
use peak_domain::idp_work::{IdpWork, IdpWorkItem};
use peak_domain::ids::{ProfileId, TenantId};
use peak_domain::model::delivery::{IdpDelivery, Recorded};
use peak_domain::model::profile::Profile;
use peak_domain::model::user::{Email, User, UserId, UserQuery};
use peak_domain::outbox::{FailedEmail, OutboxClaim, OutboxEmail};
use peak_domain::ports::{
    AuditLog, DeliveryLog, IdempotencyClaim, IdempotencyKeys, IdpWorkQueue, LoginLog, OutboxQueue,
    Page, PageRequest, ProfileStore, RateLimits, SavedResponse, StoreError, UserRecords, UserWrite,
};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use time::OffsetDateTime;

const USERS_LIST: &str = "users";
const USERS_BY_EMAIL_LIST: &str = "users-by-email";

fn not_used() -> StoreError {
    StoreError::Backend("not used by the benchmarks".to_owned())
}

/// (tenant, id) or (tenant, lookup value).
type Key = (String, String);

fn key(tenant: &TenantId, value: &str) -> Key {
    (tenant.as_str().to_owned(), value.to_owned())
}

/// An entry of an ordered list index: (tenant, sort key, user id).
type IndexEntry = (String, String, String);

struct Idempotency {
    fingerprint: String,
    lease_expires_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    response: Option<SavedResponse>,
}

#[derive(Default)]
struct Inner {
    profiles: HashMap<Key, Profile>,
    /// (tenant, lower-cased profile name) → profile id.
    profile_names: HashMap<Key, String>,
    users: HashMap<Key, User>,
    by_subject: HashMap<Key, String>,
    by_email: HashMap<Key, String>,
    by_name_key: BTreeSet<IndexEntry>,
    by_email_key: BTreeSet<IndexEntry>,
    idempotency: HashMap<Key, Idempotency>,
    audit_events: u64,
    outbox_emails: u64,
}

/// See the module documentation: benchmark harness only.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave the maps half-written in a way the
        // benchmarks care about.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many users the store holds (all tenants).
    pub fn user_count(&self) -> usize {
        self.lock().users.len()
    }

    /// How many audit events and outbox emails writes have carried.
    pub fn written_side_effects(&self) -> (u64, u64) {
        let inner = self.lock();
        (inner.audit_events, inner.outbox_emails)
    }
}

impl Inner {
    fn index(&mut self, u: &User) {
        let t = u.tenant_id.as_str().to_owned();
        let id = u.id.as_str().to_owned();
        self.by_email
            .insert((t.clone(), u.email.normalized()), id.clone());
        if let Some(subject) = &u.idp_subject {
            self.by_subject
                .insert((t.clone(), subject.clone()), id.clone());
        }
        self.by_name_key
            .insert((t.clone(), u.name_key(), id.clone()));
        self.by_email_key.insert((t, u.email.normalized(), id));
    }

    fn unindex(&mut self, u: &User) {
        let t = u.tenant_id.as_str().to_owned();
        let id = u.id.as_str().to_owned();
        self.by_email.remove(&(t.clone(), u.email.normalized()));
        if let Some(subject) = &u.idp_subject {
            self.by_subject.remove(&(t.clone(), subject.clone()));
        }
        self.by_name_key
            .remove(&(t.clone(), u.name_key(), id.clone()));
        self.by_email_key.remove(&(t, u.email.normalized(), id));
    }

    fn user_by(
        &self,
        index: &HashMap<Key, String>,
        tenant: &TenantId,
        value: &str,
    ) -> Option<User> {
        let id = index.get(&key(tenant, value))?;
        self.users.get(&key(tenant, id)).cloned()
    }
}

#[async_trait]
impl ProfileStore for MemoryStore {
    async fn insert_profile(&self, profile: &Profile) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let id = key(&profile.tenant_id, profile.id.as_str());
        let name = key(&profile.tenant_id, &profile.name.as_str().to_lowercase());
        if inner.profiles.contains_key(&id) {
            return Err(StoreError::AlreadyExists);
        }
        if inner.profile_names.contains_key(&name) {
            return Err(StoreError::NameTaken);
        }
        inner
            .profile_names
            .insert(name, profile.id.as_str().to_owned());
        inner.profiles.insert(id, profile.clone());
        Ok(())
    }

    async fn get_profile(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
    ) -> Result<Option<Profile>, StoreError> {
        Ok(self.lock().profiles.get(&key(tenant, id.as_str())).cloned())
    }

    async fn list_profiles(
        &self,
        _tenant: &TenantId,
        _page: &PageRequest,
    ) -> Result<Page<Profile>, StoreError> {
        Err(not_used())
    }

    async fn update_profile(
        &self,
        _previous: &Profile,
        _updated: &Profile,
    ) -> Result<(), StoreError> {
        Err(not_used())
    }

    async fn delete_profile(
        &self,
        _tenant: &TenantId,
        _id: &ProfileId,
        _expected_version: Option<u64>,
    ) -> Result<(), StoreError> {
        Err(not_used())
    }

    async fn change_profile_holders(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
        delta: i64,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let profile = inner
            .profiles
            .get_mut(&key(tenant, id.as_str()))
            .ok_or(StoreError::NotFound)?;
        profile.holder_count = profile.holder_count.saturating_add_signed(delta);
        Ok(())
    }
}

#[async_trait]
impl UserRecords for MemoryStore {
    async fn write_user(&self, write: UserWrite<'_>) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let (tenant, id) = match (write.previous, write.next) {
            (Some(u), _) | (None, Some(u)) => (&u.tenant_id, &u.id),
            (None, None) => return Ok(()),
        };
        let user_key = key(tenant, id.as_str());
        let stored = inner.users.get(&user_key).cloned();
        match (write.previous, &stored) {
            (None, Some(_)) => return Err(StoreError::AlreadyExists),
            (Some(_), None) => return Err(StoreError::NotFound),
            (Some(p), Some(s)) if p.version != s.version => {
                return Err(StoreError::VersionMismatch);
            }
            _ => {}
        }
        if let Some(next) = write.next {
            let email_owner = inner.by_email.get(&key(tenant, &next.email.normalized()));
            if email_owner.is_some_and(|owner| owner != id.as_str()) {
                return Err(StoreError::EmailTaken);
            }
            if !inner
                .profiles
                .contains_key(&key(tenant, next.profile_id.as_str()))
            {
                return Err(StoreError::ProfileMissing);
            }
        }
        // Checks done: apply everything.
        if let Some(old) = &stored {
            inner.unindex(old);
            if let Some(p) = inner
                .profiles
                .get_mut(&key(tenant, old.profile_id.as_str()))
            {
                p.holder_count = p.holder_count.saturating_sub(1);
            }
            inner.users.remove(&user_key);
        }
        if let Some(next) = write.next {
            if let Some(p) = inner
                .profiles
                .get_mut(&key(tenant, next.profile_id.as_str()))
            {
                p.holder_count += 1;
            }
            inner.index(next);
            inner.users.insert(user_key, next.clone());
        }
        inner.audit_events += write.audit.len() as u64;
        inner.outbox_emails += write.outbox.len() as u64;
        Ok(())
    }

    async fn get_user(&self, tenant: &TenantId, id: &UserId) -> Result<Option<User>, StoreError> {
        Ok(self.lock().users.get(&key(tenant, id.as_str())).cloned())
    }

    async fn find_user_by_email(
        &self,
        tenant: &TenantId,
        email: &Email,
    ) -> Result<Option<User>, StoreError> {
        let inner = self.lock();
        Ok(inner.user_by(&inner.by_email, tenant, &email.normalized()))
    }

    async fn find_user_by_subject(
        &self,
        tenant: &TenantId,
        subject: &str,
    ) -> Result<Option<User>, StoreError> {
        let inner = self.lock();
        Ok(inner.user_by(&inner.by_subject, tenant, subject))
    }

    async fn find_user_by_invitation(&self, _token_hash: &str) -> Result<Option<User>, StoreError> {
        Err(not_used())
    }

    /// Walks the ordered index from the cursor, filtering, until a page and
    /// one more are found (the one more says whether there is a next page).
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
        let t = tenant.as_str().to_owned();
        // Resume strictly after the cursor's (sort key, id); the empty
        // string sorts before every key.
        let (after_key, after_id, resuming) = match &page.cursor {
            Some(raw) => {
                let after = cursor::decode(tenant, list, raw)?;
                let (k, id): (String, String) =
                    parse_cursor_key(&after).ok_or(StoreError::InvalidCursor)?;
                (k, id, true)
            }
            None => (String::new(), String::new(), false),
        };
        let limit = page.limit.clamp(1, PageRequest::MAX_LIMIT) as usize;
        let inner = self.lock();
        let index = if by_email {
            &inner.by_email_key
        } else {
            &inner.by_name_key
        };
        let start = (t.clone(), after_key, after_id);
        let mut items = Vec::with_capacity(limit + 1);
        let mut last_key = None;
        for entry in index.range(start.clone()..) {
            if entry.0 != t {
                break;
            }
            if resuming && *entry == start {
                continue;
            }
            let Some(user) = inner.users.get(&(t.clone(), entry.2.clone())) else {
                continue;
            };
            if !query.matches(user) {
                continue;
            }
            if items.len() == limit {
                // There is at least one more: the page ends at the last kept.
                let next = last_key.map(|(k, id): (&String, &String)| {
                    cursor::encode(tenant, list, &cursor_key(k, id))
                });
                return Ok(Page {
                    items,
                    next_cursor: next,
                });
            }
            items.push(user.clone());
            last_key = Some((&entry.1, &entry.2));
        }
        Ok(Page {
            items,
            next_cursor: None,
        })
    }
}

#[async_trait]
impl AuditLog for MemoryStore {
    async fn list_audit(
        &self,
        _tenant: &TenantId,
        _user: Option<&UserId>,
        _page: &PageRequest,
    ) -> Result<Page<AuditEvent>, StoreError> {
        Err(not_used())
    }
}

#[async_trait]
impl OutboxQueue for MemoryStore {
    async fn pending_outbox(
        &self,
        _limit: u32,
        _now: OffsetDateTime,
    ) -> Result<Vec<OutboxEmail>, StoreError> {
        Err(not_used())
    }

    async fn claim_outbox(
        &self,
        _tenant: &TenantId,
        _id: &str,
        _now: OffsetDateTime,
        _lease_secs: u64,
    ) -> Result<OutboxClaim, StoreError> {
        Err(not_used())
    }

    async fn complete_outbox(
        &self,
        _tenant: &TenantId,
        _id: &str,
        _message_id: &str,
    ) -> Result<(), StoreError> {
        Err(not_used())
    }

    async fn fail_outbox(
        &self,
        _tenant: &TenantId,
        _id: &str,
        _reason: &str,
        _permanent: bool,
        _retry_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        Err(not_used())
    }

    async fn defer_outbox(
        &self,
        _tenant: &TenantId,
        _id: &str,
        _reason: &str,
        _retry_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        Err(not_used())
    }

    async fn failed_outbox(&self, _limit: u32) -> Result<Vec<FailedEmail>, StoreError> {
        Err(not_used())
    }

    async fn failed_outbox_of(
        &self,
        _tenant: &TenantId,
        _page: &PageRequest,
    ) -> Result<Page<FailedEmail>, StoreError> {
        Err(not_used())
    }

    async fn failed_email(
        &self,
        _tenant: &TenantId,
        _id: &str,
    ) -> Result<Option<FailedEmail>, StoreError> {
        Err(not_used())
    }

    async fn retire_failed_outbox(
        &self,
        _tenant: &TenantId,
        _id: &str,
    ) -> Result<bool, StoreError> {
        Err(not_used())
    }
}

#[async_trait]
impl IdempotencyKeys for MemoryStore {
    async fn claim_idempotency_key(
        &self,
        tenant: &TenantId,
        key_: &str,
        fingerprint: &str,
        now: OffsetDateTime,
        lease_secs: u64,
        ttl_secs: u64,
    ) -> Result<IdempotencyClaim, StoreError> {
        let mut inner = self.lock();
        let k = key(tenant, key_);
        if let Some(held) = inner.idempotency.get(&k)
            && held.expires_at > now
            && (held.response.is_some() || held.lease_expires_at > now)
        {
            return Ok(if held.fingerprint != fingerprint {
                IdempotencyClaim::Mismatch
            } else {
                match &held.response {
                    Some(saved) => IdempotencyClaim::Completed(saved.clone()),
                    None => IdempotencyClaim::InProgress,
                }
            });
        }
        let secs = |s: u64| time::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX));
        inner.idempotency.insert(
            k,
            Idempotency {
                fingerprint: fingerprint.to_owned(),
                lease_expires_at: now.saturating_add(secs(lease_secs)),
                expires_at: now.saturating_add(secs(ttl_secs)),
                response: None,
            },
        );
        Ok(IdempotencyClaim::Claimed)
    }

    async fn complete_idempotency_key(
        &self,
        tenant: &TenantId,
        key_: &str,
        response: &SavedResponse,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let held = inner
            .idempotency
            .get_mut(&key(tenant, key_))
            .ok_or(StoreError::NotFound)?;
        held.response = Some(response.clone());
        Ok(())
    }

    async fn release_idempotency_key(
        &self,
        tenant: &TenantId,
        key_: &str,
    ) -> Result<(), StoreError> {
        self.lock().idempotency.remove(&key(tenant, key_));
        Ok(())
    }
}

#[async_trait]
impl RateLimits for MemoryStore {
    async fn take_rate_limit(
        &self,
        _bucket: &str,
        _now: OffsetDateTime,
        _window_secs: u64,
        _max: u32,
    ) -> Result<bool, StoreError> {
        Err(not_used())
    }
}

#[async_trait]
impl IdpWorkQueue for MemoryStore {
    async fn pending_idp_work(
        &self,
        _limit: u32,
        _now: OffsetDateTime,
    ) -> Result<Vec<IdpWorkItem>, StoreError> {
        Err(not_used())
    }

    async fn claim_idp_work(
        &self,
        _tenant: &TenantId,
        _user: &UserId,
        _now: OffsetDateTime,
        _lease_secs: u64,
    ) -> Result<Option<IdpWorkItem>, StoreError> {
        Err(not_used())
    }

    async fn complete_idp_work(
        &self,
        _work: &IdpWork,
        _notes: &[String],
    ) -> Result<bool, StoreError> {
        Err(not_used())
    }

    async fn fail_idp_work(
        &self,
        _work: &IdpWork,
        _reason: &str,
        _retry_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        Err(not_used())
    }

    async fn list_idp_work(&self, _limit: u32) -> Result<Vec<IdpWorkItem>, StoreError> {
        Err(not_used())
    }

    async fn idp_work_of(
        &self,
        _tenant: &TenantId,
        _user: &UserId,
    ) -> Result<Option<IdpWorkItem>, StoreError> {
        Err(not_used())
    }

    async fn idp_work_of_tenant(
        &self,
        _tenant: &TenantId,
        _page: &PageRequest,
    ) -> Result<Page<IdpWorkItem>, StoreError> {
        Err(not_used())
    }

    async fn retry_idp_work_now(
        &self,
        _tenant: &TenantId,
        _user: &UserId,
        _audit: &AuditEvent,
    ) -> Result<Option<IdpWorkItem>, StoreError> {
        Err(not_used())
    }
}

#[async_trait]
impl LoginLog for MemoryStore {
    async fn record_login(
        &self,
        _tenant: &TenantId,
        _user: &UserId,
        _at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        Err(not_used())
    }
}

#[async_trait]
impl DeliveryLog for MemoryStore {
    async fn record_delivery(
        &self,
        _delivery: &IdpDelivery,
        _now: OffsetDateTime,
        _ttl_secs: u64,
    ) -> Result<Recorded, StoreError> {
        Err(not_used())
    }

    async fn claim_delivery(
        &self,
        _id: &str,
        _now: OffsetDateTime,
        _lease_secs: u64,
    ) -> Result<Option<(IdpDelivery, u32)>, StoreError> {
        Err(not_used())
    }

    async fn complete_delivery(&self, _id: &str, _outcome: &str) -> Result<(), StoreError> {
        Err(not_used())
    }

    async fn fail_delivery(
        &self,
        _id: &str,
        _reason: &str,
        _retry_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        Err(not_used())
    }

    async fn pending_deliveries(
        &self,
        _limit: u32,
        _now: OffsetDateTime,
    ) -> Result<Vec<IdpDelivery>, StoreError> {
        Err(not_used())
    }
}

/// The cursor's "after" text: sort key and id, joined by a NUL (which
/// neither a name key nor an email nor an id contains).
fn cursor_key(sort_key: &str, id: &str) -> String {
    format!("{sort_key}\u{0}{id}")
}

fn parse_cursor_key(raw: &str) -> Option<(String, String)> {
    let (k, id) = raw.split_once('\u{0}')?;
    Some((k.to_owned(), id.to_owned()))
}

/// Bulk-invite jobs are not benchmarked.
#[async_trait]
impl peak_domain::ports::JobStore for MemoryStore {
    async fn create_job(&self, _job: &peak_domain::bulk_job::BulkJob) -> Result<(), StoreError> {
        Err(not_used())
    }

    async fn get_job(
        &self,
        _tenant: &TenantId,
        _id: &str,
    ) -> Result<Option<peak_domain::bulk_job::BulkJob>, StoreError> {
        Err(not_used())
    }

    async fn update_job(
        &self,
        _previous_version: u64,
        _job: &peak_domain::bulk_job::BulkJob,
    ) -> Result<(), StoreError> {
        Err(not_used())
    }

    async fn put_job_entries(
        &self,
        _tenant: &TenantId,
        _job_id: &str,
        _entries: &[peak_domain::bulk_job::JobEntry],
    ) -> Result<(), StoreError> {
        Err(not_used())
    }

    async fn list_job_entries(
        &self,
        _tenant: &TenantId,
        _job_id: &str,
        _after_row: u32,
        _limit: u32,
    ) -> Result<Vec<peak_domain::bulk_job::JobEntry>, StoreError> {
        Err(not_used())
    }

    async fn runnable_jobs(
        &self,
        _now: OffsetDateTime,
        _limit: u32,
    ) -> Result<Vec<peak_domain::bulk_job::BulkJob>, StoreError> {
        Err(not_used())
    }
}

/// The benchmarks' tenants have no record: the deployment's defaults apply,
/// as for any tenant from before tenants were data (one lookup per request,
/// as in production).
#[async_trait]
impl peak_domain::tenants::TenantStore for MemoryStore {
    async fn create_tenant(
        &self,
        _: &peak_domain::model::tenant::Tenant,
    ) -> Result<(), StoreError> {
        Err(StoreError::Backend(
            "the benchmark store keeps no tenants".into(),
        ))
    }
    async fn get_tenant(
        &self,
        _: &TenantId,
    ) -> Result<Option<peak_domain::model::tenant::Tenant>, StoreError> {
        Ok(None)
    }
    async fn list_tenants(
        &self,
        _: &PageRequest,
    ) -> Result<Page<peak_domain::model::tenant::Tenant>, StoreError> {
        Ok(Page {
            items: Vec::new(),
            next_cursor: None,
        })
    }
    async fn update_tenant(
        &self,
        _: u64,
        _: &peak_domain::model::tenant::Tenant,
        _: &[peak_domain::audit::AuditEvent],
    ) -> Result<(), StoreError> {
        Err(StoreError::NotFound)
    }
}
