//! The local run's mailer: drains the outbox, writes each email as a text
//! file in the mail folder, and prints its link so the flows can be followed
//! by hand. (SES delivery and real templates belong to the mailer issue.)

use crate::dev_idp::LocalIdentityProvider;
use peak_api::AppState;
use peak_domain::identity::IdentityProvider;
use peak_domain::outbox::{EmailKind, OutboxEmail};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub fn spawn_console_mailer(
    state: Arc<AppState>,
    idp: Arc<LocalIdentityProvider>,
    mail_dir: PathBuf,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match state.users.pending_outbox(50).await {
                Ok(batch) => {
                    for mail in batch {
                        deliver(&state, &idp, &mail_dir, &mail).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "outbox unavailable"),
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
}

async fn deliver(
    state: &AppState,
    idp: &LocalIdentityProvider,
    dir: &std::path::Path,
    mail: &OutboxEmail,
) {
    // Claim first: a second mailer (or a restart) never sends it again.
    match state
        .users
        .mark_outbox_sent(&mail.tenant_id, &mail.id)
        .await
    {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::warn!(error = %e, "could not claim an email");
            return;
        }
    }
    let link = match mail.kind {
        EmailKind::PasswordReset => reset_link(state, idp, mail).await,
        _ => mail
            .data
            .get("link")
            .and_then(|l| l.as_str())
            .map(str::to_owned),
    };
    let kind = serde_json::to_value(mail.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let text = format!(
        "To: {}\nKind: {kind}\nTenant: {}\n\n{}\n\nLink: {}\n",
        mail.to.as_str(),
        mail.tenant_id,
        serde_json::to_string_pretty(&mail.data).unwrap_or_default(),
        link.as_deref().unwrap_or("-")
    );
    let path = dir.join(format!("{}-{kind}.txt", mail.id));
    if let Err(e) = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, text)) {
        tracing::warn!(error = %e, "could not write the email file");
    }
    println!(
        "mail: {kind} to {} -> {}",
        mail.to.masked(),
        link.as_deref().unwrap_or("(no link)")
    );
}

async fn reset_link(
    state: &AppState,
    idp: &LocalIdentityProvider,
    mail: &OutboxEmail,
) -> Option<String> {
    let user = state
        .users
        .get_user(&mail.tenant_id, &mail.user_id)
        .await
        .ok()??;
    let subject = user.idp_subject.clone()?;
    idp.password_setup_link(&user, &subject).await.ok()
}
