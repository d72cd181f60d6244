//! `peak-admin`: the operator's command. It works on the store the
//! functions use, chosen by the same environment variables: `TABLE_NAME`
//! (+ `DYNAMODB_ENDPOINT` for DynamoDB Local; AWS credentials and region
//! from the environment) or else the local SQLite file under
//! `PEAK_DATA_DIR` (`.local/data`). Invitation links point at
//! `PUBLIC_API_URL` (default `http://127.0.0.1:3000`).
//!
//!   peak-admin tenant create <id> --name <display name> --portal-url <url>
//!              --sender <address> [--reply-to <address>] [--invitation-days <1-30>]
//!   peak-admin tenant invite-admin <id> --email <address> --first-name <name> --last-name <name>
//!   peak-admin tenant list
//!   peak-admin tenant show <id>
//!   peak-admin tenant set <id> [--name …] [--portal-url …] [--sender …] [--sender-name …]
//!              [--reply-to …] [--invitation-days …] [--suspension-notice on|off]
//!   peak-admin tenant close <id>
//!   peak-admin tenant purge <id> --yes

use peak_domain::TenantId;
use peak_domain::catalogue::catalogue;
use peak_domain::model::tenant::{NewTenant, SettingsPatch, Tenant};
use peak_domain::ports::PageRequest;
use peak_domain::tenants::{self, OperatorPatch};
use peak_domain::{Ctx, UserSettings};
use peak_local::{Config, Stores, open_store};
use std::collections::HashMap;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() {
    if let Err(e) = run(std::env::args().skip(1).collect()).await {
        eprintln!("peak-admin: {e}");
        std::process::exit(1);
    }
}

/// `--flag value` pairs after the positional arguments.
fn flags(args: &[String]) -> Result<HashMap<String, String>, BoxError> {
    let mut out = HashMap::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let name = flag
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument `{flag}`"))?;
        if name == "yes" {
            out.insert("yes".into(), String::new());
            continue;
        }
        let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
        out.insert(name.to_owned(), value.clone());
    }
    Ok(out)
}

fn take_only(flags: &mut HashMap<String, String>, known: &[&str]) -> Result<(), BoxError> {
    if let Some(unknown) = flags.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!("unknown flag --{unknown}").into());
    }
    Ok(())
}

fn user_settings() -> Result<UserSettings, BoxError> {
    let api = std::env::var("PUBLIC_API_URL").unwrap_or_else(|_| "http://127.0.0.1:3000".into());
    let portal =
        std::env::var("PORTAL_URL").unwrap_or_else(|_| api.trim_end_matches('/').to_owned());
    Ok(peak_api::config::user_settings(&api, &portal, |k| {
        std::env::var(k).ok()
    })?)
}

fn show(t: &Tenant) -> String {
    serde_json::to_string_pretty(t).unwrap_or_default()
}

fn problem(e: peak_domain::Error) -> BoxError {
    match e {
        peak_domain::Error::Validation(errors) => errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.reason))
            .collect::<Vec<_>>()
            .join("; ")
            .into(),
        peak_domain::Error::Conflict { code, detail }
        | peak_domain::Error::AccessDenied { code, detail } => format!("{code}: {detail}").into(),
        other => other.to_string().into(),
    }
}

async fn run(args: Vec<String>) -> Result<(), BoxError> {
    let (Some("tenant"), Some(command)) = (
        args.first().map(String::as_str),
        args.get(1).map(String::as_str),
    ) else {
        return Err(
            "usage: peak-admin tenant <create|invite-admin|list|show|set|close|purge> …".into(),
        );
    };
    let config = Config::from_env();
    let stores = open_store(&config.store).await?;
    let now = time::OffsetDateTime::now_utc();
    if command == "list" {
        return list(&stores).await;
    }
    let id_raw = args
        .get(2)
        .ok_or_else(|| format!("tenant {command} needs a tenant id"))?;
    let mut f = flags(&args[3..])?;
    let id = TenantId::parse(id_raw)
        .ok_or_else(|| format!("`{id_raw}` is not a tenant id (letters, digits, - or _)"))?;
    let settings = user_settings()?;
    match command {
        "create" => {
            take_only(
                &mut f,
                &[
                    "name",
                    "portal-url",
                    "sender",
                    "reply-to",
                    "invitation-days",
                ],
            )?;
            let required = |k: &str| f.get(k).cloned().ok_or(format!("--{k} is required"));
            let days = match f.get("invitation-days") {
                Some(d) => d.parse().map_err(|_| "--invitation-days takes 1 to 30")?,
                None => settings.invitation_ttl.whole_days().clamp(1, 30) as u8,
            };
            let t = tenants::create_tenant(
                stores.tenants.as_ref(),
                stores.profiles.as_ref(),
                catalogue(),
                NewTenant {
                    id: id.as_str().into(),
                    display_name: required("name")?,
                    portal_url: required("portal-url")?,
                    sender_address: required("sender")?,
                    reply_to: f.get("reply-to").cloned(),
                    invitation_ttl_days: days,
                },
                now,
            )
            .await
            .map_err(problem)?;
            println!("{}", show(&t));
        }
        "invite-admin" => {
            take_only(&mut f, &["email", "first-name", "last-name"])?;
            let required = |k: &str| f.get(k).cloned().ok_or(format!("--{k} is required"));
            let ctx = Ctx {
                users: stores.users.as_ref(),
                profiles: stores.profiles.as_ref(),
                tenants: stores.tenants.as_ref(),
                accounts: stores.accounts.as_ref(),
                catalogue: catalogue(),
                settings: &settings,
                now,
                request_id: "peak-admin",
                tenant: None,
            };
            let user = tenants::invite_admin(
                &ctx,
                &id,
                &required("first-name")?,
                &required("last-name")?,
                &required("email")?,
            )
            .await
            .map_err(problem)?;
            let expires = user
                .invitation
                .as_ref()
                .and_then(|i| {
                    i.expires_at
                        .format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default();
            println!(
                "{{\"user_id\": \"{}\", \"status\": \"invited\", \"invitation_expires_at\": \"{expires}\"}}",
                user.id
            );
            eprintln!("the invitation email is in the outbox; the mailer sends it");
        }
        "show" => {
            take_only(&mut f, &[])?;
            let t = tenants::get_tenant(stores.tenants.as_ref(), &id)
                .await
                .map_err(problem)?;
            println!("{}", show(&t));
        }
        "set" => {
            take_only(
                &mut f,
                &[
                    "name",
                    "portal-url",
                    "sender",
                    "sender-name",
                    "reply-to",
                    "invitation-days",
                    "suspension-notice",
                ],
            )?;
            let days = f
                .get("invitation-days")
                .map(|d| {
                    d.parse::<i64>()
                        .map_err(|_| "--invitation-days takes 1 to 30")
                })
                .transpose()?;
            let notice = f
                .get("suspension-notice")
                .map(|v| match v.as_str() {
                    "on" => Ok(true),
                    "off" => Ok(false),
                    _ => Err("--suspension-notice takes on or off"),
                })
                .transpose()?;
            let t = tenants::operator_update(
                stores.tenants.as_ref(),
                &id,
                OperatorPatch {
                    display_name: f.get("name").cloned(),
                    portal_url: f.get("portal-url").cloned(),
                    sender_address: f.get("sender").cloned(),
                    settings: SettingsPatch {
                        invitation_ttl_days: days,
                        suspension_notice: notice,
                        sender_name: f.get("sender-name").cloned(),
                        reply_to: f.get("reply-to").map(|r| Some(r.clone())),
                    },
                },
                now,
            )
            .await
            .map_err(problem)?;
            println!("{}", show(&t));
        }
        "close" => {
            take_only(&mut f, &[])?;
            let t = tenants::close_tenant(stores.tenants.as_ref(), &id, now)
                .await
                .map_err(problem)?;
            println!("{}", show(&t));
        }
        "purge" => {
            take_only(&mut f, &["yes"])?;
            if !f.contains_key("yes") {
                return Err("purge erases every user's personal data: add --yes".into());
            }
            let ctx = Ctx {
                users: stores.users.as_ref(),
                profiles: stores.profiles.as_ref(),
                tenants: stores.tenants.as_ref(),
                accounts: stores.accounts.as_ref(),
                catalogue: catalogue(),
                settings: &settings,
                now,
                request_id: "peak-admin",
                tenant: None,
            };
            let deleted = tenants::purge_tenant(&ctx, stores.tenants.as_ref(), &id)
                .await
                .map_err(problem)?;
            println!("{{\"tenant\": \"{id}\", \"users_deleted\": {deleted}}}");
        }
        other => return Err(format!("unknown command `tenant {other}`").into()),
    }
    Ok(())
}

async fn list(stores: &Stores) -> Result<(), BoxError> {
    let mut cursor = None;
    loop {
        let page = stores
            .tenants
            .list_tenants(&PageRequest { limit: 100, cursor })
            .await?;
        for t in &page.items {
            println!(
                "{}\t{:?}\t{}\t{}",
                t.id, t.status, t.display_name, t.portal_url
            );
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(()),
        }
    }
}
