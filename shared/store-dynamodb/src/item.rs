//! The single-table item layout of profiles and the mapping between the
//! domain type and DynamoDB items. See docs/dynamodb.md.
//!
//! | item        | PK               | SK                        |
//! |-------------|------------------|---------------------------|
//! | profile     | `TENANT#<tenant>`| `PROFILE#<id>`            |
//! | holder shard| `TENANT#<tenant>`| `PROFILE#<id>#HOLDERS#<k>`|
//! | name guard  | `TENANT#<tenant>`| `PROFILENAME#<name_key>`  |
//!
//! How many users hold a profile is the profile item's `holder_count`
//! (what it held when user writes stopped changing it: profiles from
//! before the shards) plus the `holders` of its [`HOLDER_SHARDS`] shard
//! items. A user write adds ±1 to one shard (from a hash of the user's id),
//! never to the profile item: on one item, about 30–50 transactions a
//! second conflicted (two bulk jobs on one profile), and the profile item
//! is what every holder's request reads. A profile is created with its
//! shards; a profile from before them gets each from the first write that
//! needs it, in a transaction that checks the profile exists;
//! the shards sort right after their profile, so the profile read (one
//! Query) brings them along at no more read capacity (they are tiny). One
//! shard's count may go below zero (a user counted on the profile item,
//! before the shards, is taken off a shard when they let go of it); only
//! the sum means anything.

use crate::error::malformed;
use aws_sdk_dynamodb::types::AttributeValue;
use peak_domain::catalogue::catalogue;
use peak_domain::ids::{ProfileId, TenantId};
use peak_domain::model::profile::{Profile, ProfileName, ProfileSettings};
use peak_domain::ports::StoreError;
use std::collections::{BTreeMap, HashMap};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub type Item = HashMap<String, AttributeValue>;

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const PROFILE_PREFIX: &str = "PROFILE#";
pub const PROFILE_NAME_PREFIX: &str = "PROFILENAME#";
pub const PROFILE_ENTITY: &str = "profile";
pub const PROFILE_NAME_ENTITY: &str = "profile_name";
pub const HOLDER_SHARD_ENTITY: &str = "profile_holders";
/// After a profile's id in a holder shard's sort key.
pub const HOLDER_SHARD_INFIX: &str = "#HOLDERS#";

/// The items a profile's holder count is spread over. Why 8: a profile
/// delete must check every shard, the profile and its name guard in one
/// transaction, and DynamoDB Local 1.11 (which the tests run on) takes at
/// most 10 items in one (DynamoDB itself 100). Eight items take about eight
/// times the ~30–50 user transactions a second one item took before they
/// conflicted (a few hundred a second on one profile: more than the bulk
/// jobs and the Auth0 rate let through).
pub const HOLDER_SHARDS: u32 = 8;

/// Attribute names of a profile item.
pub mod attr {
    pub const ENTITY: &str = "entity";
    pub const TENANT_ID: &str = "tenant_id";
    pub const ID: &str = "id";
    pub const NAME: &str = "name";
    pub const NAME_KEY: &str = "name_key";
    pub const DESCRIPTION: &str = "description";
    pub const SETTINGS: &str = "settings";
    pub const VERSION: &str = "version";
    /// The count from before the shards (profiles created since hold 0).
    pub const HOLDER_COUNT: &str = "holder_count";
    /// On a holder shard: its part of the count (may be negative).
    pub const HOLDERS: &str = "holders";
    pub const CREATED_AT: &str = "created_at";
    pub const UPDATED_AT: &str = "updated_at";
    /// On a name guard: the profile holding the name.
    pub const PROFILE_ID: &str = "profile_id";
}

pub fn tenant_pk(tenant: &TenantId) -> String {
    format!("TENANT#{}", tenant.as_str())
}

pub fn profile_sk(id: &ProfileId) -> String {
    format!("{PROFILE_PREFIX}{}", id.as_str())
}

pub fn profile_name_sk(name_key: &str) -> String {
    format!("{PROFILE_NAME_PREFIX}{name_key}")
}

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The primary key of a profile item.
pub fn profile_key(tenant: &TenantId, id: &ProfileId) -> Item {
    HashMap::from([
        (PK.to_owned(), s(tenant_pk(tenant))),
        (SK.to_owned(), s(profile_sk(id))),
    ])
}

/// The primary key of holder shard `k` of a profile.
pub fn holder_shard_key(tenant: &TenantId, id: &ProfileId, k: u32) -> Item {
    HashMap::from([
        (PK.to_owned(), s(tenant_pk(tenant))),
        (
            SK.to_owned(),
            s(format!("{}{HOLDER_SHARD_INFIX}{k}", profile_sk(id))),
        ),
    ])
}

/// The holder shard a user is counted in.
pub fn holder_shard_of(user: &peak_domain::model::user::UserId) -> u32 {
    crate::shard::shard_of(user.as_str(), HOLDER_SHARDS)
}

/// A fresh holder shard (count 0).
pub fn holder_shard(tenant: &TenantId, id: &ProfileId, k: u32) -> Item {
    let mut item = holder_shard_key(tenant, id, k);
    item.insert(attr::ENTITY.to_owned(), s(HOLDER_SHARD_ENTITY));
    item.insert(attr::HOLDERS.to_owned(), n(0));
    item
}

/// A profile read with its holder shards: the items of one Query of
/// `begins_with(SK, PROFILE#<id>)`, the profile first.
#[derive(Debug, Default)]
pub struct ProfileRead {
    /// The profile item.
    pub item: Option<Item>,
    /// Each shard that exists: (k, its count).
    pub shards: Vec<(u32, i64)>,
}

impl ProfileRead {
    /// Adds one item of the profile's collection; `false` if it is neither
    /// the profile nor one of its shards.
    pub fn add(&mut self, id_sk: &str, item: Item) -> Result<bool, StoreError> {
        let sk = get_s(&item, SK)?;
        if sk == id_sk {
            self.item = Some(item);
            return Ok(true);
        }
        let Some(k) = sk
            .strip_prefix(id_sk)
            .and_then(|rest| rest.strip_prefix(HOLDER_SHARD_INFIX))
        else {
            return Ok(false);
        };
        let k = k.parse().map_err(|_| malformed("invalid holder shard"))?;
        self.shards.push((k, get_i64(&item, attr::HOLDERS)?));
        Ok(true)
    }

    /// The profile with its holder count (its own count plus its shards').
    pub fn profile(self) -> Result<Option<Profile>, StoreError> {
        let shards: i64 = self.shards.iter().map(|(_, h)| h).sum();
        self.item
            .map(|item| {
                let mut p = Profile::try_from(ProfileItem(item))?;
                let total = i64::try_from(p.holder_count)
                    .unwrap_or(i64::MAX)
                    .saturating_add(shards);
                p.holder_count = u64::try_from(total.max(0)).unwrap_or(0);
                Ok(p)
            })
            .transpose()
    }
}

/// The primary key of the item reserving a name (by its unique key).
pub fn name_guard_key(tenant: &TenantId, name_key: &str) -> Item {
    HashMap::from([
        (PK.to_owned(), s(tenant_pk(tenant))),
        (SK.to_owned(), s(profile_name_sk(name_key))),
    ])
}

/// The item reserving `profile`'s name in its tenant.
pub fn name_guard(profile: &Profile) -> Item {
    let mut item = name_guard_key(&profile.tenant_id, &profile.name.unique_key());
    item.insert(attr::ENTITY.to_owned(), s(PROFILE_NAME_ENTITY));
    item.insert(attr::PROFILE_ID.to_owned(), s(profile.id.as_str()));
    item
}

/// A profile as stored: every attribute, keys included.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileItem(pub Item);

impl TryFrom<&Profile> for ProfileItem {
    type Error = StoreError;

    /// Fails only for timestamps RFC 3339 cannot express (years past 9999).
    fn try_from(p: &Profile) -> Result<Self, StoreError> {
        let mut item = profile_key(&p.tenant_id, &p.id);
        let mut put = |name: &str, value: AttributeValue| {
            item.insert(name.to_owned(), value);
        };
        put(attr::ENTITY, s(PROFILE_ENTITY));
        put(attr::TENANT_ID, s(p.tenant_id.as_str()));
        put(attr::ID, s(p.id.as_str()));
        put(attr::NAME, s(p.name.as_str()));
        put(attr::NAME_KEY, s(p.name.unique_key()));
        // Empty strings are left out: older DynamoDB (and DynamoDB Local
        // 1.11) refuse them, and a missing description reads as "".
        if !p.description.is_empty() {
            put(attr::DESCRIPTION, s(&p.description));
        }
        put(
            attr::SETTINGS,
            AttributeValue::M(
                p.settings
                    .as_map()
                    .iter()
                    .map(|(k, v)| (k.clone(), s(v)))
                    .collect(),
            ),
        );
        put(attr::VERSION, n(p.version));
        put(attr::HOLDER_COUNT, n(p.holder_count));
        put(attr::CREATED_AT, s(timestamp(p.created_at)?));
        put(attr::UPDATED_AT, s(timestamp(p.updated_at)?));
        Ok(Self(item))
    }
}

impl TryFrom<ProfileItem> for Profile {
    type Error = StoreError;

    /// A malformed item is a `Backend` error naming the attribute, never
    /// its value.
    fn try_from(ProfileItem(item): ProfileItem) -> Result<Self, StoreError> {
        let entity = get_s(&item, attr::ENTITY)?;
        if entity != PROFILE_ENTITY {
            return Err(malformed("not a profile"));
        }
        let tenant_id = TenantId::parse(get_s(&item, attr::TENANT_ID)?)
            .ok_or_else(|| malformed("invalid `tenant_id`"))?;
        let id =
            ProfileId::parse(get_s(&item, attr::ID)?).ok_or_else(|| malformed("invalid `id`"))?;
        let name = ProfileName::parse(get_s(&item, attr::NAME)?)
            .map_err(|_| malformed("invalid `name`"))?;
        let description = match item.get(attr::DESCRIPTION) {
            None => String::new(),
            Some(_) => get_s(&item, attr::DESCRIPTION)?.to_owned(),
        };
        Ok(Profile {
            tenant_id,
            id,
            name,
            description,
            settings: ProfileSettings::from_stored(
                catalogue(),
                get_string_map(&item, attr::SETTINGS)?,
            ),
            version: get_u64(&item, attr::VERSION)?,
            holder_count: get_u64(&item, attr::HOLDER_COUNT)?,
            created_at: get_time(&item, attr::CREATED_AT)?,
            updated_at: get_time(&item, attr::UPDATED_AT)?,
        })
    }
}

pub(crate) fn timestamp(t: OffsetDateTime) -> Result<String, StoreError> {
    t.format(&Rfc3339)
        .map_err(|_| StoreError::Backend("timestamp out of the RFC 3339 range".into()))
}

/// A required string attribute.
pub fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        Some(_) => Err(malformed(&format!("`{name}` is not a string"))),
        None => Err(malformed(&format!("`{name}` is missing"))),
    }
}

/// A required non-negative integer attribute.
pub fn get_u64(item: &Item, name: &str) -> Result<u64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| malformed(&format!("`{name}` is not a non-negative integer"))),
        Some(_) => Err(malformed(&format!("`{name}` is not a number"))),
        None => Err(malformed(&format!("`{name}` is missing"))),
    }
}

pub(crate) fn get_time(item: &Item, name: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(get_s(item, name)?, &Rfc3339)
        .map_err(|_| malformed(&format!("`{name}` is not an RFC 3339 timestamp")))
}

fn get_string_map(item: &Item, name: &str) -> Result<BTreeMap<String, String>, StoreError> {
    match item.get(name) {
        Some(AttributeValue::M(m)) => m
            .iter()
            .map(|(k, v)| match v {
                AttributeValue::S(v) => Ok((k.clone(), v.clone())),
                _ => Err(malformed(&format!(
                    "`{name}` has a value that is not a string"
                ))),
            })
            .collect(),
        Some(_) => Err(malformed(&format!("`{name}` is not a map"))),
        None => Err(malformed(&format!("`{name}` is missing"))),
    }
}

/// Epoch seconds (TTL attributes, rate windows).
pub(crate) fn epoch(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

/// A Unix time in milliseconds as a time.
pub(crate) fn from_unix_ms(ms: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|_| malformed("a time in ms is out of range"))
}

/// An optional number attribute.
pub fn get_opt_i64(item: &Item, name: &str) -> Result<Option<i64>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(_) => get_i64(item, name).map(Some),
    }
}

/// A signed integer attribute (epoch seconds).
pub fn get_i64(item: &Item, name: &str) -> Result<i64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| malformed(&format!("`{name}` is not an integer"))),
        Some(_) => Err(malformed(&format!("`{name}` is not a number"))),
        None => Err(malformed(&format!("`{name}` is missing"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn sample() -> Profile {
        let tenant = TenantId::parse("acme").unwrap();
        Profile {
            tenant_id: tenant,
            id: ProfileId::generate(),
            name: ProfileName::parse("VIP Customers").unwrap(),
            description: "Our best".into(),
            settings: ProfileSettings::defaults(catalogue()),
            version: 3,
            holder_count: 2,
            created_at: datetime!(2025-01-02 03:04:05.123456789 +02:00),
            updated_at: datetime!(2025-06-07 08:09:10.5 UTC),
        }
    }

    #[test]
    fn a_profile_round_trips_through_its_item() {
        let p = sample();
        let item = ProfileItem::try_from(&p).unwrap();
        assert_eq!(item.0[PK], s("TENANT#acme"));
        assert_eq!(item.0[SK], s(format!("PROFILE#{}", p.id)));
        assert_eq!(item.0[attr::NAME_KEY], s("vip customers"));
        assert_eq!(item.0[attr::VERSION], n(3));
        let back = Profile::try_from(item).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.created_at.offset(), p.created_at.offset());
        assert_eq!(back.created_at.nanosecond(), 123_456_789);
    }

    #[test]
    fn an_empty_description_is_left_out_and_reads_back_empty() {
        let mut p = sample();
        p.description.clear();
        let item = ProfileItem::try_from(&p).unwrap();
        assert!(!item.0.contains_key(attr::DESCRIPTION));
        assert_eq!(Profile::try_from(item).unwrap(), p);
    }

    #[test]
    fn malformed_items_are_backend_errors_without_contents() {
        let good = ProfileItem::try_from(&sample()).unwrap().0;
        let cases: Vec<(&str, Option<AttributeValue>)> = vec![
            (attr::VERSION, Some(s("three"))),
            (attr::VERSION, Some(n(-1))),
            (attr::HOLDER_COUNT, None),
            (attr::CREATED_AT, Some(s("yesterday"))),
            (attr::SETTINGS, Some(s("x"))),
            (attr::NAME, Some(AttributeValue::Bool(true))),
            (attr::ID, Some(s("not-a-ulid"))),
            (attr::ENTITY, Some(s("user"))),
        ];
        for (name, value) in cases {
            let mut item = good.clone();
            match value {
                Some(v) => item.insert(name.to_owned(), v),
                None => item.remove(name),
            };
            match Profile::try_from(ProfileItem(item)) {
                Err(StoreError::Backend(msg)) => {
                    assert!(msg.starts_with("malformed item"), "{msg}");
                    assert!(
                        !msg.contains("three") && !msg.contains("yesterday"),
                        "{msg}"
                    );
                }
                other => panic!("{name}: expected a Backend error, got {other:?}"),
            }
        }
    }

    #[test]
    fn name_guards_cannot_match_the_profile_prefix() {
        assert!(!profile_name_sk("x").starts_with(PROFILE_PREFIX));
    }
}
