//! Machine clients: a billing sync job calling with an Auth0
//! client-credentials token and no user record.
//!
//! Such a token is recognised (by [`client`]) only after the verifier has
//! accepted it (signature, issuer, audience, expiry, the tenant claim),
//! and only when it says what it is: `gty` is `client-credentials` and
//! `sub` is `<client id>@clients`, which no user's subject is. Its
//! `scope` claim (space separated) grants `accounts:read` (the GET account
//! routes) and `accounts:write` (`PUT /accounts/{number}`); every other
//! route, and an account route its scope does not name, is refused with
//! 403 `insufficient_scope` ([`admit`], and `dispatch::Call::signed_in`
//! for every route that needs a user). It has no role, no accounts and no
//! permissions: nothing else in the API can mistake it for a user.

use crate::problem::Problem;
use crate::routes::Route;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use peak_auth::VerifiedToken;
use peak_domain::TenantId;
use peak_domain::accounts::MachineClient;
use serde::Deserialize;

pub const READ_SCOPE: &str = "accounts:read";
pub const WRITE_SCOPE: &str = "accounts:write";
const CLIENT_CREDENTIALS: &str = "client-credentials";
const CLIENTS_SUFFIX: &str = "@clients";

#[derive(Deserialize)]
struct MachineClaims {
    #[serde(default)]
    gty: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

/// The machine client behind `token`, which the verifier has accepted as
/// `verified` for `tenant`; `None` when it is not a client-credentials
/// token (then it is a user's, and its subject must be a user).
pub fn client(token: &str, verified: &VerifiedToken, tenant: &TenantId) -> Option<MachineClient> {
    let client_id = verified.subject.strip_suffix(CLIENTS_SUFFIX)?;
    if client_id.is_empty() {
        return None;
    }
    // The payload of a token the verifier accepted (so well formed).
    let token = token.strip_prefix("Bearer ").unwrap_or(token).trim();
    let payload = token.split('.').nth(1)?;
    let claims: MachineClaims =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    if claims.gty.as_deref() != Some(CLIENT_CREDENTIALS) {
        return None;
    }
    let scopes: Vec<&str> = claims
        .scope
        .as_deref()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    Some(MachineClient {
        tenant_id: tenant.clone(),
        client_id: client_id.to_owned(),
        read: scopes.contains(&READ_SCOPE),
        write: scopes.contains(&WRITE_SCOPE),
    })
}

/// The scope a machine client needs for `route`; `None`: no machine
/// client may call it.
pub fn required_scope(route: Route) -> Option<&'static str> {
    match route {
        Route::AccountList | Route::AccountGet => Some(READ_SCOPE),
        Route::AccountUpsert => Some(WRITE_SCOPE),
        _ => None,
    }
}

/// Lets `client` call `route` only if its scope names it.
pub fn admit(client: &MachineClient, route: Route) -> Result<(), Problem> {
    let granted = match required_scope(route) {
        Some(READ_SCOPE) => client.read,
        Some(WRITE_SCOPE) => client.write,
        _ => false,
    };
    if granted {
        return Ok(());
    }
    Err(Problem::new(
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        match required_scope(route) {
            Some(scope) => format!("this route needs the `{scope}` scope in the client's token"),
            None => "a machine client (client-credentials token) may call only the accounts routes its scope names"
                .to_owned(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(claims: &str) -> String {
        format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(claims))
    }

    fn verified(sub: &str) -> VerifiedToken {
        VerifiedToken {
            subject: sub.into(),
            tenant: "t1".into(),
            role: None,
            expires_at: 0,
        }
    }

    #[test]
    fn only_client_credentials_tokens_of_clients_are_machines() {
        let t = TenantId::parse("t1").unwrap();
        let both = token(r#"{"gty":"client-credentials","scope":"accounts:read accounts:write"}"#);
        let m = client(&both, &verified("abc@clients"), &t).expect("a machine");
        assert_eq!((m.client_id.as_str(), m.read, m.write), ("abc", true, true));
        let read = token(r#"{"gty":"client-credentials","scope":"openid accounts:read"}"#);
        let m = client(&format!("Bearer {read}"), &verified("abc@clients"), &t).unwrap();
        assert!(m.read && !m.write);
        // A user's subject, a token without gty, an empty client id: not machines.
        assert_eq!(client(&both, &verified("auth0|abc"), &t), None);
        let no_gty = token(r#"{"scope":"accounts:write"}"#);
        assert_eq!(client(&no_gty, &verified("abc@clients"), &t), None);
        assert_eq!(client(&both, &verified("@clients"), &t), None);
        // A scope that merely contains the name does not count.
        let sly = token(r#"{"gty":"client-credentials","scope":"accounts:writers"}"#);
        assert!(!client(&sly, &verified("abc@clients"), &t).unwrap().write);
    }

    #[test]
    fn machines_reach_only_the_account_routes_their_scope_names() {
        let m = |read, write| MachineClient {
            tenant_id: TenantId::parse("t1").unwrap(),
            client_id: "abc".into(),
            read,
            write,
        };
        for route in crate::routes::ROUTES.iter().map(|s| s.route) {
            let reader = admit(&m(true, false), route).is_ok();
            let writer = admit(&m(false, true), route).is_ok();
            let expected = match route {
                Route::AccountList | Route::AccountGet => (true, false),
                Route::AccountUpsert => (false, true),
                _ => (false, false),
            };
            assert_eq!((reader, writer), expected, "{route:?}");
        }
    }
}
