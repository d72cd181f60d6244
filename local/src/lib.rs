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
use peak_domain::ports::ProfileStore;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Tokens of the development identity provider carry these.
pub const DEV_ISSUER: &str = "https://dev-idp.peak-users.localhost/";
pub const DEV_AUDIENCE: &str = "https://api.peak-users.localhost";
/// The tenant and admin seeded on first start.
pub const DEMO_TENANT: &str = "demo";
pub const DEMO_ADMIN: &str = "dev|demo-admin";

/// Requests bigger than this are refused before parsing (API Gateway's own
/// limit is 10 MB; ours is far below what any JSON route needs).
const MAX_BODY_BYTES: usize = 1024 * 1024;

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

pub async fn open_store(choice: &StoreChoice) -> Result<Arc<dyn ProfileStore>, BoxError> {
    Ok(match choice {
        StoreChoice::Sqlite(path) => Arc::new(peak_store_sqlite::SqliteStore::open(path)?),
        StoreChoice::Dynamo {
            table,
            create_table,
        } => {
            let client = peak_store_dynamodb::client_from_env().await;
            if *create_table {
                peak_store_dynamodb::create_table(&client, table).await?;
            }
            Arc::new(peak_store_dynamodb::DynamoStore::new(client, table.clone()))
        }
    })
}

/// First start only: gives the demo tenant a `Standard` profile, so the
/// tenant and its admin have something to look at. A marker file in the data
/// dir records that seeding happened (deleting the profile later does not
/// bring it back).
pub async fn seed_demo(
    store: &dyn ProfileStore,
    data_dir: &std::path::Path,
) -> Result<bool, BoxError> {
    let marker = data_dir.join("seeded");
    if marker.exists() {
        return Ok(false);
    }
    let admin = peak_domain::Caller {
        tenant_id: peak_domain::TenantId::parse(DEMO_TENANT).ok_or("bad demo tenant id")?,
        subject: DEMO_ADMIN.to_owned(),
        role: peak_domain::Role::Admin,
    };
    let standard = peak_domain::profile::NewProfile {
        name: "Standard".into(),
        description: Some("Every setting at its default".into()),
    };
    match peak_domain::profiles::create_profile(
        store,
        catalogue(),
        &admin,
        standard,
        time::OffsetDateTime::now_utc(),
    )
    .await
    {
        Ok(_) | Err(peak_domain::Error::Conflict { .. }) => {}
        Err(e) => return Err(format!("seeding the demo tenant failed: {e}").into()),
    }
    std::fs::write(&marker, b"demo tenant seeded\n")?;
    Ok(true)
}

/// A running local server. Dropping it stops the server.
pub struct Running {
    pub addr: SocketAddr,
    pub idp: Arc<DevIdentityProvider>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A token for a user of `tenant` with `role`, valid for an hour.
    pub fn token(&self, tenant: &str, subject: &str, role: &str) -> Result<String, BoxError> {
        Ok(self
            .idp
            .token_for(subject, tenant, role, std::time::Duration::from_secs(3600))?)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Starts the server with `store` and `idp`; binds `bind` (port 0 = any free).
pub async fn start(
    bind: SocketAddr,
    store: Arc<dyn ProfileStore>,
    idp: Arc<DevIdentityProvider>,
) -> Result<Running, BoxError> {
    let verifier = JwtVerifier::new(
        idp.issuer(),
        idp.audience(),
        Arc::new(StaticJwks(idp.jwks())),
    );
    let state = AppState {
        profiles: store,
        verifier: Arc::new(verifier),
        catalogue: catalogue(),
    };
    let jwks = serde_json::to_value(idp.jwks())?;
    let app = Router::new()
        .route(
            "/.well-known/jwks.json",
            get(move || async move { axum::Json(jwks) }),
        )
        .fallback(serve_api)
        .with_state(Arc::new(state));
    let listener = TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "local server stopped");
        }
    });
    Ok(Running {
        addr,
        idp,
        shutdown: Some(tx),
        task: Some(task),
    })
}

/// Turns the local HTTP request into the `lambda_http::Request` API Gateway
/// would deliver, and the handler's response back.
async fn serve_api(State(state): State<Arc<AppState>>, req: AxumRequest) -> AxumResponse {
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
    let response = peak_api::handle(&state, http::Request::from_parts(parts, body)).await;
    let (parts, body) = response.into_parts();
    let bytes: Vec<u8> = match body {
        Body::Text(t) => t.into_bytes(),
        Body::Binary(b) => b,
        _ => Vec::new(),
    };
    AxumResponse::from_parts(parts, AxumBody::from(bytes))
}
