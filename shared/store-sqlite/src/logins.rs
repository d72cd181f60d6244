//! [`LoginLog`] for [`SqliteStore`]: sign-ins live in `user_logins`, which
//! no user write touches.

use crate::SqliteStore;
use crate::sql::{db_error, unix_millis};
use async_trait::async_trait;
use peak_domain::ids::TenantId;
use peak_domain::model::user::UserId;
use peak_domain::ports::{LoginLog, StoreError};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use time::OffsetDateTime;

#[async_trait]
impl LoginLog for SqliteStore {
    async fn record_login(
        &self,
        tenant: &TenantId,
        user: &UserId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let (tenant, user) = (tenant.as_str().to_owned(), user.as_str().to_owned());
        let at = unix_millis(at);
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            let exists = tx
                .query_row(
                    "SELECT 1 FROM users WHERE tenant_id = ?1 AND id = ?2",
                    params![tenant, user],
                    |_| Ok(()),
                )
                .optional()
                .map_err(db_error)?
                .is_some();
            if !exists {
                return Ok(false);
            }
            let changed = tx
                .execute(
                    "INSERT INTO user_logins (tenant_id, user_id, last_login_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT (tenant_id, user_id) DO UPDATE
                     SET last_login_ms = excluded.last_login_ms
                     WHERE excluded.last_login_ms > user_logins.last_login_ms",
                    params![tenant, user, at],
                )
                .map_err(db_error)?;
            tx.commit().map_err(db_error)?;
            Ok(changed > 0)
        })
        .await
    }
}
