//! The process's HTTP(S) client: every AWS SDK client (DynamoDB, SES v2),
//! the S3 file store and the calls to the identity provider (the JWKS fetch,
//! the Auth0 Management API) use it, with one TLS configuration per process.
//! Each caller gets its own connection pool ([`https`]): connections run on
//! the Tokio runtime that opened them, and they go to different hosts anyway.
//!
//! Why our own and not the SDK's default client plus reqwest: each function
//! binary linked two HTTP stacks (the SDK's, reqwest's) with HTTP/2 (h2) and
//! AWS-LC, and read and parsed the system's CA bundle at every cold start —
//! ~1.5 MB of each binary and most of its init time (docs/benchmarks.md).
//! This one is hyper's HTTP/1.1 client (the one the Lambda runtime client
//! already links) with rustls on *ring*. None of the services we call needs
//! HTTP/2: DynamoDB, SES, S3 and Auth0 all speak HTTP/1.1.
//!
//! Trust roots: Mozilla's, compiled in (`webpki-roots`, already in the form
//! rustls uses, so nothing is read or parsed at init). `SSL_CERT_FILE` names a
//! PEM bundle to trust *instead* (a proxy or private CA); it is read once, at
//! the first use, and a file that cannot be read or holds anything but
//! usable CA certificates is refused with an error naming the file — no
//! silent fallback that would trust something else. `SSL_CERT_DIR` is not
//! read.
//!
//! Errors and timeouts are classified as the SDK's own client classifies
//! them, so the SDK's retry policy is unchanged: connection failures, resets
//! and I/O errors are transient (`io`), a read timeout is a `timeout`.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::error::Error as StdError;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The `User-Agent` of every request [`Https::send`] makes without one.
pub const USER_AGENT: &str = concat!("peak-users/", env!("CARGO_PKG_VERSION"));

/// A TCP connection that is not up within this is a transient failure (the
/// AWS SDK's default connect timeout).
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(3_100);

/// Idle pooled connections are closed after this (the SDK's default).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// [`Https::send`] refuses a response body larger than this: the JWKS and
/// Auth0's answers are a few KiB; nothing we call sends megabytes.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

type Pool = Client<HttpsConnector<TcpConnector>, SdkBody>;

/// A client: a connection pool over the process's TLS configuration.
/// Cheap to clone (a handle to the same pool).
#[derive(Clone, Debug)]
pub struct Https {
    pool: Pool,
}

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection (refused, DNS, TLS handshake, connect timeout).
    #[error("connecting: {0}")]
    Connect(String),
    /// No complete response within the caller's time limit.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// The connection failed mid-exchange, or the body was too large.
    #[error("{0}")]
    Transport(String),
}

/// A new client (its own connection pool) over the process's TLS
/// configuration, which is built at the first call; an error only when
/// `SSL_CERT_FILE` names a bundle that cannot be used (see the module docs;
/// set but empty counts as unset).
pub fn https() -> Result<Https, &'static str> {
    static TLS: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    TLS.get_or_init(|| {
        let file = std::env::var_os("SSL_CERT_FILE").filter(|f| !f.is_empty());
        let roots = roots_from(file.as_deref().map(Path::new))?;
        Ok(tls_config(roots))
    })
    .as_ref()
    .map(|tls| Https::with_tls(tls.clone()))
    .map_err(String::as_str)
}

/// Mozilla's roots, or those of the bundle `file` names.
fn roots_from(file: Option<&Path>) -> Result<RootCertStore, String> {
    match file {
        None => Ok(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        }),
        Some(path) => {
            let text = std::fs::read(path).map_err(|e| {
                format!(
                    "SSL_CERT_FILE {}: {e} (unset it to use the built-in roots)",
                    path.display()
                )
            })?;
            roots_from_pem(&text).map_err(|e| format!("SSL_CERT_FILE {}: {e}", path.display()))
        }
    }
}

/// The trust anchors of a PEM bundle: at least one certificate, and every
/// certificate a usable anchor (sections of other kinds are skipped).
pub fn roots_from_pem(text: &[u8]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for (n, cert) in CertificateDer::pem_slice_iter(text).enumerate() {
        let cert = cert.map_err(|e| format!("certificate {}: {e}", n + 1))?;
        roots
            .add(cert)
            .map_err(|e| format!("certificate {}: {e}", n + 1))?;
    }
    if roots.is_empty() {
        return Err("no certificate in the file".into());
    }
    Ok(roots)
}

/// TLS 1.2 and 1.3 on ring, trusting `roots`.
fn tls_config(roots: RootCertStore) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring implements rustls' default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

impl Https {
    /// A client trusting `roots` only (tests use a private CA).
    pub fn with_roots(roots: RootCertStore) -> Self {
        Self::with_tls(tls_config(roots))
    }

    fn with_tls(tls: Arc<ClientConfig>) -> Self {
        let mut tcp = TcpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(Arc::unwrap_or_clone(tls))
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let pool = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .build(connector);
        Self { pool }
    }

    /// Sends `request` and reads the whole response (at most
    /// [`MAX_RESPONSE_BYTES`]), all within `timeout`.
    pub async fn send(
        &self,
        request: http::Request<impl Into<SdkBody>>,
        timeout: Duration,
    ) -> Result<http::Response<Bytes>, SendError> {
        self.send_limited(request, timeout, MAX_RESPONSE_BYTES)
            .await
    }

    /// [`Https::send`] for a response body of up to `max_body` bytes.
    pub async fn send_limited(
        &self,
        mut request: http::Request<impl Into<SdkBody>>,
        timeout: Duration,
        max_body: usize,
    ) -> Result<http::Response<Bytes>, SendError> {
        if !request.headers().contains_key(http::header::USER_AGENT) {
            request.headers_mut().insert(
                http::header::USER_AGENT,
                http::HeaderValue::from_static(USER_AGENT),
            );
        }
        let exchange = async {
            let response = self
                .pool
                .request(request.map(Into::into))
                .await
                .map_err(|e| {
                    if e.is_connect() {
                        SendError::Connect(chain(&e))
                    } else {
                        SendError::Transport(chain(&e))
                    }
                })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, max_body)
                .collect()
                .await
                .map_err(|e| SendError::Transport(format!("reading the response: {e}")))?
                .to_bytes();
            Ok(http::Response::from_parts(parts, body))
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| SendError::Timeout(timeout))?
    }

    /// This client as the AWS SDK's HTTP client.
    pub fn for_sdk(&self) -> SharedHttpClient {
        SharedHttpClient::new(SdkClient {
            pool: self.pool.clone(),
        })
    }
}

/// An error and its causes, on one line (hyper's top-level message alone is
/// often just "client error (Connect)").
fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

/// The SDK clients' HTTP client: [`https`]'s, or — when `SSL_CERT_FILE` is
/// unusable — one that fails every call with that reason (the SDK's own
/// default client is not linked).
pub(crate) fn sdk_http_client() -> SharedHttpClient {
    match https() {
        Ok(client) => client.for_sdk(),
        Err(reason) => SharedHttpClient::new(Unusable(reason)),
    }
}

#[derive(Clone, Debug)]
struct Unusable(&'static str);

impl HttpClient for Unusable {
    fn http_connector(
        &self,
        _: &HttpConnectorSettings,
        _: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

impl HttpConnector for Unusable {
    fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
        HttpConnectorFuture::ready(Err(ConnectorError::user(self.0.into())))
    }
}

#[derive(Clone, Debug)]
struct SdkClient {
    pool: Pool,
}

impl HttpClient for SdkClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(SdkConnector {
            pool: self.pool.clone(),
            read_timeout: settings.read_timeout(),
        })
    }
}

/// One SDK client's connector: the shared pool and that client's read
/// timeout (time to the response head). The connect timeout is the pool's
/// ([`CONNECT_TIMEOUT`]); operation and attempt timeouts are the SDK's.
#[derive(Clone, Debug)]
struct SdkConnector {
    pool: Pool,
    read_timeout: Option<Duration>,
}

impl HttpConnector for SdkConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        let sent = self.pool.request(request);
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let response = match read_timeout {
                Some(limit) => tokio::time::timeout(limit, sent).await.map_err(|_| {
                    ConnectorError::timeout(format!("no response within {limit:?}").into())
                })?,
                None => sent.await,
            }
            .map_err(connector_error)?;
            HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// The SDK's classification of hyper's errors (aws-smithy-http-client):
/// timeouts are `timeout`; connection failures, closed or reset
/// connections and any I/O error are `io` (retried); a response cut short
/// is transient; anything else is `other`.
fn connector_error(e: hyper_util::client::legacy::Error) -> ConnectorError {
    let io = find_source::<std::io::Error>(&e);
    if io.is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut) {
        return ConnectorError::timeout(e.into());
    }
    if let Some(h) = find_source::<hyper::Error>(&e) {
        if h.is_timeout() {
            return ConnectorError::timeout(e.into());
        }
        if h.is_user() {
            return ConnectorError::user(e.into());
        }
        if h.is_incomplete_message() {
            return ConnectorError::other(
                e.into(),
                Some(aws_smithy_types::retry::ErrorKind::TransientError),
            );
        }
        if h.is_closed() || h.is_canceled() {
            return ConnectorError::io(e.into());
        }
    }
    if e.is_connect() || io.is_some() {
        return ConnectorError::io(e.into());
    }
    ConnectorError::other(e.into(), None)
}

fn find_source<'a, E: StdError + 'static>(e: &'a (dyn StdError + 'static)) -> Option<&'a E> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_roots_are_mozillas_and_include_amazons() {
        let roots = roots_from(None).unwrap();
        assert!(roots.len() > 100, "{} roots", roots.len());
        // Amazon Root CA 1 signs the DynamoDB, SES and S3 endpoints.
        let amazon = roots.roots.iter().any(|anchor| {
            anchor
                .subject
                .as_ref()
                .windows(b"Amazon Root CA 1".len())
                .any(|w| w == b"Amazon Root CA 1")
        });
        assert!(amazon, "Amazon Root CA 1 is trusted");
    }

    #[test]
    fn an_unusable_cert_file_is_refused_naming_the_file() {
        let err = roots_from(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
        assert!(roots_from_pem(b"").unwrap_err().contains("no certificate"));
        let bad = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(roots_from_pem(bad).unwrap_err().contains("certificate 1"));
        let unterminated = b"-----BEGIN CERTIFICATE-----\nAAAA\n";
        assert!(roots_from_pem(unterminated).is_err());
    }

    fn sdk_connector(read_timeout: Option<Duration>) -> SdkConnector {
        SdkConnector {
            pool: Https::with_roots(roots_from(None).unwrap()).pool,
            read_timeout,
        }
    }

    async fn sdk_get(
        port: u16,
        read_timeout: Option<Duration>,
    ) -> Result<HttpResponse, ConnectorError> {
        let request = http::Request::get(format!("http://127.0.0.1:{port}/"))
            .body(SdkBody::empty())
            .unwrap();
        sdk_connector(read_timeout)
            .call(HttpRequest::try_from(request).unwrap())
            .await
    }

    /// A loopback server that hands each connection to `serve`.
    async fn server<F, Fut>(serve: F) -> u16
    where
        F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve(conn));
            }
        });
        port
    }

    #[tokio::test]
    async fn sdk_calls_fail_the_way_the_sdk_classifies_for_retries() {
        // Refused: I/O, retried.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let err = sdk_get(port, None).await.unwrap_err();
        assert!(err.is_io(), "{err:?}");

        // Accepted, never answered: the client's read timeout.
        let silent = server(|conn| async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(conn);
        })
        .await;
        let err = sdk_get(silent, Some(Duration::from_millis(200)))
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err:?}");

        // Accepted and closed before a response: transient, retried.
        let hangs_up = server(|conn| async move { drop(conn) }).await;
        let err = sdk_get(hangs_up, None).await.unwrap_err();
        assert!(
            err.is_io()
                || err.as_other() == Some(aws_smithy_types::retry::ErrorKind::TransientError),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn with_unusable_roots_every_sdk_call_fails_naming_the_file() {
        let request = http::Request::get("https://dynamodb.us-east-1.amazonaws.com/")
            .body(SdkBody::empty())
            .unwrap();
        let err = Unusable("SSL_CERT_FILE /etc/x.pem: no certificate in the file")
            .call(HttpRequest::try_from(request).unwrap())
            .await
            .unwrap_err();
        assert!(err.is_user(), "not retried: {err:?}");
        assert!(format!("{err:?}").contains("/etc/x.pem"), "{err:?}");
    }

    #[tokio::test]
    async fn sdk_calls_get_the_servers_response() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let port = server(|mut conn| async move {
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf).await;
            let _ = conn
                .write_all(b"HTTP/1.1 418 I'm a teapot\r\ncontent-length: 2\r\n\r\nok")
                .await;
        })
        .await;
        let response = sdk_get(port, Some(Duration::from_secs(5))).await.unwrap();
        assert_eq!(response.status().as_u16(), 418);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"ok");
    }
}
