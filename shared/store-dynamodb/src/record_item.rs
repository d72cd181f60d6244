//! The items that travel with a user write or stand alone beside it: audit
//! events, outbox emails and idempotency keys (see the layout table in
//! `user_item.rs`), and their mapping to domain types.

use crate::due::outbox_due_sk;
use crate::error::malformed;
use crate::item::get_opt_i64;
use crate::item::{Item, get_s, get_time, s, timestamp};
use crate::user_item::{
    AUDIT_ENTITY, OUTBOX_ENTITY, OUTBOX_PENDING, attr, audit_pk, enum_str, get_opt_s,
    get_s_or_empty, index, key, outbox_key, parse_enum, tenant_audit_pk,
};
use aws_sdk_dynamodb::types::AttributeValue;
use peak_domain::audit::{AuditEvent, FieldChange};
use peak_domain::ids::TenantId;
use peak_domain::model::user::{Email, UserId};
use peak_domain::outbox::{EmailKind, FailedEmail, OutboxEmail};
use peak_domain::ports::{SavedResponse, StoreError};
use serde::{Deserialize, Serialize};

// --- audit events -----------------------------------------------------

/// An audit event item: in its target user's partition (newest last by
/// id) and in the tenant's GSI1 partition.
pub fn audit_item(e: &AuditEvent) -> Result<Item, StoreError> {
    if e.id.is_empty() {
        return Err(StoreError::Backend(
            "cannot store an audit event without an id".into(),
        ));
    }
    let changes = serde_json::to_string(&e.changes)
        .map_err(|_| StoreError::Backend("cannot encode audit changes".into()))?;
    let mut item = key(audit_pk(&e.tenant_id, e.target_user.as_ref()), &e.id);
    let mut put = |name: &str, value: AttributeValue| {
        item.insert(name.to_owned(), value);
    };
    put(attr::ENTITY, s(AUDIT_ENTITY));
    put(index::GSI1.1, s(tenant_audit_pk(&e.tenant_id)));
    put(index::GSI1.2, s(&e.id));
    put(attr::TENANT_ID, s(e.tenant_id.as_str()));
    put(attr::ID, s(&e.id));
    // Empty strings are left out (DynamoDB Local refuses them).
    for (name, value) in [
        (attr::ACTOR, &e.actor),
        (attr::ACTION, &e.action),
        (attr::REQUEST_ID, &e.request_id),
    ] {
        if !value.is_empty() {
            put(name, s(value));
        }
    }
    if let Some(u) = &e.target_user {
        put(attr::TARGET_USER, s(u.as_str()));
    }
    put(attr::CHANGES, s(changes));
    put(attr::AT, s(timestamp(e.at)?));
    Ok(item)
}

pub fn audit_from_item(item: &Item) -> Result<AuditEvent, StoreError> {
    if get_s(item, attr::ENTITY)? != AUDIT_ENTITY {
        return Err(malformed("not an audit event"));
    }
    let changes: Vec<FieldChange> = serde_json::from_str(get_s(item, attr::CHANGES)?)
        .map_err(|_| malformed("invalid `changes`"))?;
    Ok(AuditEvent {
        tenant_id: TenantId::parse(get_s(item, attr::TENANT_ID)?)
            .ok_or_else(|| malformed("invalid `tenant_id`"))?,
        id: get_s(item, attr::ID)?.to_owned(),
        actor: get_s_or_empty(item, attr::ACTOR)?,
        action: get_s_or_empty(item, attr::ACTION)?,
        target_user: get_opt_s(item, attr::TARGET_USER)?
            .map(|u| UserId::parse(u).ok_or_else(|| malformed("invalid `target_user`")))
            .transpose()?,
        changes,
        request_id: get_s_or_empty(item, attr::REQUEST_ID)?,
        at: get_time(item, attr::AT)?,
    })
}

// --- outbox -----------------------------------------------------------

/// An outbox email not yet sent: listed in the sparse pending partition of
/// GSI2 (due at once) until sent or failed for good.
pub fn outbox_item(m: &OutboxEmail) -> Result<Item, StoreError> {
    if m.id.is_empty() {
        return Err(StoreError::Backend(
            "cannot store an outbox email without an id".into(),
        ));
    }
    let data = serde_json::to_string(&m.data)
        .map_err(|_| StoreError::Backend("cannot encode outbox data".into()))?;
    let mut item = outbox_key(&m.tenant_id, &m.id);
    let mut put = |name: &str, value: AttributeValue| {
        item.insert(name.to_owned(), value);
    };
    put(attr::ENTITY, s(OUTBOX_ENTITY));
    put(
        index::GSI2.1,
        s(crate::due::pending_pk(OUTBOX_PENDING, &m.id)),
    );
    put(index::GSI2.2, s(outbox_due_sk(0, &m.id)));
    put(attr::TENANT_ID, s(m.tenant_id.as_str()));
    put(attr::ID, s(&m.id));
    put(attr::KIND, s(enum_str(&m.kind, "email kind")?));
    put(attr::TO, s(m.to.as_str()));
    put(attr::USER_ID, s(m.user_id.as_str()));
    put(attr::DATA, s(data));
    put(attr::CREATED_AT, s(timestamp(m.created_at)?));
    Ok(item)
}

pub fn outbox_from_item(item: &Item) -> Result<OutboxEmail, StoreError> {
    if get_s(item, attr::ENTITY)? != OUTBOX_ENTITY {
        return Err(malformed("not an outbox email"));
    }
    let kind: EmailKind = parse_enum(get_s(item, attr::KIND)?, attr::KIND)?;
    Ok(OutboxEmail {
        tenant_id: TenantId::parse(get_s(item, attr::TENANT_ID)?)
            .ok_or_else(|| malformed("invalid `tenant_id`"))?,
        id: get_s(item, attr::ID)?.to_owned(),
        kind,
        to: Email::from_stored(get_s(item, attr::TO)?).map_err(|_| malformed("invalid `to`"))?,
        user_id: UserId::parse(get_s(item, attr::USER_ID)?)
            .ok_or_else(|| malformed("invalid `user_id`"))?,
        // Dropped once sent or failed for good.
        data: match item.get(attr::DATA) {
            None => serde_json::Value::Null,
            Some(_) => serde_json::from_str(get_s(item, attr::DATA)?)
                .map_err(|_| malformed("invalid `data`"))?,
        },
        created_at: get_time(item, attr::CREATED_AT)?,
    })
}

/// The failed attempts of an outbox item (0 when never failed).
pub fn outbox_attempts(item: &Item) -> Result<u32, StoreError> {
    Ok(get_opt_i64(item, attr::ATTEMPTS)?
        .map_or(0, |a| u32::try_from(a.max(0)).unwrap_or(u32::MAX)))
}

/// An outbox email failed for good, as operators see it.
pub fn failed_from_item(item: &Item) -> Result<FailedEmail, StoreError> {
    Ok(FailedEmail {
        email: outbox_from_item(item)?,
        reason: get_s(item, attr::FAILURE)?.to_owned(),
        attempts: outbox_attempts(item)?,
        failed_at: get_time(item, attr::FAILED_AT)?,
    })
}

// --- idempotency ------------------------------------------------------

pub const IN_PROGRESS: &str = "in_progress";
pub const COMPLETED: &str = "completed";

#[derive(Serialize, Deserialize)]
struct StoredResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

pub fn encode_response(r: &SavedResponse) -> Result<String, StoreError> {
    serde_json::to_string(&StoredResponse {
        status: r.status,
        headers: r.headers.clone(),
        body: r.body.clone(),
    })
    .map_err(|_| StoreError::Backend("cannot encode the saved response".into()))
}

pub fn decode_response(raw: &str) -> Result<SavedResponse, StoreError> {
    let r: StoredResponse =
        serde_json::from_str(raw).map_err(|_| malformed("invalid `response`"))?;
    Ok(SavedResponse {
        status: r.status,
        headers: r.headers,
        body: r.body,
    })
}

/// A fingerprint as stored (absent when empty).
pub fn get_fingerprint(item: &Item) -> Result<String, StoreError> {
    get_s_or_empty(item, attr::FINGERPRINT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::due::outbox_due_bound;
    use crate::item::PK;
    use crate::user_item::tests::sample;
    use time::macros::datetime;

    #[test]
    fn audit_events_and_outbox_emails_round_trip() {
        let u = sample();
        let mut e = AuditEvent::new(
            &u.tenant_id,
            "",
            "user.updated",
            Some(&u.id),
            "",
            datetime!(2025-01-02 03:04:05.5 +01:00),
        );
        e.changes = vec![FieldChange {
            field: "first_name".into(),
            before: Some(String::new()),
            after: None,
        }];
        let item = audit_item(&e).unwrap();
        assert_eq!(item[PK], s(format!("TENANT#acme#AUDIT#{}", u.id)));
        assert_eq!(item["GSI1PK"], s("TENANT#acme#AUDIT"));
        assert_eq!(audit_from_item(&item).unwrap(), e);
        let system = AuditEvent::new(&u.tenant_id, "system", "x", None, "r", e.at);
        assert_eq!(audit_item(&system).unwrap()[PK], s("TENANT#acme#AUDIT#-"));

        let m = OutboxEmail {
            tenant_id: u.tenant_id.clone(),
            id: ulid_like(),
            kind: EmailKind::EmailChangeVerification,
            to: u.email.clone(),
            user_id: u.id.clone(),
            data: serde_json::json!({"link": "https://x/y", "n": 3}),
            created_at: e.at,
        };
        let item = outbox_item(&m).unwrap();
        assert_eq!(item[attr::KIND], s("email_change_verification"));
        let shard = crate::due::shard_of(&m.id, crate::due::PENDING_SHARDS);
        assert_eq!(item["GSI2PK"], s(format!("OUTBOX#PENDING#{shard}")));
        assert_eq!(item["GSI2SK"], s(format!("0000000000000#{}", m.id)));
        assert_eq!(outbox_from_item(&item).unwrap(), m);
        let mut sent = item.clone();
        sent.remove(attr::DATA);
        assert_eq!(
            outbox_from_item(&sent).unwrap().data,
            serde_json::Value::Null
        );
    }

    #[test]
    fn pending_sort_keys_order_by_due_time_then_id() {
        let id = ulid_like();
        let now = 1_760_000_000_123;
        let due = outbox_due_sk(now, &id);
        assert!(due < outbox_due_bound(now), "due at now");
        assert!(
            outbox_due_sk(now + 1, &id) > outbox_due_bound(now),
            "due later"
        );
        assert!(outbox_due_sk(0, &id) < outbox_due_sk(1, "0"));
        assert!(outbox_due_sk(999, "z") < outbox_due_sk(1000, "a"));
        // An item stored with the bare id (a ULID) counts as due.
        assert!(id.as_str() < outbox_due_bound(now).as_str());
        assert!(id.as_str() > outbox_due_sk(0, &id).as_str());
    }

    fn ulid_like() -> String {
        UserId::generate().as_str().to_owned()
    }

    #[test]
    fn saved_responses_round_trip() {
        let r = SavedResponse {
            status: 201,
            headers: vec![("location".into(), "/users/1".into())],
            body: String::new(),
        };
        assert_eq!(decode_response(&encode_response(&r).unwrap()).unwrap(), r);
    }
}
