//! Changing many users at once (`POST /users/batch`): the request body, its
//! size limit, and the one step that runs each operation by calling the
//! single operation's own use case — so each item is validated and
//! authorized exactly as `PATCH /users/{id}`, `POST /users/{id}/suspend`
//! and the others would, with no copy of their rules here. Each change is
//! its own atomic write (with its audit event, emails and owed
//! identity-provider work): one refused item undoes nothing else.
//!
//! A batch runs as a bounded number of parallel round trips, not one item
//! after another ([`plan`]): items on different users run at the same time,
//! [`BATCH_CONCURRENCY`] at once; items on the same user run in request
//! order (an item's `if_match` may be the version the one before it
//! wrote). Each item still reads its user and writes conditionally on the
//! version it read, so a concurrent change is caught as it is for a single
//! request.
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

/// How many items (chains of items on one user) run at once. Each item is
/// a read and a transactional write of a few items (the user, its audit
/// event, owed work, emails), on partitions of its own user. 16 brings a
/// batch of 100 items on different users from 200 sequential waits to at
/// most 14 (7 items deep); 25 would make it 8, a small gain for a burst of
/// 25 transactions at once from one request, which on an on-demand table
/// still warming up (or a provisioned one sized for steady traffic) is
/// what gets throttled and retried, eating the gain. What runs at once is
/// held in one task's memory (a user and a request each, a few KB): the
/// Lambda's memory is not what bounds it.
pub const BATCH_CONCURRENCY: usize = 16;

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

/// The order a batch runs in: segments, one after the other; in a
/// segment, chains that may run at the same time; in a chain, operations
/// (their indices) in request order. `caller` is the acting user's id;
/// `admin` whether they are an admin.
///
/// - Operations on the same user are one chain (the id normalized as the
///   route parses it).
/// - Operations that touch what users share are one chain too, so they
///   meet the shared thing in request order, as one after the other would:
///   an email change (the address guard, and the actor's email-change
///   budget), a delete when the batch changes an email (it frees an
///   address a change may take), and a non-admin's resend (the actor's
///   invitation budget). Without that, two changes swapping addresses, or
///   the last resend the budget allows, could land in another order than
///   the request's.
/// - Deletes and profile changes are one chain as well: each write moves
///   its user's profile's holder count, one item all of them share, and
///   DynamoDB cancels transactions that meet on an item at the same time
///   (`TransactionConflict`). The store retries those (8 attempts), but 16
///   writes on one profile at once would keep cancelling each other and
///   some could run out of attempts (a 503 where one after the other
///   succeeds); in request order they cannot. DynamoDB Local serializes
///   transactions and shows no such conflict, so no test here can see it.
/// - An operation on the caller ends its segment: a change to the caller's
///   own record is seen by the operations after it (the handler reads the
///   caller again), as the next request's authentication would see it.
pub fn plan(ops: &[BatchOperation], caller: &str, admin: bool) -> Vec<Vec<Vec<usize>>> {
    let key = |op: &BatchOperation| {
        UserId::parse(op.id()).map_or_else(|| op.id().to_owned(), |id| id.as_str().to_owned())
    };
    let caller =
        UserId::parse(caller).map_or_else(|| caller.to_owned(), |id| id.as_str().to_owned());
    let email_changes = ops.iter().any(changes_email);
    let shared = |op: &BatchOperation| match op {
        BatchOperation::Update { .. } => changes_email(op),
        BatchOperation::Delete { .. } => email_changes,
        BatchOperation::ResendInvitation { .. } => !admin,
        _ => false,
    };
    let holders = |op: &BatchOperation| match op {
        BatchOperation::Delete { .. } => true,
        BatchOperation::Update { patch, .. } => patch.profile_id.is_some(),
        _ => false,
    };
    let mut segments = Vec::new();
    let mut start = 0;
    for (i, op) in ops.iter().enumerate() {
        if key(op) == caller || i + 1 == ops.len() {
            segments.push(chains(start..=i, |j| {
                let op = &ops[j];
                let mut keys = vec![key(op)];
                if shared(op) {
                    keys.push(SHARED.to_owned());
                }
                if holders(op) {
                    keys.push(HOLDERS.to_owned());
                }
                keys
            }));
            start = i + 1;
        }
    }
    segments
}

fn changes_email(op: &BatchOperation) -> bool {
    matches!(op, BatchOperation::Update { patch, .. } if patch.email.is_some())
}

/// The keys operations on what users share carry besides their user's (no
/// user id looks like them): the email guard and budgets; profile holder
/// counts.
const SHARED: &str = "";
const HOLDERS: &str = " holders";

/// Groups `indices` (in order) into chains: two operations share a chain
/// when they share a key (their user, or something users share).
fn chains(
    indices: std::ops::RangeInclusive<usize>,
    keys_of: impl Fn(usize) -> Vec<String>,
) -> Vec<Vec<usize>> {
    let mut chains: Vec<Vec<usize>> = Vec::new();
    let mut chain_keys: Vec<Vec<String>> = Vec::new();
    let mut owner: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for i in indices {
        let keys = keys_of(i);
        let mut joined: Vec<usize> = keys.iter().filter_map(|k| owner.get(k).copied()).collect();
        joined.sort_unstable();
        joined.dedup();
        let into = match joined.first() {
            Some(&first) => first,
            None => {
                chains.push(Vec::new());
                chain_keys.push(Vec::new());
                chains.len() - 1
            }
        };
        // Merge the other chains this operation joins into the first.
        for &other in &joined[1.min(joined.len())..] {
            let ops = std::mem::take(&mut chains[other]);
            chains[into].extend(ops);
            let moved = std::mem::take(&mut chain_keys[other]);
            for k in &moved {
                owner.insert(k.clone(), into);
            }
            chain_keys[into].extend(moved);
        }
        chains[into].sort_unstable();
        chains[into].push(i);
        for k in keys {
            if owner.insert(k.clone(), into).is_none() {
                chain_keys[into].push(k);
            }
        }
    }
    chains.retain(|c| !c.is_empty());
    chains
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

    fn ops(json: &str) -> Vec<BatchOperation> {
        serde_json::from_str::<BatchRequest>(json)
            .unwrap()
            .operations
    }

    const A: &str = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
    const B: &str = "01BX5ZZKBKACTAV9WEVGEMMVRZ";
    const ME: &str = "01BX5ZZKBKACTAV9WEVGEMMVS0";

    #[test]
    fn different_users_run_together_the_same_user_in_order() {
        // a, b, a (lowercase: the same user as the route parses it), b.
        let batch = ops(&format!(
            r#"{{"operations": [
                {{"op": "suspend", "id": "{A}"}},
                {{"op": "suspend", "id": "{B}"}},
                {{"op": "enable", "id": "{a}"}},
                {{"op": "reset_password", "id": "{B}"}},
                {{"op": "delete", "id": "not-an-id"}}
            ]}}"#,
            a = A.to_lowercase()
        ));
        assert_eq!(
            plan(&batch, ME, true),
            vec![vec![vec![0, 2], vec![1, 3], vec![4]]]
        );
    }

    #[test]
    fn what_users_share_is_met_in_request_order() {
        // Two email changes (they may swap addresses) and a delete (it
        // frees one) are one chain, with everything else on their users.
        let batch = ops(&format!(
            r#"{{"operations": [
                {{"op": "suspend", "id": "{A}"}},
                {{"op": "update", "id": "{B}", "if_match": "\"1\"", "patch": {{"email": "x@example.com"}}}},
                {{"op": "update", "id": "{ME}x", "if_match": "\"1\"", "patch": {{"last_name": "Y"}}}},
                {{"op": "delete", "id": "{A}"}},
                {{"op": "update", "id": "c", "if_match": "\"1\"", "patch": {{"email": "y@example.com"}}}}
            ]}}"#
        ));
        assert_eq!(
            plan(&batch, ME, true),
            vec![vec![vec![0, 1, 3, 4], vec![2]]]
        );
        // Deletes and profile changes move holder counts: one chain, the
        // rest of the batch beside it.
        let batch = ops(&format!(
            r#"{{"operations": [
                {{"op": "delete", "id": "{A}"}},
                {{"op": "suspend", "id": "{ME}x"}},
                {{"op": "update", "id": "{B}", "if_match": "\"1\"", "patch": {{"profile_id": "p"}}}},
                {{"op": "update", "id": "c", "if_match": "\"1\"", "patch": {{"last_name": "Z"}}}}
            ]}}"#
        ));
        assert_eq!(
            plan(&batch, ME, true),
            vec![vec![vec![0, 2], vec![1], vec![3]]]
        );
        // A non-admin's resends spend one budget; an admin's spend none.
        let batch = ops(&format!(
            r#"{{"operations": [{{"op": "resend_invitation", "id": "{A}"}}, {{"op": "resend_invitation", "id": "{B}"}}]}}"#
        ));
        assert_eq!(plan(&batch, ME, false), vec![vec![vec![0, 1]]]);
        assert_eq!(plan(&batch, ME, true), vec![vec![vec![0], vec![1]]]);
    }

    #[test]
    fn an_operation_on_the_caller_ends_its_segment() {
        let batch = ops(&format!(
            r#"{{"operations": [
                {{"op": "suspend", "id": "{A}"}},
                {{"op": "update", "id": "{ME}", "if_match": "\"1\"", "patch": {{"last_name": "Y"}}}},
                {{"op": "suspend", "id": "{B}"}},
                {{"op": "enable", "id": "{A}"}}
            ]}}"#
        ));
        assert_eq!(
            plan(&batch, ME, false),
            vec![vec![vec![0], vec![1]], vec![vec![2], vec![3]]]
        );
    }
}
