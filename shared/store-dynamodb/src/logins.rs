//! [`LoginLog`] on the single table: the `LOGIN` item beside the user item.

use crate::error::cancelled;
use crate::item::{n, s};
use crate::user_item::{self as ui, attr};
use crate::{DynamoStore, TxError, build_error};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use peak_domain::ids::TenantId;
use peak_domain::model::user::UserId;
use peak_domain::ports::{LoginLog, StoreError};
use time::OffsetDateTime;

#[async_trait]
impl LoginLog for DynamoStore {
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
}
