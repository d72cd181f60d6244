//! What every Lambda function builds at cold start, from its environment.
//! A missing setting fails the init (visible in the function's logs), not a
//! request.

pub mod files;
pub mod secrets;
mod sigv4;
#[cfg(test)]
mod tests;

use peak_api::AppState;
use peak_auth::{HttpJwks, JwtVerifier};
use peak_domain::UserSettings;
use peak_domain::catalogue::catalogue;
use peak_domain::identity::{
    IdentityProvider, IdpAccount, IdpError, IdpUserState, LoginDirectory, SetupLink, StepOutcome,
};
use peak_domain::model::user::User;
use peak_store_dynamodb::{DynamoStore, client_from_env};
use std::sync::Arc;

/// A function deployed without Auth0 settings (`AUTH0_DOMAIN` unset): the
/// routes that need the Management API answer 503 with this reason, never
/// pretend. Only the functions that call Auth0 get its settings (and its
/// client secret) in the template.
struct Auth0NotConfigured;

const NOT_CONFIGURED: &str = "this function has no Auth0 settings (AUTH0_DOMAIN is unset)";

#[async_trait::async_trait]
impl IdentityProvider for Auth0NotConfigured {
    async fn find_login(&self, _: &User) -> Result<Option<IdpAccount>, IdpError> {
        Err(IdpError::Unavailable(NOT_CONFIGURED.into()))
    }
    async fn create_login(&self, _: &User) -> Result<Option<String>, IdpError> {
        Err(IdpError::Unavailable(NOT_CONFIGURED.into()))
    }
    async fn relink_login(&self, _: &str, _: &User) -> Result<bool, IdpError> {
        Err(IdpError::Unavailable(NOT_CONFIGURED.into()))
    }
    async fn password_setup_link(
        &self,
        _: &User,
        _: &str,
        _: &SetupLink<'_>,
    ) -> Result<String, IdpError> {
        Err(IdpError::Unavailable(NOT_CONFIGURED.into()))
    }
    async fn update_user(&self, _: &str, _: &IdpUserState) -> Result<bool, IdpError> {
        Err(IdpError::Unavailable(NOT_CONFIGURED.into()))
    }
    async fn delete_user(&self, _: &str) -> Result<(), IdpError> {
        Err(IdpError::Unavailable(NOT_CONFIGURED.into()))
    }
    async fn get_user(&self, _: &str) -> Result<Option<IdpAccount>, IdpError> {
        Err(IdpError::Unavailable(NOT_CONFIGURED.into()))
    }
    async fn revoke_sessions(&self, _: &str) -> Result<StepOutcome, IdpError> {
        Err(IdpError::Unavailable(NOT_CONFIGURED.into()))
    }
    async fn revoke_refresh_tokens(&self, _: &str) -> Result<StepOutcome, IdpError> {
        Err(IdpError::Unavailable(NOT_CONFIGURED.into()))
    }
    async fn clear_login_block(&self, _: &str) -> Result<StepOutcome, IdpError> {
        Err(IdpError::Unavailable(NOT_CONFIGURED.into()))
    }
}

/// For a function that never calls Auth0: the stand-in above.
pub fn no_identity_provider() -> IdpInit {
    Box::pin(async { Ok(Arc::new(Auth0NotConfigured) as Arc<dyn IdentityProvider>) })
}

/// How a function builds its identity provider at init (async: it may read
/// its secret first). A function pointer, so a binary whose `main` names
/// [`no_identity_provider`] links neither the Auth0 client nor the
/// Secrets Manager read.
pub type IdpInit = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Arc<dyn IdentityProvider>, String>> + Send>,
>;

/// The Auth0 Management API client from `AUTH0_*` (see
/// `peak_auth0::Auth0Config::from_env`; the client secret from the secret
/// [`secrets::load_auth0_secret`] read), or the stand-in above when
/// `AUTH0_DOMAIN` is unset. Settings that are present but wrong fail init.
pub fn identity_provider_from_env() -> IdpInit {
    Box::pin(async {
        secrets::load_auth0_secret().await?;
        if std::env::var("AUTH0_DOMAIN").is_ok_and(|v| !v.is_empty()) {
            let config = peak_auth0::Auth0Config::from_lookup(secrets::setting)
                .map_err(|e| e.to_string())?;
            let client = shared_rate_budget(peak_auth0::Auth0Client::new(config)).await;
            Ok(Arc::new(client) as Arc<dyn IdentityProvider>)
        } else {
            Ok(Arc::new(Auth0NotConfigured) as Arc<dyn IdentityProvider>)
        }
    })
}

/// The client spending the Management API's rate budget (`AUTH0_MAX_RPS`)
/// counted in the table (`TABLE_NAME`), shared by every instance of every
/// function that calls Auth0: the limit is per Auth0 tenant. Every path
/// takes it (accept, worker, sweeper, webhook, mailer, reconciliation): one
/// conditional write per call, small beside the call, and a path that
/// skipped it would spend budget the others count on.
async fn shared_rate_budget(client: peak_auth0::Auth0Client) -> peak_auth0::Auth0Client {
    match std::env::var("TABLE_NAME") {
        Ok(table) if !table.is_empty() => {
            client.with_rate_budget(Arc::new(DynamoStore::new(client_from_env().await, table)))
        }
        _ => client,
    }
}

/// The store and the identity provider, for the Auth0 worker, sweeper and
/// reconciliation (`TABLE_NAME`, `AUTH0_*`).
pub async fn idp_sync_from_env()
-> Result<(Arc<DynamoStore>, Arc<dyn IdentityProvider>), lambda_runtime::Error> {
    let table = required("TABLE_NAME")?;
    let idp = identity_provider_from_env().await?;
    Ok((
        Arc::new(DynamoStore::new(client_from_env().await, table)),
        idp,
    ))
}

/// Reconciliation's three ports: the store, the Auth0 client as the
/// identity provider and as the directory of every login (a users-export
/// job). Only this function links the export reader.
pub async fn reconcile_from_env() -> Result<
    (
        Arc<DynamoStore>,
        Arc<dyn IdentityProvider>,
        Arc<dyn LoginDirectory>,
    ),
    lambda_runtime::Error,
> {
    let table = required("TABLE_NAME")?;
    secrets::load_auth0_secret().await?;
    let config =
        peak_auth0::Auth0Config::from_lookup(secrets::setting).map_err(|e| e.to_string())?;
    let client = shared_rate_budget(peak_auth0::Auth0Client::new(config)).await;
    Ok((
        Arc::new(DynamoStore::new(client_from_env().await, table)),
        Arc::new(client.clone()),
        Arc::new(client),
    ))
}

/// User-flow settings from `PUBLIC_API_URL` (where invitation and
/// verification links point), `PORTAL_URL` (never the API's root: a person
/// cannot use that) and the optional variables `peak_api::config` reads.
fn user_settings() -> Result<UserSettings, lambda_http::Error> {
    Ok(peak_api::config::user_settings(
        &required("PUBLIC_API_URL")?,
        &required("PORTAL_URL")?,
        |k| std::env::var(k).ok(),
    )?)
}

fn required(name: &str) -> Result<String, lambda_http::Error> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("environment variable {name} is required").into())
}

/// What a function links besides its handlers: where uploads go and which
/// identity provider it calls. The generated `main` picks them from the
/// operation's needs (`cargo xtask`, from shared/api/src/operations.rs), so a
/// function that needs neither links neither the S3 client nor the Auth0
/// client — the linker only keeps what `main` can reach.
#[derive(Clone, Copy)]
pub struct Ports {
    pub files: fn() -> Arc<dyn peak_domain::ports::FileStore>,
    pub idp: fn() -> IdpInit,
}

/// `TABLE_NAME`, `JWT_ISSUER` (e.g. `https://tenant.auth0.com/`),
/// `JWT_AUDIENCE`, and optionally `JWKS_URL` (default: the issuer's
/// `.well-known/jwks.json`) and `DYNAMODB_ENDPOINT` (DynamoDB Local); the
/// files and identity provider as `ports` builds them.
pub async fn state_from_env(ports: Ports) -> Result<AppState, lambda_http::Error> {
    let table = required("TABLE_NAME")?;
    // First: it reads the function's secret, if it has one (the webhook
    // settings below come from it too).
    let idp = (ports.idp)().await?;
    let issuer = required("JWT_ISSUER")?;
    let audience = required("JWT_AUDIENCE")?;
    let jwks_url = std::env::var("JWKS_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/')));
    let verifier = Arc::new(JwtVerifier::new(
        issuer,
        audience,
        Arc::new(HttpJwks::new(jwks_url)),
    ));
    // Fetch the keys in the background from the start: the first request
    // needs them, and a cold start is almost always caused by a request, so
    // the fetch (building the HTTPS client, a round trip to the identity
    // provider) overlaps the rest of init and the runtime handing over the
    // event, instead of delaying the first `/next`. A request that needs the
    // keys before they arrive waits for this same fetch (the verifier lets one
    // fetch run at a time and re-checks its cache after it). A failure is not
    // fatal: the verifier retries a few seconds later.
    tokio::spawn({
        let verifier = Arc::clone(&verifier);
        async move {
            if let Err(e) = verifier.warm().await {
                tracing::warn!(error = %e, "could not fetch the JWKS at init");
            }
        }
    });
    let store = Arc::new(DynamoStore::new(client_from_env().await, table));
    Ok(AppState {
        profiles: store.clone(),
        users: store.clone(),
        tenants: store.clone(),
        accounts: store.clone(),
        callers: store.clone(),
        idp,
        verifier,
        catalogue: catalogue(),
        settings: Arc::new(user_settings()?),
        webhooks: peak_api::WebhookConfig::from_lookup(secrets::setting)?.map(Arc::new),
        jobs: store,
        files: (ports.files)(),
        brands: Arc::new(brands_from_env()?),
    })
}

/// The brands the link pages are drawn in: `EMAIL_BRANDS` (the emails'
/// own, so a page looks like the email that led to it), else one plain
/// brand whose portal is `PORTAL_URL`.
fn brands_from_env() -> Result<peak_email::Brands, lambda_http::Error> {
    match std::env::var("EMAIL_BRANDS").ok().filter(|v| !v.is_empty()) {
        Some(json) => {
            Ok(peak_email::Brands::from_json(&json).map_err(|e| format!("EMAIL_BRANDS: {e}"))?)
        }
        None => Ok(peak_api::portal_brands(&required("PORTAL_URL")?)),
    }
}

/// Where bulk-invite uploads are kept: the `BULK_BUCKET` S3 bucket (or, if
/// it is unset, nowhere, as [`no_files`]).
pub fn s3_files() -> Arc<dyn peak_domain::ports::FileStore> {
    match std::env::var("BULK_BUCKET").ok().filter(|v| !v.is_empty()) {
        Some(bucket) => Arc::new(files::S3Files::from_env(bucket)),
        None => Arc::new(NoBucket),
    }
}

/// For a function that keeps no files: an upload reaching it is an error,
/// never kept in memory.
pub fn no_files() -> Arc<dyn peak_domain::ports::FileStore> {
    Arc::new(NoBucket)
}

/// A function deployed without `BULK_BUCKET` (every function but the bulk
/// ones).
struct NoBucket;

#[async_trait::async_trait]
impl peak_domain::ports::FileStore for NoBucket {
    async fn put_file(&self, _: &str, _: Vec<u8>) -> Result<(), peak_domain::ports::StoreError> {
        Err(peak_domain::ports::StoreError::Backend(
            "this function has no BULK_BUCKET".into(),
        ))
    }
    async fn get_file(&self, _: &str) -> Result<Option<Vec<u8>>, peak_domain::ports::StoreError> {
        Err(peak_domain::ports::StoreError::Backend(
            "this function has no BULK_BUCKET".into(),
        ))
    }
}

/// The body of every HTTP function's `main`: serve `routes` (which must be
/// the ones the route table gives `function`; init fails otherwise).
pub async fn run(
    function: &str,
    routes: &[(peak_api::Route, peak_api::Handler)],
    ports: Ports,
) -> Result<(), lambda_http::Error> {
    peak_api::telemetry::init();
    let served = peak_api::Served::only(routes);
    let expected = peak_api::routes::function_routes(function);
    if expected.is_empty() || served.routes().collect::<Vec<_>>() != expected {
        return Err(format!("the binary of {function} does not serve its routes").into());
    }
    let state = state_from_env(ports).await?;
    peak_api::lambda::serve(state, served).await
}

/// The mailer as the stream-triggered and scheduled functions build it:
/// the table (`TABLE_NAME`), SES v2 (`SES_ENDPOINT` for a local stand-in,
/// `SES_CONFIGURATION_SET`, `SES_MAX_SEND_RATE`: the account's rate, spent
/// as one budget by every instance), and the per-tenant brands
/// (`EMAIL_BRANDS`, JSON: `{"default": {...}, "tenants": {...}}`).
pub async fn mailer_from_env() -> Result<peak_mailer::Mailer, lambda_runtime::Error> {
    let table = required("TABLE_NAME")?;
    let brands = peak_email::Brands::from_json(&required("EMAIL_BRANDS")?)
        .map_err(|e| format!("EMAIL_BRANDS: {e}"))?;
    let store = Arc::new(DynamoStore::new(client_from_env().await, table));
    let sender = Arc::new(peak_mailer::SesSender::from_env().await);
    // SES_MAX_SEND_RATE is the account's rate: one budget for every mailer
    // instance (whole emails per second, at least 1).
    let per_second = peak_mailer::RateLimiter::from_env().rate().floor().max(1.0) as u32;
    Ok(peak_mailer::Mailer::new(
        store.clone(),
        store.clone(),
        store.clone(),
        sender,
        brands,
        identity_provider_from_env().await?,
    )
    .with_send_budget(store, per_second))
}

/// The invocation's deadline (less the time to answer), for
/// [`peak_aws_env::invocation::within`]: every Auth0 call made for the event
/// ends before Lambda stops the function.
pub fn deadline(context: &lambda_runtime::Context) -> Option<tokio::time::Instant> {
    Some(peak_aws_env::invocation::from_epoch_millis(
        context.deadline,
    ))
}
