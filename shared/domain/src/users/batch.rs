//! Changing many users at once (`POST /users/batch`): the request body, its
//! size limit, and the one step that runs each operation by calling the
//! single operation's own use case — so each item is validated and
//! authorized exactly as `PATCH /users/{id}`, `POST /users/{id}/suspend`
//! and the others would, with no copy of their rules here. Each change is
//! its own atomic write (with its audit event, emails and owed
//! identity-provider work): one refused item undoes nothing else.
//!
//! This module sits above the groups (it calls into edits, status,
//! invitations and passwords); none of them imports it.

use crate::context::{Actor, Ctx};
use crate::error::{Error, FieldError};
use crate::model::user::{User, UserId};
use crate::users::edits::edit_user;
use crate::users::invitations::{resend_invitation, revoke_invitation};
use crate::users::passwords::reset_password;
use crate::users::status::{delete_user, enable_user, suspend_user};
use crate::users::wire::UserPatch;
use serde::Deserialize;

/// Most operations one request carries. A hundred keeps one request well
/// inside a Lambda's timeout and the idempotency lease (each item is a few
/// store round trips) and its answer small; more goes through a file (bulk
/// jobs).
pub const MAX_BATCH_OPERATIONS: usize = 100;

/// `POST /users/batch`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// 1 to 100 operations, run in this order, each on its own.
    #[schemars(length(min = 1, max = MAX_BATCH_OPERATIONS))]
    pub operations: Vec<BatchOperation>,
}

/// One operation: `op` names the single route it stands for; `id` is the
/// user's id as in that route's path; `if_match` is what that route takes
/// as its `If-Match` header (the ETag as read, e.g. `"\"3\""`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum BatchOperation {
    /// `PATCH /users/{id}` (`if_match` required, as there).
    Update {
        id: String,
        #[serde(default)]
        if_match: Option<String>,
        patch: UserPatch,
    },
    /// `POST /users/{id}/suspend`.
    Suspend {
        id: String,
        #[serde(default)]
        if_match: Option<String>,
    },
    /// `POST /users/{id}/enable`.
    Enable {
        id: String,
        #[serde(default)]
        if_match: Option<String>,
    },
    /// `DELETE /users/{id}`.
    Delete {
        id: String,
        #[serde(default)]
        if_match: Option<String>,
    },
    /// `POST /users/{id}/invitation/resend`.
    ResendInvitation { id: String },
    /// `POST /users/{id}/invitation/revoke`.
    RevokeInvitation { id: String },
    /// `POST /users/{id}/password-reset`.
    ResetPassword { id: String },
}

impl BatchOperation {
    /// The target's id, as sent.
    pub fn id(&self) -> &str {
        match self {
            BatchOperation::Update { id, .. }
            | BatchOperation::Suspend { id, .. }
            | BatchOperation::Enable { id, .. }
            | BatchOperation::Delete { id, .. }
            | BatchOperation::ResendInvitation { id }
            | BatchOperation::RevokeInvitation { id }
            | BatchOperation::ResetPassword { id } => id,
        }
    }

    /// The `If-Match` value, as sent (only where the single route reads one).
    pub fn if_match(&self) -> Option<&str> {
        match self {
            BatchOperation::Update { if_match, .. }
            | BatchOperation::Suspend { if_match, .. }
            | BatchOperation::Enable { if_match, .. }
            | BatchOperation::Delete { if_match, .. } => if_match.as_deref(),
            _ => None,
        }
    }
}

/// What one operation did, as its single route answers it.
#[derive(Debug, Clone)]
pub enum Applied {
    /// The user as changed (update, suspend, enable, resend, revoke);
    /// boxed, as the other answers carry nothing.
    User(Box<User>),
    /// Deleted.
    Deleted,
    /// A password-reset email queued.
    ResetQueued,
}

/// A batch holds 1 to [`MAX_BATCH_OPERATIONS`] operations; otherwise
/// nothing runs.
pub fn check_batch_size(len: usize) -> Result<(), Error> {
    if (1..=MAX_BATCH_OPERATIONS).contains(&len) {
        return Ok(());
    }
    Err(Error::Validation(vec![FieldError::new(
        "operations",
        format!(
            "must hold 1 to {MAX_BATCH_OPERATIONS} operations (the limit is {MAX_BATCH_OPERATIONS}; this one holds {len})"
        ),
    )]))
}

/// Runs one operation of a batch through the single operation's use case
/// (`id` and `if_match` parsed as that route parses its path and header).
pub async fn apply(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &UserId,
    if_match: Option<u64>,
    op: &BatchOperation,
) -> Result<Applied, Error> {
    Ok(match op {
        BatchOperation::Update { patch, .. } => Applied::User(Box::new(
            edit_user(ctx, actor, id, if_match, patch.clone()).await?,
        )),
        BatchOperation::Suspend { .. } => {
            Applied::User(Box::new(suspend_user(ctx, actor, id, if_match).await?))
        }
        BatchOperation::Enable { .. } => {
            Applied::User(Box::new(enable_user(ctx, actor, id, if_match).await?))
        }
        BatchOperation::Delete { .. } => {
            delete_user(ctx, actor, id, if_match).await?;
            Applied::Deleted
        }
        BatchOperation::ResendInvitation { .. } => {
            Applied::User(Box::new(resend_invitation(ctx, actor, id).await?))
        }
        BatchOperation::RevokeInvitation { .. } => {
            Applied::User(Box::new(revoke_invitation(ctx, actor, id).await?))
        }
        BatchOperation::ResetPassword { .. } => {
            reset_password(ctx, actor, id).await?;
            Applied::ResetQueued
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_named_and_empty_is_refused() {
        assert!(check_batch_size(1).is_ok());
        assert!(check_batch_size(MAX_BATCH_OPERATIONS).is_ok());
        for len in [0, MAX_BATCH_OPERATIONS + 1] {
            let Err(Error::Validation(errors)) = check_batch_size(len) else {
                panic!("{len} accepted")
            };
            assert_eq!(errors[0].field, "operations");
            assert!(errors[0].reason.contains("100"), "{}", errors[0].reason);
        }
    }

    #[test]
    fn operations_read_as_their_single_routes_take_them() {
        let req: BatchRequest = serde_json::from_str(
            r#"{"operations": [
                {"op": "update", "id": "a", "if_match": "\"2\"", "patch": {"last_name": "X", "account_number": null}},
                {"op": "suspend", "id": "b"},
                {"op": "reset_password", "id": "c"}
            ]}"#,
        )
        .unwrap();
        assert_eq!(req.operations[0].if_match(), Some("\"2\""));
        let BatchOperation::Update { patch, .. } = &req.operations[0] else {
            panic!("update")
        };
        assert_eq!(patch.account_number, Some(None));
        assert_eq!(req.operations[2].id(), "c");
        // What a route does not take is refused, not ignored.
        for bad in [
            r#"{"operations": [{"op": "resend_invitation", "id": "a", "if_match": "\"1\""}]}"#,
            r#"{"operations": [{"op": "fly", "id": "a"}]}"#,
            r#"{"operations": [{"op": "update", "id": "a"}]}"#,
        ] {
            assert!(serde_json::from_str::<BatchRequest>(bad).is_err(), "{bad}");
        }
    }
}
