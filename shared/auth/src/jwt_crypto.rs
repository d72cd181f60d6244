//! The crypto behind `jsonwebtoken`, on `ring`.
//!
//! jsonwebtoken is built without a crypto backend of its own (its `aws_lc_rs`
//! backend would link aws-lc into every Lambda function), so this module
//! supplies one: RSASSA-PKCS1-v1_5 (RS256/RS384/RS512) and HMAC
//! (HS256/HS384/HS512). Every other algorithm is refused with
//! [`ErrorKind::UnsupportedAlgorithm`]; nothing here panics.
//!
//! [`ensure_installed`] must run before any jsonwebtoken sign or verify in the
//! process: jsonwebtoken latches its default provider on first use, and
//! without a backend feature that default panics. [`crate::JwtVerifier`] and
//! the development identity provider call it from their constructors.

use std::sync::Once;

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind, Result};
use jsonwebtoken::jwk::ThumbprintHash;
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
#[cfg(feature = "dev-idp")]
use ring::rand;
use ring::signature::{
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_2048_8192_SHA384, RSA_PKCS1_2048_8192_SHA512,
    RsaParameters, RsaPublicKeyComponents, UnparsedPublicKey,
};
#[cfg(feature = "dev-idp")]
use ring::signature::{
    RSA_PKCS1_SHA256, RSA_PKCS1_SHA384, RSA_PKCS1_SHA512, RsaEncoding, RsaKeyPair,
};
use ring::{digest, hmac};

/// The ring-backed provider. Install it with [`ensure_installed`].
pub static RING_PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key,
        rsa_pub_components_from_public_key,
        ec_pub_components_from_private_key: |_, _| Err(unsupported()),
        ed_pub_components_from_private_key: |_, _| Err(unsupported()),
        compute_digest,
    },
};

/// Makes [`RING_PROVIDER`] jsonwebtoken's provider for this process. Cheap
/// after the first call. If another provider was installed first, that one
/// stays (jsonwebtoken allows one per process).
pub fn ensure_installed() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if RING_PROVIDER.install_default().is_err() {
            tracing::debug!("a jsonwebtoken crypto provider was already installed");
        }
    });
}

fn unsupported() -> Error {
    ErrorKind::UnsupportedAlgorithm.into()
}

/// RSA signing is only for the development identity provider (feature
/// `dev-idp`): the Lambda functions verify tokens and never sign one, so
/// they do not link ring's RSA private-key code.
fn new_signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    Ok(match algorithm {
        #[cfg(feature = "dev-idp")]
        Algorithm::RS256 => Box::new(RsaSigner::new(key, *algorithm, &RSA_PKCS1_SHA256)?),
        #[cfg(feature = "dev-idp")]
        Algorithm::RS384 => Box::new(RsaSigner::new(key, *algorithm, &RSA_PKCS1_SHA384)?),
        #[cfg(feature = "dev-idp")]
        Algorithm::RS512 => Box::new(RsaSigner::new(key, *algorithm, &RSA_PKCS1_SHA512)?),
        Algorithm::HS256 => Box::new(HmacSigner::new(key, *algorithm, hmac::HMAC_SHA256)?),
        Algorithm::HS384 => Box::new(HmacSigner::new(key, *algorithm, hmac::HMAC_SHA384)?),
        Algorithm::HS512 => Box::new(HmacSigner::new(key, *algorithm, hmac::HMAC_SHA512)?),
        // ES*, PS*, EdDSA and whatever jsonwebtoken adds later.
        _ => return Err(unsupported()),
    })
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    Ok(match algorithm {
        Algorithm::RS256 => Box::new(RsaVerifier::new(
            key,
            *algorithm,
            &RSA_PKCS1_2048_8192_SHA256,
        )?),
        Algorithm::RS384 => Box::new(RsaVerifier::new(
            key,
            *algorithm,
            &RSA_PKCS1_2048_8192_SHA384,
        )?),
        Algorithm::RS512 => Box::new(RsaVerifier::new(
            key,
            *algorithm,
            &RSA_PKCS1_2048_8192_SHA512,
        )?),
        Algorithm::HS256 => Box::new(HmacVerifier::new(key, *algorithm, hmac::HMAC_SHA256)?),
        Algorithm::HS384 => Box::new(HmacVerifier::new(key, *algorithm, hmac::HMAC_SHA384)?),
        Algorithm::HS512 => Box::new(HmacVerifier::new(key, *algorithm, hmac::HMAC_SHA512)?),
        // ES*, PS*, EdDSA and whatever jsonwebtoken adds later.
        _ => return Err(unsupported()),
    })
}

/// RSASSA-PKCS1-v1_5 signing (development identity provider only). `EncodingKey::from_rsa_pem` and
/// `from_rsa_der` hold a PKCS#1 `RSAPrivateKey` (from a PKCS#8 PEM,
/// jsonwebtoken unwraps the PKCS#1 key inside), so the key is parsed with
/// `RsaKeyPair::from_der`, once per signer.
#[cfg(feature = "dev-idp")]
struct RsaSigner {
    key_pair: RsaKeyPair,
    algorithm: Algorithm,
    encoding: &'static dyn RsaEncoding,
}

#[cfg(feature = "dev-idp")]
impl RsaSigner {
    fn new(
        key: &EncodingKey,
        algorithm: Algorithm,
        encoding: &'static dyn RsaEncoding,
    ) -> Result<Self> {
        if key.family() != AlgorithmFamily::Rsa {
            return Err(ErrorKind::InvalidKeyFormat.into());
        }
        let key_pair = RsaKeyPair::from_der(key.as_bytes())
            .map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()))?;
        Ok(Self {
            key_pair,
            algorithm,
            encoding,
        })
    }
}

#[cfg(feature = "dev-idp")]
impl Signer<Vec<u8>> for RsaSigner {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        let mut signature = vec![0; self.key_pair.public().modulus_len()];
        self.key_pair
            .sign(
                self.encoding,
                &rand::SystemRandom::new(),
                msg,
                &mut signature,
            )
            .map_err(|_| signature::Error::from_source("RSA signing failed"))?;
        Ok(signature)
    }
}

#[cfg(feature = "dev-idp")]
impl JwtSigner for RsaSigner {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

/// RSASSA-PKCS1-v1_5 verification with 2048- to 8192-bit keys: from a
/// JWKS (`n`, `e`), or PKCS#1 `RSAPublicKey` DER (`from_rsa_pem`/`from_rsa_der`).
struct RsaVerifier {
    key: DecodingKey,
    algorithm: Algorithm,
    params: &'static RsaParameters,
}

impl RsaVerifier {
    fn new(
        key: &DecodingKey,
        algorithm: Algorithm,
        params: &'static RsaParameters,
    ) -> Result<Self> {
        if key.family() != AlgorithmFamily::Rsa {
            return Err(ErrorKind::InvalidKeyFormat.into());
        }
        Ok(Self {
            key: key.clone(),
            algorithm,
            params,
        })
    }
}

impl Verifier<Vec<u8>> for RsaVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let verified = match self.key.kind() {
            DecodingKeyKind::RsaModulusExponent { n, e } => {
                RsaPublicKeyComponents { n, e }.verify(self.params, msg, signature)
            }
            DecodingKeyKind::SecretOrDer(der) => {
                UnparsedPublicKey::new(self.params, der).verify(msg, signature)
            }
        };
        verified.map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RsaVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

struct HmacSigner {
    key: hmac::Key,
    algorithm: Algorithm,
}

impl HmacSigner {
    fn new(key: &EncodingKey, algorithm: Algorithm, hmac: hmac::Algorithm) -> Result<Self> {
        if key.family() != AlgorithmFamily::Hmac {
            return Err(ErrorKind::InvalidKeyFormat.into());
        }
        Ok(Self {
            key: hmac::Key::new(hmac, key.as_bytes()),
            algorithm,
        })
    }
}

impl Signer<Vec<u8>> for HmacSigner {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        Ok(hmac::sign(&self.key, msg).as_ref().to_vec())
    }
}

impl JwtSigner for HmacSigner {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

struct HmacVerifier {
    key: hmac::Key,
    algorithm: Algorithm,
}

impl HmacVerifier {
    fn new(key: &DecodingKey, algorithm: Algorithm, hmac: hmac::Algorithm) -> Result<Self> {
        if key.family() != AlgorithmFamily::Hmac {
            return Err(ErrorKind::InvalidKeyFormat.into());
        }
        Ok(Self {
            key: hmac::Key::new(hmac, key.try_get_as_bytes()?),
            algorithm,
        })
    }
}

impl Verifier<Vec<u8>> for HmacVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        // Constant time.
        hmac::verify(&self.key, msg, signature).map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for HmacVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

/// `Jwk::from_encoding_key` for RSA: (n, e) of a PKCS#1 private key
/// (development identity provider only, like RSA signing).
#[cfg(not(feature = "dev-idp"))]
fn rsa_pub_components_from_private_key(_der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    Err(unsupported())
}

#[cfg(feature = "dev-idp")]
fn rsa_pub_components_from_private_key(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let key_pair =
        RsaKeyPair::from_der(der).map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()))?;
    let RsaPublicKeyComponents { n, e } =
        RsaPublicKeyComponents::<Vec<u8>>::from(key_pair.public());
    Ok((n, e))
}

/// `Jwk::from_decoding_key` for RSA DER: (n, e) of a PKCS#1 `RSAPublicKey`,
/// `SEQUENCE { modulus INTEGER, publicExponent INTEGER }`. ring has no public
/// parser for it, hence this strict DER reader (definite lengths, nothing
/// trailing, positive integers).
fn rsa_pub_components_from_public_key(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let invalid = || {
        Error::from(ErrorKind::InvalidRsaKey(
            "not a PKCS#1 RSA public key".into(),
        ))
    };
    let (body, rest) = der_element(der, 0x30).ok_or_else(invalid)?;
    if !rest.is_empty() {
        return Err(invalid());
    }
    let (n, rest) = der_element(body, 0x02).ok_or_else(invalid)?;
    let (e, rest) = der_element(rest, 0x02).ok_or_else(invalid)?;
    if !rest.is_empty() {
        return Err(invalid());
    }
    let n = der_positive_integer(n).ok_or_else(invalid)?;
    let e = der_positive_integer(e).ok_or_else(invalid)?;
    Ok((n.to_vec(), e.to_vec()))
}

/// One DER element with `tag`: its contents and what follows it.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > std::mem::size_of::<u32>() {
            return None;
        }
        let (bytes, rest) = rest.split_at_checked(count)?;
        let len = bytes
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b));
        (len, rest)
    };
    rest.split_at_checked(len)
}

/// The big-endian magnitude of a positive DER INTEGER, without its sign byte.
fn der_positive_integer(bytes: &[u8]) -> Option<&[u8]> {
    match bytes {
        [] => None,
        [first, ..] if first & 0x80 != 0 => None,
        [0, rest @ ..] if !rest.is_empty() => Some(rest),
        _ => Some(bytes),
    }
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> Result<Vec<u8>> {
    let algorithm = match hash {
        ThumbprintHash::SHA256 => &digest::SHA256,
        ThumbprintHash::SHA384 => &digest::SHA384,
        ThumbprintHash::SHA512 => &digest::SHA512,
        _ => return Err(unsupported()),
    };
    Ok(digest::digest(algorithm, data).as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{Header, Validation};
    use serde_json::{Value, json};

    use super::*;

    fn claims() -> Value {
        json!({ "sub": "auth0|alice", "exp": 4_102_444_800_i64 })
    }

    fn hs_validation(alg: Algorithm) -> Validation {
        let mut validation = Validation::new(alg);
        validation.validate_aud = false;
        validation
    }

    #[test]
    fn hmac_round_trip_and_wrong_secret() {
        ensure_installed();
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let token = jsonwebtoken::encode(
                &Header::new(alg),
                &claims(),
                &EncodingKey::from_secret(b"secret"),
            )
            .expect("sign");
            let data = jsonwebtoken::decode::<Value>(
                &token,
                &DecodingKey::from_secret(b"secret"),
                &hs_validation(alg),
            )
            .expect("verify");
            assert_eq!(data.claims, claims());

            let wrong = jsonwebtoken::decode::<Value>(
                &token,
                &DecodingKey::from_secret(b"other"),
                &hs_validation(alg),
            );
            assert_eq!(
                wrong.map_err(|e| e.into_kind()).err(),
                Some(ErrorKind::InvalidSignature)
            );
        }
    }

    #[test]
    fn unsupported_algorithms_are_errors_not_panics() {
        ensure_installed();
        let rsa_key = DecodingKey::from_rsa_raw_components(&[0xc5; 256], &[1, 0, 1]);
        for alg in [
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
            Algorithm::EdDSA,
        ] {
            let signer = new_signer(&alg, &EncodingKey::from_secret(b"secret"));
            assert!(matches!(
                signer.err().map(Error::into_kind),
                Some(ErrorKind::UnsupportedAlgorithm)
            ));
            for key in [&rsa_key, &DecodingKey::from_secret(b"secret")] {
                let verifier = new_verifier(&alg, key);
                assert!(matches!(
                    verifier.err().map(Error::into_kind),
                    Some(ErrorKind::UnsupportedAlgorithm)
                ));
            }
        }

        // Through jsonwebtoken: an ES256 token against a validation that
        // allows ES256 reaches the provider, which refuses it.
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
        let token = format!("{header}.{payload}.AAAA");
        let result = jsonwebtoken::decode::<Value>(
            &token,
            &DecodingKey::from_secret(b"secret"),
            &Validation::new(Algorithm::ES256),
        );
        assert_eq!(
            result.map_err(|e| e.into_kind()).err(),
            Some(ErrorKind::UnsupportedAlgorithm)
        );
        // (`encode` checks the key's family first; an EC-family key gets
        // through to the provider.)
        assert!(matches!(
            jsonwebtoken::encode(
                &Header::new(Algorithm::ES256),
                &claims(),
                &EncodingKey::from_ec_der(b"not a key"),
            )
            .map_err(|e| e.into_kind()),
            Err(ErrorKind::UnsupportedAlgorithm)
        ));
    }

    #[test]
    fn key_family_must_match_the_algorithm() {
        ensure_installed();
        let rsa_key = DecodingKey::from_rsa_raw_components(&[0xc5; 256], &[1, 0, 1]);
        assert!(matches!(
            new_verifier(&Algorithm::HS256, &rsa_key)
                .err()
                .map(Error::into_kind),
            Some(ErrorKind::InvalidKeyFormat)
        ));
        assert!(matches!(
            new_verifier(&Algorithm::RS256, &DecodingKey::from_secret(b"secret"))
                .err()
                .map(Error::into_kind),
            Some(ErrorKind::InvalidKeyFormat)
        ));
        assert!(matches!(
            new_signer(&Algorithm::RS256, &EncodingKey::from_secret(b"secret"))
                .err()
                .map(Error::into_kind),
            Some(ErrorKind::InvalidKeyFormat)
        ));
        // Not an RSA private key at all: an error, not a panic.
        assert!(matches!(
            new_signer(&Algorithm::RS256, &EncodingKey::from_rsa_der(b"garbage"))
                .err()
                .map(Error::into_kind),
            Some(ErrorKind::InvalidRsaKey(_))
        ));
    }

    #[test]
    fn pkcs1_public_key_parser() {
        ensure_installed();
        // SEQUENCE { INTEGER 0x00c5.. (sign byte), INTEGER 65537 }, long-form length.
        let mut n = vec![0x00];
        n.extend([0xc5; 256]);
        let mut body = vec![0x02, 0x82, 0x01, 0x01];
        body.extend(&n);
        body.extend([0x02, 0x03, 0x01, 0x00, 0x01]);
        let mut der = vec![0x30, 0x82];
        der.extend(u16::try_from(body.len()).expect("len").to_be_bytes());
        der.extend(&body);
        let (parsed_n, parsed_e) = rsa_pub_components_from_public_key(&der).expect("parse");
        assert_eq!(parsed_n, vec![0xc5; 256]);
        assert_eq!(parsed_e, vec![1, 0, 1]);

        let jwk = Jwk::from_decoding_key(&DecodingKey::from_rsa_der(&der), Some(Algorithm::RS256))
            .expect("jwk");
        let jwk = serde_json::to_value(jwk).expect("json");
        assert_eq!(jwk["e"], "AQAB");

        // Truncated, trailing bytes, wrong tag, negative: errors.
        for bad in [
            &der[..der.len() - 1],
            &[der.as_slice(), &[0]].concat(),
            &[&[0x31], &der[1..]].concat(),
            &[0x30, 0x06, 0x02, 0x01, 0x80, 0x02, 0x01, 0x03],
        ] {
            assert!(rsa_pub_components_from_public_key(bad).is_err());
        }
    }

    #[test]
    fn thumbprint_uses_ring_digests() {
        ensure_installed();
        // RFC 7638 section 3.1's example key and its SHA-256 thumbprint.
        let jwk: Jwk = serde_json::from_value(json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
        }))
        .expect("jwk");
        assert_eq!(
            jwk.thumbprint(ThumbprintHash::SHA256).expect("thumbprint"),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    /// RS256 through the dev identity provider's key (generated with aws-lc).
    #[cfg(feature = "dev-idp")]
    mod rsa {
        use std::time::Duration;

        use super::*;
        use crate::DevIdentityProvider;

        const ISS: &str = "https://issuer.test/";
        const AUD: &str = "https://api.test";

        fn rs_validation(alg: Algorithm) -> Validation {
            let mut validation = Validation::new(alg);
            validation.set_issuer(&[ISS]);
            validation.set_audience(&[AUD]);
            validation
        }

        fn decoding_key(idp: &DevIdentityProvider) -> DecodingKey {
            let jwk = &idp.jwks().keys[0];
            DecodingKey::from_jwk(jwk).expect("key")
        }

        #[test]
        fn dev_idp_rs256_verifies_and_a_flipped_byte_does_not() {
            let idp = DevIdentityProvider::generate(ISS, AUD).expect("generate");
            let token = idp
                .token_for("auth0|alice", "acme", "admin", Duration::from_secs(60))
                .expect("sign");
            let key = decoding_key(&idp);
            let data =
                jsonwebtoken::decode::<Value>(&token, &key, &rs_validation(Algorithm::RS256))
                    .expect("valid");
            assert_eq!(data.claims["sub"], "auth0|alice");

            // PKCS#1 DER from the public key PEM verifies too.
            let pem_key = DecodingKey::from_rsa_pem(idp.public_key_pem().as_bytes()).expect("pem");
            jsonwebtoken::decode::<Value>(&token, &pem_key, &rs_validation(Algorithm::RS256))
                .expect("valid with the DER key");

            // One byte of the signature flipped (decoded, so it is a real
            // byte of the signature and not base64 padding bits).
            let (message, signature) = token.rsplit_once('.').expect("three parts");
            let mut signature = URL_SAFE_NO_PAD.decode(signature).expect("base64");
            for index in [0, signature.len() / 2, signature.len() - 1] {
                signature[index] ^= 0x01;
                let forged = format!("{message}.{}", URL_SAFE_NO_PAD.encode(&signature));
                for key in [&key, &pem_key] {
                    let result = jsonwebtoken::decode::<Value>(
                        &forged,
                        key,
                        &rs_validation(Algorithm::RS256),
                    );
                    assert_eq!(
                        result.map_err(|e| e.into_kind()).err(),
                        Some(ErrorKind::InvalidSignature)
                    );
                }
                signature[index] ^= 0x01;
            }
        }

        #[test]
        fn rs256_sign_and_jwk_from_the_private_key() {
            let idp = DevIdentityProvider::generate(ISS, AUD).expect("generate");
            let key = decoding_key(&idp);
            let signing_key = idp.signing_key();
            let claims = json!({ "sub": "s", "iss": ISS, "aud": AUD, "exp": 4_102_444_800_i64 });
            for alg in [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512] {
                let token =
                    jsonwebtoken::encode(&Header::new(alg), &claims, signing_key).expect("sign");
                jsonwebtoken::decode::<Value>(&token, &key, &rs_validation(alg)).expect("verify");
            }
            // The public half via `KeyUtils`, as published in the JWKS.
            let jwk = Jwk::from_encoding_key(signing_key, Algorithm::RS256).expect("jwk");
            let jwk = serde_json::to_value(jwk).expect("json");
            let published = serde_json::to_value(&idp.jwks().keys[0]).expect("json");
            assert_eq!(jwk["n"], published["n"]);
            assert_eq!(jwk["e"], published["e"]);
        }
    }
}
