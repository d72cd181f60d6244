//! The local run's stand-in for Auth0: an RS256 token issuer whose JWKS
//! feeds the same [`crate::JwtVerifier`] that checks Auth0 tokens.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
    RSAKeyParameters, RSAKeyType,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

const KEY_FILE: &str = "dev-idp-key.pem";

#[derive(Debug, thiserror::Error)]
pub enum DevIdpError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("development signing key: {0}")]
    Key(String),
}

fn key_error(e: impl std::fmt::Display) -> DevIdpError {
    DevIdpError::Key(e.to_string())
}

/// Claims of a development token; the tenant and role use the same
/// namespaced names as Auth0 tokens ([`crate::TENANT_CLAIM`], [`crate::ROLE_CLAIM`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    #[serde(
        rename = "https://peakcommerce.com/tenant",
        skip_serializing_if = "Option::is_none"
    )]
    pub tenant: Option<String>,
    #[serde(
        rename = "https://peakcommerce.com/role",
        skip_serializing_if = "Option::is_none"
    )]
    pub role: Option<String>,
}

/// Issues RS256 tokens with one RSA key.
#[derive(Debug, Clone)]
pub struct DevIdentityProvider {
    issuer: String,
    audience: String,
    kid: String,
    signing_key: EncodingKey,
    /// SubjectPublicKeyInfo DER.
    public_key_der: Vec<u8>,
    jwks: JwkSet,
}

impl DevIdentityProvider {
    /// Loads the RSA key from `dir/dev-idp-key.pem` (PKCS#8), or generates a
    /// 2048-bit key and writes it there (mode 0600) on first start, so
    /// tokens survive restarts.
    pub fn load_or_create(dir: &Path, issuer: &str, audience: &str) -> Result<Self, DevIdpError> {
        crate::jwt_crypto::ensure_installed();
        let path = dir.join(KEY_FILE);
        let io_error = |source| DevIdpError::Io {
            path: path.clone(),
            source,
        };
        match fs::read_to_string(&path) {
            Ok(pem) => return Self::from_pkcs8_pem(&pem, issuer, audience),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(e)),
        }
        let pem = generate_pkcs8_pem()?;
        fs::create_dir_all(dir).map_err(io_error)?;
        match write_private(&path, pem.as_bytes()) {
            Ok(()) => tracing::info!(path = %path.display(), "generated development signing key"),
            // Another process created it first; its key is the one to share.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let pem = fs::read_to_string(&path).map_err(io_error)?;
                return Self::from_pkcs8_pem(&pem, issuer, audience);
            }
            Err(e) => return Err(io_error(e)),
        }
        Self::from_pkcs8_pem(&pem, issuer, audience)
    }

    /// A fresh in-memory key, for tests.
    pub fn generate(issuer: &str, audience: &str) -> Result<Self, DevIdpError> {
        Self::from_pkcs8_pem(&generate_pkcs8_pem()?, issuer, audience)
    }

    fn from_pkcs8_pem(pem: &str, issuer: &str, audience: &str) -> Result<Self, DevIdpError> {
        // Every constructor ends here: the provider is in place before the
        // first `sign`.
        crate::jwt_crypto::ensure_installed();
        // Parsing with aws-lc-rs validates the key and gives us its public half.
        let der = pem_decode(pem, "PRIVATE KEY").ok_or_else(|| key_error("not a PKCS#8 PEM"))?;
        let key = KeyPair::from_pkcs8(&der).map_err(key_error)?;
        let signing_key = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(key_error)?;
        let public = key.public_key();
        let public_key_der = public.as_der().map_err(key_error)?.as_ref().to_vec();
        let fingerprint = digest(&SHA256, &public_key_der);
        let kid = URL_SAFE_NO_PAD.encode(&fingerprint.as_ref()[..8]);
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let jwk = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::RS256),
                key_id: Some(kid.clone()),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::RSA(RSAKeyParameters {
                key_type: RSAKeyType::RSA,
                n: b64(public.modulus().big_endian_without_leading_zero()),
                e: b64(public.exponent().big_endian_without_leading_zero()),
            }),
        };
        Ok(Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            kid,
            signing_key,
            public_key_der,
            jwks: JwkSet { keys: vec![jwk] },
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// base64url of the first 8 bytes of SHA-256 of the public key's DER
    /// (SubjectPublicKeyInfo): stable for a key, distinct across keys.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWKS, what Auth0 serves at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> JwkSet {
        self.jwks.clone()
    }

    /// The public key as PEM (SubjectPublicKeyInfo), e.g. for jwt.io.
    pub fn public_key_pem(&self) -> String {
        pem_encode("PUBLIC KEY", &self.public_key_der)
    }

    /// Claims for `subject` valid from now for `ttl`.
    pub fn claims_for(&self, subject: &str, tenant: &str, role: &str, ttl: Duration) -> DevClaims {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        DevClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: subject.to_owned(),
            iat: now,
            nbf: now,
            exp: now.saturating_add(ttl),
            tenant: Some(tenant.to_owned()),
            role: Some(role.to_owned()),
        }
    }

    pub fn token_for(
        &self,
        subject: &str,
        tenant: &str,
        role: &str,
        ttl: Duration,
    ) -> Result<String, DevIdpError> {
        self.sign(&self.claims_for(subject, tenant, role, ttl))
    }

    /// A client-credentials token as Auth0 issues one to a machine-to-machine
    /// application (`sub` = `<client id>@clients`, `gty`, `azp`, a space
    /// separated `scope`), with the tenant claim a client-credentials Action
    /// adds.
    pub fn client_token(
        &self,
        client_id: &str,
        tenant: &str,
        scope: &str,
        ttl: Duration,
    ) -> Result<String, DevIdpError> {
        let mut claims =
            serde_json::to_value(self.claims_for(&format!("{client_id}@clients"), tenant, "", ttl))
                .map_err(key_error)?;
        if let Some(map) = claims.as_object_mut() {
            map.remove(crate::ROLE_CLAIM);
            map.insert("gty".into(), "client-credentials".into());
            map.insert("azp".into(), client_id.into());
            map.insert("scope".into(), scope.into());
        }
        self.sign_with_kid(&claims, &self.kid)
    }

    /// Signs `claims` as given (RS256, header `kid`).
    pub fn sign(&self, claims: &DevClaims) -> Result<String, DevIdpError> {
        self.sign_with_kid(claims, &self.kid)
    }

    /// The signing key, for tests of the crypto provider.
    #[cfg(test)]
    pub(crate) fn signing_key(&self) -> &EncodingKey {
        &self.signing_key
    }

    /// Tests forge tokens with arbitrary claims and kids through this.
    pub(crate) fn sign_with_kid(
        &self,
        claims: &impl Serialize,
        kid: &str,
    ) -> Result<String, DevIdpError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.signing_key).map_err(key_error)
    }
}

fn generate_pkcs8_pem() -> Result<String, DevIdpError> {
    let key = KeyPair::generate(KeySize::Rsa2048).map_err(key_error)?;
    Ok(pem_encode(
        "PRIVATE KEY",
        key.as_der().map_err(key_error)?.as_ref(),
    ))
}

/// Creates `path` readable by its owner only; fails if it exists.
fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    // base64 is ASCII, so 64-byte chunks are valid str boundaries.
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

pub(crate) fn pem_decode(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body = pem.split_once(&begin)?.1.split_once(&end)?.0;
    let body: String = body.split_whitespace().collect();
    STANDARD.decode(body).ok()
}
