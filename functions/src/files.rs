//! Bulk-invite uploads in S3 (`BULK_BUCKET`): the jobs read them from
//! there, and large files reach the bucket directly through a presigned PUT
//! (API Gateway takes at most 10 MB in a request body). Objects live under
//! `bulk/<tenant>/…`; the bucket's lifecycle rule deletes them after 30
//! days. `S3_ENDPOINT` points the client at a stand-in (moto in the tests).
//!
//! Why not the S3 SDK: we need three operations — put an object, get one,
//! presign a PUT — and `aws-sdk-s3` was ~1 MB of each bulk function binary
//! (every S3 customization: checksums, express sessions, XML for hundreds of
//! operations). These are three signed HTTP requests: Signature Version 4
//! from `aws-sigv4` (the SDK's own signer, with S3's settings: no double
//! encoding of the path, no path normalization, `x-amz-content-sha256`),
//! checked against AWS's published S3 examples in the tests below, sent over
//! the process's one HTTP client (`peak_aws_env::https`).
//!
//! Addressing: virtual-hosted (`https://<bucket>.s3.<region>.amazonaws.com`)
//! in AWS; path-style (`<endpoint>/<bucket>`) for a stand-in. The bucket
//! is the template's, whose generated name has no dots (virtual-hosted
//! HTTPS needs that).

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignatureLocation, SigningSettings,
    UriPathNormalizationMode,
};
use bytes::Bytes;
use http::{Method, StatusCode};
use peak_aws_env::Https;
use peak_domain::ports::{FileStore, StoreError};
use std::time::{Duration, SystemTime};

/// One attempt at a GET or PUT (the files are at most 64 MiB).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts of a call that fails transiently (connection, 5xx, timeout).
const ATTEMPTS: u32 = 3;
/// The largest object [`S3Files::get_file`] reads: the bulk-invite file
/// limit (`peak_bulk`'s 64 MiB) with room to spare.
const MAX_OBJECT_BYTES: usize = 80 << 20;

pub struct S3Files {
    http: Result<Https, String>,
    credentials: SharedCredentialsProvider,
    region: Option<String>,
    /// A stand-in's endpoint (path-style addressing); `None` in AWS.
    endpoint: Option<String>,
    bucket: String,
}

/// Where the signature goes.
enum Signature {
    /// `Authorization` header, body hashed into `x-amz-content-sha256`.
    Header,
    /// Query string, valid for this long, body unsigned (a presigned URL).
    Query(Duration),
}

impl S3Files {
    /// For `bucket`, with the region, credentials and `S3_ENDPOINT` of the
    /// environment (`peak_aws_env`).
    pub fn from_env(bucket: impl Into<String>) -> Self {
        let config = peak_aws_env::sdk_config("S3_ENDPOINT", None);
        Self {
            http: peak_aws_env::https().map_err(|e| format!("s3: {e}")),
            credentials: config
                .credentials_provider()
                .expect("peak_aws_env always sets a credentials provider"),
            region: config.region().map(|r| r.to_string()),
            endpoint: config
                .endpoint_url()
                .map(|e| e.trim_end_matches('/').to_owned()),
            bucket: bucket.into(),
        }
    }

    fn region(&self) -> Result<&str, StoreError> {
        self.region
            .as_deref()
            .ok_or_else(|| StoreError::Unavailable("s3: AWS_REGION is not set".into()))
    }

    /// The object's URL (`key` percent-encoded, `/` kept).
    fn url(&self, key: &str) -> Result<String, StoreError> {
        let key = encode_key(key);
        Ok(match &self.endpoint {
            Some(endpoint) => format!("{endpoint}/{}/{key}", self.bucket),
            None => format!(
                "https://{}.s3.{}.amazonaws.com/{key}",
                self.bucket,
                self.region()?
            ),
        })
    }

    async fn credentials(&self) -> Result<Credentials, StoreError> {
        self.credentials
            .provide_credentials()
            .await
            .map_err(|e| StoreError::Unavailable(format!("s3: credentials: {e}")))
    }

    /// A URL that accepts a PUT of the file for `expires_in`.
    pub async fn presigned_put(
        &self,
        key: &str,
        expires_in: Duration,
    ) -> Result<String, StoreError> {
        let mut request = http::Request::put(self.url(key)?)
            .body(Bytes::new())
            .map_err(|e| StoreError::Backend(format!("presign: {e}")))?;
        sign(
            &mut request,
            &self.credentials().await?,
            self.region()?,
            SystemTime::now(),
            Signature::Query(expires_in),
        )
        .map_err(|e| StoreError::Backend(format!("presign: {e}")))?;
        Ok(request.uri().to_string())
    }

    /// Sends a signed `method` request for `key` (the bucket itself when
    /// `key` is `None`), retrying transient failures; the final response.
    async fn call(
        &self,
        what: &'static str,
        method: Method,
        key: Option<&str>,
        body: Bytes,
    ) -> Result<http::Response<Bytes>, StoreError> {
        let http = self
            .http
            .as_ref()
            .map_err(|e| StoreError::Unavailable(e.clone()))?;
        let url = match key {
            Some(key) => self.url(key)?,
            None => self.url("")?.trim_end_matches('/').to_owned(),
        };
        let mut attempt = 1;
        loop {
            let mut request = http::Request::builder()
                .method(method.clone())
                .uri(&url)
                // A reference-counted handle: retries do not copy the file.
                .body(body.clone())
                .map_err(|e| StoreError::Backend(format!("{what}: {e}")))?;
            sign(
                &mut request,
                &self.credentials().await?,
                self.region()?,
                SystemTime::now(),
                Signature::Header,
            )
            .map_err(|e| StoreError::Backend(format!("{what}: signing: {e}")))?;
            let failure = match http
                .send_limited(request, ATTEMPT_TIMEOUT, MAX_OBJECT_BYTES)
                .await
            {
                Ok(response) if !response.status().is_server_error() => return Ok(response),
                Ok(response) => format!("HTTP {}{}", response.status(), code(&response)),
                // PUT and GET are idempotent: a reset mid-exchange is retried too.
                Err(e) => e.to_string(),
            };
            if attempt == ATTEMPTS {
                return Err(StoreError::Unavailable(format!(
                    "{what}: {failure} (after {ATTEMPTS} attempts)"
                )));
            }
            tracing::warn!(op = what, attempt, failure = %failure, "S3 call failed; retrying");
            tokio::time::sleep(Duration::from_millis(200) * 4u32.pow(attempt - 1)).await;
            attempt += 1;
        }
    }

    /// Creates the bucket (tests against a stand-in; in AWS the template does).
    #[cfg(test)]
    pub(crate) async fn create_bucket(&self) -> Result<(), StoreError> {
        let response = self
            .call("s3 create bucket", Method::PUT, None, Bytes::new())
            .await?;
        expect_success("s3 create bucket", &response)
    }
}

/// S3's error code (`<Code>NoSuchKey</Code>`), as ` (NoSuchKey)`, or nothing.
fn code(response: &http::Response<Bytes>) -> String {
    let body = String::from_utf8_lossy(response.body());
    body.split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| format!(" ({code})"))
        .unwrap_or_default()
}

fn expect_success(what: &str, response: &http::Response<Bytes>) -> Result<(), StoreError> {
    if response.status().is_success() {
        Ok(())
    } else {
        Err(StoreError::Unavailable(format!(
            "{what}: HTTP {}{}",
            response.status(),
            code(response)
        )))
    }
}

/// Percent-encodes an object key as S3 expects in a path: every byte but
/// the unreserved characters and `/`.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Signs `request` for S3 (Signature Version 4) at `time`.
fn sign(
    request: &mut http::Request<Bytes>,
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
    signature: Signature,
) -> Result<(), String> {
    let mut settings = SigningSettings::default();
    // S3 compares the path as sent: no double encoding, no normalization.
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let unsigned_payload = match signature {
        Signature::Header => {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
            false
        }
        Signature::Query(expires_in) => {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(expires_in);
            true
        }
    };
    crate::sigv4::sign(
        request,
        credentials,
        region,
        "s3",
        time,
        settings,
        unsigned_payload,
    )
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
        let response = self
            .call("s3 put", Method::PUT, Some(key), Bytes::from(bytes))
            .await?;
        expect_success("s3 put", &response)
    }

    async fn get_file(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let response = self
            .call("s3 get", Method::GET, Some(key), Bytes::new())
            .await?;
        if response.status() == StatusCode::NOT_FOUND && code(&response) == " (NoSuchKey)" {
            return Ok(None);
        }
        expect_success("s3 get", &response)?;
        Ok(Some(response.into_body().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples of Amazon S3's API reference ("Authenticating Requests:
    /// Using the Authorization Header" and "…Query Parameters"): bucket
    /// `examplebucket`, 24 May 2013, the documentation's example keys.
    fn example() -> (Credentials, SystemTime) {
        let credentials = Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "example",
        );
        (
            credentials,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600),
        )
    }

    #[test]
    fn header_signature_matches_the_s3_documentation_example() {
        let (credentials, time) = example();
        let mut request = http::Request::get("https://examplebucket.s3.amazonaws.com/test.txt")
            .header("host", "examplebucket.s3.amazonaws.com")
            .header("range", "bytes=0-9")
            .body(Bytes::new())
            .unwrap();
        sign(
            &mut request,
            &credentials,
            "us-east-1",
            time,
            Signature::Header,
        )
        .unwrap();
        assert_eq!(
            request.headers()["authorization"],
            // The documentation's, with the SDK's ", " between the parts.
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        assert_eq!(
            request.headers()["x-amz-content-sha256"],
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    /// `request` presigned for `secs` seconds: its URL.
    fn presigned(
        mut request: http::Request<Bytes>,
        credentials: &Credentials,
        region: &str,
        secs: u64,
    ) -> String {
        let (_, time) = example();
        let expires = Signature::Query(Duration::from_secs(secs));
        sign(&mut request, credentials, region, time, expires).unwrap();
        request.uri().to_string()
    }

    #[test]
    fn presigned_url_matches_the_s3_documentation_example() {
        let (credentials, _) = example();
        let request = http::Request::get("https://examplebucket.s3.amazonaws.com/test.txt")
            .body(Bytes::new())
            .unwrap();
        let url = presigned(request, &credentials, "us-east-1", 86_400);
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request",
            "X-Amz-Date=20130524T000000Z",
            "X-Amz-Expires=86400",
            "X-Amz-SignedHeaders=host",
            "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
        ] {
            assert!(url.contains(part), "{part} in {url}");
        }
    }

    #[test]
    fn a_session_token_is_signed_into_presigned_urls() {
        let credentials = Credentials::new("AKIA", "secret", Some("tok/en".into()), None, "t");
        let request = http::Request::put("https://b.s3.eu-west-1.amazonaws.com/bulk/a")
            .body(Bytes::new())
            .unwrap();
        let url = presigned(request, &credentials, "eu-west-1", 900);
        assert!(url.contains("X-Amz-Security-Token=tok%2Fen"), "{url}");
        assert!(url.contains("X-Amz-Expires=900"), "{url}");
    }

    /// A store against a loopback "S3" whose answers are `answers`, in turn
    /// (the last one repeats); the requests it saw.
    async fn against(
        answers: Vec<&'static str>,
    ) -> (S3Files, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let answer = answers[n.min(answers.len() - 1)];
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let _ = conn.write_all(answer.as_bytes()).await;
            }
        });
        let files = S3Files {
            http: peak_aws_env::https().map_err(str::to_owned),
            credentials: SharedCredentialsProvider::new(example().0),
            region: Some("us-east-1".into()),
            endpoint: Some(format!("http://127.0.0.1:{port}")),
            bucket: "b".into(),
        };
        (files, seen)
    }

    const SLOW_DOWN: &str = "HTTP/1.1 503 Slow Down\r\nconnection: close\r\ncontent-length: 36\r\n\r\n<Error><Code>SlowDown</Code></Error>";
    const OK: &str = "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok";

    #[tokio::test]
    async fn a_5xx_is_retried_and_the_retry_answers() {
        let (files, seen) = against(vec![SLOW_DOWN, OK]).await;
        assert_eq!(
            files.get_file("bulk/a").await.unwrap().as_deref(),
            Some(&b"ok"[..])
        );
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_5xx_that_persists_is_unavailable_after_three_attempts() {
        let (files, seen) = against(vec![SLOW_DOWN]).await;
        let err = files.put_file("bulk/a", b"x".to_vec()).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Unavailable(m) if m.contains("SlowDown") && m.contains("after 3 attempts")),
            "{err:?}"
        );
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[test]
    fn keys_are_percent_encoded_but_keep_their_slashes() {
        assert_eq!(encode_key("bulk/acme/u 1+é"), "bulk/acme/u%201%2B%C3%A9");
        assert_eq!(encode_key("bulk/01J-x_y.csv~"), "bulk/01J-x_y.csv~");
    }
}
