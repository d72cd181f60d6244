//! The local run: serves every route of every Lambda function from the same
//! handler code (`peak_api::handle`), on loopback, with the embedded SQLite
//! store (or DynamoDB when `TABLE_NAME` is set) and a development identity
//! provider that signs tokens and serves its JWKS.

use axum::Router;
use axum::body::Body as AxumBody;
use axum::extract::{Request as AxumRequest, State};
use axum::response::{IntoResponse, Response as AxumResponse};
use axum::routing::get;
use http::StatusCode;
use lambda_http::Body;
use peak_api::AppState;
use peak_auth::{DevIdentityProvider, JwtVerifier, StaticJwks};
use peak_domain::catalogue::catalogue;
use peak_domain::identity::IdentityProvider;
use peak_domain::ports::{ProfileStore, UserStore};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub mod dev_portal;
pub mod identity_provider;
pub mod mailer;

pub use identity_provider::LocalIdentityProvider;

/// Tokens of the development identity provider carry these.
pub const DEV_ISSUER: &str = "https://dev-idp.peak-users.localhost/";
pub const DEV_AUDIENCE: &str = "https://api.peak-users.localhost";
/// The tenant and admin seeded on first start.
pub const DEMO_TENANT: &str = "demo";
pub const DEMO_ADMIN: &str = "dev|demo-admin";
pub const DEMO_ADMIN_EMAIL: &str = "admin@demo.example";

/// Requests bigger than this are refused before parsing (API Gateway's own
/// limit is 10 MB; ours is far below what any JSON route needs).
/// Bulk-invite uploads come as the body (in AWS large ones go to S3), so
/// the local server takes as much as a bulk file may be.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

pub enum StoreChoice {
    /// The embedded default: one durable file.
    Sqlite(PathBuf),
    /// DynamoDB (AWS, or DynamoDB Local when `DYNAMODB_ENDPOINT` is set).
    Dynamo { table: String, create_table: bool },
}

pub struct Config {
    pub bind: SocketAddr,
    /// Holds the dev identity provider's key (and the SQLite file by default).
    pub data_dir: PathBuf,
    pub store: StoreChoice,
}

impl Config {
    /// From the environment: `PORT` (3000), `PEAK_DATA_DIR` (`.local/data`),
    /// `TABLE_NAME` (+ `DYNAMODB_ENDPOINT`) to use DynamoDB instead of SQLite.
    pub fn from_env() -> Self {
        let port = std::env::var("PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(3000);
        let data_dir =
            PathBuf::from(std::env::var("PEAK_DATA_DIR").unwrap_or_else(|_| ".local/data".into()));
        let store = match std::env::var("TABLE_NAME").ok().filter(|t| !t.is_empty()) {
            Some(table) => StoreChoice::Dynamo {
                table,
                create_table: std::env::var("DYNAMODB_ENDPOINT").is_ok(),
            },
            None => StoreChoice::Sqlite(data_dir.join("peak-users.sqlite3")),
        };
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], port)),
            data_dir,
            store,
        }
    }

    pub fn describe_store(&self) -> String {
        match &self.store {
            StoreChoice::Sqlite(p) => format!("SQLite {}", p.display()),
            StoreChoice::Dynamo { table, .. } => format!("DynamoDB table {table}"),
        }
    }
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub fn identity_provider(data_dir: &std::path::Path) -> Result<DevIdentityProvider, BoxError> {
    Ok(DevIdentityProvider::load_or_create(
        data_dir,
        DEV_ISSUER,
        DEV_AUDIENCE,
    )?)
}

/// Both ports, served by one adapter.
#[derive(Clone)]
pub struct Stores {
    pub profiles: Arc<dyn ProfileStore>,
    pub users: Arc<dyn UserStore>,
    pub jobs: Arc<dyn peak_domain::ports::JobStore>,
    pub tenants: Arc<dyn peak_domain::tenants::TenantStore>,
    pub accounts: Arc<dyn peak_domain::accounts::AccountStore>,
    pub callers: Arc<dyn peak_domain::ports::CallerStore>,
}

impl Stores {
    pub fn from<
        S: ProfileStore
            + UserStore
            + peak_domain::ports::JobStore
            + peak_domain::tenants::TenantStore
            + peak_domain::accounts::AccountStore
            + peak_domain::ports::CallerStore
            + 'static,
    >(
        store: S,
    ) -> Self {
        let store = Arc::new(store);
        Self {
            profiles: store.clone(),
            users: store.clone(),
            jobs: store.clone(),
            tenants: store.clone(),
            accounts: store.clone(),
            callers: store,
        }
    }
}

pub async fn open_store(choice: &StoreChoice) -> Result<Stores, BoxError> {
    Ok(match choice {
        StoreChoice::Sqlite(path) => Stores::from(peak_store_sqlite::SqliteStore::open(path)?),
        StoreChoice::Dynamo {
            table,
            create_table,
        } => {
            let client = peak_store_dynamodb::client_from_env().await;
            if *create_table {
                peak_store_dynamodb::create_table(&client, table).await?;
            }
            Stores::from(peak_store_dynamodb::DynamoStore::new(client, table.clone()))
        }
    })
}

/// Gives the demo tenant its record and `Standard` profile — through the
/// operator's use case, as `peak-admin tenant create` does — and an active
/// admin user (`dev|demo-admin`), whatever of that the store lacks, so the
/// README's token works at once: on a new SQLite file, on a fresh DynamoDB
/// Local table after a restart, on a store from before tenants were data,
/// and in whichever order the two are used. Answers whether it seeded the
/// admin now.
pub async fn seed_demo(stores: &Stores, _data_dir: &std::path::Path) -> Result<bool, BoxError> {
    let tenant = peak_domain::TenantId::parse(DEMO_TENANT).ok_or("bad demo tenant")?;
    let created = peak_domain::tenants::create_tenant(
        stores.tenants.as_ref(),
        stores.profiles.as_ref(),
        catalogue(),
        peak_domain::model::tenant::NewTenant {
            id: DEMO_TENANT.into(),
            display_name: "Demo".into(),
            portal_url: "http://127.0.0.1:3000".into(),
            sender_address: "no-reply@demo.example".into(),
            reply_to: None,
            invitation_ttl_days: 7,
        },
        time::OffsetDateTime::now_utc(),
    )
    .await;
    match created {
        Ok(_)
        | Err(peak_domain::Error::Conflict {
            code: "tenant_exists",
            ..
        }) => {}
        Err(e) => return Err(format!("seeding the demo tenant failed: {e}").into()),
    }
    // The account the README's examples invite into (the Customer
    // Association dropdown offers it).
    seed_accounts(stores, DEMO_TENANT, &[("ACME", "Acme Corp", None)]).await?;
    if stores
        .users
        .find_user_by_subject(&tenant, DEMO_ADMIN)
        .await?
        .is_some()
    {
        return Ok(false);
    }
    // The demo admin is active at once under a fixed subject (so a token
    // can be printed without a sign-in); a real tenant's first admin is
    // invited instead (`peak-admin tenant invite-admin`).
    seed_admin(stores, DEMO_TENANT, DEMO_ADMIN, DEMO_ADMIN_EMAIL).await?;
    Ok(true)
}

/// Makes sure `tenant`'s account directory holds these accounts
/// (`(number, name, parent)`, parents first), writing those it lacks as
/// the operator's bootstrap would (audited as `client:bootstrap`); an
/// account already there is left as it is.
pub async fn seed_accounts(
    stores: &Stores,
    tenant: &str,
    accounts: &[(&str, &str, Option<&str>)],
) -> Result<(), BoxError> {
    use peak_domain::accounts::{AccountCaller, AccountUpsert, MachineClient, upsert_account};
    let tenant_id = peak_domain::TenantId::parse(tenant).ok_or("bad tenant id")?;
    let client = MachineClient {
        tenant_id: tenant_id.clone(),
        client_id: "bootstrap".into(),
        read: true,
        write: true,
    };
    for (number, name, parent) in accounts {
        let n = peak_domain::model::user::AccountNumber::parse("number", number)
            .map_err(|e| e.reason)?;
        if stores.accounts.get_account(&tenant_id, &n).await?.is_some() {
            continue;
        }
        let input = AccountUpsert {
            name: (*name).to_owned(),
            parent: parent.map(str::to_owned),
            status: None,
        };
        upsert_account(
            stores.accounts.as_ref(),
            AccountCaller::Machine(&client),
            number,
            None,
            &input,
            "bootstrap",
            time::OffsetDateTime::now_utc(),
        )
        .await
        .map_err(|e| format!("seeding account {number} failed: {e}"))?;
    }
    Ok(())
}

/// Makes sure `tenant` has a `Standard` profile and an active admin with
/// this subject and email (the bootstrap of a new tenant: the first admin
/// cannot be invited by anyone).
pub async fn seed_admin(
    stores: &Stores,
    tenant: &str,
    subject: &str,
    email: &str,
) -> Result<peak_domain::model::user::User, BoxError> {
    use peak_domain::model::user::{Email, PersonName, User, UserId, UserStatus};
    use peak_domain::ports::UserWrite;
    let tenant_id = peak_domain::TenantId::parse(tenant).ok_or("bad tenant id")?;
    if let Some(existing) = stores
        .users
        .find_user_by_subject(&tenant_id, subject)
        .await?
    {
        return Ok(existing);
    }
    let now = time::OffsetDateTime::now_utc();
    let profile = peak_domain::tenants::standard_profile(
        stores.profiles.as_ref(),
        catalogue(),
        &tenant_id,
        now,
    )
    .await
    .map_err(|e| format!("seeding the tenant's profile failed: {e}"))?;
    let admin = User {
        tenant_id: tenant_id.clone(),
        id: UserId::generate(),
        email: Email::parse(email).map_err(|e| e.reason)?,
        pending_email: None,
        first_name: PersonName::parse("first_name", "Tenant").map_err(|e| e.reason)?,
        last_name: PersonName::parse("last_name", "Admin").map_err(|e| e.reason)?,
        account_number: None,
        customer_accounts: Vec::new(),
        role: peak_domain::Role::Admin,
        profile_id: profile.id,
        extension_groups: Vec::new(),
        status: UserStatus::Active,
        idp_subject: Some(subject.to_owned()),
        invitation: None,
        version: 1,
        created_at: now,
        updated_at: now,
        last_login_at: None,
    };
    let audit = [peak_domain::audit::AuditEvent::new(
        &tenant_id,
        "system:bootstrap",
        "user.seeded",
        Some(&admin.id),
        "bootstrap",
        now,
    )];
    stores
        .users
        .write_user(UserWrite {
            previous: None,
            next: Some(&admin),
            audit: &audit,
            outbox: &[],
        })
        .await?;
    Ok(admin)
}

/// A running local server. Dropping it stops the server.
pub struct Running {
    pub addr: SocketAddr,
    pub idp: Arc<DevIdentityProvider>,
    pub state: Arc<AppState>,
    pub local_idp: Arc<LocalIdentityProvider>,
    shutdown: Option<oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A token for `subject` in `tenant`, valid for an hour. (The role
    /// claim is informational: the API uses the user record's role.)
    pub fn token(&self, tenant: &str, subject: &str, role: &str) -> Result<String, BoxError> {
        Ok(self
            .idp
            .token_for(subject, tenant, role, std::time::Duration::from_secs(3600))?)
    }

    /// A machine client's token (client credentials, no user) for
    /// `tenant`, with `scope` (e.g. `accounts:read accounts:write`), valid
    /// for an hour.
    pub fn client_token(
        &self,
        tenant: &str,
        client_id: &str,
        scope: &str,
    ) -> Result<String, BoxError> {
        Ok(self.idp.client_token(
            client_id,
            tenant,
            scope,
            std::time::Duration::from_secs(3600),
        )?)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Options of [`start`].
#[derive(Default)]
pub struct StartOptions {
    /// Run the console mailer, writing emails into this folder. Tests leave
    /// it off and read the outbox instead.
    pub mail_dir: Option<PathBuf>,
    /// Overrides of the invitation lifetime settings, as environment
    /// variables would give them (`INVITATION_TTL_DAYS`,
    /// `INVITATION_TTL_DAYS_BY_TENANT`).
    pub settings_env: Vec<(String, String)>,
    /// Credentials of the identity-provider webhook route (`None`: it
    /// answers 503).
    pub webhooks: Option<Arc<peak_api::WebhookConfig>>,
    /// The identity provider user flows call (e.g. Auth0, or a fake of it
    /// in tests); `None`: the development one with its set-password page.
    pub identity: Option<Arc<dyn IdentityProvider>>,
    /// Run the owed identity-provider work in-process, polling this often
    /// (in AWS the stream-triggered worker does it). Tests leave it off and
    /// run `peak_idp_sync::Worker` themselves.
    pub idp_sync_every: Option<std::time::Duration>,
    /// Where uploads are kept (`None`: in memory).
    pub files: Option<Arc<dyn peak_domain::ports::FileStore>>,
    /// Run bulk-invite jobs in-process, polling this often. Tests leave it
    /// off and run `peak_bulk_jobs::run` themselves.
    pub bulk_jobs_every: Option<std::time::Duration>,
    /// Each tenant's brand for emails and pages (`EMAIL_BRANDS`); `None`:
    /// one local brand whose portal is the stand-in at `/dev-portal`.
    pub brands: Option<peak_email::Brands>,
    /// Origins whose pages may call the API from a browser
    /// (`PORTAL_ORIGINS`), answered as the HTTP API's CORS configuration
    /// answers in AWS.
    pub portal_origins: peak_api::cors::PortalOrigins,
    /// Keep the development identity provider's logins (and password
    /// hashes) in this folder across restarts; `None`: in memory.
    pub dev_idp_dir: Option<PathBuf>,
}

/// The brand of the local run when `EMAIL_BRANDS` gives none: its portal is
/// the sign-in stand-in, so every "sign in" link and footer leads somewhere
/// a person can use.
pub fn local_brands(base_url: &str) -> peak_email::Brands {
    peak_email::Brands::new(peak_email::Brand {
        name: "Peak Portal".into(),
        sender: "Peak Portal <no-reply@peak-users.localhost>".into(),
        reply_to: None,
        portal_url: format!("{}{}", base_url.trim_end_matches('/'), dev_portal::PATH),
        accent_color: None,
    })
}

/// Starts the server over `stores` with `idp` signing tokens; binds `bind`
/// (port 0 = any free).
pub async fn start(
    bind: SocketAddr,
    stores: Stores,
    idp: Arc<DevIdentityProvider>,
    options: StartOptions,
) -> Result<Running, BoxError> {
    let listener = TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let local_idp = Arc::new(match &options.dev_idp_dir {
        Some(dir) => LocalIdentityProvider::with_data_dir(base.clone(), dir)?,
        None => LocalIdentityProvider::new(base.clone()),
    });
    let brands = options
        .brands
        .clone()
        .unwrap_or_else(|| local_brands(&base));
    let verifier = JwtVerifier::new(
        idp.issuer(),
        idp.audience(),
        Arc::new(StaticJwks(idp.jwks())),
    );
    let settings =
        peak_api::config::user_settings(&base, &brands.default_brand().portal_url, |k| {
            options
                .settings_env
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        })?;
    let state = Arc::new(AppState {
        profiles: stores.profiles,
        users: stores.users,
        tenants: stores.tenants,
        accounts: stores.accounts,
        callers: stores.callers,
        idp: options
            .identity
            .clone()
            .unwrap_or_else(|| local_idp.clone() as Arc<dyn IdentityProvider>),
        verifier: Arc::new(verifier),
        catalogue: catalogue(),
        settings: Arc::new(settings),
        webhooks: options.webhooks.clone(),
        jobs: stores.jobs,
        files: options
            .files
            .clone()
            .unwrap_or_else(|| Arc::new(peak_bulk_jobs::MemoryFiles::default())),
        brands: Arc::new(brands),
    });
    let jwks = serde_json::to_value(idp.jwks())?;
    let idp_routes = Router::new()
        .route(
            "/dev-idp/set-password",
            get(identity_provider::set_password_page).post(identity_provider::set_password),
        )
        .with_state((state.clone(), local_idp.clone()));
    let portal_routes = Router::new()
        .route(
            dev_portal::PATH,
            get(dev_portal::sign_in_page).post(dev_portal::sign_in),
        )
        .route(
            &format!("{}/me", dev_portal::PATH),
            get(dev_portal::me_page),
        )
        .route(
            &format!("{}/sign-out", dev_portal::PATH),
            axum::routing::post(dev_portal::sign_out),
        )
        .with_state((state.clone(), local_idp.clone(), idp.clone()));
    let api = Api {
        state: state.clone(),
        cors: Arc::new(options.portal_origins.clone()),
    };
    let app = Router::new()
        .route(
            "/.well-known/jwks.json",
            get(move || async move { axum::Json(jwks) }),
        )
        .fallback(serve_api)
        .with_state(api)
        .merge(idp_routes)
        .merge(portal_routes);
    let (tx, rx) = oneshot::channel::<()>();
    let mut tasks = vec![tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "local server stopped");
        }
    })];
    if let Some(dir) = options.mail_dir {
        tasks.push(mailer::spawn_console_mailer(
            state.clone(),
            state.idp.clone(),
            dir,
        ));
    }
    if let Some(every) = options.idp_sync_every {
        tasks.push(spawn_idp_worker(state.clone(), every));
    }
    if let Some(every) = options.bulk_jobs_every {
        tasks.push(spawn_bulk_runner(state.clone(), every));
    }
    Ok(Running {
        addr,
        idp,
        state,
        local_idp,
        shutdown: Some(tx),
        tasks,
    })
}

/// The owed identity-provider work, done in-process: a sweep every `every`
/// (retries wait for their backoff, as in AWS).
fn spawn_idp_worker(
    state: Arc<AppState>,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let worker = peak_idp_sync::Worker::new(state.users.clone(), state.idp.clone());
        loop {
            if let Err(e) = worker.run_due(time::OffsetDateTime::now_utc()).await {
                tracing::warn!(error = %e, "owed identity-provider work unavailable");
            }
            tokio::time::sleep(every).await;
        }
    })
}

/// Bulk-invite jobs, run in-process (in AWS: the stream-triggered runner).
fn spawn_bulk_runner(
    state: Arc<AppState>,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let limits = peak_bulk::Limits::default();
        loop {
            let request_id = ulid::Ulid::new().to_string();
            let ctx = state.ctx(&request_id);
            if let Err(e) =
                peak_bulk_jobs::run_due(&ctx, state.jobs.as_ref(), state.files.as_ref(), &limits)
                    .await
            {
                tracing::warn!(error = %e, "bulk invites could not run");
            }
            tokio::time::sleep(every).await;
        }
    })
}

/// What the API routes are served with.
#[derive(Clone)]
struct Api {
    state: Arc<AppState>,
    cors: Arc<peak_api::cors::PortalOrigins>,
}

/// Turns the local HTTP request into the `lambda_http::Request` API Gateway
/// would deliver, and the handler's response back; answers CORS as the
/// HTTP API does (preflights itself, before any route or authorizer).
async fn serve_api(State(api): State<Api>, req: AxumRequest) -> AxumResponse {
    let origin = req
        .headers()
        .get(http::header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_owned);
    if peak_api::cors::is_preflight(req.method(), req.headers()) {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        resp.headers_mut()
            .extend(api.cors.preflight(origin.as_deref()));
        return resp;
    }
    let mut resp = serve_route(&api.state, req).await;
    resp.headers_mut()
        .extend(api.cors.response(origin.as_deref()));
    resp
}

async fn serve_route(state: &AppState, req: AxumRequest) -> AxumResponse {
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
        }
    };
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => Body::Text(text),
            Err(e) => Body::Binary(e.into_bytes()),
        }
    };
    let response = peak_api::handle(state, http::Request::from_parts(parts, body)).await;
    let (parts, body) = response.into_parts();
    let bytes: Vec<u8> = match body {
        Body::Text(t) => t.into_bytes(),
        Body::Binary(b) => b,
        _ => Vec::new(),
    };
    AxumResponse::from_parts(parts, AxumBody::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README runs the SQLite block, then the DynamoDB one, with the
    /// same data folder: each store gets its demo admin, once.
    #[tokio::test]
    async fn demo_seeding_follows_the_store_not_the_data_folder() {
        let dir = std::env::temp_dir().join(format!("peak-seed-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).expect("dir");
        let first = Stores::from(peak_store_sqlite::SqliteStore::open_in_memory().expect("sqlite"));
        assert!(
            seed_demo(&first, &dir).await.expect("seed"),
            "a new store is seeded"
        );
        assert!(!seed_demo(&first, &dir).await.expect("seed"), "once");
        let second =
            Stores::from(peak_store_sqlite::SqliteStore::open_in_memory().expect("sqlite"));
        assert!(
            seed_demo(&second, &dir).await.expect("seed"),
            "another store with the same data folder is seeded too"
        );
        let tenant = peak_domain::TenantId::parse(DEMO_TENANT).expect("tenant");
        let admin = second
            .users
            .find_user_by_subject(&tenant, DEMO_ADMIN)
            .await
            .expect("read")
            .expect("the demo admin");
        assert_eq!(admin.status, peak_domain::model::user::UserStatus::Active);
        std::fs::remove_dir_all(&dir).ok();
    }
}
