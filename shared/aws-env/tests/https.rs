//! The process's HTTP(S) client over real TLS: a loopback server with a
//! certificate from a private test CA (`fixtures/`, made with openssl: a
//! P-256 CA valid for 100 years, and a `localhost`/127.0.0.1 server
//! certificate it signed; the CA's key was not kept).

use peak_aws_env::{Https, SendError, roots_from_pem};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const CA: &[u8] = include_bytes!("fixtures/ca.pem");
const SERVER_CERT: &[u8] = include_bytes!("fixtures/server.pem");
const SERVER_KEY: &[u8] = include_bytes!("fixtures/server.key");

/// An HTTPS server on loopback answering every request with `body`; its port.
async fn tls_server(body: &'static str) -> u16 {
    let certs = CertificateDer::pem_slice_iter(SERVER_CERT)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(SERVER_KEY).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that does not trust us ends the handshake.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&request).to_lowercase();
                let agent = head
                    .lines()
                    .find_map(|l| l.strip_prefix("user-agent: "))
                    .unwrap_or("")
                    .to_owned();
                let body = format!("{body} {agent}");
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

fn get(url: String) -> http::Request<Vec<u8>> {
    http::Request::get(url).body(Vec::new()).unwrap()
}

#[tokio::test]
async fn talks_https_to_a_server_its_roots_vouch_for() {
    let port = tls_server("hello").await;
    let client = Https::with_roots(roots_from_pem(CA).unwrap());
    for host in ["localhost", "127.0.0.1"] {
        let response = client
            .send(
                get(format!("https://{host}:{port}/")),
                Duration::from_secs(5),
            )
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        assert_eq!(response.status(), 200);
        let body = String::from_utf8(response.body().to_vec()).unwrap();
        assert!(body.starts_with("hello peak-users/"), "{body}");
    }
}

#[tokio::test]
async fn refuses_a_server_its_roots_do_not_vouch_for() {
    let port = tls_server("secret").await;
    // The built-in (Mozilla) roots do not include the test CA.
    let client = peak_aws_env::https().expect("no SSL_CERT_FILE here");
    let err = client
        .send(
            get(format!("https://localhost:{port}/")),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    let SendError::Connect(reason) = &err else {
        panic!("{err:?}")
    };
    assert!(
        reason.to_lowercase().contains("certificate"),
        "the reason names the certificate: {reason}"
    );
}

#[tokio::test]
async fn a_silent_server_times_out_and_a_closed_port_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = Https::with_roots(roots_from_pem(CA).unwrap());
    let err = client
        .send(
            get(format!("http://127.0.0.1:{port}/")),
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, SendError::Timeout(_)), "{err:?}");
    drop(listener);
    let err = client
        .send(
            get(format!("http://127.0.0.1:{port}/")),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, SendError::Connect(_)), "{err:?}");
}
