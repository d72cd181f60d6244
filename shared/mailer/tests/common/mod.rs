//! What the mailer tests share: moto (the SES stand-in), a SQLite store
//! with users and outbox emails, a fake identity provider, and senders that
//! fail on purpose.
#![allow(dead_code)]

use async_trait::async_trait;
use peak_domain::TenantId;
use peak_domain::identity::{
    IdentityProvider, IdpAccount, IdpError, IdpUserState, SetupLink, StepOutcome,
};
use peak_domain::model::user::{Email, User};
use peak_domain::outbox::{EmailKind, OutboxEmail};
use peak_domain::ports::{UserRecords, UserWrite};
use peak_email::{Brand, Brands};
use peak_mailer::{
    EmailSender, Mailer, MailerConfig, OutgoingEmail, RateLimiter, SendError, SesSender,
};
use peak_store_contract::fresh_tenant;
use peak_store_contract::users::{profile, sample_user};
use peak_store_sqlite::SqliteStore;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;

/// The verified sender identity the tests create in moto.
pub const FROM_ADDRESS: &str = "no-reply@acme.example";

/// moto's address; fails the test when moto is not running.
pub fn ses_endpoint() -> String {
    match std::env::var("SES_ENDPOINT") {
        Ok(v) if !v.trim().is_empty() => v.trim().trim_end_matches('/').to_owned(),
        _ => panic!(
            "moto is not running: start it with `scripts/moto.sh start` and export \
             SES_ENDPOINT, or run scripts/test.sh"
        ),
    }
}

/// An SES sender pointed at moto, with the sender identity created.
pub async fn ses() -> SesSender {
    ses_endpoint();
    let sender = SesSender::from_env().await;
    sender
        .client()
        .create_email_identity()
        .email_identity(FROM_ADDRESS)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!("could not create the sender identity ({e:?}): is moto running at SES_ENDPOINT?")
        });
    sender
}

/// A recipient no other test uses.
pub fn unique_address(name: &str) -> String {
    format!(
        "{name}.{}@example.com",
        ulid::Ulid::new().to_string().to_lowercase()
    )
}

/// The messages moto took for `to`.
pub async fn messages_to(to: &str) -> Vec<Value> {
    let url = format!("{}/moto-api/data.json", ses_endpoint());
    let data: Value = reqwest::get(&url)
        .await
        .and_then(reqwest::Response::error_for_status)
        .unwrap_or_else(|e| panic!("cannot read {url}: {e}"))
        .json()
        .await
        .expect("moto's data is JSON");
    data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| {
            m["destinations"]["ToAddresses"]
                .as_array()
                .is_some_and(|to_list| to_list.iter().any(|a| a == to))
        })
        .collect()
}

pub fn brand(sender: &str) -> Brand {
    Brand {
        name: "Acme Portal".into(),
        sender: sender.into(),
        reply_to: Some("support@acme.example".into()),
        portal_url: "https://portal.acme.example".into(),
        accent_color: None,
    }
}

pub fn brands() -> Brands {
    Brands::new(brand(&format!("Acme Portal <{FROM_ADDRESS}>")))
}

/// Hands out a fixed password link naming the user.
pub struct FakeIdp;

#[async_trait]
impl IdentityProvider for FakeIdp {
    async fn find_login(&self, _: &User) -> Result<Option<IdpAccount>, IdpError> {
        Err(IdpError::Unavailable("not used by the mailer tests".into()))
    }
    async fn create_login(&self, _: &User) -> Result<Option<String>, IdpError> {
        Err(IdpError::Unavailable("not used by the mailer tests".into()))
    }
    async fn relink_login(&self, _: &str, _: &User) -> Result<bool, IdpError> {
        Err(IdpError::Unavailable("not used by the mailer tests".into()))
    }
    async fn password_setup_link(
        &self,
        user: &User,
        _subject: &str,
        link: &SetupLink<'_>,
    ) -> Result<String, IdpError> {
        assert!(
            link.portal_url.starts_with("http"),
            "the reset link returns to the email's portal"
        );
        Ok(format!(
            "https://idp.acme.example/set-password?ticket={}",
            user.id
        ))
    }
    async fn update_user(&self, _: &str, _: &IdpUserState) -> Result<bool, IdpError> {
        Err(IdpError::Unavailable("not used by the mailer tests".into()))
    }
    async fn delete_user(&self, _: &str) -> Result<(), IdpError> {
        Err(IdpError::Unavailable("not used by the mailer tests".into()))
    }
    async fn get_user(&self, _: &str) -> Result<Option<IdpAccount>, IdpError> {
        Err(IdpError::Unavailable("not used by the mailer tests".into()))
    }
    async fn revoke_sessions(&self, _: &str) -> Result<StepOutcome, IdpError> {
        Err(IdpError::Unavailable("not used by the mailer tests".into()))
    }
    async fn revoke_refresh_tokens(&self, _: &str) -> Result<StepOutcome, IdpError> {
        Err(IdpError::Unavailable("not used by the mailer tests".into()))
    }
    async fn clear_login_block(&self, _: &str) -> Result<StepOutcome, IdpError> {
        Err(IdpError::Unavailable("not used by the mailer tests".into()))
    }
}

/// Fast retries, for tests.
pub fn quick_config() -> MailerConfig {
    MailerConfig {
        lease: Duration::from_secs(30),
        max_attempts: 5,
        backoff_base: Duration::from_millis(40),
        backoff_cap: Duration::from_millis(400),
        max_wait: Duration::from_secs(5),
        configuration_set: None,
    }
}

pub fn mailer(store: Arc<SqliteStore>, sender: Arc<dyn EmailSender>, brands: Brands) -> Mailer {
    Mailer::new(
        store.clone(),
        store.clone(),
        store,
        sender,
        brands,
        Arc::new(FakeIdp),
    )
    .with_rate(RateLimiter::unlimited())
    .with_config(quick_config())
}

/// A store with one tenant and a profile.
pub async fn store() -> (Arc<SqliteStore>, TenantId, peak_domain::ProfileId) {
    let store = Arc::new(SqliteStore::open_in_memory().expect("store"));
    let t = fresh_tenant();
    let p = profile(&*store, &t, "Standard").await;
    (store, t, p)
}

/// The template values each kind needs (as the domain writes them).
pub fn data_for(kind: EmailKind, user: &User) -> Value {
    let first = user.first_name.as_str();
    match kind {
        EmailKind::Invitation | EmailKind::InvitationResent => json!({
            "first_name": first,
            "inviter_name": "Tenant Admin",
            "tenant": user.tenant_id.as_str(),
            "link": format!("https://portal.acme.example/invitations/tok-{}", user.id),
            "expires_at": "2030-01-02T03:04:05Z",
            "portal_url": "https://portal.acme.example",
        }),
        EmailKind::PasswordReset => json!({
            "first_name": first,
            "initiated_by": "admin",
            "portal_url": "https://portal.acme.example",
        }),
        _ => json!({"first_name": first, "portal_url": "https://portal.acme.example"}),
    }
}

/// Creates a user at `address` with one email of `kind` in the outbox.
pub async fn user_with_email(
    store: &SqliteStore,
    t: &TenantId,
    p: &peak_domain::ProfileId,
    address: &str,
    kind: EmailKind,
) -> (User, OutboxEmail) {
    let mut user = sample_user(t, p, "Ada", "Lovelace", address);
    if kind == EmailKind::PasswordReset {
        user.idp_subject = Some(format!("dev|{}", user.id));
        user.invitation = None;
        user.status = peak_domain::model::user::UserStatus::Active;
    }
    let mail = OutboxEmail {
        tenant_id: t.clone(),
        id: ulid::Ulid::new().to_string(),
        kind,
        to: user.email.clone(),
        user_id: user.id.clone(),
        data: data_for(kind, &user),
        created_at: OffsetDateTime::now_utc(),
    };
    store
        .write_user(UserWrite {
            previous: None,
            next: Some(&user),
            audit: &[],
            outbox: std::slice::from_ref(&mail),
        })
        .await
        .expect("create the user and its email");
    (user, mail)
}

/// Fails transiently the first `failures` times for each recipient whose
/// address contains `marker` (every recipient when `marker` is empty),
/// then sends through `inner`. Records when each call came.
pub struct FlakySender<S> {
    pub inner: S,
    pub marker: String,
    pub failures: u32,
    pub calls: Mutex<Vec<(String, OffsetDateTime)>>,
    failed: Mutex<std::collections::HashMap<String, u32>>,
    pub sent: AtomicU32,
}

impl<S> FlakySender<S> {
    pub fn new(inner: S, marker: &str, failures: u32) -> Self {
        Self {
            inner,
            marker: marker.to_owned(),
            failures,
            calls: Mutex::new(Vec::new()),
            failed: Mutex::new(Default::default()),
            sent: AtomicU32::new(0),
        }
    }

    pub fn calls_to(&self, to: &str) -> Vec<OffsetDateTime> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(a, _)| a == to)
            .map(|(_, t)| *t)
            .collect()
    }
}

#[async_trait]
impl<S: EmailSender> EmailSender for FlakySender<S> {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError> {
        let to = email.to.as_str().to_owned();
        self.calls
            .lock()
            .unwrap()
            .push((to.clone(), OffsetDateTime::now_utc()));
        if to.contains(&self.marker) {
            let mut failed = self.failed.lock().unwrap();
            let n = failed.entry(to).or_default();
            if *n < self.failures {
                *n += 1;
                return Err(SendError::Transient(
                    "SES TooManyRequestsException: slow down".into(),
                ));
            }
        }
        let id = self.inner.send(email).await?;
        self.sent.fetch_add(1, Ordering::SeqCst);
        Ok(id)
    }
}

/// Remembers every email instead of sending it.
#[derive(Default)]
pub struct MemorySender {
    pub sent: Mutex<Vec<(OutgoingEmail, tokio::time::Instant)>>,
}

#[async_trait]
impl EmailSender for MemorySender {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError> {
        let mut sent = self.sent.lock().unwrap();
        sent.push((email.clone(), tokio::time::Instant::now()));
        Ok(format!("mem-{}", sent.len()))
    }
}

pub fn email(address: &str) -> Email {
    Email::parse(address).expect("email")
}
