//! [`ProfileStore`] for [`SqliteStore`].

use crate::SqliteStore;
use crate::sql::{db_error, format_time, is_unique_violation, parse_time, to_i64, to_u64};
use async_trait::async_trait;
use peak_domain::catalogue::catalogue;
use peak_domain::cursor;
use peak_domain::ids::{ProfileId, TenantId};
use peak_domain::model::profile::{Profile, ProfileName, ProfileSettings};
use peak_domain::ports::{Page, PageRequest, ProfileStore, StoreError};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::collections::BTreeMap;

/// The cursor list name for profile pages.
const PROFILES_LIST: &str = "profiles";

const PROFILE_COLUMNS: &str =
    "tenant_id, id, name, description, settings, version, holder_count, created_at, updated_at";

/// A profile's columns as bound to a statement.
struct ProfileRow {
    tenant_id: String,
    id: String,
    name: String,
    name_key: String,
    description: String,
    settings: String,
    version: i64,
    holder_count: i64,
    created_at: String,
    updated_at: String,
}

impl ProfileRow {
    fn from_profile(p: &Profile) -> Result<Self, StoreError> {
        let settings = serde_json::to_string(p.settings.as_map())
            .map_err(|e| StoreError::Backend(format!("cannot encode settings: {e}")))?;
        Ok(Self {
            tenant_id: p.tenant_id.as_str().to_owned(),
            id: p.id.as_str().to_owned(),
            name: p.name.as_str().to_owned(),
            name_key: p.name.unique_key(),
            description: p.description.clone(),
            settings,
            version: to_i64(p.version, "version")?,
            holder_count: to_i64(p.holder_count, "holder count")?,
            created_at: format_time(p.created_at, "created_at")?,
            updated_at: format_time(p.updated_at, "updated_at")?,
        })
    }

    /// Reads the columns of [`PROFILE_COLUMNS`], in that order.
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            tenant_id: row.get(0)?,
            id: row.get(1)?,
            name: row.get(2)?,
            // Derived from the name; not needed to rebuild the profile.
            name_key: String::new(),
            description: row.get(3)?,
            settings: row.get(4)?,
            version: row.get(5)?,
            holder_count: row.get(6)?,
            created_at: row.get(7)?,
            updated_at: row.get(8)?,
        })
    }

    fn into_profile(self) -> Result<Profile, StoreError> {
        let bad = |what: &str, value: &str| {
            StoreError::Backend(format!("stored {what} {value:?} is invalid"))
        };
        let tenant_id =
            TenantId::parse(&self.tenant_id).ok_or_else(|| bad("tenant id", &self.tenant_id))?;
        let id = ProfileId::parse(&self.id).ok_or_else(|| bad("profile id", &self.id))?;
        let name = ProfileName::parse(&self.name).map_err(|_| bad("profile name", &self.name))?;
        let stored: BTreeMap<String, String> = serde_json::from_str(&self.settings)
            .map_err(|e| StoreError::Backend(format!("stored settings are not valid: {e}")))?;
        Ok(Profile {
            tenant_id,
            id,
            name,
            description: self.description,
            settings: ProfileSettings::from_stored(catalogue(), stored),
            version: to_u64(self.version, "version")?,
            holder_count: to_u64(self.holder_count, "holder count")?,
            created_at: parse_time(&self.created_at, "created_at")?,
            updated_at: parse_time(&self.updated_at, "updated_at")?,
        })
    }
}

/// The profile's `(version, holder_count)`, if it exists.
fn profile_state(
    conn: &Connection,
    tenant: &str,
    id: &str,
) -> Result<Option<(i64, i64)>, StoreError> {
    conn.query_row(
        "SELECT version, holder_count FROM profiles WHERE tenant_id = ?1 AND id = ?2",
        params![tenant, id],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
    .optional()
    .map_err(db_error)
}

#[async_trait]
impl ProfileStore for SqliteStore {
    async fn insert_profile(&self, profile: &Profile) -> Result<(), StoreError> {
        let row = ProfileRow::from_profile(profile)?;
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            // The id first, so a clash on both reports `AlreadyExists`.
            if profile_state(&tx, &row.tenant_id, &row.id)?.is_some() {
                return Err(StoreError::AlreadyExists);
            }
            tx.execute(
                "INSERT INTO profiles (tenant_id, id, name, name_key, description, settings,
                                       version, holder_count, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    row.tenant_id,
                    row.id,
                    row.name,
                    row.name_key,
                    row.description,
                    row.settings,
                    row.version,
                    row.holder_count,
                    row.created_at,
                    row.updated_at,
                ],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::NameTaken
                } else {
                    db_error(e)
                }
            })?;
            tx.commit().map_err(db_error)
        })
        .await
    }

    async fn get_profile(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
    ) -> Result<Option<Profile>, StoreError> {
        let tenant = tenant.as_str().to_owned();
        let id = id.as_str().to_owned();
        self.run(move |conn| {
            let row = conn
                .query_row(
                    &format!(
                        "SELECT {PROFILE_COLUMNS} FROM profiles WHERE tenant_id = ?1 AND id = ?2"
                    ),
                    params![tenant, id],
                    ProfileRow::read,
                )
                .optional()
                .map_err(db_error)?;
            row.map(ProfileRow::into_profile).transpose()
        })
        .await
    }

    /// A `limit` outside `1..=PageRequest::MAX_LIMIT` is clamped into it.
    async fn list_profiles(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<Profile>, StoreError> {
        let after = match &page.cursor {
            Some(raw) => cursor::decode(tenant, PROFILES_LIST, raw)?,
            // Every id sorts after the empty string.
            None => String::new(),
        };
        let limit = page.limit.clamp(1, PageRequest::MAX_LIMIT) as usize;
        let tenant = tenant.clone();
        self.run(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {PROFILE_COLUMNS} FROM profiles
                     WHERE tenant_id = ?1 AND id > ?2
                     ORDER BY id
                     LIMIT ?3"
                ))
                .map_err(db_error)?;
            // One more than asked for: tells whether there is a next page.
            let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
            let mut rows = stmt
                .query_map(params![tenant.as_str(), after, fetch], ProfileRow::read)
                .map_err(db_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_error)?;
            let more = rows.len() > limit;
            rows.truncate(limit);
            let items = rows
                .into_iter()
                .map(ProfileRow::into_profile)
                .collect::<Result<Vec<_>, _>>()?;
            let next_cursor = match items.last() {
                Some(last) if more => {
                    Some(cursor::encode(&tenant, PROFILES_LIST, last.id.as_str()))
                }
                _ => None,
            };
            Ok(Page { items, next_cursor })
        })
        .await
    }

    /// Writes every field of `updated` but the holder count (kept as stored),
    /// if the stored version is `previous.version`. `updated` must have the
    /// same tenant and id as `previous`.
    async fn update_profile(
        &self,
        previous: &Profile,
        updated: &Profile,
    ) -> Result<(), StoreError> {
        if updated.tenant_id != previous.tenant_id || updated.id != previous.id {
            return Err(StoreError::Backend(
                "an update cannot change a profile's tenant or id".to_owned(),
            ));
        }
        let row = ProfileRow::from_profile(updated)?;
        let expected = to_i64(previous.version, "version")?;
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            let changed = tx
                .execute(
                    "UPDATE profiles
                     SET name = ?3, name_key = ?4, description = ?5, settings = ?6,
                         version = ?7, created_at = ?8, updated_at = ?9
                     WHERE tenant_id = ?1 AND id = ?2 AND version = ?10",
                    params![
                        row.tenant_id,
                        row.id,
                        row.name,
                        row.name_key,
                        row.description,
                        row.settings,
                        row.version,
                        row.created_at,
                        row.updated_at,
                        expected,
                    ],
                )
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::NameTaken
                    } else {
                        db_error(e)
                    }
                })?;
            if changed == 0 {
                return Err(match profile_state(&tx, &row.tenant_id, &row.id)? {
                    None => StoreError::NotFound,
                    Some(_) => StoreError::VersionMismatch,
                });
            }
            tx.commit().map_err(db_error)
        })
        .await
    }

    /// Checks, in this order: the profile exists (`NotFound`), the version
    /// is `expected_version` if given (`VersionMismatch`), nobody holds it
    /// (`InUse`).
    async fn delete_profile(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError> {
        let tenant = tenant.as_str().to_owned();
        let id = id.as_str().to_owned();
        let expected = expected_version.map(|v| to_i64(v, "version")).transpose()?;
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            let Some((version, holders)) = profile_state(&tx, &tenant, &id)? else {
                return Err(StoreError::NotFound);
            };
            if expected.is_some_and(|v| v != version) {
                return Err(StoreError::VersionMismatch);
            }
            if holders > 0 {
                return Err(StoreError::InUse {
                    holders: to_u64(holders, "holder count")?,
                });
            }
            tx.execute(
                "DELETE FROM profiles WHERE tenant_id = ?1 AND id = ?2",
                params![tenant, id],
            )
            .map_err(db_error)?;
            tx.commit().map_err(db_error)
        })
        .await
    }

    /// The count is clamped at zero: a decrement below it leaves 0 (and
    /// succeeds) rather than failing the user change that asked for it.
    async fn change_profile_holders(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
        delta: i64,
    ) -> Result<(), StoreError> {
        let tenant = tenant.as_str().to_owned();
        let id = id.as_str().to_owned();
        self.run(move |conn| {
            // One statement: atomic on its own. Adding in SQL (not read,
            // add, write) keeps concurrent changes from losing each other.
            let changed = conn
                .execute(
                    "UPDATE profiles SET holder_count = MAX(0, holder_count + ?3)
                     WHERE tenant_id = ?1 AND id = ?2",
                    params![tenant, id, delta],
                )
                .map_err(db_error)?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }
}
