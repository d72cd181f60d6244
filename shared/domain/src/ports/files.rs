//! The uploaded-file port.

use super::StoreError;
use async_trait::async_trait;

/// Uploaded files (bulk invites): S3 in AWS, a folder locally.
#[async_trait]
pub trait FileStore: Send + Sync {
    /// Stores `bytes` under `key` (replacing what was there).
    async fn put_file(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError>;
    /// The file under `key`; `None` if there is none.
    async fn get_file(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// A URL a client may PUT the file for `key` to, valid for
    /// `expires_in_secs` (S3's presigned PUT); `None` where uploads come
    /// in the request body instead (the local run).
    async fn upload_url(
        &self,
        _key: &str,
        _expires_in_secs: u64,
    ) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
}
