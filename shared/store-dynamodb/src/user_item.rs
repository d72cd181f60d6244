//! The single-table layout of users and what comes with them (lookups,
//! account memberships, audit events, outbox emails, idempotency keys, rate
//! counters), and the mapping between domain types and items. See
//! docs/dynamodb.md.
//!
//! | item              | PK                                  | SK                  |
//! |-------------------|-------------------------------------|---------------------|
//! | user              | `TENANT#<t>#USER#<id>`              | `USER`              |
//! | account membership| `TENANT#<t>#ACCOUNT#<account>`      | `<name_key>␁<id>`   |
//! | email guard       | `TENANT#<t>#EMAIL#<normalized>`     | `GUARD`             |
//! | subject guard     | `TENANT#<t>#SUBJECT#<subject>`      | `GUARD`             |
//! | invitation guard  | `INVITATION#<token_hash>`           | `GUARD`             |
//! | audit event       | `TENANT#<t>#AUDIT#<user id or ->`   | `<event id>`        |
//! | outbox email      | `OUTBOX#<t>#<id>`                   | `OUTBOX`            |
//! | idempotency key   | `TENANT#<t>#IDEMPOTENCY#<key>`      | `KEY`               |
//! | rate counter      | `RATE#<bucket>#<window s>#<start>`  | `RATE`              |
//!
//! `␁` is [`KEY_SEP`] (U+0001): it sorts below every character a name key
//! or normalized email can hold (they hold no control characters), so
//! `<key>␁<id>` orders exactly like the pair (key, id).

use crate::error::malformed;
use crate::item::{Item, PK, SK, get_opt_i64, get_s, get_time, get_u64, n, s, timestamp};
use aws_sdk_dynamodb::types::AttributeValue;
use peak_domain::ids::{ProfileId, TenantId};
use peak_domain::model::user::{
    AccountNumber, Email, Invitation, InvitationState, PendingEmail, PersonName, User, UserId,
    UserStatus,
};
use peak_domain::ports::StoreError;
use peak_domain::role::Role;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use time::OffsetDateTime;

/// Separates a sort value from the id that breaks ties (see module docs).
pub const KEY_SEP: char = '\u{1}';

pub const USER_SK: &str = "USER";
/// The user's last sign-in, beside the user item.
pub const LOGIN_SK: &str = "LOGIN";
pub const LOGIN_ENTITY: &str = "user_login";
pub const GUARD_SK: &str = "GUARD";
pub const OUTBOX_SK: &str = "OUTBOX";
pub const IDEMPOTENCY_SK: &str = "KEY";
pub const RATE_SK: &str = "RATE";
/// The sparse index partitions of outbox emails not yet sent nor failed
/// for good (on GSI2) are this followed by `#<k>`, a shard of
/// [`crate::due::PENDING_SHARDS`] from a hash of the email's id, each
/// sorted by [`crate::due::outbox_due_sk`]. Emails queued before the
/// sharding wait in this partition itself, read too until it is empty.
pub const OUTBOX_PENDING: &str = "OUTBOX#PENDING";
/// The sparse index partition of outbox emails that failed for good (on
/// GSI3), sorted by id.
pub const OUTBOX_FAILED: &str = "OUTBOX#FAILED";
/// One tenant's outbox emails that failed for good (on GSI4, beside
/// [`OUTBOX_FAILED`] on GSI3 which the cross-tenant operators' list keeps
/// using), sorted by id: the tenant's admins read only their partition.
pub fn outbox_failed_of(tenant: &TenantId) -> String {
    format!("TENANT#{}#OUTBOX#FAILED", tenant.as_str())
}
/// The audit partition key part for events without a target user.
pub const NO_USER: &str = "-";

pub const USER_ENTITY: &str = "user";
pub const MEMBERSHIP_ENTITY: &str = "membership";
pub const EMAIL_GUARD_ENTITY: &str = "email_guard";
pub const SUBJECT_GUARD_ENTITY: &str = "subject_guard";
pub const INVITATION_GUARD_ENTITY: &str = "invitation_guard";
pub const AUDIT_ENTITY: &str = "audit";
pub const OUTBOX_ENTITY: &str = "outbox";
pub const IDEMPOTENCY_ENTITY: &str = "idempotency";
pub const RATE_ENTITY: &str = "rate";

/// The secondary indexes: (name, partition key attribute, sort key attribute).
pub mod index {
    pub type Index = (&'static str, &'static str, &'static str);
    /// Users by name (all of a tenant); audit events of a tenant.
    pub const GSI1: Index = ("GSI1", "GSI1PK", "GSI1SK");
    /// Users by email; outbox emails not yet sent (sparse).
    pub const GSI2: Index = ("GSI2", "GSI2PK", "GSI2SK");
    /// Users by status, by name; outbox emails failed for good (sparse).
    pub const GSI3: Index = ("GSI3", "GSI3PK", "GSI3SK");
    /// Users by role, by name; one tenant's outbox emails failed for good
    /// (sparse).
    pub const GSI4: Index = ("GSI4", "GSI4PK", "GSI4SK");
    /// Users by profile, by name.
    pub const GSI5: Index = ("GSI5", "GSI5PK", "GSI5SK");
    /// Every index a user item is in.
    pub const USER_INDEXES: [Index; 5] = [GSI1, GSI2, GSI3, GSI4, GSI5];
}

/// Attribute names of the items in this module.
pub mod attr {
    pub const ENTITY: &str = "entity";
    pub const TENANT_ID: &str = "tenant_id";
    pub const ID: &str = "id";
    pub const EMAIL: &str = "email";
    pub const EMAIL_NORM: &str = "email_norm";
    pub const FIRST_NAME: &str = "first_name";
    pub const LAST_NAME: &str = "last_name";
    pub const NAME_KEY: &str = "name_key";
    pub const ACCOUNT_NUMBER: &str = "account_number";
    pub const CUSTOMER_ACCOUNTS: &str = "customer_accounts";
    pub const ROLE: &str = "role";
    pub const PROFILE_ID: &str = "profile_id";
    pub const EXTENSION_GROUPS: &str = "extension_groups";
    pub const STATUS: &str = "status";
    pub const IDP_SUBJECT: &str = "idp_subject";
    /// The last sign-in, Unix ms (a number, so "only if newer" is one
    /// condition).
    pub const LAST_LOGIN_MS: &str = "last_login_ms";
    /// A map: token_hash, state, expires_at, sent_at, accepted_at.
    pub const INVITATION: &str = "invitation";
    /// A map: email, token_hash, expires_at.
    pub const PENDING_EMAIL: &str = "pending_email";
    pub const TOKEN_HASH: &str = "token_hash";
    pub const STATE: &str = "state";
    /// Inside the invitation and pending-email maps only (RFC 3339). At the
    /// top level `expires_at` is the table's TTL attribute (epoch seconds):
    /// a user item must never have one.
    pub const EXPIRES_AT: &str = "expires_at";
    pub const SENT_AT: &str = "sent_at";
    pub const ACCEPTED_AT: &str = "accepted_at";
    pub const VERSION: &str = "version";
    pub const CREATED_AT: &str = "created_at";
    pub const UPDATED_AT: &str = "updated_at";
    /// On guards: the user holding the value.
    pub const USER_ID: &str = "user_id";
    // Audit events.
    pub const ACTOR: &str = "actor";
    pub const ACTION: &str = "action";
    pub const TARGET_USER: &str = "target_user";
    /// JSON text of the field changes.
    pub const CHANGES: &str = "changes";
    pub const REQUEST_ID: &str = "request_id";
    pub const AT: &str = "at";
    // Outbox emails.
    pub const KIND: &str = "kind";
    pub const TO: &str = "to";
    /// JSON text of the template values (dropped once sent or failed).
    pub const DATA: &str = "data";
    /// Attempts that failed (N).
    pub const ATTEMPTS: &str = "attempts";
    /// While pending: when it may be claimed next, Unix ms (N); absent = now.
    pub const DUE_AT: &str = "due_at";
    /// While claimed: the lease's end, Unix ms (N). Absent otherwise, so a
    /// stream record tells a claim from a release.
    pub const LEASED_UNTIL: &str = "leased_until";
    /// The last transient error.
    pub const LAST_ERROR: &str = "last_error";
    /// The provider's message id, once sent.
    pub const MESSAGE_ID: &str = "message_id";
    /// RFC 3339, once failed for good, with the reason.
    pub const FAILED_AT: &str = "failed_at";
    pub const FAILURE: &str = "failure";
    // Idempotency keys.
    pub const FINGERPRINT: &str = "fingerprint";
    /// While in progress: the claim's lease end, epoch seconds (N). Absent
    /// on keys claimed before leases (they wait for their TTL).
    pub const LEASE_EXPIRES_AT: &str = "lease_expires_at";
    /// JSON text of the saved response.
    pub const RESPONSE: &str = "response";
    // Rate counters.
    pub const HITS: &str = "hits";
    /// The TTL attribute (epoch seconds).
    pub const TTL: &str = "expires_at";
}

// --- keys -------------------------------------------------------------

pub fn user_pk(tenant: &TenantId, id: &UserId) -> String {
    format!("TENANT#{}#USER#{}", tenant.as_str(), id.as_str())
}

/// The index partition of all of a tenant's users (GSI1 and GSI2).
pub fn users_pk(tenant: &TenantId) -> String {
    format!("TENANT#{}#USERS", tenant.as_str())
}

pub fn status_pk(tenant: &TenantId, status: UserStatus) -> String {
    format!("TENANT#{}#STATUS#{}", tenant.as_str(), status.as_str())
}

pub fn role_pk(tenant: &TenantId, role: Role) -> String {
    format!("TENANT#{}#ROLE#{}", tenant.as_str(), role.as_str())
}

pub fn profile_users_pk(tenant: &TenantId, profile: &ProfileId) -> String {
    format!("TENANT#{}#PROFILE#{}", tenant.as_str(), profile.as_str())
}

pub fn account_pk(tenant: &TenantId, account: &AccountNumber) -> String {
    format!("TENANT#{}#ACCOUNT#{}", tenant.as_str(), account.as_str())
}

pub fn email_guard_pk(tenant: &TenantId, normalized: &str) -> String {
    format!("TENANT#{}#EMAIL#{normalized}", tenant.as_str())
}

pub fn subject_guard_pk(tenant: &TenantId, subject: &str) -> String {
    format!("TENANT#{}#SUBJECT#{subject}", tenant.as_str())
}

pub fn invitation_guard_pk(token_hash: &str) -> String {
    format!("INVITATION#{token_hash}")
}

/// The audit partition of one user (or of events without a user).
pub fn audit_pk(tenant: &TenantId, user: Option<&UserId>) -> String {
    format!(
        "TENANT#{}#AUDIT#{}",
        tenant.as_str(),
        user.map_or(NO_USER, UserId::as_str)
    )
}

/// The GSI1 partition of all of a tenant's audit events.
pub fn tenant_audit_pk(tenant: &TenantId) -> String {
    format!("TENANT#{}#AUDIT", tenant.as_str())
}

pub fn outbox_pk(tenant: &TenantId, id: &str) -> String {
    format!("OUTBOX#{}#{id}", tenant.as_str())
}

pub fn idempotency_pk(tenant: &TenantId, key: &str) -> String {
    format!("TENANT#{}#IDEMPOTENCY#{key}", tenant.as_str())
}

/// The window length is part of the key, so two limits on one bucket with
/// different windows never share a counter. The last two parts are numbers,
/// so the key is unambiguous whatever the bucket holds.
pub fn rate_pk(bucket: &str, window_secs: u64, window_start: i64) -> String {
    format!("RATE#{bucket}#{window_secs}#{window_start}")
}

/// `<value>␁<id>`: orders like the pair (value, id).
pub fn sort_key(value: &str, id: &UserId) -> String {
    format!("{value}{KEY_SEP}{}", id.as_str())
}

/// Where a user sorts in name order: (name key, id).
pub fn name_sk(u: &User) -> String {
    sort_key(&u.name_key(), &u.id)
}

/// Where a user sorts in email order: (normalized email, id).
pub fn email_sk(u: &User) -> String {
    sort_key(&u.email.normalized(), &u.id)
}

/// Splits a `<value>␁<id>` sort key; `None` unless the id is a ULID in its
/// canonical form.
pub fn split_sort_key(key: &str) -> Option<(&str, UserId)> {
    let (value, id) = key.rsplit_once(KEY_SEP)?;
    let parsed = UserId::parse(id)?;
    (parsed.as_str() == id).then_some((value, parsed))
}

pub fn key(pk: String, sk: &str) -> Item {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

pub fn user_key(tenant: &TenantId, id: &UserId) -> Item {
    key(user_pk(tenant, id), USER_SK)
}

pub fn membership_key(u: &User, account: &AccountNumber) -> Item {
    key(account_pk(&u.tenant_id, account), &name_sk(u))
}

pub fn email_guard_key(tenant: &TenantId, normalized: &str) -> Item {
    key(email_guard_pk(tenant, normalized), GUARD_SK)
}

pub fn subject_guard_key(tenant: &TenantId, subject: &str) -> Item {
    key(subject_guard_pk(tenant, subject), GUARD_SK)
}

pub fn invitation_guard_key(token_hash: &str) -> Item {
    key(invitation_guard_pk(token_hash), GUARD_SK)
}

pub fn outbox_key(tenant: &TenantId, id: &str) -> Item {
    key(outbox_pk(tenant, id), OUTBOX_SK)
}

pub fn idempotency_key(tenant: &TenantId, k: &str) -> Item {
    key(idempotency_pk(tenant, k), IDEMPOTENCY_SK)
}

// --- users ------------------------------------------------------------

/// Strings that must not be empty (DynamoDB Local refuses empty strings,
/// and none of these is ever empty in a valid user).
pub(crate) fn non_empty<'a>(field: &str, value: &'a str) -> Result<&'a str, StoreError> {
    if value.is_empty() {
        Err(StoreError::Backend(format!(
            "cannot store a user with an empty `{field}`"
        )))
    } else {
        Ok(value)
    }
}

pub(crate) fn string_list<'a>(values: impl Iterator<Item = &'a str>) -> AttributeValue {
    AttributeValue::L(values.map(s).collect())
}

/// Every attribute of a user, without keys: what the user item and each
/// membership item hold.
pub(crate) fn user_attributes(u: &User) -> Result<Item, StoreError> {
    let mut item = Item::new();
    let mut put = |name: &str, value: AttributeValue| {
        item.insert(name.to_owned(), value);
    };
    put(attr::TENANT_ID, s(u.tenant_id.as_str()));
    put(attr::ID, s(u.id.as_str()));
    put(attr::EMAIL, s(u.email.as_str()));
    put(attr::EMAIL_NORM, s(u.email.normalized()));
    put(attr::FIRST_NAME, s(u.first_name.as_str()));
    put(attr::LAST_NAME, s(u.last_name.as_str()));
    put(attr::NAME_KEY, s(u.name_key()));
    if let Some(a) = &u.account_number {
        put(attr::ACCOUNT_NUMBER, s(a.as_str()));
    }
    put(
        attr::CUSTOMER_ACCOUNTS,
        string_list(u.customer_accounts.iter().map(AccountNumber::as_str)),
    );
    put(attr::ROLE, s(u.role.as_str()));
    put(attr::PROFILE_ID, s(u.profile_id.as_str()));
    for g in &u.extension_groups {
        non_empty(attr::EXTENSION_GROUPS, g)?;
    }
    put(
        attr::EXTENSION_GROUPS,
        string_list(u.extension_groups.iter().map(String::as_str)),
    );
    put(attr::STATUS, s(u.status.as_str()));
    if let Some(sub) = &u.idp_subject {
        put(attr::IDP_SUBJECT, s(non_empty(attr::IDP_SUBJECT, sub)?));
    }
    if let Some(inv) = &u.invitation {
        let mut m = HashMap::from([
            (
                attr::TOKEN_HASH.to_owned(),
                s(non_empty(attr::TOKEN_HASH, &inv.token_hash)?),
            ),
            (attr::STATE.to_owned(), s(invitation_state_str(inv.state)?)),
            (attr::EXPIRES_AT.to_owned(), s(timestamp(inv.expires_at)?)),
            (attr::SENT_AT.to_owned(), s(timestamp(inv.sent_at)?)),
        ]);
        if let Some(at) = inv.accepted_at {
            m.insert(attr::ACCEPTED_AT.to_owned(), s(timestamp(at)?));
        }
        put(attr::INVITATION, AttributeValue::M(m));
    }
    if let Some(p) = &u.pending_email {
        put(
            attr::PENDING_EMAIL,
            AttributeValue::M(HashMap::from([
                (attr::EMAIL.to_owned(), s(p.email.as_str())),
                (
                    attr::TOKEN_HASH.to_owned(),
                    s(non_empty(attr::TOKEN_HASH, &p.token_hash)?),
                ),
                (attr::EXPIRES_AT.to_owned(), s(timestamp(p.expires_at)?)),
            ])),
        );
    }
    put(attr::VERSION, n(u.version));
    put(attr::CREATED_AT, s(timestamp(u.created_at)?));
    put(attr::UPDATED_AT, s(timestamp(u.updated_at)?));
    // The last sign-in is its own item (`LOGIN`): a user write never
    // carries it, so it cannot put back an older one.
    Ok(item)
}

/// Unix time in milliseconds, saturating.
pub fn unix_ms(t: OffsetDateTime) -> i64 {
    let ms = t.unix_timestamp_nanos().div_euclid(1_000_000);
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

fn from_unix_ms(ms: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|_| malformed("a time in ms is out of range"))
}

/// The user item: every attribute, its key and the keys of the five
/// indexes it is listed in.
pub fn user_item(u: &User) -> Result<Item, StoreError> {
    let mut item = user_attributes(u)?;
    item.extend(user_key(&u.tenant_id, &u.id));
    item.insert(attr::ENTITY.to_owned(), s(USER_ENTITY));
    let by_name = name_sk(u);
    let t = &u.tenant_id;
    for ((_, pk_attr, sk_attr), pk, sk) in [
        (index::GSI1, users_pk(t), by_name.clone()),
        (index::GSI2, users_pk(t), email_sk(u)),
        (index::GSI3, status_pk(t, u.status), by_name.clone()),
        (index::GSI4, role_pk(t, u.role), by_name.clone()),
        (index::GSI5, profile_users_pk(t, &u.profile_id), by_name),
    ] {
        item.insert(pk_attr.to_owned(), s(pk));
        item.insert(sk_attr.to_owned(), s(sk));
    }
    Ok(item)
}

/// The membership item of `u` in `account`: a full copy of the user (so a
/// list by account needs no second read), in no index.
pub fn membership_item(u: &User, account: &AccountNumber) -> Result<Item, StoreError> {
    let mut item = user_attributes(u)?;
    item.extend(membership_key(u, account));
    item.insert(attr::ENTITY.to_owned(), s(MEMBERSHIP_ENTITY));
    Ok(item)
}

/// A guard item: `value` (the key) belongs to `user`.
pub fn guard_item(mut key: Item, entity: &str, tenant: &TenantId, user: &UserId) -> Item {
    key.insert(attr::ENTITY.to_owned(), s(entity));
    key.insert(attr::TENANT_ID.to_owned(), s(tenant.as_str()));
    key.insert(attr::USER_ID.to_owned(), s(user.as_str()));
    key
}

pub(crate) fn invitation_state_str(state: InvitationState) -> Result<String, StoreError> {
    enum_str(&state, "invitation state")
}

/// A serde unit variant as its name (`snake_case`, as the domain spells it).
pub(crate) fn enum_str<T: Serialize>(value: &T, what: &str) -> Result<String, StoreError> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(v)) => Ok(v),
        _ => Err(StoreError::Backend(format!("cannot name the {what}"))),
    }
}

pub(crate) fn parse_enum<T: for<'de> Deserialize<'de>>(
    raw: &str,
    name: &str,
) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(raw.to_owned()))
        .map_err(|_| malformed(&format!("invalid `{name}`")))
}

pub(crate) fn get_opt_s<'a>(item: &'a Item, name: &str) -> Result<Option<&'a str>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(_) => get_s(item, name).map(Some),
    }
}

/// An optional string attribute that is absent when empty.
pub(crate) fn get_s_or_empty(item: &Item, name: &str) -> Result<String, StoreError> {
    Ok(get_opt_s(item, name)?.unwrap_or_default().to_owned())
}

pub(crate) fn get_list_s<'a>(item: &'a Item, name: &str) -> Result<Vec<&'a str>, StoreError> {
    match item.get(name) {
        Some(AttributeValue::L(values)) => values
            .iter()
            .map(|v| match v {
                AttributeValue::S(v) => Ok(v.as_str()),
                _ => Err(malformed(&format!("`{name}` holds a non-string"))),
            })
            .collect(),
        Some(_) => Err(malformed(&format!("`{name}` is not a list"))),
        None => Err(malformed(&format!("`{name}` is missing"))),
    }
}

pub(crate) fn get_opt_map<'a>(item: &'a Item, name: &str) -> Result<Option<&'a Item>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::M(m)) => Ok(Some(m)),
        Some(_) => Err(malformed(&format!("`{name}` is not a map"))),
    }
}

pub(crate) fn get_opt_time(item: &Item, name: &str) -> Result<Option<OffsetDateTime>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(_) => get_time(item, name).map(Some),
    }
}

/// A user from its user item or one of its membership items. A malformed
/// item is a `Backend` error naming the attribute, never its value.
pub fn user_from_item(item: &Item) -> Result<User, StoreError> {
    let entity = get_s(item, attr::ENTITY)?;
    if entity != USER_ENTITY && entity != MEMBERSHIP_ENTITY {
        return Err(malformed("not a user"));
    }
    let invalid = |name: &str| malformed(&format!("invalid `{name}`"));
    let tenant_id =
        TenantId::parse(get_s(item, attr::TENANT_ID)?).ok_or_else(|| invalid(attr::TENANT_ID))?;
    let id = UserId::parse(get_s(item, attr::ID)?).ok_or_else(|| invalid(attr::ID))?;
    let email = Email::from_stored(get_s(item, attr::EMAIL)?).map_err(|_| invalid(attr::EMAIL))?;
    let person =
        |name: &str| PersonName::parse(name, get_s(item, name)?).map_err(|_| invalid(name));
    let account =
        |name: &str, raw: &str| AccountNumber::parse(name, raw).map_err(|_| invalid(name));
    let invitation = match get_opt_map(item, attr::INVITATION)? {
        None => None,
        Some(m) => Some(Invitation {
            token_hash: get_s(m, attr::TOKEN_HASH)?.to_owned(),
            state: parse_enum(get_s(m, attr::STATE)?, attr::STATE)?,
            expires_at: get_time(m, attr::EXPIRES_AT)?,
            sent_at: get_time(m, attr::SENT_AT)?,
            accepted_at: get_opt_time(m, attr::ACCEPTED_AT)?,
        }),
    };
    let pending_email = match get_opt_map(item, attr::PENDING_EMAIL)? {
        None => None,
        Some(m) => Some(PendingEmail {
            email: Email::from_stored(get_s(m, attr::EMAIL)?)
                .map_err(|_| invalid(attr::PENDING_EMAIL))?,
            token_hash: get_s(m, attr::TOKEN_HASH)?.to_owned(),
            expires_at: get_time(m, attr::EXPIRES_AT)?,
        }),
    };
    Ok(User {
        tenant_id,
        id,
        email,
        pending_email,
        first_name: person(attr::FIRST_NAME)?,
        last_name: person(attr::LAST_NAME)?,
        account_number: get_opt_s(item, attr::ACCOUNT_NUMBER)?
            .map(|a| account(attr::ACCOUNT_NUMBER, a))
            .transpose()?,
        customer_accounts: get_list_s(item, attr::CUSTOMER_ACCOUNTS)?
            .into_iter()
            .map(|a| account(attr::CUSTOMER_ACCOUNTS, a))
            .collect::<Result<_, _>>()?,
        role: Role::parse(get_s(item, attr::ROLE)?).ok_or_else(|| invalid(attr::ROLE))?,
        profile_id: ProfileId::parse(get_s(item, attr::PROFILE_ID)?)
            .ok_or_else(|| invalid(attr::PROFILE_ID))?,
        extension_groups: get_list_s(item, attr::EXTENSION_GROUPS)?
            .into_iter()
            .map(str::to_owned)
            .collect(),
        status: UserStatus::parse(get_s(item, attr::STATUS)?)
            .ok_or_else(|| invalid(attr::STATUS))?,
        idp_subject: get_opt_s(item, attr::IDP_SUBJECT)?.map(str::to_owned),
        invitation,
        version: get_u64(item, attr::VERSION)?,
        created_at: get_time(item, attr::CREATED_AT)?,
        updated_at: get_time(item, attr::UPDATED_AT)?,
        // From the user's `LOGIN` item, read with it.
        last_login_at: None,
    })
}

/// The small item beside the user item that holds their last sign-in: in
/// the user's partition (read with the user by one query), updated alone,
/// projected into no index.
pub fn login_key(tenant: &TenantId, id: &UserId) -> Item {
    key(user_pk(tenant, id), LOGIN_SK)
}

/// The last sign-in a `LOGIN` item holds.
pub fn login_from_item(item: &Item) -> Result<Option<OffsetDateTime>, StoreError> {
    get_opt_i64(item, attr::LAST_LOGIN_MS)?
        .map(from_unix_ms)
        .transpose()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use peak_domain::model::user::InvitationState;
    use time::macros::datetime;
    pub fn sample() -> User {
        let t = datetime!(2025-01-02 03:04:05.123456789 +02:00);
        User {
            tenant_id: TenantId::parse("acme").unwrap(),
            id: UserId::generate(),
            email: Email::parse("Ada.L@Example.com").unwrap(),
            pending_email: Some(PendingEmail {
                email: Email::parse("ada@new.example").unwrap(),
                token_hash: "ab".repeat(32),
                expires_at: t,
            }),
            first_name: PersonName::parse("first_name", "Ada Marie").unwrap(),
            last_name: PersonName::parse("last_name", "Lovelace").unwrap(),
            account_number: Some(AccountNumber::parse("a", "ACC-1").unwrap()),
            customer_accounts: vec![
                AccountNumber::parse("a", "ACME").unwrap(),
                AccountNumber::parse("a", "GLOBEX").unwrap(),
            ],
            role: Role::SalesRep,
            profile_id: ProfileId::generate(),
            extension_groups: vec!["g1".into()],
            status: UserStatus::Active,
            idp_subject: Some("auth0|ada".into()),
            invitation: Some(Invitation {
                token_hash: "cd".repeat(32),
                state: InvitationState::Accepted,
                expires_at: t,
                sent_at: datetime!(2025-01-01 00:00 UTC),
                accepted_at: Some(datetime!(2025-01-01 12:00:00.5 -05:00)),
            }),
            version: 7,
            created_at: t,
            updated_at: datetime!(2025-06-07 08:09:10.5 UTC),
            last_login_at: None,
        }
    }

    #[test]
    fn a_user_round_trips_through_its_item_and_memberships() {
        let u = sample();
        let item = user_item(&u).unwrap();
        assert_eq!(item[PK], s(format!("TENANT#acme#USER#{}", u.id)));
        assert_eq!(
            item["GSI1SK"],
            s(format!("lovelace ada marie\u{1}{}", u.id))
        );
        assert_eq!(item["GSI2SK"], s(format!("ada.l@example.com\u{1}{}", u.id)));
        assert_eq!(item["GSI3PK"], s("TENANT#acme#STATUS#active"));
        assert_eq!(item["GSI4PK"], s("TENANT#acme#ROLE#sales_rep"));
        assert_eq!(
            item["GSI5PK"],
            s(format!("TENANT#acme#PROFILE#{}", u.profile_id))
        );
        assert!(
            !item.contains_key(attr::TTL),
            "a user item must never carry the TTL attribute"
        );
        let back = user_from_item(&item).unwrap();
        assert_eq!(back, u);
        assert_eq!(back.created_at.offset(), u.created_at.offset());

        let m = membership_item(&u, &u.customer_accounts[1]).unwrap();
        assert_eq!(m[PK], s("TENANT#acme#ACCOUNT#GLOBEX"));
        assert_eq!(m[SK], item["GSI1SK"]);
        assert!(m.keys().all(|k| !k.starts_with("GSI")), "in no index");
        assert_eq!(user_from_item(&m).unwrap(), u);

        let mut bare = u.clone();
        bare.pending_email = None;
        bare.invitation = None;
        bare.idp_subject = None;
        bare.account_number = None;
        bare.customer_accounts.clear();
        bare.extension_groups.clear();
        assert_eq!(user_from_item(&user_item(&bare).unwrap()).unwrap(), bare);
    }

    #[test]
    fn sort_keys_order_like_pairs_and_split_back() {
        let a = UserId::generate();
        let b = UserId::generate();
        // "smith ann" < "smith ann marie" as pairs; '#' would get it wrong.
        assert!(sort_key("smith ann", &b) < sort_key("smith ann marie", &a));
        assert!(sort_key("smith", &b) < sort_key("smith ann", &a));
        assert!(format!("smith ann#{b}") > format!("smith ann marie#{a}"));
        let k = sort_key("lovelace ada", &a);
        assert_eq!(split_sort_key(&k), Some(("lovelace ada", a.clone())));
        assert_eq!(split_sort_key("no separator"), None);
        assert_eq!(
            split_sort_key(&format!("x{KEY_SEP}{}", a.as_str().to_lowercase())),
            None,
            "only canonical ids"
        );
    }

    #[test]
    fn empty_subjects_are_refused_rather_than_lost() {
        let mut u = sample();
        u.idp_subject = Some(String::new());
        assert!(matches!(user_item(&u), Err(StoreError::Backend(_))));
    }

    #[test]
    fn rate_keys_cannot_collide() {
        assert_ne!(rate_pk("a#1", 60, 2), rate_pk("a", 1, 60));
        assert_ne!(rate_pk("x", 60, 0), rate_pk("x", 3600, 0));
    }
}
