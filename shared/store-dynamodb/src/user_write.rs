//! A user write on the single table: one `TransactWriteItems` with the user
//! item (conditioned on its version), the guards that moved (email,
//! subject, invitation), the account memberships, ±1 on a holder shard of
//! each profile taken up or let go (never the profile item itself, see
//! src/item.rs), the owed identity-provider work, and the write's
//! audit events and outbox emails. A refusal is told apart by the per-item
//! cancellation reasons; a conflict with a concurrent transaction is
//! retried a few times with jittered backoff before it becomes
//! `Unavailable`.

use crate::error::{WRITE_ATTEMPTS, backoff, cancelled, sdk};
use crate::item::{self, Item, get_s, get_u64, n, s};
use crate::record_item as ri;
use crate::user_item::{self as ui, EMAIL_GUARD_ENTITY, INVITATION_GUARD_ENTITY, attr};
use crate::{CONDITION_FAILED, DynamoStore, TxError, build_error, names};
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use peak_domain::ids::TenantId;
use peak_domain::model::user::{User, UserId};
use peak_domain::ports::{StoreError, UserWrite};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// DynamoDB's limit on the items of one transaction.
pub const MAX_TRANSACTION_ITEMS: usize = 100;
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
    /// `ADD holders 1` on the user's holder shard of the new profile, if
    /// the shard exists: when refused, the shard is created if the profile
    /// exists (and the write tried again), else `ProfileMissing`.
    HolderAdd,
    /// `ADD holders -1` on the user's shard of the old profile, likewise.
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
pub(crate) struct Cond {
    pub(crate) expression: String,
    pub(crate) names: HashMap<String, String>,
    pub(crate) values: Item,
}

impl Cond {
    pub(crate) fn new(expression: impl Into<String>) -> Self {
        Self {
            expression: expression.into(),
            names: HashMap::new(),
            values: Item::new(),
        }
    }

    pub(crate) fn name(mut self, attr: &str) -> Self {
        self.names.extend(names(&[attr]));
        self
    }

    pub(crate) fn value(
        mut self,
        placeholder: &str,
        v: aws_sdk_dynamodb::types::AttributeValue,
    ) -> Self {
        self.values.insert(placeholder.to_owned(), v);
        self
    }

    pub(crate) fn absent() -> Self {
        Self::new("attribute_not_exists(PK)")
    }

    /// The item is gone already, or belongs to `user`.
    pub(crate) fn owned_by(user: &UserId) -> Self {
        Self::new(format!(
            "attribute_not_exists(PK) OR #{0} = :owner",
            attr::USER_ID
        ))
        .name(attr::USER_ID)
        .value(":owner", s(user.as_str()))
    }

    pub(crate) fn version(expected: u64) -> Self {
        Self::new(format!("#{0} = :expected", attr::VERSION))
            .name(attr::VERSION)
            .value(":expected", n(expected))
    }

    pub(crate) fn names_opt(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    pub(crate) fn values_opt(&self) -> Option<Item> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

impl Plan {
    pub(crate) fn put(
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

    pub(crate) fn delete(
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

    /// `ADD holders <delta>` on holder shard `key` of a profile, which
    /// must exist (a shard is created only while its profile exists, and a
    /// profile delete removes its shards: a write that finds one gone is
    /// refused rather than counted in a deleted profile).
    pub(crate) fn holders(
        &mut self,
        table: &str,
        key: Item,
        delta: i64,
        part: Part,
    ) -> Result<(), StoreError> {
        let holders = item::attr::HOLDERS;
        let update = Update::builder()
            .table_name(table)
            .set_key(Some(key))
            .update_expression(format!("ADD #{holders} :delta"))
            .condition_expression("attribute_exists(PK)")
            .set_expression_attribute_names(Some(names(&[holders])))
            .expression_attribute_values(":delta", n(delta))
            .build()
            .map_err(build_error)?;
        self.items
            .push(TransactWriteItem::builder().update(update).build());
        self.parts.push(part);
        Ok(())
    }

    /// An unconditional update, built by the caller.
    pub(crate) fn update(&mut self, update: Update, part: Part) {
        self.items
            .push(TransactWriteItem::builder().update(update).build());
        self.parts.push(part);
    }

    pub(crate) fn has(&self, part: Part) -> bool {
        self.parts.contains(&part)
    }

    /// Whether the condition of an item of kind `part` failed.
    pub(crate) fn failed(&self, reasons: &[String], part: Part) -> bool {
        self.parts
            .iter()
            .zip(reasons)
            .any(|(p, r)| *p == part && r == CONDITION_FAILED)
    }
}

/// The user a write is about, after checking the write hangs together.
pub(crate) fn subject_of<'a>(w: &UserWrite<'a>) -> Result<&'a User, StoreError> {
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
    subject::plan_subject(&mut plan, table, prev, next)?;

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

    // Holder counts: +1 on the new profile (which must exist), -1 on the
    // old, each on the user's own shard.
    let profiles = (prev.map(|u| &u.profile_id), next.map(|u| &u.profile_id));
    if profiles.0 != profiles.1 {
        let k = item::holder_shard_of(id);
        if let Some(p) = profiles.1 {
            plan.holders(
                table,
                item::holder_shard_key(tenant, p, k),
                1,
                Part::HolderAdd,
            )?;
        }
        if let Some(p) = profiles.0 {
            plan.holders(
                table,
                item::holder_shard_key(tenant, p, k),
                -1,
                Part::HolderRemove,
            )?;
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
            ri::audit_item(&e)?,
            Some(Cond::absent()),
            Part::Audit,
        )?;
    }
    for m in w.outbox {
        plan.put(
            table,
            ri::outbox_item(m)?,
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
pub(crate) enum Verdict {
    Refused(StoreError),
    Retry,
}

impl DynamoStore {
    /// Runs a planned user write, retrying conflicts.
    pub(crate) async fn run_user_write(
        &self,
        w: &UserWrite<'_>,
        plan: &Plan,
    ) -> Result<(), StoreError> {
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
    pub(crate) async fn explain(
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
        if plan.failed(reasons, Part::HolderAdd) || plan.failed(reasons, Part::HolderRemove) {
            return self.open_holder_shards(w, plan).await;
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
    pub(crate) async fn user_stale_or_missing(
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
    pub(crate) async fn explain_by_reading(
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
        if plan.has(Part::HolderAdd) || plan.has(Part::HolderRemove) {
            return self.open_holder_shards(w, plan).await;
        }
        Ok(Verdict::Retry)
    }

    /// After a holder shard refused the write (it does not exist yet):
    /// creates the shards the write needs while their profiles exist, and
    /// tries again. A new profile that is gone is `ProfileMissing`; an old
    /// one gone cannot be (a held profile is not deleted) and is an error.
    pub(crate) async fn open_holder_shards(
        &self,
        w: &UserWrite<'_>,
        plan: &Plan,
    ) -> Result<Verdict, StoreError> {
        let user = subject_of(w)?;
        let (tenant, k) = (&user.tenant_id, item::holder_shard_of(&user.id));
        if let (true, Some(next)) = (plan.has(Part::HolderAdd), w.next)
            && !self
                .ensure_holder_shard(tenant, &next.profile_id, k)
                .await?
        {
            return Ok(Verdict::Refused(StoreError::ProfileMissing));
        }
        if let (true, Some(prev)) = (plan.has(Part::HolderRemove), w.previous)
            && !self
                .ensure_holder_shard(tenant, &prev.profile_id, k)
                .await?
        {
            return Ok(Verdict::Refused(StoreError::Backend(
                "write user: the profile the user leaves is gone".into(),
            )));
        }
        Ok(Verdict::Retry)
    }

    /// Rewrites every audit event about `user` without personal data.
    /// Idempotent: events already clean are left alone.
    pub(crate) async fn scrub_audit(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<(), StoreError> {
        const OP: &str = "remove personal data from audit";
        let mut start = None;
        loop {
            let out = self
                .partition_query(ui::audit_pk(tenant, Some(user)), None, start)
                .send()
                .await
                .map_err(|e| sdk(OP, &e))?;
            for item in out.items() {
                let event = ri::audit_from_item(item)?;
                let clean = event.without_personal_data();
                if clean != event {
                    self.client
                        .put_item()
                        .table_name(&self.table)
                        .set_item(Some(ri::audit_item(&clean)?))
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
}

pub(crate) mod subject;

#[cfg(test)]
mod tests;
