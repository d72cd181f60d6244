//! `peak-local`: run the whole API on this machine.
//!
//!   peak-local                 serve on 127.0.0.1:3000 (PORT to change)
//!   peak-local token [--role admin|sales_rep|partner|customer]
//!                    [--tenant demo] [--sub dev|demo-admin] [--hours 12]
//!                              print a token signed by the dev identity provider
//!   peak-local token --client billing-sync --scope 'accounts:read accounts:write'
//!                    [--tenant demo] [--hours 12]
//!                              a machine client's (client-credentials) token

use peak_local::{
    Config, DEMO_ADMIN, DEMO_TENANT, StartOptions, identity_provider, open_store, seed_demo, start,
};
use std::sync::Arc;
use std::time::Duration;

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("peak-local: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), peak_local::BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = Config::from_env();
    match args.first().map(String::as_str) {
        None | Some("serve") => serve(config).await,
        Some("token") => {
            let idp = identity_provider(&config.data_dir)?;
            let mut role = "admin".to_owned();
            let mut tenant = DEMO_TENANT.to_owned();
            let mut sub = DEMO_ADMIN.to_owned();
            let mut hours = 12u64;
            let mut client: Option<String> = None;
            let mut scope = String::new();
            let mut it = args[1..].iter();
            while let Some(flag) = it.next() {
                let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
                match flag.as_str() {
                    "--role" => role = value.clone(),
                    "--tenant" => tenant = value.clone(),
                    "--sub" => sub = value.clone(),
                    "--hours" => hours = value.parse().map_err(|_| "--hours takes a number")?,
                    "--client" => client = Some(value.clone()),
                    "--scope" => scope = value.clone(),
                    other => return Err(format!("unknown flag {other}").into()),
                }
            }
            let ttl = Duration::from_secs(hours * 3600);
            let token = match &client {
                Some(id) => idp.client_token(id, &tenant, &scope, ttl)?,
                None => idp.token_for(&sub, &tenant, &role, ttl)?,
            };
            println!("{token}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other}; try `serve` or `token`").into()),
    }
}

async fn serve(config: Config) -> Result<(), peak_local::BoxError> {
    peak_api::telemetry::init();
    std::fs::create_dir_all(&config.data_dir)?;
    let idp = Arc::new(identity_provider(&config.data_dir)?);
    let stores = open_store(&config.store).await?;
    if seed_demo(&stores, &config.data_dir).await? {
        println!(
            "first start: seeded tenant `{DEMO_TENANT}` with a `Standard` profile and its admin"
        );
    }
    let mail_dir = config.data_dir.join("mail");
    let options = StartOptions {
        mail_dir: Some(mail_dir.clone()),
        settings_env: [
            "INVITATION_TTL_DAYS",
            "INVITATION_TTL_DAYS_BY_TENANT",
            "SUSPENSION_NOTICE_TENANTS",
        ]
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
        .collect(),
        webhooks: peak_api::WebhookConfig::from_env()?.map(Arc::new),
        // Pointed at Auth0 (AUTH0_DOMAIN and the rest, as in AWS), user
        // flows call it; otherwise the development identity provider.
        identity: match std::env::var("AUTH0_DOMAIN") {
            Ok(d) if !d.is_empty() => Some(Arc::new(peak_auth0::Auth0Client::new(
                peak_auth0::Auth0Config::from_env()?,
            ))
                as Arc<dyn peak_domain::identity::IdentityProvider>),
            _ => None,
        },
        idp_sync_every: Some(Duration::from_secs(2)),
        files: Some(Arc::new(peak_bulk_jobs::FolderFiles::new(
            config.data_dir.join("uploads"),
        ))),
        bulk_jobs_every: Some(Duration::from_millis(500)),
        brands: match std::env::var("EMAIL_BRANDS") {
            Ok(json) if !json.trim().is_empty() => Some(
                peak_email::Brands::from_json(&json).map_err(|e| format!("EMAIL_BRANDS: {e}"))?,
            ),
            _ => None,
        },
        portal_origins: peak_api::cors::PortalOrigins::parse(
            &std::env::var("PORTAL_ORIGINS").unwrap_or_default(),
        )
        .map_err(|e| format!("PORTAL_ORIGINS: {e}"))?,
        dev_idp_dir: Some(config.data_dir.clone()),
    };
    let running = start(config.bind, stores, Arc::clone(&idp), options).await?;
    println!(
        "peak-users local API on {} ({})",
        running.url(),
        config.describe_store()
    );
    println!("tenant `{DEMO_TENANT}`, admin `{DEMO_ADMIN}`; get an admin token with:");
    println!("  export TOKEN=$(cargo run -q -p peak-local -- token)");
    println!(
        "JWKS: {}/.well-known/jwks.json   stop: Ctrl-C",
        running.url()
    );
    tokio::signal::ctrl_c().await?;
    running.stop().await;
    Ok(())
}
