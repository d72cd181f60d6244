//! [`UserStore`] on the single table. See docs/dynamodb.md for every
//! access pattern and src/user_item.rs for the item layout.
//!
//! A user write is one `TransactWriteItems`: the user item (conditioned on
//! its version), the guards that moved (email, subject, invitation), the
//! account memberships, the holder counts of the profiles involved, and the
//! write's audit events and outbox emails. A refusal is told apart by the
//! per-item cancellation reasons; a conflict with a concurrent transaction
//! is retried a few times with jittered backoff before it becomes
//! `Unavailable`.

use crate::error::{cancelled, malformed, sdk};
use crate::item::{self, Item, PK, SK, get_s, get_u64, n, s};
use crate::user_item::{
    self as ui, COMPLETED, EMAIL_GUARD_ENTITY, IN_PROGRESS, INVITATION_GUARD_ENTITY, KEY_SEP,
    NO_USER, OUTBOX_FAILED, OUTBOX_PENDING, attr, index, unix_ms,
};
use crate::{CONDITION_FAILED, DynamoStore, TxError, build_error, names};
use async_trait::async_trait;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{Delete, Put, ReturnValue, TransactWriteItem, Update};
use peak_domain::audit::AuditEvent;
use peak_domain::cursor;
use peak_domain::idp_events::{IdpDelivery, Recorded};
use peak_domain::idp_work::{IdpWork, IdpWorkItem};
use peak_domain::ids::TenantId;
use peak_domain::outbox::{FailedEmail, OutboxClaim, OutboxEmail, failure_reason};
use peak_domain::ports::{
    IdempotencyClaim, Page, PageRequest, SavedResponse, StoreError, UserStore, UserWrite,
};
use peak_domain::user::{Email, User, UserId, UserQuery};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;
use time::OffsetDateTime;

/// The list name user cursors are issued for.
const USERS_LIST: &str = "users";
/// The list name audit cursors are issued for.
const AUDIT_LIST: &str = "audit";
/// Cursor tags: which order the sort key in a user cursor belongs to.
const BY_NAME: &str = "name:";
const BY_EMAIL: &str = "email:";
/// DynamoDB's limit on the items of one transaction.
pub const MAX_TRANSACTION_ITEMS: usize = 100;
/// Attempts of a user write that keeps conflicting with concurrent ones.
const WRITE_ATTEMPTS: u32 = 8;
/// Backoff before retry n: a random wait up to min(BASE·2ⁿ, CAP) ms.
const BACKOFF_BASE_MS: u64 = 10;
const BACKOFF_CAP_MS: u64 = 400;
/// Items read per request when a filter expression may drop some.
const FILTERED_BATCH: usize = 100;
/// Attempts of a guard lookup whose guard moves between its two reads,
/// and of an idempotency claim racing an expiry.
const LOOKUP_ATTEMPTS: usize = 3;
/// How long a sent outbox record (stripped of its data) is kept.
const SENT_RETENTION_SECS: i64 = 30 * 86_400;
/// How long an outbox email failed for good stays listed (then TTL).
const FAILED_RETENTION_SECS: i64 = 30 * 86_400;
/// Cancellation reasons worth a retry.
const RETRYABLE_REASONS: &[&str] = &[
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
];

/// What an item of a user-write transaction is for: how to read its
/// cancellation reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// Put if absent: `AlreadyExists` when refused.
    CreateUser,
    /// Put/Delete if the version is the expected one: `NotFound` or
    /// `VersionMismatch` when refused (decided by reading).
    ChangeUser,
    /// Put if absent: `EmailTaken` when refused.
    EmailPut,
    EmailDelete,
    SubjectPut,
    SubjectDelete,
    /// The subject item rewritten with the user's copy (src/caller.rs),
    /// over our own or a missing one.
    SubjectRefresh,
    InvitationPut,
    InvitationDelete,
    MembershipPut,
    MembershipDelete,
    /// `ADD holder_count 1` if the profile exists: `ProfileMissing`.
    HolderAdd,
    HolderRemove,
    Audit,
    Outbox,
    /// Unconditional upsert of the work owed to the identity provider.
    IdpWork,
    /// The user's last sign-in item goes with the user.
    LoginDelete,
}

/// A user write as DynamoDB items, each with what it is for.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub items: Vec<TransactWriteItem>,
    pub parts: Vec<Part>,
}

/// A condition expression with its names and values.
struct Cond {
    expression: String,
    names: HashMap<String, String>,
    values: Item,
}

impl Cond {
    fn new(expression: impl Into<String>) -> Self {
        Self {
            expression: expression.into(),
            names: HashMap::new(),
            values: Item::new(),
        }
    }

    fn name(mut self, attr: &str) -> Self {
        self.names.extend(names(&[attr]));
        self
    }

    fn value(mut self, placeholder: &str, v: aws_sdk_dynamodb::types::AttributeValue) -> Self {
        self.values.insert(placeholder.to_owned(), v);
        self
    }

    fn absent() -> Self {
        Self::new("attribute_not_exists(PK)")
    }

    /// The item is gone already, or belongs to `user`.
    fn owned_by(user: &UserId) -> Self {
        Self::new(format!(
            "attribute_not_exists(PK) OR #{0} = :owner",
            attr::USER_ID
        ))
        .name(attr::USER_ID)
        .value(":owner", s(user.as_str()))
    }

    fn version(expected: u64) -> Self {
        Self::new(format!("#{0} = :expected", attr::VERSION))
            .name(attr::VERSION)
            .value(":expected", n(expected))
    }

    fn names_opt(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values_opt(&self) -> Option<Item> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

impl Plan {
    fn put(
        &mut self,
        table: &str,
        item: Item,
        cond: Option<Cond>,
        part: Part,
    ) -> Result<(), StoreError> {
        let mut b = Put::builder().table_name(table).set_item(Some(item));
        if let Some(c) = cond {
            b = b
                .condition_expression(&c.expression)
                .set_expression_attribute_names(c.names_opt())
                .set_expression_attribute_values(c.values_opt());
        }
        let put = b.build().map_err(build_error)?;
        self.items
            .push(TransactWriteItem::builder().put(put).build());
        self.parts.push(part);
        Ok(())
    }

    fn delete(
        &mut self,
        table: &str,
        key: Item,
        cond: Option<Cond>,
        part: Part,
    ) -> Result<(), StoreError> {
        let mut b = Delete::builder().table_name(table).set_key(Some(key));
        if let Some(c) = cond {
            b = b
                .condition_expression(&c.expression)
                .set_expression_attribute_names(c.names_opt())
                .set_expression_attribute_values(c.values_opt());
        }
        let delete = b.build().map_err(build_error)?;
        self.items
            .push(TransactWriteItem::builder().delete(delete).build());
        self.parts.push(part);
        Ok(())
    }

    /// `ADD holder_count <delta>` on a profile item.
    fn holders(
        &mut self,
        table: &str,
        key: Item,
        delta: i64,
        part: Part,
    ) -> Result<(), StoreError> {
        let holder_count = item::attr::HOLDER_COUNT;
        let mut cond = Cond::new(if delta < 0 {
            format!("attribute_exists(PK) AND #{holder_count} >= :least")
        } else {
            "attribute_exists(PK)".to_owned()
        })
        .name(holder_count)
        .value(":delta", n(delta));
        if delta < 0 {
            cond = cond.value(":least", n(delta.unsigned_abs()));
        }
        let update = Update::builder()
            .table_name(table)
            .set_key(Some(key))
            .update_expression(format!("ADD #{holder_count} :delta"))
            .condition_expression(&cond.expression)
            .set_expression_attribute_names(cond.names_opt())
            .set_expression_attribute_values(cond.values_opt())
            .build()
            .map_err(build_error)?;
        self.items
            .push(TransactWriteItem::builder().update(update).build());
        self.parts.push(part);
        Ok(())
    }

    /// An unconditional update, built by the caller.
    fn update(&mut self, update: Update, part: Part) {
        self.items
            .push(TransactWriteItem::builder().update(update).build());
        self.parts.push(part);
    }

    fn has(&self, part: Part) -> bool {
        self.parts.contains(&part)
    }

    /// Whether the condition of an item of kind `part` failed.
    fn failed(&self, reasons: &[String], part: Part) -> bool {
        self.parts
            .iter()
            .zip(reasons)
            .any(|(p, r)| *p == part && r == CONDITION_FAILED)
    }
}

/// The user a write is about, after checking the write hangs together.
fn subject_of<'a>(w: &UserWrite<'a>) -> Result<&'a User, StoreError> {
    let bad = |what: &str| Err(StoreError::Backend(format!("write user: {what}")));
    let user = match (w.previous, w.next) {
        (None, None) => return bad("neither a previous nor a next user"),
        (Some(p), Some(n)) if p.tenant_id != n.tenant_id || p.id != n.id => {
            return bad("the tenant and id of a user cannot change");
        }
        (_, Some(n)) => n,
        (Some(p), None) => p,
    };
    if w.audit.iter().any(|e| e.tenant_id != user.tenant_id)
        || w.outbox.iter().any(|m| m.tenant_id != user.tenant_id)
    {
        return bad("audit events and emails must be of the user's tenant");
    }
    Ok(user)
}

/// The transaction of a user write (see the module docs). Pure: it only
/// builds requests, so its shape can be tested without a server.
pub(crate) fn plan_user_write(table: &str, w: &UserWrite<'_>) -> Result<Plan, StoreError> {
    let user = subject_of(w)?;
    let (tenant, id) = (&user.tenant_id, &user.id);
    let (prev, next) = (w.previous, w.next);
    let mut plan = Plan::default();

    match (prev, next) {
        (None, Some(u)) => plan.put(
            table,
            ui::user_item(u)?,
            Some(Cond::absent()),
            Part::CreateUser,
        )?,
        (Some(p), Some(u)) => plan.put(
            table,
            ui::user_item(u)?,
            Some(Cond::version(p.version)),
            Part::ChangeUser,
        )?,
        (Some(p), None) => plan.delete(
            table,
            ui::user_key(tenant, id),
            Some(Cond::version(p.version)),
            Part::ChangeUser,
        )?,
        (None, None) => {}
    }

    // Guards: delete the old value's, put the new value's, when it moved.
    let emails = (
        prev.map(|u| u.email.normalized()),
        next.map(|u| u.email.normalized()),
    );
    let invitations = (
        prev.and_then(|u| u.invitation.as_ref().map(|i| i.token_hash.clone())),
        next.and_then(|u| u.invitation.as_ref().map(|i| i.token_hash.clone())),
    );
    type KeyOf = fn(&TenantId, &str) -> Item;
    let guards: [(_, KeyOf, &str, Part, Part); 2] = [
        (
            emails,
            ui::email_guard_key,
            EMAIL_GUARD_ENTITY,
            Part::EmailDelete,
            Part::EmailPut,
        ),
        (
            invitations,
            |_, hash| ui::invitation_guard_key(hash),
            INVITATION_GUARD_ENTITY,
            Part::InvitationDelete,
            Part::InvitationPut,
        ),
    ];
    for ((old, new), key_of, entity, delete, put) in guards {
        if old == new {
            continue;
        }
        if let Some(old) = old {
            plan.delete(
                table,
                key_of(tenant, &old),
                Some(Cond::owned_by(id)),
                delete,
            )?;
        }
        if let Some(new) = new {
            let item = ui::guard_item(key_of(tenant, &new), entity, tenant, id);
            plan.put(table, item, Some(Cond::absent()), put)?;
        }
    }
    // The subject item also carries a copy of the user for authentication.
    crate::caller::plan_subject(&mut plan, table, prev, next)?;

    // Memberships: one item per account, keyed by the name order; the old
    // keys that are not also new ones go, every new one is (re)written.
    let mut memberships = BTreeMap::new();
    if let Some(u) = next {
        let sk = ui::name_sk(u);
        for a in &u.customer_accounts {
            memberships.insert(
                (ui::account_pk(tenant, a), sk.clone()),
                ui::membership_item(u, a)?,
            );
        }
    }
    if let Some(u) = prev {
        let sk = ui::name_sk(u);
        let old: BTreeSet<(String, String)> = u
            .customer_accounts
            .iter()
            .map(|a| (ui::account_pk(tenant, a), sk.clone()))
            .collect();
        for k in old {
            if !memberships.contains_key(&k) {
                plan.delete(table, ui::key(k.0, &k.1), None, Part::MembershipDelete)?;
            }
        }
    }
    for (_, m) in memberships {
        plan.put(table, m, None, Part::MembershipPut)?;
    }

    // Holder counts: +1 on the new profile (which must exist), -1 on the old.
    let profiles = (prev.map(|u| &u.profile_id), next.map(|u| &u.profile_id));
    if profiles.0 != profiles.1 {
        if let Some(p) = profiles.1 {
            plan.holders(table, item::profile_key(tenant, p), 1, Part::HolderAdd)?;
        }
        if let Some(p) = profiles.0 {
            plan.holders(table, item::profile_key(tenant, p), -1, Part::HolderRemove)?;
        }
    }

    for e in w.audit {
        // A deleted user's own last events keep no personal data either.
        let e = if next.is_none() {
            e.without_personal_data()
        } else {
            e.clone()
        };
        plan.put(
            table,
            ui::audit_item(&e)?,
            Some(Cond::absent()),
            Part::Audit,
        )?;
    }
    for m in w.outbox {
        plan.put(
            table,
            ui::outbox_item(m)?,
            Some(Cond::absent()),
            Part::Outbox,
        )?;
    }

    if next.is_none() {
        plan.delete(table, ui::login_key(tenant, id), None, Part::LoginDelete)?;
    }
    if let Some(work) = peak_domain::idp_work::owed_work(prev, next) {
        plan.update(crate::idp_work::work_upsert(table, &work)?, Part::IdpWork);
    }

    if plan.items.len() > MAX_TRANSACTION_ITEMS {
        return Err(StoreError::Backend(format!(
            "write user: {} items, more than the {MAX_TRANSACTION_ITEMS} of one transaction",
            plan.items.len()
        )));
    }
    Ok(plan)
}

/// What to do after a cancelled user write.
#[derive(Debug, PartialEq)]
enum Verdict {
    Refused(StoreError),
    Retry,
}

/// A random wait before retry `attempt` (full jitter).
pub(crate) fn backoff(attempt: u32) -> Duration {
    use std::hash::{BuildHasher, RandomState};
    let cap = BACKOFF_BASE_MS
        .saturating_mul(1u64 << attempt.min(16))
        .min(BACKOFF_CAP_MS);
    let random = RandomState::new().hash_one(std::time::SystemTime::now());
    Duration::from_millis(1 + random % cap.max(1))
}

pub(crate) fn is_condition_failed<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    e.as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

fn epoch(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

/// Unix time in milliseconds, saturating.
fn from_unix_ms(ms: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|_| malformed("a time in ms is out of range"))
}

/// Lowercased, and `None` when empty (an empty prefix filters nothing).
fn prefix(raw: Option<&String>) -> Option<String> {
    raw.map(|p| p.to_lowercase()).filter(|p| !p.is_empty())
}

/// Where a user list reads from and what is left to filter.
struct ListPlan {
    /// `None`: the table itself (account memberships).
    index: Option<&'static str>,
    pk_attr: &'static str,
    sk_attr: &'static str,
    pk: String,
    by_email: bool,
    /// `begins_with` on the sort key.
    key_prefix: Option<String>,
    filter: Option<String>,
    names: HashMap<String, String>,
    values: Item,
}

/// Picks the most selective source for `q`: account memberships, then the
/// profile, role and status indexes, then all users by name (GSI1); any
/// email prefix needs the email order (GSI2). The name prefix narrows the
/// key of every name-ordered source; the other filters become a filter
/// expression. `None` when nothing can match.
fn list_plan(tenant: &TenantId, q: &UserQuery) -> Option<ListPlan> {
    let name_prefix = prefix(q.name_prefix.as_ref());
    let email_prefix = prefix(q.email_prefix.as_ref());
    // Stored keys hold no control characters (and KEY_SEP is one).
    let impossible =
        |p: &Option<String>| p.as_ref().is_some_and(|p| p.chars().any(char::is_control));
    if impossible(&name_prefix) || impossible(&email_prefix) {
        return None;
    }
    let (mut status, mut role, mut profile, mut account) =
        (q.status, q.role, q.profile.as_ref(), q.account.as_ref());
    let mut table_source = false;
    let (index, pk) = if q.email_prefix.is_some() {
        (index::GSI2, ui::users_pk(tenant))
    } else if let Some(a) = account.take() {
        table_source = true;
        (("", PK, SK), ui::account_pk(tenant, a))
    } else if let Some(p) = profile.take() {
        (index::GSI5, ui::profile_users_pk(tenant, p))
    } else if let Some(r) = role.take() {
        (index::GSI4, ui::role_pk(tenant, r))
    } else if let Some(st) = status.take() {
        (index::GSI3, ui::status_pk(tenant, st))
    } else {
        (index::GSI1, ui::users_pk(tenant))
    };
    let by_email = q.email_prefix.is_some();
    let (key_prefix, mut name_filter) = if by_email {
        (email_prefix, name_prefix)
    } else {
        (name_prefix, None)
    };

    let mut filters = Vec::new();
    let mut expr_names = HashMap::new();
    let mut values = Item::new();
    let mut add = |expression: String, attr_name: &str, placeholder: &str, v| {
        filters.push(expression);
        expr_names.extend(names(&[attr_name]));
        values.insert(placeholder.to_owned(), v);
    };
    if let Some(st) = status {
        add(
            format!("#{} = :status", attr::STATUS),
            attr::STATUS,
            ":status",
            s(st.as_str()),
        );
    }
    if let Some(r) = role {
        add(
            format!("#{} = :role", attr::ROLE),
            attr::ROLE,
            ":role",
            s(r.as_str()),
        );
    }
    if let Some(p) = profile {
        add(
            format!("#{} = :profile", attr::PROFILE_ID),
            attr::PROFILE_ID,
            ":profile",
            s(p.as_str()),
        );
    }
    if let Some(a) = account {
        add(
            format!("contains(#{}, :account)", attr::CUSTOMER_ACCOUNTS),
            attr::CUSTOMER_ACCOUNTS,
            ":account",
            s(a.as_str()),
        );
    }
    if let Some(p) = name_filter.take() {
        add(
            format!("begins_with(#{}, :name_prefix)", attr::NAME_KEY),
            attr::NAME_KEY,
            ":name_prefix",
            s(p),
        );
    }
    Some(ListPlan {
        index: (!table_source).then_some(index.0),
        pk_attr: index.1,
        sk_attr: index.2,
        pk,
        by_email,
        key_prefix,
        filter: (!filters.is_empty()).then(|| filters.join(" AND ")),
        names: expr_names,
        values,
    })
}

impl ListPlan {
    fn tag(&self) -> &'static str {
        if self.by_email { BY_EMAIL } else { BY_NAME }
    }

    /// The key to resume after, from a cursor of this list and order.
    fn start_key(&self, tenant: &TenantId, raw: &str) -> Result<Item, StoreError> {
        let after = cursor::decode(tenant, USERS_LIST, raw)?;
        let sk = after
            .strip_prefix(self.tag())
            .ok_or(StoreError::InvalidCursor)?;
        let (_, id) = ui::split_sort_key(sk).ok_or(StoreError::InvalidCursor)?;
        // A start key outside the key condition is refused by DynamoDB.
        if self
            .key_prefix
            .as_ref()
            .is_some_and(|p| !sk.starts_with(p.as_str()))
        {
            return Err(StoreError::InvalidCursor);
        }
        let mut key = Item::from([
            (self.pk_attr.to_owned(), s(&self.pk)),
            (self.sk_attr.to_owned(), s(sk)),
        ]);
        if self.index.is_some() {
            key.extend(ui::user_key(tenant, &id));
        }
        Ok(key)
    }
}

impl DynamoStore {
    /// Runs a planned user write, retrying conflicts.
    async fn run_user_write(&self, w: &UserWrite<'_>, plan: &Plan) -> Result<(), StoreError> {
        const OP: &str = "write user";
        for attempt in 0..WRITE_ATTEMPTS {
            let reasons = match self.transact(OP, plan.items.clone()).await {
                Ok(()) => return Ok(()),
                // Servers differ in how many items a transaction may hold
                // (DynamoDB 100; DynamoDB Local 1.11 only 10): say how many.
                Err(TxError::Failed(StoreError::Backend(msg))) => {
                    return Err(StoreError::Backend(format!(
                        "{msg} (a transaction of {} items)",
                        plan.items.len()
                    )));
                }
                Err(TxError::Failed(e)) => return Err(e),
                Err(TxError::Cancelled(reasons)) => reasons,
            };
            match self.explain(w, plan, &reasons).await? {
                Verdict::Refused(e) => return Err(e),
                Verdict::Retry => tokio::time::sleep(backoff(attempt)).await,
            }
        }
        Err(StoreError::Unavailable(format!(
            "{OP}: still conflicting after {WRITE_ATTEMPTS} attempts, retry"
        )))
    }

    /// Why a user write was cancelled. A stale or missing user wins over
    /// everything else (the email may be taken by the very write this one
    /// is late for).
    async fn explain(
        &self,
        w: &UserWrite<'_>,
        plan: &Plan,
        reasons: &[String],
    ) -> Result<Verdict, StoreError> {
        const OP: &str = "write user";
        let user = subject_of(w)?;
        if reasons.is_empty() {
            return self.explain_by_reading(w, plan).await;
        }
        if plan.failed(reasons, Part::CreateUser) {
            return Ok(Verdict::Refused(StoreError::AlreadyExists));
        }
        if plan.failed(reasons, Part::ChangeUser) {
            let expected = w.previous.map_or(0, |p| p.version);
            return self.user_stale_or_missing(user, expected).await;
        }
        if plan.failed(reasons, Part::EmailPut) {
            return Ok(Verdict::Refused(StoreError::EmailTaken));
        }
        if plan.failed(reasons, Part::HolderAdd) {
            return Ok(Verdict::Refused(StoreError::ProfileMissing));
        }
        if let Some((part, _)) = plan
            .parts
            .iter()
            .zip(reasons)
            .find(|(_, r)| *r == CONDITION_FAILED)
        {
            return Ok(Verdict::Refused(StoreError::Backend(format!(
                "{OP}: unexpected refusal of {part:?}"
            ))));
        }
        if reasons
            .iter()
            .any(|r| RETRYABLE_REASONS.contains(&r.as_str()))
        {
            return Ok(Verdict::Retry);
        }
        let codes: Vec<Option<&str>> = reasons.iter().map(|c| Some(c.as_str())).collect();
        Ok(Verdict::Refused(cancelled(OP, &codes)))
    }

    /// `NotFound` or `VersionMismatch` for a refused change of `user`.
    async fn user_stale_or_missing(
        &self,
        user: &User,
        expected: u64,
    ) -> Result<Verdict, StoreError> {
        const OP: &str = "write user";
        match self
            .get_item(OP, ui::user_key(&user.tenant_id, &user.id))
            .await?
        {
            None => Ok(Verdict::Refused(StoreError::NotFound)),
            Some(item) if get_u64(&item, attr::VERSION)? != expected => {
                Ok(Verdict::Refused(StoreError::VersionMismatch))
            }
            // Versions only grow: a conflict, not a refusal.
            Some(_) => Ok(Verdict::Retry),
        }
    }

    /// For servers that give no cancellation reasons.
    async fn explain_by_reading(
        &self,
        w: &UserWrite<'_>,
        plan: &Plan,
    ) -> Result<Verdict, StoreError> {
        const OP: &str = "write user";
        let user = subject_of(w)?;
        let (tenant, id) = (&user.tenant_id, &user.id);
        match w.previous {
            None => {
                if self.get_item(OP, ui::user_key(tenant, id)).await?.is_some() {
                    return Ok(Verdict::Refused(StoreError::AlreadyExists));
                }
            }
            Some(p) => {
                if let Verdict::Refused(e) = self.user_stale_or_missing(user, p.version).await? {
                    return Ok(Verdict::Refused(e));
                }
            }
        }
        if let (true, Some(next)) = (plan.has(Part::EmailPut), w.next) {
            let guard = ui::email_guard_key(tenant, &next.email.normalized());
            if let Some(g) = self.get_item(OP, guard).await?
                && get_s(&g, attr::USER_ID)? != id.as_str()
            {
                return Ok(Verdict::Refused(StoreError::EmailTaken));
            }
        }
        if let (true, Some(next)) = (plan.has(Part::HolderAdd), w.next) {
            let key = item::profile_key(tenant, &next.profile_id);
            if self.get_item(OP, key).await?.is_none() {
                return Ok(Verdict::Refused(StoreError::ProfileMissing));
            }
        }
        Ok(Verdict::Retry)
    }

    /// Rewrites every audit event about `user` without personal data.
    /// Idempotent: events already clean are left alone.
    async fn scrub_audit(&self, tenant: &TenantId, user: &UserId) -> Result<(), StoreError> {
        const OP: &str = "remove personal data from audit";
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk")
                .expression_attribute_values(":pk", s(ui::audit_pk(tenant, Some(user))))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk(OP, &e))?;
            for item in out.items() {
                let event = ui::audit_from_item(item)?;
                let clean = event.without_personal_data();
                if clean != event {
                    self.client
                        .put_item()
                        .table_name(&self.table)
                        .set_item(Some(ui::audit_item(&clean)?))
                        .send()
                        .await
                        .map_err(|e| sdk(OP, &e))?;
                }
            }
            start = out.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                return Ok(());
            }
        }
    }

    /// The user a guard points to, if it still holds the guarded value
    /// (`holds`). Retries when the guard moves between the two reads.
    async fn find_by_guard(
        &self,
        op: &str,
        guard_key: Item,
        tenant: Option<&TenantId>,
        holds: impl Fn(&User) -> bool + Send + Sync,
    ) -> Result<Option<User>, StoreError> {
        for _ in 0..LOOKUP_ATTEMPTS {
            let Some(guard) = self.get_item(op, guard_key.clone()).await? else {
                return Ok(None);
            };
            let guard_tenant = match tenant {
                Some(t) => t.clone(),
                None => TenantId::parse(get_s(&guard, attr::TENANT_ID)?)
                    .ok_or_else(|| malformed("invalid `tenant_id`"))?,
            };
            let id = UserId::parse(get_s(&guard, attr::USER_ID)?)
                .ok_or_else(|| malformed("invalid `user_id`"))?;
            if let Some(user) = self.read_user(op, &guard_tenant, &id).await?
                && holds(&user)
            {
                return Ok(Some(user));
            }
        }
        Ok(None)
    }

    /// The user and their last sign-in: one consistent query of the user's
    /// partition (the user item and the small sign-in item).
    async fn read_user(
        &self,
        op: &str,
        tenant: &TenantId,
        id: &UserId,
    ) -> Result<Option<User>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(ui::user_pk(tenant, id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk(op, &e))?;
        let mut user = None;
        let mut last_login = None;
        for item in out.items() {
            match get_s(item, "SK")? {
                ui::USER_SK => user = Some(ui::user_from_item(item)?),
                ui::LOGIN_SK => last_login = ui::login_from_item(item)?,
                _ => {}
            }
        }
        Ok(user.map(|mut u| {
            u.last_login_at = last_login;
            u
        }))
    }

    /// Fills in the last sign-ins of a page of users (one BatchGetItem of
    /// their sign-in items).
    async fn with_last_logins(&self, users: &mut [User]) -> Result<(), StoreError> {
        const OP: &str = "read last sign-ins";
        if users.is_empty() {
            return Ok(());
        }
        let mut keys: Vec<Item> = users
            .iter()
            .map(|u| ui::login_key(&u.tenant_id, &u.id))
            .collect();
        let mut found: HashMap<String, OffsetDateTime> = HashMap::new();
        for attempt in 0..WRITE_ATTEMPTS {
            if keys.is_empty() {
                break;
            }
            let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
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
                .map_err(|e| sdk(OP, &e))?;
            for item in out
                .responses()
                .and_then(|r| r.get(&self.table))
                .into_iter()
                .flatten()
            {
                if let Some(at) = ui::login_from_item(item)? {
                    found.insert(get_s(item, "PK")?.to_owned(), at);
                }
            }
            keys = out
                .unprocessed_keys()
                .and_then(|u| u.get(&self.table))
                .map(|k| k.keys().to_vec())
                .unwrap_or_default();
            if !keys.is_empty() {
                tokio::time::sleep(backoff(attempt)).await;
            }
        }
        if !keys.is_empty() {
            return Err(StoreError::Unavailable(format!(
                "{OP}: {} keys left unprocessed",
                keys.len()
            )));
        }
        for u in users {
            u.last_login_at = found.get(&ui::user_pk(&u.tenant_id, &u.id)).copied();
        }
        Ok(())
    }
}

#[async_trait]
impl UserStore for DynamoStore {
    async fn write_user(&self, write: UserWrite<'_>) -> Result<(), StoreError> {
        let plan = plan_user_write(&self.table, &write)?;
        if let (Some(prev), None) = (write.previous, write.next) {
            // Delete: refuse a stale or missing user before touching its
            // audit trail, then remove personal data from it. A concurrent
            // write that adds events bumps the version, so the delete
            // below fails rather than leave them behind; a retried delete
            // scrubs again.
            if let Verdict::Refused(e) = self.user_stale_or_missing(prev, prev.version).await? {
                return Err(e);
            }
            self.scrub_audit(&prev.tenant_id, &prev.id).await?;
        }
        self.run_user_write(&write, &plan).await
    }

    async fn get_user(&self, tenant: &TenantId, id: &UserId) -> Result<Option<User>, StoreError> {
        self.read_user("get user", tenant, id).await
    }

    async fn find_user_by_email(
        &self,
        tenant: &TenantId,
        email: &Email,
    ) -> Result<Option<User>, StoreError> {
        let normalized = email.normalized();
        let key = ui::email_guard_key(tenant, &normalized);
        self.find_by_guard("find user by email", key, Some(tenant), |u| {
            u.email.normalized() == normalized
        })
        .await
    }

    async fn find_user_by_subject(
        &self,
        tenant: &TenantId,
        subject: &str,
    ) -> Result<Option<User>, StoreError> {
        if subject.is_empty() {
            return Ok(None);
        }
        let key = ui::subject_guard_key(tenant, subject);
        self.find_by_guard("find user by subject", key, Some(tenant), |u| {
            u.idp_subject.as_deref() == Some(subject)
        })
        .await
    }

    async fn find_user_by_invitation(&self, token_hash: &str) -> Result<Option<User>, StoreError> {
        if token_hash.is_empty() {
            return Ok(None);
        }
        let key = ui::invitation_guard_key(token_hash);
        self.find_by_guard("find user by invitation", key, None, |u| {
            u.invitation
                .as_ref()
                .is_some_and(|i| i.token_hash == token_hash)
        })
        .await
    }

    async fn list_users(
        &self,
        tenant: &TenantId,
        query: &UserQuery,
        page: &PageRequest,
    ) -> Result<Page<User>, StoreError> {
        const OP: &str = "list users";
        let Some(plan) = list_plan(tenant, query) else {
            // Still refuse a foreign or broken cursor.
            if let Some(raw) = &page.cursor {
                cursor::decode(tenant, USERS_LIST, raw)?;
            }
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        };
        let mut start = page
            .cursor
            .as_deref()
            .map(|raw| plan.start_key(tenant, raw))
            .transpose()?;
        let limit = page.limit as usize;
        let want = limit + 1;
        let mut found: Vec<(String, User)> = Vec::with_capacity(want);
        let mut key_condition = "#kpk = :kpk".to_owned();
        let mut expr_names = plan.names.clone();
        expr_names.insert("#kpk".into(), plan.pk_attr.into());
        let mut values = plan.values.clone();
        values.insert(":kpk".into(), s(&plan.pk));
        if let Some(p) = &plan.key_prefix {
            key_condition.push_str(" AND begins_with(#ksk, :ksk)");
            expr_names.insert("#ksk".into(), plan.sk_attr.into());
            values.insert(":ksk".into(), s(p));
        }
        loop {
            let batch = if plan.filter.is_some() {
                (want - found.len()).max(FILTERED_BATCH)
            } else {
                want - found.len()
            };
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(plan.index.map(str::to_owned))
                .key_condition_expression(&key_condition)
                .set_filter_expression(plan.filter.clone())
                .set_expression_attribute_names(Some(expr_names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(true)
                // Only the table can be read consistently, not an index.
                .consistent_read(plan.index.is_none())
                .limit(i32::try_from(batch).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk(OP, &e))?;
            for item in out.items() {
                let sk = get_s(item, plan.sk_attr)?.to_owned();
                found.push((sk, ui::user_from_item(item)?));
            }
            start = out.last_evaluated_key.filter(|k| !k.is_empty());
            if found.len() >= want || start.is_none() {
                break;
            }
        }
        let more = found.len() > limit;
        found.truncate(limit);
        let next_cursor = match (more, found.last()) {
            (true, Some((sk, _))) => Some(cursor::encode(
                tenant,
                USERS_LIST,
                &format!("{}{sk}", plan.tag()),
            )),
            _ => None,
        };
        let mut items: Vec<User> = found.into_iter().map(|(_, u)| u).collect();
        self.with_last_logins(&mut items).await?;
        Ok(Page { items, next_cursor })
    }

    async fn list_audit(
        &self,
        tenant: &TenantId,
        user: Option<&UserId>,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>, StoreError> {
        const OP: &str = "list audit";
        let (index, pk_attr, sk_attr, pk) = match user {
            Some(u) => (None, PK, SK, ui::audit_pk(tenant, Some(u))),
            None => (
                Some(index::GSI1.0),
                index::GSI1.1,
                index::GSI1.2,
                ui::tenant_audit_pk(tenant),
            ),
        };
        let mut start = match &page.cursor {
            None => None,
            Some(raw) => {
                let after = cursor::decode(tenant, AUDIT_LIST, raw)?;
                let (event, target) = after
                    .rsplit_once(KEY_SEP)
                    .ok_or(StoreError::InvalidCursor)?;
                let target = match target {
                    NO_USER => None,
                    t => Some(
                        UserId::parse(t)
                            .filter(|id| id.as_str() == t)
                            .ok_or(StoreError::InvalidCursor)?,
                    ),
                };
                if event.is_empty() {
                    return Err(StoreError::InvalidCursor);
                }
                let mut key =
                    Item::from([(pk_attr.to_owned(), s(&pk)), (sk_attr.to_owned(), s(event))]);
                if index.is_some() {
                    key.extend(ui::key(ui::audit_pk(tenant, target.as_ref()), event));
                }
                Some(key)
            }
        };
        let limit = page.limit as usize;
        let want = limit + 1;
        let mut events = Vec::with_capacity(want);
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_owned))
                .key_condition_expression("#kpk = :kpk")
                .expression_attribute_names("#kpk", pk_attr)
                .expression_attribute_values(":kpk", s(&pk))
                .scan_index_forward(false)
                .consistent_read(index.is_none())
                .limit(i32::try_from(want - events.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk(OP, &e))?;
            for item in out.items() {
                events.push(ui::audit_from_item(item)?);
            }
            start = out.last_evaluated_key.filter(|k| !k.is_empty());
            if events.len() >= want || start.is_none() {
                break;
            }
        }
        let more = events.len() > limit;
        events.truncate(limit);
        let next_cursor = match (more, events.last()) {
            (true, Some(e)) => {
                let target = e.target_user.as_ref().map_or(NO_USER, UserId::as_str);
                Some(cursor::encode(
                    tenant,
                    AUDIT_LIST,
                    &format!("{}{KEY_SEP}{target}", e.id),
                ))
            }
            _ => None,
        };
        Ok(Page {
            items: events,
            next_cursor,
        })
    }

    async fn pending_outbox(
        &self,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<OutboxEmail>, StoreError> {
        self.gsi2_items(
            "pending outbox",
            OUTBOX_PENDING,
            Some(ui::outbox_due_bound(unix_ms(now))),
            limit,
            ui::outbox_from_item,
        )
        .await
    }

    /// One conditional UpdateItem (still pending, and due); when refused, a
    /// consistent read tells why.
    async fn claim_outbox(
        &self,
        tenant: &TenantId,
        id: &str,
        now: OffsetDateTime,
        lease_secs: u64,
    ) -> Result<OutboxClaim, StoreError> {
        const OP: &str = "claim outbox email";
        if id.is_empty() {
            return Ok(OutboxClaim::Gone);
        }
        let now_ms = unix_ms(now);
        let until = now_ms.saturating_add(
            i64::try_from(lease_secs)
                .unwrap_or(i64::MAX)
                .saturating_mul(1000),
        );
        let (_, gpk, gsk) = index::GSI2;
        for _ in 0..LOOKUP_ATTEMPTS {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(ui::outbox_key(tenant, id)))
                .update_expression("SET #due_at = :until, #leased_until = :until, #gsk = :sk")
                .condition_expression(
                    "attribute_exists(#gpk) AND (attribute_not_exists(#due_at) OR #due_at <= :now)",
                )
                .set_expression_attribute_names(Some(names(&[attr::DUE_AT, attr::LEASED_UNTIL])))
                .expression_attribute_names("#gpk", gpk)
                .expression_attribute_names("#gsk", gsk)
                .expression_attribute_values(":until", n(until))
                .expression_attribute_values(":now", n(now_ms))
                .expression_attribute_values(":sk", s(ui::outbox_due_sk(until, id)))
                .return_values(ReturnValue::AllNew)
                .send()
                .await;
            match result {
                Ok(out) => {
                    let item = out.attributes.unwrap_or_default();
                    return Ok(OutboxClaim::Claimed {
                        email: ui::outbox_from_item(&item)?,
                        attempts: ui::outbox_attempts(&item)?,
                    });
                }
                Err(e) if is_condition_failed(&e) => {}
                Err(e) => return Err(sdk(OP, &e)),
            }
            let Some(held) = self.get_item(OP, ui::outbox_key(tenant, id)).await? else {
                return Ok(OutboxClaim::Gone);
            };
            if held.contains_key(attr::SENT_AT) {
                return Ok(OutboxClaim::AlreadySent);
            }
            if !held.contains_key(gpk) {
                return Ok(OutboxClaim::Gone); // failed for good
            }
            match ui::get_opt_i64(&held, attr::DUE_AT)? {
                Some(due) if due > now_ms => {
                    return Ok(OutboxClaim::Busy {
                        until: from_unix_ms(due)?,
                    });
                }
                // Released in between: claim again.
                _ => continue,
            }
        }
        Err(StoreError::Unavailable(format!(
            "{OP}: the email keeps changing, retry"
        )))
    }

    async fn complete_outbox(
        &self,
        tenant: &TenantId,
        id: &str,
        message_id: &str,
    ) -> Result<(), StoreError> {
        const OP: &str = "complete outbox email";
        if id.is_empty() {
            return Err(StoreError::NotFound);
        }
        let now = OffsetDateTime::now_utc();
        let (_, gpk, gsk) = index::GSI2;
        let (_, fpk, fsk) = index::GSI3;
        // Out of both indexes, and the data (links may hold one-time
        // tokens) is dropped; the record expires later. An email failed
        // for good that was sent after all counts as sent.
        let mut set = "SET #sent_at = :now, #ttl = :ttl".to_owned();
        if !message_id.is_empty() {
            set.push_str(", #message_id = :mid");
        }
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(ui::outbox_key(tenant, id)))
            .update_expression(format!(
                "{set} REMOVE #gpk, #gsk, #fpk, #fsk, #data, #due_at, #leased_until, \
                 #failed_at, #failure"
            ))
            .condition_expression("attribute_exists(PK) AND attribute_not_exists(#sent_at)")
            .set_expression_attribute_names(Some(names(&[
                attr::SENT_AT,
                attr::DATA,
                attr::DUE_AT,
                attr::LEASED_UNTIL,
                attr::FAILED_AT,
                attr::FAILURE,
            ])))
            .expression_attribute_names("#ttl", attr::TTL)
            .expression_attribute_names("#gpk", gpk)
            .expression_attribute_names("#gsk", gsk)
            .expression_attribute_names("#fpk", fpk)
            .expression_attribute_names("#fsk", fsk)
            .expression_attribute_values(":now", s(item::timestamp(now)?))
            .expression_attribute_values(":ttl", n(epoch(now) + SENT_RETENTION_SECS));
        if !message_id.is_empty() {
            request = request
                .expression_attribute_names("#message_id", attr::MESSAGE_ID)
                .expression_attribute_values(":mid", s(message_id));
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => {
                match self.get_item(OP, ui::outbox_key(tenant, id)).await? {
                    Some(_) => Ok(()), // sent before: the first id stays
                    None => Err(StoreError::NotFound),
                }
            }
            Err(e) => Err(sdk(OP, &e)),
        }
    }

    async fn fail_outbox(
        &self,
        tenant: &TenantId,
        id: &str,
        reason: &str,
        permanent: bool,
        retry_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        const OP: &str = "fail outbox email";
        if id.is_empty() {
            return Err(StoreError::NotFound);
        }
        let reason = failure_reason(reason);
        let (_, gpk, gsk) = index::GSI2;
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(ui::outbox_key(tenant, id)))
            // Only while pending: a sent or failed email stays as it is.
            .condition_expression("attribute_exists(#gpk)")
            .expression_attribute_names("#gpk", gpk)
            .expression_attribute_names("#attempts", attr::ATTEMPTS)
            .expression_attribute_names("#leased_until", attr::LEASED_UNTIL)
            .expression_attribute_names("#due_at", attr::DUE_AT)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":reason", s(reason));
        let request = if permanent {
            let now = OffsetDateTime::now_utc();
            let (_, fpk, fsk) = index::GSI3;
            // Out of the pending index into the failed one; the data
            // (links may hold one-time tokens) is dropped; the record
            // expires later.
            request
                .update_expression(
                    "SET #failed_at = :now, #failure = :reason, #fpk = :failed, #fsk = :id, \
                     #ttl = :ttl ADD #attempts :one \
                     REMOVE #gpk, #gsk, #data, #due_at, #leased_until",
                )
                .expression_attribute_names("#failed_at", attr::FAILED_AT)
                .expression_attribute_names("#failure", attr::FAILURE)
                .expression_attribute_names("#fpk", fpk)
                .expression_attribute_names("#fsk", fsk)
                .expression_attribute_names("#gsk", gsk)
                .expression_attribute_names("#data", attr::DATA)
                .expression_attribute_names("#ttl", attr::TTL)
                .expression_attribute_values(":now", s(item::timestamp(now)?))
                .expression_attribute_values(":failed", s(OUTBOX_FAILED))
                .expression_attribute_values(":id", s(id))
                .expression_attribute_values(":ttl", n(epoch(now) + FAILED_RETENTION_SECS))
        } else {
            let due = unix_ms(retry_at);
            request
                .update_expression(
                    "SET #due_at = :due, #gsk = :sk, #last_error = :reason \
                     ADD #attempts :one REMOVE #leased_until",
                )
                .expression_attribute_names("#gsk", gsk)
                .expression_attribute_names("#last_error", attr::LAST_ERROR)
                .expression_attribute_values(":due", n(due))
                .expression_attribute_values(":sk", s(ui::outbox_due_sk(due, id)))
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => {
                match self.get_item(OP, ui::outbox_key(tenant, id)).await? {
                    Some(_) => Ok(()),
                    None => Err(StoreError::NotFound),
                }
            }
            Err(e) => Err(sdk(OP, &e)),
        }
    }

    async fn failed_outbox(&self, limit: u32) -> Result<Vec<FailedEmail>, StoreError> {
        const OP: &str = "failed outbox";
        let limit = limit as usize;
        let mut failed = Vec::new();
        let mut start = None;
        let (name, pk_attr, _) = index::GSI3;
        while failed.len() < limit {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(name)
                .key_condition_expression("#kpk = :kpk")
                .expression_attribute_names("#kpk", pk_attr)
                .expression_attribute_values(":kpk", s(OUTBOX_FAILED))
                .scan_index_forward(false)
                .limit(i32::try_from(limit - failed.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk(OP, &e))?;
            for item in out.items() {
                failed.push(ui::failed_from_item(item)?);
            }
            start = out.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                break;
            }
        }
        failed.truncate(limit);
        Ok(failed)
    }

    async fn claim_idempotency_key(
        &self,
        tenant: &TenantId,
        key: &str,
        fingerprint: &str,
        now: OffsetDateTime,
        lease_secs: u64,
        ttl_secs: u64,
    ) -> Result<IdempotencyClaim, StoreError> {
        const OP: &str = "claim idempotency key";
        let now_s = epoch(now);
        let after = |secs: u64| now_s.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX));
        let expires = after(ttl_secs);
        let mut item = ui::idempotency_key(tenant, key);
        item.insert(attr::ENTITY.into(), s(ui::IDEMPOTENCY_ENTITY));
        if !fingerprint.is_empty() {
            item.insert(attr::FINGERPRINT.into(), s(fingerprint));
        }
        item.insert(attr::STATE.into(), s(IN_PROGRESS));
        item.insert(attr::LEASE_EXPIRES_AT.into(), n(after(lease_secs)));
        item.insert(attr::TTL.into(), n(expires));
        for _ in 0..LOOKUP_ATTEMPTS {
            // TTL deletion is lazy (up to days): an expired key still
            // present counts as absent; so does a claim whose request died
            // (its lease has passed without a completion or a release).
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .condition_expression(
                    "attribute_not_exists(PK) OR #expires_at <= :now \
                     OR (#state = :in_progress AND #lease_expires_at <= :now)",
                )
                .set_expression_attribute_names(Some(names(&[
                    attr::TTL,
                    attr::STATE,
                    attr::LEASE_EXPIRES_AT,
                ])))
                .expression_attribute_values(":now", n(now_s))
                .expression_attribute_values(":in_progress", s(IN_PROGRESS))
                .send()
                .await;
            match put {
                Ok(_) => return Ok(IdempotencyClaim::Claimed),
                Err(e) if is_condition_failed(&e) => {}
                Err(e) => return Err(sdk(OP, &e)),
            }
            let Some(held) = self.get_item(OP, ui::idempotency_key(tenant, key)).await? else {
                continue; // released in between: claim again
            };
            let abandoned = get_s(&held, attr::STATE)? == IN_PROGRESS
                && held
                    .contains_key(attr::LEASE_EXPIRES_AT)
                    .then(|| ui::get_i64(&held, attr::LEASE_EXPIRES_AT))
                    .transpose()?
                    .is_some_and(|lease| lease <= now_s);
            if ui::get_i64(&held, attr::TTL)? <= now_s || abandoned {
                continue;
            }
            if ui::get_fingerprint(&held)? != fingerprint {
                return Ok(IdempotencyClaim::Mismatch);
            }
            return Ok(if get_s(&held, attr::STATE)? == COMPLETED {
                IdempotencyClaim::Completed(ui::decode_response(get_s(&held, attr::RESPONSE)?)?)
            } else {
                IdempotencyClaim::InProgress
            });
        }
        Err(StoreError::Unavailable(format!(
            "{OP}: the key keeps changing, retry"
        )))
    }

    async fn complete_idempotency_key(
        &self,
        tenant: &TenantId,
        key: &str,
        response: &SavedResponse,
    ) -> Result<(), StoreError> {
        const OP: &str = "complete idempotency key";
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(ui::idempotency_key(tenant, key)))
            .update_expression("SET #state = :completed, #response = :response")
            .condition_expression("attribute_exists(PK)")
            .set_expression_attribute_names(Some(names(&[attr::STATE, attr::RESPONSE])))
            .expression_attribute_values(":completed", s(COMPLETED))
            .expression_attribute_values(":response", s(ui::encode_response(response)?))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Err(StoreError::NotFound),
            Err(e) => Err(sdk(OP, &e)),
        }
    }

    async fn release_idempotency_key(
        &self,
        tenant: &TenantId,
        key: &str,
    ) -> Result<(), StoreError> {
        const OP: &str = "release idempotency key";
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(ui::idempotency_key(tenant, key)))
            // A completed key keeps its saved response.
            .condition_expression("#state = :in_progress")
            .set_expression_attribute_names(Some(names(&[attr::STATE])))
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .send()
            .await;
        match result {
            // Refused: nothing claimed to release.
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(sdk(OP, &e)),
        }
    }

    async fn pending_idp_work(
        &self,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<IdpWorkItem>, StoreError> {
        self.pending_work(limit, now).await
    }

    async fn claim_idp_work(
        &self,
        tenant: &TenantId,
        user: &UserId,
        now: OffsetDateTime,
        lease_secs: u64,
    ) -> Result<Option<IdpWorkItem>, StoreError> {
        self.claim_work(tenant, user, now, lease_secs).await
    }

    async fn complete_idp_work(
        &self,
        work: &IdpWork,
        notes: &[String],
    ) -> Result<bool, StoreError> {
        self.complete_work(work, notes).await
    }

    async fn fail_idp_work(
        &self,
        work: &IdpWork,
        reason: &str,
        retry_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.fail_work(work, &failure_reason(reason), retry_at)
            .await
    }

    async fn list_idp_work(&self, limit: u32) -> Result<Vec<IdpWorkItem>, StoreError> {
        self.list_work(limit).await
    }

    async fn idp_work_of(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Option<IdpWorkItem>, StoreError> {
        self.work_of(tenant, user).await
    }

    /// One transaction: the user exists (a condition check on the user
    /// item), and the sign-in item is newer.
    async fn record_login(
        &self,
        tenant: &TenantId,
        user: &UserId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        const OP: &str = "record a sign-in";
        let exists = aws_sdk_dynamodb::types::ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(ui::user_key(tenant, user)))
            .condition_expression("attribute_exists(PK)")
            .build()
            .map_err(build_error)?;
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(ui::login_key(tenant, user)))
            .update_expression("SET #last = :at, #entity = :entity")
            .condition_expression("attribute_not_exists(#last) OR #last < :at")
            .expression_attribute_names("#last", attr::LAST_LOGIN_MS)
            .expression_attribute_names("#entity", attr::ENTITY)
            .expression_attribute_values(":at", n(ui::unix_ms(at)))
            .expression_attribute_values(":entity", s(ui::LOGIN_ENTITY))
            .build()
            .map_err(build_error)?;
        let items = vec![
            TransactWriteItem::builder().condition_check(exists).build(),
            TransactWriteItem::builder().update(update).build(),
        ];
        match self.transact(OP, items).await {
            Ok(()) => Ok(true),
            Err(TxError::Cancelled(reasons))
                if reasons.iter().any(|r| r == crate::CONDITION_FAILED) =>
            {
                Ok(false)
            }
            Err(TxError::Cancelled(reasons)) => {
                let codes: Vec<Option<&str>> = reasons.iter().map(|c| Some(c.as_str())).collect();
                Err(cancelled(OP, &codes))
            }
            Err(TxError::Failed(e)) => Err(e),
        }
    }

    async fn record_delivery(
        &self,
        delivery: &IdpDelivery,
        now: OffsetDateTime,
        ttl_secs: u64,
    ) -> Result<Recorded, StoreError> {
        self.record_delivery_item(delivery, now, ttl_secs).await
    }

    async fn claim_delivery(
        &self,
        id: &str,
        now: OffsetDateTime,
        lease_secs: u64,
    ) -> Result<Option<(IdpDelivery, u32)>, StoreError> {
        self.claim_delivery_item(id, now, lease_secs).await
    }

    async fn complete_delivery(&self, id: &str, outcome: &str) -> Result<(), StoreError> {
        self.complete_delivery_item(id, outcome).await
    }

    async fn fail_delivery(
        &self,
        id: &str,
        reason: &str,
        retry_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.fail_delivery_item(id, &failure_reason(reason), retry_at)
            .await
    }

    async fn pending_deliveries(
        &self,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<IdpDelivery>, StoreError> {
        self.pending_delivery_items(limit, now).await
    }

    async fn take_rate_limit(
        &self,
        bucket: &str,
        now: OffsetDateTime,
        window_secs: u64,
        max: u32,
    ) -> Result<bool, StoreError> {
        const OP: &str = "take rate limit";
        if max == 0 {
            return Ok(false);
        }
        let window = i64::try_from(window_secs)
            .ok()
            .filter(|w| *w > 0)
            .ok_or_else(|| StoreError::Backend(format!("{OP}: the window must be positive")))?;
        let start = epoch(now).div_euclid(window) * window;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(ui::key(
                ui::rate_pk(bucket, window_secs, start),
                ui::RATE_SK,
            )))
            .update_expression("ADD #hits :one SET #entity = :entity, #ttl = :ttl")
            .condition_expression("attribute_not_exists(#hits) OR #hits < :max")
            .set_expression_attribute_names(Some(names(&[attr::HITS, attr::ENTITY])))
            .expression_attribute_names("#ttl", attr::TTL)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(max))
            .expression_attribute_values(":entity", s(ui::RATE_ENTITY))
            .expression_attribute_values(":ttl", n(start.saturating_add(window)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(sdk(OP, &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user_item::USER_SK;
    use peak_domain::audit::FieldChange;
    use peak_domain::ids::ProfileId;
    use peak_domain::role::Role;
    use peak_domain::user::{AccountNumber, Invitation, InvitationState, PersonName, UserStatus};

    fn user(accounts: usize) -> User {
        let t = OffsetDateTime::now_utc();
        User {
            tenant_id: TenantId::parse("acme").unwrap(),
            id: UserId::generate(),
            email: Email::parse("ada@example.com").unwrap(),
            pending_email: None,
            first_name: PersonName::parse("f", "Ada").unwrap(),
            last_name: PersonName::parse("l", "Lovelace").unwrap(),
            account_number: None,
            customer_accounts: (0..accounts)
                .map(|i| AccountNumber::parse("a", &format!("ACC-{i:02}")).unwrap())
                .collect(),
            role: Role::Customer,
            profile_id: ProfileId::generate(),
            extension_groups: vec![],
            status: UserStatus::Invited,
            idp_subject: None,
            invitation: Some(Invitation {
                token_hash: "ab".repeat(32),
                state: InvitationState::Pending,
                expires_at: t,
                sent_at: t,
                accepted_at: None,
            }),
            version: 1,
            created_at: t,
            updated_at: t,
            last_login_at: None,
        }
    }

    fn event(u: &User) -> AuditEvent {
        AuditEvent::new(
            &u.tenant_id,
            "a",
            "user.updated",
            Some(&u.id),
            "r",
            u.updated_at,
        )
    }

    fn write<'a>(
        prev: Option<&'a User>,
        next: Option<&'a User>,
        audit: &'a [AuditEvent],
    ) -> UserWrite<'a> {
        UserWrite {
            previous: prev,
            next,
            audit,
            outbox: &[],
        }
    }

    #[test]
    fn a_create_writes_the_user_its_guards_memberships_and_holder() {
        let u = user(2);
        let audit = [event(&u)];
        let plan = plan_user_write("t", &write(None, Some(&u), &audit)).unwrap();
        assert_eq!(
            plan.parts,
            [
                Part::CreateUser,
                Part::EmailPut,
                Part::InvitationPut,
                Part::MembershipPut,
                Part::MembershipPut,
                Part::HolderAdd,
                Part::Audit
            ]
        );
    }

    #[test]
    fn an_edit_touches_only_what_moved() {
        let u = user(1);
        let mut next = u.clone();
        next.version = 2;
        next.status = UserStatus::Active;
        let plan = plan_user_write("t", &write(Some(&u), Some(&next), &[])).unwrap();
        assert_eq!(plan.parts, [Part::ChangeUser, Part::MembershipPut]);

        // A case-only email change keeps the guard.
        next.email = Email::parse("ADA@example.com").unwrap();
        let plan = plan_user_write("t", &write(Some(&u), Some(&next), &[])).unwrap();
        assert!(!plan.has(Part::EmailPut) && !plan.has(Part::EmailDelete));
    }

    #[test]
    fn the_largest_write_fits_one_transaction() {
        // 25 accounts (the domain's cap), renamed (every membership moves),
        // with a new email, subject, invitation and profile, and a few
        // events and emails.
        let u = user(25);
        let mut next = u.clone();
        next.version = 2;
        next.last_name = PersonName::parse("l", "Byron").unwrap();
        next.email = Email::parse("ada@new.example.com").unwrap();
        next.idp_subject = Some("auth0|ada".into());
        next.profile_id = ProfileId::generate();
        if let Some(inv) = next.invitation.as_mut() {
            inv.token_hash = "cd".repeat(32);
        }
        let audit = [event(&u), event(&u), event(&u)];
        let plan = plan_user_write("t", &write(Some(&u), Some(&next), &audit)).unwrap();
        assert_eq!(plan.items.len(), 1 + 2 + 1 + 2 + 50 + 2 + 3);
        assert!(plan.items.len() <= MAX_TRANSACTION_ITEMS);
    }

    #[test]
    fn a_delete_removes_everything_and_scrubs_its_own_events() {
        let mut u = user(1);
        u.idp_subject = Some("auth0|x".into());
        let audit = [event(&u).with_changes(vec![FieldChange {
            field: "email".into(),
            before: Some("ada@example.com".into()),
            after: None,
        }])];
        let plan = plan_user_write("t", &write(Some(&u), None, &audit)).unwrap();
        assert_eq!(
            plan.parts,
            [
                Part::ChangeUser,
                Part::EmailDelete,
                Part::InvitationDelete,
                Part::SubjectDelete,
                Part::MembershipDelete,
                Part::HolderRemove,
                Part::Audit,
                // The last sign-in goes with the user.
                Part::LoginDelete,
                // The login at the identity provider is owed a delete.
                Part::IdpWork
            ]
        );
        let stored = format!("{:?}", plan.items[6]);
        assert!(!stored.contains("ada@example.com"), "{stored}");
    }

    #[test]
    fn inconsistent_writes_are_refused() {
        let u = user(0);
        let other = user(0);
        assert!(matches!(
            plan_user_write("t", &write(Some(&u), Some(&other), &[])),
            Err(StoreError::Backend(_))
        ));
        assert!(plan_user_write("t", &write(None, None, &[])).is_err());
        let foreign = AuditEvent::new(
            &TenantId::parse("other").unwrap(),
            "a",
            "x",
            None,
            "r",
            u.created_at,
        );
        assert!(plan_user_write("t", &write(None, Some(&u), &[foreign])).is_err());
    }

    #[test]
    fn lists_read_the_most_selective_source() {
        let t = TenantId::parse("acme").unwrap();
        let acct = AccountNumber::parse("a", "ACME").unwrap();
        let p = ProfileId::generate();
        let all = UserQuery {
            status: Some(UserStatus::Active),
            role: Some(Role::Customer),
            profile: Some(p.clone()),
            account: Some(acct.clone()),
            name_prefix: Some("Lo".into()),
            email_prefix: None,
        };
        let plan = list_plan(&t, &all).unwrap();
        assert_eq!(plan.index, None);
        assert_eq!(plan.pk, "TENANT#acme#ACCOUNT#ACME");
        assert_eq!(plan.key_prefix.as_deref(), Some("lo"));
        let filter = plan.filter.unwrap();
        assert!(
            filter.contains("#status")
                && filter.contains("#role")
                && filter.contains("#profile_id")
        );
        assert!(!filter.contains("customer_accounts"));

        let plan = list_plan(
            &t,
            &UserQuery {
                account: None,
                ..all.clone()
            },
        )
        .unwrap();
        assert_eq!(plan.index, Some("GSI5"));
        let plan = list_plan(
            &t,
            &UserQuery {
                status: Some(UserStatus::Active),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!((plan.index, plan.filter), (Some("GSI3"), None));
        let plan = list_plan(&t, &UserQuery::default()).unwrap();
        assert_eq!((plan.index, plan.key_prefix), (Some("GSI1"), None));

        let by_email = UserQuery {
            email_prefix: Some("A".into()),
            ..all.clone()
        };
        let plan = list_plan(&t, &by_email).unwrap();
        assert_eq!((plan.index, plan.by_email), (Some("GSI2"), true));
        assert_eq!(plan.key_prefix.as_deref(), Some("a"));
        let filter = plan.filter.unwrap();
        assert!(
            filter.contains("contains(#customer_accounts")
                && filter.contains("begins_with(#name_key")
        );

        let nothing = UserQuery {
            name_prefix: Some(format!("lo{KEY_SEP}")),
            ..Default::default()
        };
        assert!(list_plan(&t, &nothing).is_none());
    }

    #[test]
    fn cursors_only_resume_their_own_order_and_prefix() {
        let t = TenantId::parse("acme").unwrap();
        let id = UserId::generate();
        let by_name = list_plan(&t, &UserQuery::default()).unwrap();
        let c = cursor::encode(
            &t,
            USERS_LIST,
            &format!("{BY_NAME}{}", ui::sort_key("lovelace ada", &id)),
        );
        let key = by_name.start_key(&t, &c).unwrap();
        assert_eq!(key["GSI1PK"], s("TENANT#acme#USERS"));
        assert_eq!(key[PK], s(ui::user_pk(&t, &id)));
        assert_eq!(key[SK], s(USER_SK));

        let by_email = list_plan(
            &t,
            &UserQuery {
                email_prefix: Some(String::new()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(by_email.start_key(&t, &c), Err(StoreError::InvalidCursor));
        let prefixed = list_plan(
            &t,
            &UserQuery {
                name_prefix: Some("t".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(prefixed.start_key(&t, &c), Err(StoreError::InvalidCursor));
        let broken = cursor::encode(&t, USERS_LIST, &format!("{BY_NAME}no id"));
        assert_eq!(
            by_name.start_key(&t, &broken),
            Err(StoreError::InvalidCursor)
        );
    }

    /// A store whose client talks to nothing: for code paths that decide
    /// without a request.
    fn offline_store() -> DynamoStore {
        use aws_sdk_dynamodb::config::{BehaviorVersion, Config, Region};
        let config = Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::from_static("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(config), "t")
    }

    #[tokio::test]
    async fn cancellation_reasons_decide_by_item_and_priority() {
        let store = offline_store();
        let u = user(1);
        let audit = [event(&u)];
        let w = write(None, Some(&u), &audit);
        let plan = plan_user_write("t", &w).unwrap();
        // CreateUser, EmailPut, InvitationPut, MembershipPut, HolderAdd, Audit
        let reasons = |codes: &[&str]| -> Vec<String> {
            let mut r = vec!["None".to_owned(); plan.items.len()];
            for (i, c) in codes.iter().enumerate() {
                r[i] = (*c).to_owned();
            }
            r
        };
        let verdict = |codes: Vec<String>| {
            let (store, w, plan) = (&store, &w, &plan);
            async move { store.explain(w, plan, &codes).await.unwrap() }
        };
        let ccf = CONDITION_FAILED;
        assert_eq!(
            verdict(reasons(&[ccf, ccf])).await,
            Verdict::Refused(StoreError::AlreadyExists)
        );
        assert_eq!(
            verdict(reasons(&["None", ccf, "None", "None", ccf])).await,
            Verdict::Refused(StoreError::EmailTaken),
            "a taken email wins over a missing profile"
        );
        assert_eq!(
            verdict(reasons(&["None", "None", "None", "None", ccf])).await,
            Verdict::Refused(StoreError::ProfileMissing)
        );
        assert_eq!(
            verdict(reasons(&["None", "TransactionConflict"])).await,
            Verdict::Retry
        );
        assert_eq!(
            verdict(reasons(&["None", "TransactionConflict", ccf])).await,
            Verdict::Refused(StoreError::Backend(
                "write user: unexpected refusal of InvitationPut".into()
            )),
            "a definite refusal wins over a conflict"
        );
        assert!(matches!(
            verdict(reasons(&["ValidationError"])).await,
            Verdict::Refused(StoreError::Backend(_))
        ));
    }

    #[test]
    fn backoff_stays_within_its_cap() {
        for attempt in 0..20 {
            let d = backoff(attempt);
            assert!(d >= Duration::from_millis(1) && d <= Duration::from_millis(BACKOFF_CAP_MS));
        }
    }
}
