//! [`CallerStore`] on the single table: the tenant record and the subject
//! item, read with one `BatchGetItem` (one round trip).
//!
//! The subject item (`TENANT#<t>#SUBJECT#<subject>` / `GUARD`) is the
//! subject's uniqueness guard and carries a copy of every attribute of the
//! user holding it, as membership items do. Every user write of a user with
//! a subject rewrites it in the same transaction as the user item
//! (`user_write::subject::plan_subject`), so the copy is never older than the user: a
//! suspension, a role or profile change is seen by the very next request.
//! It costs one more item (about as big as the user) in each such write;
//! user writes are rare beside requests, each of which authenticates.
//!
//! Subject items written before the copy existed hold only `tenant_id` and
//! `user_id`. They are read as before (the user's partition, one more round
//! trip) and get their copy with the user's next write: no backfill has to
//! run before this code serves, nothing is ever read stale, and the cost of
//! an old item is one round trip until its user is next written.

use crate::error::backoff;
use crate::error::{malformed, sdk};
use crate::item::{Item, SK, get_s, s};
use crate::user_item::{self as ui, GUARD_SK, USER_ENTITY, attr};
use crate::{DynamoStore, build_error};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::KeysAndAttributes;
use peak_domain::ids::TenantId;
use peak_domain::model::user::User;
use peak_domain::ports::{CallerRecords, CallerStore};
use peak_domain::ports::{StoreError, UserRecords};

/// Attempts at keys a `BatchGetItem` leaves unprocessed.
const BATCH_ATTEMPTS: u32 = 8;

/// The user a subject item's copy holds; `None` for an item from before
/// the copy (no `version`).
fn copied_user(item: &Item) -> Result<Option<User>, StoreError> {
    if !item.contains_key(attr::VERSION) {
        return Ok(None);
    }
    let mut user = item.clone();
    user.insert(attr::ENTITY.to_owned(), s(USER_ENTITY));
    ui::user_from_item(&user).map(Some)
}

impl DynamoStore {
    /// The items at `keys` that exist, strongly consistent, retrying what
    /// the server leaves unprocessed.
    pub(crate) async fn batch_get(
        &self,
        op: &str,
        mut keys: Vec<Item>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        for attempt in 0..BATCH_ATTEMPTS {
            let request = KeysAndAttributes::builder()
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
                .map_err(|e| sdk(op, &e))?;
            found.extend(
                out.responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
            keys = out
                .unprocessed_keys()
                .and_then(|u| u.get(&self.table))
                .map(|k| k.keys().to_vec())
                .unwrap_or_default();
            if keys.is_empty() {
                return Ok(found);
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
        Err(StoreError::Unavailable(format!(
            "{op}: {} keys left unprocessed",
            keys.len()
        )))
    }
}

#[async_trait]
impl CallerStore for DynamoStore {
    async fn caller(&self, tenant: &TenantId, subject: &str) -> Result<CallerRecords, StoreError> {
        const OP: &str = "read the caller";
        let mut records = CallerRecords::default();
        if subject.is_empty() {
            records.tenant = peak_domain::tenants::TenantStore::get_tenant(self, tenant).await?;
            return Ok(records);
        }
        let keys = vec![
            crate::tenants::key(tenant),
            ui::subject_guard_key(tenant, subject),
        ];
        let mut guard = None;
        for item in self.batch_get(OP, keys).await? {
            match get_s(&item, SK)? {
                crate::tenants::TENANT_SK => {
                    records.tenant = Some(crate::tenants::decode(&item)?);
                }
                GUARD_SK => guard = Some(item),
                _ => return Err(malformed("an unexpected item")),
            }
        }
        let Some(guard) = guard else {
            return Ok(records);
        };
        records.user = match copied_user(&guard)? {
            Some(user) => Some(user),
            // From before the copy: the user's own item, as before.
            None => self.find_user_by_subject(tenant, subject).await?,
        }
        .filter(|u| &u.tenant_id == tenant && u.idp_subject.as_deref() == Some(subject))
        .map(|mut u| {
            u.last_login_at = None;
            u
        });
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user_item::SUBJECT_GUARD_ENTITY;
    use crate::user_write::subject::{plan_subject, subject_item};
    use crate::user_write::{Part, Plan};
    use peak_domain::model::user::UserStatus;

    fn user(subject: Option<&str>) -> User {
        User {
            idp_subject: subject.map(str::to_owned),
            ..crate::user_item::tests::sample()
        }
    }

    #[test]
    fn the_subject_item_is_the_guard_and_a_copy_of_the_user() {
        let mut u = user(Some("auth0|ada"));
        u.status = UserStatus::Suspended;
        let item = subject_item(&u, "auth0|ada").unwrap();
        assert_eq!(get_s(&item, attr::ENTITY).unwrap(), SUBJECT_GUARD_ENTITY);
        assert_eq!(get_s(&item, attr::USER_ID).unwrap(), u.id.as_str());
        assert_eq!(get_s(&item, SK).unwrap(), GUARD_SK);
        let stored = ui::user_from_item(&ui::user_item(&u).unwrap()).unwrap();
        assert_eq!(copied_user(&item).unwrap(), Some(stored));
        // An item from before the copy: the guard alone.
        let old = ui::guard_item(
            ui::subject_guard_key(&u.tenant_id, "auth0|ada"),
            SUBJECT_GUARD_ENTITY,
            &u.tenant_id,
            &u.id,
        );
        assert_eq!(copied_user(&old).unwrap(), None);
    }

    fn plan(prev: Option<&User>, next: Option<&User>) -> Vec<Part> {
        let mut plan = Plan::default();
        plan_subject(&mut plan, "t", prev, next).unwrap();
        plan.parts
    }

    #[test]
    fn every_write_of_a_user_with_a_subject_rewrites_the_copy() {
        let (none, a, b) = (user(None), user(Some("auth0|a")), user(Some("auth0|b")));
        assert_eq!(plan(None, Some(&none)), []);
        assert_eq!(plan(Some(&none), Some(&none)), []);
        assert_eq!(plan(None, Some(&a)), [Part::SubjectPut]);
        assert_eq!(plan(Some(&none), Some(&a)), [Part::SubjectPut]);
        assert_eq!(plan(Some(&a), Some(&a)), [Part::SubjectRefresh]);
        assert_eq!(
            plan(Some(&a), Some(&b)),
            [Part::SubjectDelete, Part::SubjectPut]
        );
        assert_eq!(plan(Some(&a), Some(&none)), [Part::SubjectDelete]);
        assert_eq!(plan(Some(&a), None), [Part::SubjectDelete]);
    }
}
