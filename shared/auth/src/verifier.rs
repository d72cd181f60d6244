//! Access-token verification: RS256 JWTs signed by a key from a JWKS.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::{Mutex, RwLock};

use crate::error::AuthError;
use crate::jwks::JwksSource;
use crate::{ROLE_CLAIM, TENANT_CLAIM};

/// An unknown `kid` triggers a JWKS refetch at most this often, so a flood
/// of tokens with made-up kids cannot hammer the identity provider.
pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// After a failed fetch (the identity provider was unreachable, e.g. during
/// a cold start's warm-up) the next try may come sooner: still rate limited,
/// but a blip does not lock everyone out for a whole minute.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// Tolerated clock skew for `exp` and `nbf`.
const LEEWAY_SECS: u64 = 60;

/// Monotonic time for the refetch rate limit; injectable so tests can step
/// past [`MIN_REFETCH_INTERVAL`] without sleeping.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// The identity a valid token vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub subject: String,
    pub tenant: String,
    pub role: Option<String>,
    /// `exp`, seconds since the Unix epoch.
    pub expires_at: i64,
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, Arc<DecodingKey>>,
    last_fetch: Option<Instant>,
    /// Why the last fetch failed, if it did: reported (as `KeysUnavailable`)
    /// instead of `UnknownKey` while the refetch interval holds us back.
    last_error: Option<String>,
}

/// Verifies bearer tokens against one issuer and audience.
pub struct JwtVerifier {
    issuer: String,
    source: Arc<dyn JwksSource>,
    validation: Validation,
    cache: RwLock<KeyCache>,
    /// Serialises fetches: concurrent requests with the same new kid wait
    /// for one fetch instead of each starting their own.
    refresh: Mutex<()>,
    clock: Clock,
}

impl JwtVerifier {
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        source: Arc<dyn JwksSource>,
    ) -> Self {
        crate::jwt_crypto::ensure_installed();
        let issuer = issuer.into();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[audience.into()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Self {
            issuer,
            source,
            validation,
            cache: RwLock::default(),
            refresh: Mutex::new(()),
            clock: Arc::new(Instant::now),
        }
    }

    /// Replaces the clock used for the refetch rate limit.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Fetches the keys now, so the first request does not pay for it.
    pub async fn warm(&self) -> Result<(), AuthError> {
        let _fetching = self.refresh.lock().await;
        self.refetch().await
    }

    /// Verifies a token, given bare or as an `Authorization` header value
    /// (`Bearer <token>`).
    pub async fn verify(&self, bearer_token: &str) -> Result<VerifiedToken, AuthError> {
        let token = strip_bearer(bearer_token);
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let kid = checked_kid(token)?;
        let key = self.key_for(&kid).await?;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &self.validation)
            .map_err(|e| map_jwt_error(e.into_kind()))?;
        identity(&data.claims, &self.issuer)
    }

    async fn key_for(&self, kid: &str) -> Result<Arc<DecodingKey>, AuthError> {
        if let Some(key) = self.cache.read().await.keys.get(kid) {
            return Ok(key.clone());
        }
        let _fetching = self.refresh.lock().await;
        {
            // Re-check: whoever held the lock before us may have fetched.
            let cache = self.cache.read().await;
            if let Some(key) = cache.keys.get(kid) {
                return Ok(key.clone());
            }
            let interval = if cache.last_error.is_some() {
                RETRY_AFTER_FAILURE
            } else {
                MIN_REFETCH_INTERVAL
            };
            if let Some(last) = cache.last_fetch
                && (self.clock)().saturating_duration_since(last) < interval
            {
                return Err(cache
                    .last_error
                    .clone()
                    .map_or(AuthError::UnknownKey, AuthError::KeysUnavailable));
            }
        }
        tracing::info!("unknown signing key id; refetching JWKS");
        self.refetch().await?;
        let cache = self.cache.read().await;
        cache.keys.get(kid).cloned().ok_or(AuthError::UnknownKey)
    }

    /// Caller holds `self.refresh`. A failed fetch keeps the old keys (and
    /// still counts against the rate limit: a failing endpoint is not
    /// retried on every request).
    async fn refetch(&self) -> Result<(), AuthError> {
        let started = (self.clock)();
        let fetched = self.source.fetch().await;
        let mut cache = self.cache.write().await;
        cache.last_fetch = Some(started);
        match fetched {
            Ok(set) => {
                cache.keys = usable_keys(&set);
                cache.last_error = None;
                tracing::info!(keys = cache.keys.len(), "JWKS loaded");
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "JWKS fetch failed");
                cache.last_error = Some(e.to_string());
                Err(e)
            }
        }
    }
}

/// RSA signing keys with a kid; anything else in the set can never verify
/// an RS256 token, so it is left out.
fn usable_keys(set: &JwkSet) -> HashMap<String, Arc<DecodingKey>> {
    set.keys
        .iter()
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let AlgorithmParameters::RSA(rsa) = &jwk.algorithm else {
                return None;
            };
            let alg_ok = matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::RS256));
            let use_ok = matches!(
                jwk.common.public_key_use,
                None | Some(PublicKeyUse::Signature)
            );
            let key = DecodingKey::from_rsa_components(&rsa.n, &rsa.e).ok()?;
            (alg_ok && use_ok).then(|| (kid, Arc::new(key)))
        })
        .collect()
}

fn strip_bearer(raw: &str) -> &str {
    let raw = raw.trim();
    match raw.get(..6) {
        // A JWT contains no whitespace, so "Bearer" alone is a header
        // without a token, and "Bearerx..." is not a scheme.
        Some(scheme) if scheme.eq_ignore_ascii_case("bearer") => match &raw[6..] {
            "" => "",
            rest if rest.starts_with(char::is_whitespace) => rest.trim_start(),
            _ => raw,
        },
        _ => raw,
    }
}

#[derive(Deserialize)]
struct RawHeader {
    alg: Option<String>,
    kid: Option<String>,
    crit: Option<Value>,
}

/// Checks the header before any key lookup: only RS256 is accepted, so
/// `none` and HS256-signed-with-our-public-key (key confusion) never reach
/// a key. Returns the required `kid`.
fn checked_kid(token: &str) -> Result<String, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::Malformed)?;
    let header: RawHeader = serde_json::from_slice(&header).map_err(|_| AuthError::Malformed)?;
    if header.alg.as_deref() != Some("RS256") {
        return Err(AuthError::UnsupportedAlgorithm);
    }
    // We implement no JWS extensions, and RFC 7515 says to refuse tokens
    // that mark one as critical.
    if header.crit.is_some() {
        return Err(AuthError::Malformed);
    }
    header
        .kid
        .filter(|kid| !kid.is_empty())
        .ok_or(AuthError::Malformed)
}

fn map_jwt_error(kind: ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => {
            AuthError::UnsupportedAlgorithm
        }
        ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim(match claim.as_str() {
            "exp" => "exp",
            "iss" => "iss",
            "aud" => "aud",
            "sub" => "sub",
            _ => "nbf",
        }),
        _ => AuthError::Malformed,
    }
}

/// Claims jsonwebtoken does not check for us. Runs only after the
/// signature, `exp`, `nbf`, `iss` and `aud` have been verified.
fn identity(claims: &Map<String, Value>, issuer: &str) -> Result<VerifiedToken, AuthError> {
    // jsonwebtoken also accepts an `iss` array that merely contains ours;
    // the issuer must match exactly.
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(AuthError::WrongIssuer);
    }
    let required = |name: &'static str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or(AuthError::MissingClaim(name))
    };
    let role = match claims.get(ROLE_CLAIM) {
        None | Some(Value::Null) => None,
        Some(Value::String(role)) => Some(role.clone()),
        Some(_) => return Err(AuthError::Malformed),
    };
    let expires_at = claims
        .get("exp")
        .and_then(|exp| exp.as_i64().or_else(|| exp.as_f64().map(|f| f as i64)))
        .ok_or(AuthError::MissingClaim("exp"))?;
    Ok(VerifiedToken {
        subject: required("sub")?,
        tenant: required(TENANT_CLAIM)?,
        role,
        expires_at,
    })
}
