//! Why a token was refused: shared by the key sources and the verifier
//! (its own module, so neither imports the other for it).

/// Why a token was refused. Everything but `KeysUnavailable` is the caller's
/// fault (401); `KeysUnavailable` is ours (503).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("no bearer token")]
    Missing,
    #[error("malformed token")]
    Malformed,
    #[error("unsupported token algorithm (only RS256 is accepted)")]
    UnsupportedAlgorithm,
    #[error("token signed by an unknown key")]
    UnknownKey,
    #[error("bad token signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token from the wrong issuer")]
    WrongIssuer,
    #[error("token for another audience")]
    WrongAudience,
    #[error("token lacks the {0} claim")]
    MissingClaim(&'static str),
    #[error("signing keys unavailable: {0}")]
    KeysUnavailable(String),
}
