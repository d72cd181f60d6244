//! The subject item in a user write: the subject's uniqueness guard,
//! carrying a copy of the user for the caller lookup (`crate::caller`), so
//! it is rewritten in the same transaction as every write of a user with a
//! subject.

use super::{Part, Plan};
use crate::build_error;
use crate::item::{Item, s};
use crate::names;
use crate::user_item::{self as ui, SUBJECT_GUARD_ENTITY, attr};
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use peak_domain::model::user::{User, UserId};
use peak_domain::ports::StoreError;

/// The subject item of `u`, who holds `subject`: the guard and the copy.
pub(crate) fn subject_item(u: &User, subject: &str) -> Result<Item, StoreError> {
    let mut item = ui::user_attributes(u)?;
    item.extend(ui::guard_item(
        ui::subject_guard_key(&u.tenant_id, subject),
        SUBJECT_GUARD_ENTITY,
        &u.tenant_id,
        &u.id,
    ));
    Ok(item)
}

/// The subject items of a user write: the old subject's guard goes when
/// the subject moved (if it is still ours, or gone); the user's current
/// subject item is put — if absent when the subject is new (a subject held
/// by another user refuses the write), else over our own — with the copy
/// of `next`.
pub(crate) fn plan_subject(
    plan: &mut Plan,
    table: &str,
    prev: Option<&User>,
    next: Option<&User>,
) -> Result<(), StoreError> {
    let Some(user) = next.or(prev) else {
        return Ok(());
    };
    let (tenant, id) = (&user.tenant_id, &user.id);
    let old = prev.and_then(|u| u.idp_subject.as_deref());
    let new = next.and_then(|u| u.idp_subject.as_deref());
    let owner = |id: &UserId| {
        (
            format!("attribute_not_exists(PK) OR #{} = :owner", attr::USER_ID),
            s(id.as_str()),
        )
    };
    if let Some(old) = old
        && Some(old) != new
    {
        let (condition, value) = owner(id);
        let delete = Delete::builder()
            .table_name(table)
            .set_key(Some(ui::subject_guard_key(tenant, old)))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names(&[attr::USER_ID])))
            .expression_attribute_values(":owner", value)
            .build()
            .map_err(build_error)?;
        plan.items
            .push(TransactWriteItem::builder().delete(delete).build());
        plan.parts.push(Part::SubjectDelete);
    }
    if let (Some(new), Some(u)) = (new, next) {
        let mut put = Put::builder()
            .table_name(table)
            .set_item(Some(subject_item(u, new)?));
        let part = if old == Some(new) {
            let (condition, value) = owner(id);
            put = put
                .condition_expression(condition)
                .set_expression_attribute_names(Some(names(&[attr::USER_ID])))
                .expression_attribute_values(":owner", value);
            Part::SubjectRefresh
        } else {
            put = put.condition_expression("attribute_not_exists(PK)");
            Part::SubjectPut
        };
        let put = put.build().map_err(build_error)?;
        plan.items
            .push(TransactWriteItem::builder().put(put).build());
        plan.parts.push(part);
    }
    Ok(())
}
