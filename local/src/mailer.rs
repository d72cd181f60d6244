//! The local run's mailer: the same outbox mailer as in AWS
//! (`peak_mailer::Mailer`), polling the outbox. By default every email is
//! written as an `.eml` file into the mail folder (open it with any mail
//! client) and announced on the console with its links; `MAIL_SENDER=ses`
//! sends through SES instead (`SES_ENDPOINT` for moto, see scripts/moto.sh).
//!
//! Brands: `EMAIL_BRANDS` (JSON, see `peak_email::Brands::from_json`), else
//! one local brand whose portal is this server.

use peak_api::AppState;
use peak_domain::identity::IdentityProvider;
use peak_email::{Brand, Brands};
use peak_mailer::{EmailSender, EmlFolderSender, Mailer, RateLimiter, SesSender};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How often the outbox is polled, and how many emails one poll sends.
const POLL_EVERY: Duration = Duration::from_millis(300);
const BATCH: u32 = 50;

pub fn spawn_console_mailer(
    state: Arc<AppState>,
    idp: Arc<dyn IdentityProvider>,
    mail_dir: PathBuf,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let brands = match local_brands(&state.settings.portal_url) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "EMAIL_BRANDS is not valid: the mailer is off");
                return;
            }
        };
        let use_ses = std::env::var("MAIL_SENDER").is_ok_and(|v| v.eq_ignore_ascii_case("ses"));
        let (sender, rate): (Arc<dyn EmailSender>, RateLimiter) = if use_ses {
            (
                Arc::new(SesSender::from_env().await),
                RateLimiter::from_env(),
            )
        } else {
            (
                Arc::new(EmlFolderSender::new(mail_dir)),
                RateLimiter::unlimited(),
            )
        };
        let mailer = Mailer::new(state.users.clone(), sender, brands, idp).with_rate(rate);
        loop {
            if let Err(e) = mailer.drain_once(BATCH).await {
                tracing::warn!(error = %e, "outbox unavailable");
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    })
}

fn local_brands(portal_url: &str) -> Result<Brands, String> {
    match std::env::var("EMAIL_BRANDS") {
        Ok(json) if !json.trim().is_empty() => Brands::from_json(&json),
        _ => Ok(Brands::new(Brand {
            name: "Peak Portal".into(),
            sender: "Peak Portal <no-reply@peak-users.localhost>".into(),
            reply_to: None,
            portal_url: portal_url.to_owned(),
        })),
    }
}
