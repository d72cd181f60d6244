//! The local run's mailer: the same outbox mailer as in AWS
//! (`peak_mailer::Mailer`), polling the outbox. By default every email is
//! written as an `.eml` file into the mail folder (open it with any mail
//! client) and announced on the console with its links; `MAIL_SENDER=ses`
//! sends through SES instead (`SES_ENDPOINT` for moto, see scripts/moto.sh).
//!
//! Brands: those of the server's state (`EMAIL_BRANDS`, else one local
//! brand whose portal is the sign-in stand-in).

use peak_api::AppState;
use peak_domain::identity::IdentityProvider;
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
        let brands = state.brands.as_ref().clone();
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
        let mailer = Mailer::new(
            state.users.clone(),
            state.users.clone(),
            state.tenants.clone(),
            sender,
            brands,
            idp,
        )
        .with_rate(rate);
        loop {
            if let Err(e) = mailer.drain_once(BATCH).await {
                tracing::warn!(error = %e, "outbox unavailable");
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    })
}
