//! Who is calling: the bearer token, verified, and the caller's user record.
//! The tenant comes only from the verified token, never from the path or
//! body. The records are read by `peak_domain::users::signed_in` (one DynamoDB
//! round trip for an admin, two for anyone else).

use crate::problem::Problem;
use crate::request::bearer_token;
use crate::state::AppState;
use lambda_http::Request;
use peak_auth::AuthError;
use peak_domain::Actor;
use peak_domain::TenantId;
use peak_domain::model::tenant::Tenant;
use std::sync::Arc;

/// Verifies the token, then loads the caller's tenant and user records
/// (together): the tenant must be open, the user must exist in it and be
/// active, on every request — so a suspension or deletion takes effect at
/// once. The role is the record's, not a claim. Also answers the caller's
/// tenant record as read for this request (its settings apply to this
/// request only).
pub async fn authenticate(
    state: &AppState,
    req: &Request,
    request_id: &str,
) -> Result<(Caller, Option<Arc<Tenant>>), Problem> {
    let token = bearer_token(req).ok_or_else(|| {
        Problem::unauthenticated("send an access token as `Authorization: Bearer <token>`")
    })?;
    let verified = state.verifier.verify(token).await.map_err(|e| match e {
        AuthError::KeysUnavailable(msg) => Problem::unavailable(
            "the identity provider's signing keys could not be fetched; retry shortly",
            msg,
        ),
        other => Problem::unauthenticated(describe(&other)),
    })?;
    let tenant = TenantId::parse(&verified.tenant).ok_or_else(|| {
        Problem::unauthenticated("the token's tenant claim is not a valid tenant id")
    })?;
    // A client-credentials token (the billing sync) is a machine client,
    // confined to the accounts routes (machine.rs); it has no user record,
    // so only its tenant is read (and must be open).
    if let Some(machine) = crate::machine::client(token, &verified, &tenant) {
        let ctx = state.ctx(request_id).admitted(&tenant).await?;
        return Ok((Caller::Machine(machine), ctx.tenant));
    }
    let (ctx, actor) = peak_domain::users::signed_in::signed_in(
        &state.ctx(request_id),
        state.callers.as_ref(),
        &tenant,
        &verified.subject,
    )
    .await?;
    Ok((Caller::User(actor), ctx.tenant))
}

/// Who a verified token speaks for.
// One per request, unpacked at once by the pipeline: boxing the user would
// only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Caller {
    User(Actor),
    Machine(peak_domain::accounts::MachineClient),
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
