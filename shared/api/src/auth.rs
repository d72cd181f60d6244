//! Who is calling: the bearer token, verified, becomes a domain `Caller`.
//! The tenant comes only from the verified token, never from the path or
//! body. (Once user records exist, the caller's status and role are also
//! checked against their record on every request.)

use crate::problem::Problem;
use crate::request::bearer_token;
use http::StatusCode;
use lambda_http::Request;
use peak_auth::{AuthError, JwtVerifier};
use peak_domain::{Caller, Role, TenantId};

pub async fn authenticate(verifier: &JwtVerifier, req: &Request) -> Result<Caller, Problem> {
    let token = bearer_token(req).ok_or_else(|| {
        Problem::unauthenticated("send an access token as `Authorization: Bearer <token>`")
    })?;
    let verified = verifier.verify(token).await.map_err(|e| match e {
        AuthError::KeysUnavailable(msg) => {
            let mut p = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the identity provider's signing keys could not be fetched; retry shortly",
            );
            p.internal = Some(msg);
            p
        }
        other => Problem::unauthenticated(describe(&other)),
    })?;
    let tenant_id = TenantId::parse(&verified.tenant).ok_or_else(|| {
        Problem::unauthenticated("the token's tenant claim is not a valid tenant id")
    })?;
    let role = verified
        .role
        .as_deref()
        .and_then(Role::parse)
        .ok_or_else(|| {
            Problem::new(
                StatusCode::FORBIDDEN,
                "no_role",
                "the token carries no PeakCommerce role (admin, sales_rep, partner or customer)",
            )
        })?;
    Ok(Caller {
        tenant_id,
        subject: verified.subject,
        role,
    })
}

fn describe(err: &AuthError) -> &'static str {
    match err {
        AuthError::Missing => "no token was sent",
        AuthError::Malformed => "the token is not a well-formed JWT",
        AuthError::UnsupportedAlgorithm => "the token's algorithm is not accepted (RS256 only)",
        AuthError::UnknownKey => "the token was signed with an unknown key",
        AuthError::BadSignature => "the token's signature is invalid",
        AuthError::Expired => "the token has expired",
        AuthError::NotYetValid => "the token is not valid yet",
        AuthError::WrongIssuer => "the token was issued by another issuer",
        AuthError::WrongAudience => "the token is for another audience",
        AuthError::MissingClaim(_) => "the token lacks a required claim",
        AuthError::KeysUnavailable(_) => "signing keys unavailable",
    }
}
