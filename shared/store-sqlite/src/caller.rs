//! [`CallerStore`] on SQLite: the tenant row and the user holding the
//! subject, read in one read transaction (one snapshot; a local store has
//! no round trips to save).

use super::{SqliteStore, db_error};
use async_trait::async_trait;
use peak_domain::ids::TenantId;
use peak_domain::ports::StoreError;
use peak_domain::ports::{CallerRecords, CallerStore};
use rusqlite::{OptionalExtension, params};

#[async_trait]
impl CallerStore for SqliteStore {
    async fn caller(&self, tenant: &TenantId, subject: &str) -> Result<CallerRecords, StoreError> {
        let tenant = tenant.as_str().to_owned();
        let subject = subject.to_owned();
        self.run(move |conn| {
            let tx = conn.transaction().map_err(db_error)?;
            let body: Option<String> = tx
                .prepare_cached("SELECT body FROM tenants WHERE id = ?1")
                .map_err(db_error)?
                .query_row(params![tenant], |r| r.get(0))
                .optional()
                .map_err(db_error)?;
            let user = if subject.is_empty() {
                None
            } else {
                super::users::get_user_where(
                    &tx,
                    "tenant_id = ?1 AND idp_subject = ?2",
                    &[&tenant, &subject],
                )?
            };
            Ok(CallerRecords {
                tenant: body.as_deref().map(super::tenants::decode).transpose()?,
                // As the port says: the last sign-in is not part of it.
                user: user.map(|mut u| {
                    u.last_login_at = None;
                    u
                }),
            })
        })
        .await
    }
}
