//! Audit events: who did what to whom, when, in which request. Written in
//! the same transaction as the change. Personal data (names, email
//! addresses) appears only in `changes` of fields marked personal, and the
//! store removes it when the user is deleted.

use crate::ids::TenantId;
use crate::model::user::UserId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FieldChange {
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Fields whose values are personal data.
pub const PERSONAL_FIELDS: &[&str] = &["email", "pending_email", "first_name", "last_name"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditEvent {
    pub tenant_id: TenantId,
    /// A ULID: orders events by time.
    pub id: String,
    /// The acting user's id, or a system actor (`system:auth0`, `anonymous`).
    pub actor: String,
    /// e.g. `user.invited`, `user.suspended`, `profile.updated`.
    pub action: String,
    pub target_user: Option<UserId>,
    pub changes: Vec<FieldChange>,
    pub request_id: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub at: OffsetDateTime,
}

impl AuditEvent {
    pub fn new(
        tenant_id: &TenantId,
        actor: impl Into<String>,
        action: &str,
        target_user: Option<&UserId>,
        request_id: &str,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            tenant_id: tenant_id.clone(),
            id: crate::ids::monotonic_ulid().to_string(),
            actor: actor.into(),
            action: action.to_owned(),
            target_user: target_user.cloned(),
            changes: Vec::new(),
            request_id: request_id.to_owned(),
            at,
        }
    }

    pub fn with_changes(mut self, changes: Vec<FieldChange>) -> Self {
        self.changes = changes;
        self
    }

    /// The same event with personal values removed (what survives deletion).
    pub fn without_personal_data(&self) -> Self {
        let mut e = self.clone();
        for c in &mut e.changes {
            if PERSONAL_FIELDS.contains(&c.field.as_str()) {
                c.before = c.before.as_ref().map(|_| "[removed]".to_owned());
                c.after = c.after.as_ref().map(|_| "[removed]".to_owned());
            }
        }
        e
    }
}
