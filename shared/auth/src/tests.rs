//! Each test asserts what a caller of `JwtVerifier::verify` would see.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::dev_idp::pem_decode;
use crate::*;

const ISS: &str = "https://peak-dev.example/";
const AUD: &str = "https://api.peakcommerce.com/users";
const HOUR: Duration = Duration::from_secs(3600);

// RSA key generation is slow in debug builds: share two keys across tests.
static IDP: LazyLock<DevIdentityProvider> =
    LazyLock::new(|| DevIdentityProvider::generate(ISS, AUD).expect("generate key"));
static OTHER_IDP: LazyLock<DevIdentityProvider> =
    LazyLock::new(|| DevIdentityProvider::generate(ISS, AUD).expect("generate key"));

/// A JWKS endpoint that counts fetches and whose keys can rotate.
struct CountingJwks {
    jwks: Mutex<JwkSet>,
    fetches: AtomicUsize,
}

impl CountingJwks {
    fn new(jwks: JwkSet) -> Arc<Self> {
        Arc::new(Self {
            jwks: Mutex::new(jwks),
            fetches: AtomicUsize::new(0),
        })
    }
    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl JwksSource for CountingJwks {
    async fn fetch(&self) -> Result<JwkSet, AuthError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        Ok(self.jwks.lock().expect("lock").clone())
    }
}

/// A clock that only moves when told to.
fn manual_clock() -> (Clock, Arc<AtomicU64>) {
    let start = Instant::now();
    let offset = Arc::new(AtomicU64::new(0));
    let read = offset.clone();
    let clock: Clock = Arc::new(move || start + Duration::from_secs(read.load(Ordering::SeqCst)));
    (clock, offset)
}

fn verifier() -> JwtVerifier {
    JwtVerifier::new(ISS, AUD, Arc::new(StaticJwks(IDP.jwks())))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn claims() -> DevClaims {
    IDP.claims_for("auth0|alice", "acme", "admin", HOUR)
}

fn sign(claims: &impl serde::Serialize) -> String {
    IDP.sign_with_kid(claims, IDP.kid()).expect("sign")
}

fn b64json(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

#[tokio::test]
async fn valid_token_yields_identity() {
    let token = IDP
        .token_for("auth0|alice", "acme", "admin", HOUR)
        .expect("sign");
    let verified = verifier().verify(&token).await.expect("valid token");
    assert_eq!(verified.subject, "auth0|alice");
    assert_eq!(verified.tenant, "acme");
    assert_eq!(verified.role.as_deref(), Some("admin"));
    assert!(verified.expires_at > now());

    // As an Authorization header value, too.
    let header = format!("Bearer {token}");
    assert_eq!(verifier().verify(&header).await, Ok(verified));
}

#[tokio::test]
async fn audience_array_containing_ours_passes_and_role_is_optional() {
    let mut c = serde_json::to_value(claims()).expect("json");
    c["aud"] = json!(["https://other.example/", AUD]);
    c.as_object_mut().expect("object").remove(ROLE_CLAIM);
    let verified = verifier().verify(&sign(&c)).await.expect("valid token");
    assert_eq!(verified.role, None);
}

#[tokio::test]
async fn missing_or_garbage_token_is_refused() {
    assert_eq!(verifier().verify("").await, Err(AuthError::Missing));
    assert_eq!(verifier().verify("Bearer ").await, Err(AuthError::Missing));
    assert_eq!(verifier().verify("abc").await, Err(AuthError::Malformed));
    assert_eq!(verifier().verify("a.b.c").await, Err(AuthError::Malformed));
}

#[tokio::test]
async fn expired_token_is_refused_beyond_leeway() {
    let mut c = claims();
    c.exp = now() - 3600;
    assert_eq!(verifier().verify(&sign(&c)).await, Err(AuthError::Expired));

    c.exp = now() - 30; // within the 60 s leeway
    assert!(verifier().verify(&sign(&c)).await.is_ok());
}

#[tokio::test]
async fn token_not_yet_valid_is_refused() {
    let mut c = claims();
    c.nbf = now() + 3600;
    assert_eq!(
        verifier().verify(&sign(&c)).await,
        Err(AuthError::NotYetValid)
    );
}

#[tokio::test]
async fn wrong_issuer_is_refused() {
    let mut c = claims();
    c.iss = "https://evil.example/".into();
    assert_eq!(
        verifier().verify(&sign(&c)).await,
        Err(AuthError::WrongIssuer)
    );

    // An array that merely contains our issuer is not an exact match.
    let mut c = serde_json::to_value(claims()).expect("json");
    c["iss"] = json!([ISS, "https://evil.example/"]);
    assert_eq!(
        verifier().verify(&sign(&c)).await,
        Err(AuthError::WrongIssuer)
    );
}

#[tokio::test]
async fn wrong_audience_is_refused() {
    let mut c = claims();
    c.aud = "https://other-api.example/".into();
    assert_eq!(
        verifier().verify(&sign(&c)).await,
        Err(AuthError::WrongAudience)
    );
}

#[tokio::test]
async fn missing_claims_are_reported() {
    let mut c = claims();
    c.tenant = None;
    assert_eq!(
        verifier().verify(&sign(&c)).await,
        Err(AuthError::MissingClaim(TENANT_CLAIM))
    );

    let mut c = serde_json::to_value(claims()).expect("json");
    c.as_object_mut().expect("object").remove("sub");
    assert_eq!(
        verifier().verify(&sign(&c)).await,
        Err(AuthError::MissingClaim("sub"))
    );
}

#[tokio::test]
async fn alg_none_is_refused_before_key_lookup() {
    let source = CountingJwks::new(IDP.jwks());
    let verifier = JwtVerifier::new(ISS, AUD, source.clone());
    let header = json!({ "alg": "none", "typ": "JWT", "kid": IDP.kid() });
    let payload = serde_json::to_value(claims()).expect("json");
    let token = format!("{}.{}.", b64json(&header), b64json(&payload));
    assert_eq!(
        verifier.verify(&token).await,
        Err(AuthError::UnsupportedAlgorithm)
    );
    assert_eq!(source.fetches(), 0);
}

#[tokio::test]
async fn hs256_signed_with_public_key_is_refused() {
    let source = CountingJwks::new(IDP.jwks());
    let verifier = JwtVerifier::new(ISS, AUD, source.clone());
    let pem = IDP.public_key_pem();
    let der = pem_decode(&pem, "PUBLIC KEY").expect("der");
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(IDP.kid().to_owned());
    for secret in [pem.as_bytes(), der.as_slice()] {
        let token = jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(secret))
            .expect("sign");
        assert_eq!(
            verifier.verify(&token).await,
            Err(AuthError::UnsupportedAlgorithm)
        );
    }
    assert_eq!(source.fetches(), 0);
}

#[tokio::test]
async fn unknown_or_missing_kid_is_refused() {
    let token = IDP.sign_with_kid(&claims(), "no-such-key").expect("sign");
    assert_eq!(verifier().verify(&token).await, Err(AuthError::UnknownKey));

    let header = json!({ "alg": "RS256", "typ": "JWT" });
    let mut parts: Vec<String> = sign(&claims()).split('.').map(str::to_owned).collect();
    parts[0] = b64json(&header);
    assert_eq!(
        verifier().verify(&parts.join(".")).await,
        Err(AuthError::Malformed)
    );
}

#[tokio::test]
async fn tampered_payload_is_refused() {
    let token = sign(&claims());
    let mut parts: Vec<&str> = token.split('.').collect();
    let mut forged = claims();
    forged.tenant = Some("globex".into());
    let forged = b64json(&serde_json::to_value(forged).expect("json"));
    parts[1] = &forged;
    assert_eq!(
        verifier().verify(&parts.join(".")).await,
        Err(AuthError::BadSignature)
    );
}

#[tokio::test]
async fn signature_with_one_byte_flipped_is_refused() {
    let token = sign(&claims());
    let (message, signature) = token.rsplit_once('.').expect("three parts");
    let mut signature = URL_SAFE_NO_PAD.decode(signature).expect("base64");
    let last = signature.len() - 1;
    for index in [0, last / 2, last] {
        signature[index] ^= 0x80;
        let forged = format!("{message}.{}", URL_SAFE_NO_PAD.encode(&signature));
        assert_eq!(
            verifier().verify(&forged).await,
            Err(AuthError::BadSignature)
        );
        signature[index] ^= 0x80;
    }
    // Truncated or extended by a byte: also a bad signature.
    for forged in [
        &signature[..last],
        &[signature.as_slice(), &[0]].concat()[..],
    ] {
        let forged = format!("{message}.{}", URL_SAFE_NO_PAD.encode(forged));
        assert_eq!(
            verifier().verify(&forged).await,
            Err(AuthError::BadSignature)
        );
    }
}

#[tokio::test]
async fn other_key_claiming_our_kid_is_refused() {
    let token = OTHER_IDP.sign_with_kid(&claims(), IDP.kid()).expect("sign");
    assert_eq!(
        verifier().verify(&token).await,
        Err(AuthError::BadSignature)
    );
}

#[tokio::test]
async fn unknown_kid_refetch_is_rate_limited() {
    let source = CountingJwks::new(IDP.jwks());
    let (clock, offset) = manual_clock();
    let verifier = JwtVerifier::new(ISS, AUD, source.clone()).with_clock(clock);
    verifier.warm().await.expect("warm");
    assert_eq!(source.fetches(), 1);
    offset.store(61, Ordering::SeqCst);

    for i in 0..50 {
        let token = IDP
            .sign_with_kid(&claims(), &format!("random-{i}"))
            .expect("sign");
        assert_eq!(verifier.verify(&token).await, Err(AuthError::UnknownKey));
    }
    assert_eq!(
        source.fetches(),
        2,
        "at most one extra fetch within a minute"
    );

    // Known keys keep working, without fetching.
    assert!(verifier.verify(&sign(&claims())).await.is_ok());
    assert_eq!(source.fetches(), 2);
}

#[tokio::test]
async fn rotated_key_is_picked_up_on_first_use() {
    let source = CountingJwks::new(IDP.jwks());
    let (clock, offset) = manual_clock();
    let verifier = JwtVerifier::new(ISS, AUD, source.clone()).with_clock(clock);
    verifier.warm().await.expect("warm");

    // The identity provider starts publishing (and signing with) a new key.
    source
        .jwks
        .lock()
        .expect("lock")
        .keys
        .extend(OTHER_IDP.jwks().keys);
    let rotated = OTHER_IDP
        .sign_with_kid(&claims(), OTHER_IDP.kid())
        .expect("sign");

    // Within the minute after the last fetch, the new kid is not fetched...
    assert_eq!(verifier.verify(&rotated).await, Err(AuthError::UnknownKey));
    assert_eq!(source.fetches(), 1);
    // ...after it, its first use fetches it.
    offset.store(61, Ordering::SeqCst);
    let verified = verifier
        .verify(&rotated)
        .await
        .expect("rotated key accepted");
    assert_eq!(verified.subject, "auth0|alice");
    assert_eq!(source.fetches(), 2);
    // The old key is still published, so its tokens still pass.
    assert!(verifier.verify(&sign(&claims())).await.is_ok());
}

#[tokio::test]
async fn failing_jwks_endpoint_reports_keys_unavailable() {
    struct Down;
    #[async_trait]
    impl JwksSource for Down {
        async fn fetch(&self) -> Result<JwkSet, AuthError> {
            Err(AuthError::KeysUnavailable("connection refused".into()))
        }
    }
    let verifier = JwtVerifier::new(ISS, AUD, Arc::new(Down));
    for _ in 0..2 {
        assert!(matches!(
            verifier.verify(&sign(&claims())).await,
            Err(AuthError::KeysUnavailable(_))
        ));
    }
}

#[test]
fn jwks_publishes_an_rs256_signing_key() {
    let jwks = serde_json::to_value(IDP.jwks()).expect("json");
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["kid"], IDP.kid());
    assert_eq!(key["e"], "AQAB");
    assert!(key["n"].as_str().is_some_and(|n| n.len() > 300));
    assert!(TENANT_CLAIM.starts_with(CLAIM_NAMESPACE) && ROLE_CLAIM.starts_with(CLAIM_NAMESPACE));
}

#[tokio::test]
async fn load_or_create_keeps_the_key_across_restarts() {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let dir = std::env::temp_dir().join(format!("peak-auth-test-{}-{nanos}", std::process::id()));

    let first = DevIdentityProvider::load_or_create(&dir, ISS, AUD).expect("create");
    let token = first
        .token_for("auth0|bob", "acme", "customer", HOUR)
        .expect("sign");
    let second = DevIdentityProvider::load_or_create(&dir, ISS, AUD).expect("load");
    assert_eq!(first.kid(), second.kid());
    let verifier = JwtVerifier::new(ISS, AUD, Arc::new(StaticJwks(second.jwks())));
    assert_eq!(
        verifier.verify(&token).await.expect("valid").subject,
        "auth0|bob"
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(dir.join("dev-idp-key.pem")).expect("key file");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[tokio::test]
async fn http_jwks_fetches_and_reports_failures() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let body = serde_json::to_string(&IDP.jwks()).expect("json");
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut request = [0u8; 4096];
        let _ = conn.read(&mut request).expect("read");
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(response.as_bytes()).expect("write");
    });
    let source = HttpJwks::new(format!("http://{addr}/.well-known/jwks.json"));
    assert_eq!(source.fetch().await, Ok(IDP.jwks()));
    server.join().expect("server");

    // The listener is gone: connection refused.
    assert!(matches!(
        source.fetch().await,
        Err(AuthError::KeysUnavailable(_))
    ));
    assert_eq!(
        HttpJwks::for_issuer("https://peak.eu.auth0.com/").url(),
        "https://peak.eu.auth0.com/.well-known/jwks.json"
    );
}

/// A cold start whose warm-up found the identity provider unreachable: the
/// next try comes after a few seconds, not a whole minute, and it is still
/// rate limited in between.
#[tokio::test]
async fn failed_fetch_is_retried_after_a_short_pause() {
    struct Flaky {
        up: std::sync::atomic::AtomicBool,
        fetches: AtomicUsize,
    }
    #[async_trait]
    impl JwksSource for Flaky {
        async fn fetch(&self) -> Result<JwkSet, AuthError> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            if self.up.load(Ordering::SeqCst) {
                Ok(IDP.jwks())
            } else {
                Err(AuthError::KeysUnavailable("connection refused".into()))
            }
        }
    }
    let source = Arc::new(Flaky {
        up: false.into(),
        fetches: AtomicUsize::new(0),
    });
    let (clock, offset) = manual_clock();
    let verifier = JwtVerifier::new(ISS, AUD, source.clone()).with_clock(clock);
    assert!(verifier.warm().await.is_err());
    source.up.store(true, Ordering::SeqCst);
    // Within the pause: refused without another fetch.
    assert!(matches!(
        verifier.verify(&sign(&claims())).await,
        Err(AuthError::KeysUnavailable(_))
    ));
    assert_eq!(source.fetches.load(Ordering::SeqCst), 1);
    offset.store(
        crate::verifier::RETRY_AFTER_FAILURE.as_secs(),
        Ordering::SeqCst,
    );
    assert!(verifier.verify(&sign(&claims())).await.is_ok());
    assert_eq!(source.fetches.load(Ordering::SeqCst), 2);
}
