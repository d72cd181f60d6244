//! Bulk-invite uploads in S3 (`BULK_BUCKET`): the jobs read them from
//! there, and large files reach the bucket directly through a presigned PUT
//! (API Gateway takes at most 10 MB in a request body). Objects live under
//! `bulk/<tenant>/…`; the bucket's lifecycle rule deletes them after 30
//! days. `S3_ENDPOINT` points the client at a stand-in (moto in the tests).

use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use peak_domain::ports::{FileStore, StoreError};
use std::time::Duration;

pub struct S3Files {
    client: Client,
    bucket: String,
}

impl S3Files {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    /// A client for `S3_ENDPOINT` (path-style, for stand-ins) or AWS, from
    /// the environment (`peak_aws_env`).
    pub fn client_from_env() -> Client {
        let config = peak_aws_env::sdk_config("S3_ENDPOINT", None);
        let mut builder = aws_sdk_s3::config::Builder::from(&config);
        if config.endpoint_url().is_some() {
            builder = builder.force_path_style(true);
        }
        Client::from_conf(builder.build())
    }

    /// A URL that accepts a PUT of the file for `expires_in`.
    pub async fn presigned_put(
        &self,
        key: &str,
        expires_in: Duration,
    ) -> Result<String, StoreError> {
        let presigning = PresigningConfig::expires_in(expires_in)
            .map_err(|e| StoreError::Backend(format!("presign: {e}")))?;
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(presigning)
            .await
            .map_err(|e| StoreError::Backend(format!("presign: {e}")))?;
        Ok(req.uri().to_owned())
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("{what}: {e}"))
}

#[async_trait::async_trait]
impl FileStore for S3Files {
    async fn upload_url(
        &self,
        key: &str,
        expires_in_secs: u64,
    ) -> Result<Option<String>, StoreError> {
        self.presigned_put(key, Duration::from_secs(expires_in_secs))
            .await
            .map(Some)
    }

    async fn put_file(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| unavailable("s3 put", aws_sdk_s3::error::DisplayErrorContext(e)))?;
        Ok(())
    }

    async fn get_file(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => {
                return Err(unavailable(
                    "s3 get",
                    aws_sdk_s3::error::DisplayErrorContext(e),
                ));
            }
        };
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| unavailable("s3 read", e))?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }
}
