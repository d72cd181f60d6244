//! Issue 16's operator's view of stuck work, through the HTTP API on both
//! stores: an email the mailer gave up on is listed for the tenant's admins
//! and retried with a fresh link (the old one stops working); owed Auth0
//! work that keeps failing is listed with its attempts and last error and,
//! retried, runs as soon as Auth0 is back. Only admins, and only their own
//! tenant's: everyone else gets 403, another tenant's admin sees nothing.

use crate::auth0_sync::{active_user, env, send};
use async_trait::async_trait;
use peak_email::{Brand, Brands};
use peak_mailer::{Delivery, EmailSender, Mailer, OutgoingEmail, SendError};
use peak_tests::TestApp;
use reqwest::Method;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use time::OffsetDateTime;

/// A sender that refuses every email for good while `refusing`, and
/// "sends" (records nothing, answers a message id) otherwise.
struct Switchable {
    refusing: AtomicBool,
}

#[async_trait]
impl EmailSender for Switchable {
    async fn send(&self, _email: &OutgoingEmail) -> Result<String, SendError> {
        if self.refusing.load(Ordering::SeqCst) {
            Err(SendError::Permanent(
                "MessageRejected: refused by the test".into(),
            ))
        } else {
            Ok(format!("msg-{}", ulid::Ulid::new()))
        }
    }
}

fn mailer(app: &TestApp, sender: Arc<Switchable>) -> Mailer {
    let brands = Brands::new(Brand {
        name: "Acme Portal".into(),
        sender: "Acme Portal <no-reply@portal.example>".into(),
        reply_to: None,
        portal_url: app.running.url(),
        accent_color: None,
    });
    Mailer::new(
        app.stores.users.clone(),
        app.stores.users.clone(),
        app.stores.tenants.clone(),
        sender,
        brands,
        app.running.state.idp.clone(),
    )
}

/// The invitation email of user `id` still pending in the outbox, and its
/// link's token.
async fn pending_invitation(app: &TestApp, id: &str) -> (String, String) {
    let mail = app
        .my_outbox()
        .await
        .into_iter()
        .find(|m| m.user_id.as_str() == id)
        .expect("a pending invitation email");
    let link = mail.data["link"].as_str().expect("data.link");
    let token = link.rsplit('/').next().expect("token").to_owned();
    (mail.id, token)
}

async fn failed_emails(app: &TestApp, token: &str) -> Vec<Value> {
    let (status, body) = send(app.with_token(token, Method::GET, "/emails/failed")).await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

async fn a_failed_invitation_is_listed_and_retried_with_a_fresh_link(app: TestApp) {
    let sender = Arc::new(Switchable {
        refusing: AtomicBool::new(true),
    });
    let mailer = mailer(&app, sender.clone());
    let (id, old_token) = app.invite_customer("ivy.stuck@acme.example").await;
    let (mail_id, _) = pending_invitation(&app, &id).await;
    let tenant = peak_domain::TenantId::parse(&app.tenant).unwrap();
    let Delivery::Failed { reason } = mailer.deliver(&tenant, &mail_id).await else {
        panic!("the refused email fails for good");
    };

    // Listed for the admin, with what an operator needs.
    let admin = app.token("admin");
    let listed = failed_emails(&app, &admin).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let f = &listed[0];
    assert_eq!(f["id"], mail_id.as_str());
    assert_eq!(f["kind"], "invitation");
    assert_eq!(f["user_id"], id.as_str());
    assert_eq!(f["recipient"], "ivy.stuck@acme.example");
    assert_eq!(f["reason"], reason.as_str());
    assert_eq!(f["attempts"], 1);
    assert!(f["failed_at"].as_str().is_some_and(|t| !t.is_empty()));

    // Another tenant's admin never sees it, nor can retry it.
    let (_, other) = app.other_tenant_admin().await;
    assert!(failed_emails(&app, &other).await.is_empty());
    let (status, body) = send(app.with_token(
        &other,
        Method::POST,
        &format!("/emails/failed/{mail_id}/retry"),
    ))
    .await;
    assert_eq!(status, 404, "{body}");

    // The retry queues a fresh invitation; the failed one leaves the list.
    sender.refusing.store(false, Ordering::SeqCst);
    let (status, body) =
        send(app.admin(Method::POST, &format!("/emails/failed/{mail_id}/retry"))).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        (
            body["id"].as_str(),
            body["kind"].as_str(),
            body["status"].as_str()
        ),
        (Some(mail_id.as_str()), Some("invitation"), Some("queued"))
    );
    assert!(failed_emails(&app, &admin).await.is_empty());
    let (new_id, new_token) = pending_invitation(&app, &id).await;
    assert_ne!(new_id, mail_id);
    assert_ne!(new_token, old_token, "a fresh link");
    assert!(matches!(
        mailer.deliver(&tenant, &new_id).await,
        Delivery::Sent { .. }
    ));
    // A second retry of the same failed email finds nothing to retry.
    let (status, _) =
        send(app.admin(Method::POST, &format!("/emails/failed/{mail_id}/retry"))).await;
    assert_eq!(status, 404);

    // The old link stops working; the new one works.
    let (status, _) = send(app.anonymous(Method::GET, &format!("/invitations/{old_token}"))).await;
    assert_eq!(status, 404, "the old link is dead");
    app.activate(&new_token).await;

    // Audited, naming the failed email it replaced.
    let (status, audit) = send(app.admin(Method::GET, &format!("/users/{id}/audit"))).await;
    assert_eq!(status, 200);
    let resent = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "invitation.resent")
        .expect("the resend is audited")
        .clone();
    assert!(
        resent["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["field"] == "retried_email" && c["before"] == mail_id.as_str()),
        "{resent}"
    );
}

#[tokio::test]
async fn a_failed_invitation_is_listed_and_retried_with_a_fresh_link_on_sqlite() {
    a_failed_invitation_is_listed_and_retried_with_a_fresh_link(peak_tests::spawn_sqlite().await)
        .await;
}

#[tokio::test]
async fn a_failed_invitation_is_listed_and_retried_with_a_fresh_link_on_dynamodb() {
    a_failed_invitation_is_listed_and_retried_with_a_fresh_link(peak_tests::spawn_dynamodb().await)
        .await;
}

/// A retry that no longer applies is refused with the reason and changes
/// nothing: the entry stays listed, no email is queued.
async fn a_retry_that_no_longer_applies_changes_nothing(app: TestApp) {
    let sender = Arc::new(Switchable {
        refusing: AtomicBool::new(true),
    });
    let mailer = mailer(&app, sender);
    let tenant = peak_domain::TenantId::parse(&app.tenant).unwrap();
    let mut failed = Vec::new();
    for email in ["gone@acme.example", "accepted@acme.example"] {
        let (id, token) = app.invite_customer(email).await;
        let (mail_id, _) = pending_invitation(&app, &id).await;
        assert!(matches!(
            mailer.deliver(&tenant, &mail_id).await,
            Delivery::Failed { .. }
        ));
        failed.push((id, token, mail_id));
    }
    let (gone, _, gone_mail) = &failed[0];
    let (status, body) = send(app.admin(Method::DELETE, &format!("/users/{gone}"))).await;
    assert!(status == 204 || status == 200, "delete: {status} {body}");
    let (_, accepted_token, accepted_mail) = &failed[1];
    app.activate(accepted_token).await;

    let outbox_before = app.my_outbox().await.len();
    for (mail, code) in [(gone_mail, "user_gone"), (accepted_mail, "not_invited")] {
        let (status, body) =
            send(app.admin(Method::POST, &format!("/emails/failed/{mail}/retry"))).await;
        assert_eq!((status, body["code"].as_str()), (409, Some(code)), "{body}");
    }
    assert_eq!(app.my_outbox().await.len(), outbox_before, "nothing queued");
    assert_eq!(failed_emails(&app, &app.token("admin")).await.len(), 2);
    // An id that names no failed email.
    let (status, _) = send(app.admin(Method::POST, "/emails/failed/nope/retry")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_retry_that_no_longer_applies_changes_nothing_on_sqlite() {
    a_retry_that_no_longer_applies_changes_nothing(peak_tests::spawn_sqlite().await).await;
}

#[tokio::test]
async fn a_retry_that_no_longer_applies_changes_nothing_on_dynamodb() {
    a_retry_that_no_longer_applies_changes_nothing(peak_tests::spawn_dynamodb().await).await;
}

/// Insiders who are not admins — a customer User Manager, a sales rep — get
/// 403 on every stuck-work route, even with a malformed query or id.
async fn only_admins_reach_stuck_work(app: TestApp) {
    let (_, manager) = app
        .seed_user("customer", &["ACME"], &[], &["user_manager"])
        .await;
    let (_, rep) = app.seed_user("sales_rep", &["ACME"], &[], &[]).await;
    let some_user = peak_domain::model::user::UserId::generate();
    let routes = [
        (Method::GET, "/emails/failed".to_owned()),
        (Method::GET, "/emails/failed?limit=oops".to_owned()),
        (
            Method::POST,
            "/emails/failed/01JDPEAKSAMP1EMA11000000AB/retry".to_owned(),
        ),
        (Method::GET, "/identity-work".to_owned()),
        (Method::GET, "/identity-work?limit=0".to_owned()),
        (Method::POST, format!("/identity-work/{some_user}/retry")),
        (Method::POST, "/identity-work/not-a-user/retry".to_owned()),
    ];
    for (who, token) in [("user manager", &manager), ("sales rep", &rep)] {
        for (method, path) in &routes {
            let (status, body) = send(app.with_token(token, method.clone(), path)).await;
            assert_eq!(status, 403, "{who} {method} {path}: {body}");
        }
    }
    let admin = app.token("admin");
    let (status, _) = send(app.with_token(&admin, Method::GET, "/emails/failed?limit=oops")).await;
    assert_eq!(status, 422, "an admin's malformed limit");
}

#[tokio::test]
async fn only_admins_reach_stuck_work_on_sqlite() {
    only_admins_reach_stuck_work(peak_tests::spawn_sqlite().await).await;
}

#[tokio::test]
async fn only_admins_reach_stuck_work_on_dynamodb() {
    only_admins_reach_stuck_work(peak_tests::spawn_dynamodb().await).await;
}

async fn a_stuck_auth0_push_is_listed_and_retried(sqlite: bool) {
    let e = env(sqlite).await;
    let (id, subject) = active_user(&e, "stuck.push@acme.example").await;
    e.fake.set_down(true);
    let (status, body) = send(e.app.admin(Method::POST, &format!("/users/{id}/suspend"))).await;
    assert_eq!(status, 200, "suspend: {body}");
    // The worker keeps failing, past the alarm threshold.
    let mut at = OffsetDateTime::now_utc();
    for _ in 0..peak_domain::idp_work::STUCK_AFTER_ATTEMPTS {
        at += time::Duration::hours(2);
        e.worker.run_due(at).await.expect("store");
    }

    let (status, body) = send(e.app.admin(Method::GET, "/identity-work")).await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{body}");
    let w = &items[0];
    assert_eq!(
        (w["id"].as_str(), w["user_id"].as_str()),
        (Some(id.as_str()), Some(id.as_str()))
    );
    assert_eq!(w["operation"], "sync");
    assert_eq!(w["attempts"], peak_domain::idp_work::STUCK_AFTER_ATTEMPTS);
    assert!(
        w["last_error"].as_str().is_some_and(|s| !s.is_empty()),
        "{w}"
    );
    assert_eq!(w["stuck"], true);
    let next: OffsetDateTime = OffsetDateTime::parse(
        w["next_attempt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(next > OffsetDateTime::now_utc(), "waiting out its backoff");

    // Another tenant's admin sees none of it and cannot retry it.
    let (_, other) = e.app.other_tenant_admin().await;
    let (status, body) = send(e.app.with_token(&other, Method::GET, "/identity-work")).await;
    assert_eq!(
        (status, body["items"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let (status, _) = send(e.app.with_token(
        &other,
        Method::POST,
        &format!("/identity-work/{id}/retry"),
    ))
    .await;
    assert_eq!(status, 404);

    // Auth0 is back; the retry makes it due now and the next run (now, not
    // hours later) pushes it.
    e.fake.set_down(false);
    let (status, body) = send(
        e.app
            .admin(Method::POST, &format!("/identity-work/{id}/retry")),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let due: OffsetDateTime = OffsetDateTime::parse(
        body["next_attempt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(due <= OffsetDateTime::now_utc());
    e.worker
        .run_due(OffsetDateTime::now_utc())
        .await
        .expect("store");
    assert!(
        e.fake.user(&subject).expect("login").blocked,
        "the suspension reached Auth0"
    );
    let (status, body) = send(e.app.admin(Method::GET, "/identity-work")).await;
    assert_eq!(
        (status, body["items"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{body}"
    );
    // Nothing owed now: nothing to retry.
    let (status, _) = send(
        e.app
            .admin(Method::POST, &format!("/identity-work/{id}/retry")),
    )
    .await;
    assert_eq!(status, 404);
    // Audited.
    let (_, audit) = send(e.app.admin(Method::GET, &format!("/users/{id}/audit"))).await;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|ev| ev["action"] == "identity_work.retried"),
        "{audit}"
    );
}

#[tokio::test]
async fn a_stuck_auth0_push_is_listed_and_retried_on_sqlite() {
    a_stuck_auth0_push_is_listed_and_retried(true).await;
}

#[tokio::test]
async fn a_stuck_auth0_push_is_listed_and_retried_on_dynamodb() {
    a_stuck_auth0_push_is_listed_and_retried(false).await;
}

/// The user's pending email of this kind (the newest).
async fn pending_of_kind(app: &TestApp, id: &str, kind: &str) -> Option<String> {
    app.my_outbox()
        .await
        .into_iter()
        .filter(|m| m.user_id.as_str() == id && m.kind.as_str() == kind)
        .map(|m| m.id)
        .max()
}

/// A failed password reset is retried through the reset itself (the
/// mailer asks the identity provider for a new link when it sends), and
/// refused once the user is no longer active.
async fn a_failed_password_reset_is_retried_as_a_reset(app: TestApp) {
    let mailer = mailer(
        &app,
        Arc::new(Switchable {
            refusing: AtomicBool::new(true),
        }),
    );
    let tenant = peak_domain::TenantId::parse(&app.tenant).unwrap();
    let (id, _) = app.seed_user("customer", &["ACME"], &[], &[]).await;
    let reset = || app.admin(Method::POST, &format!("/users/{id}/password-reset"));
    let (status, body) = send(reset()).await;
    assert_eq!(status, 202, "{body}");
    let first = pending_of_kind(&app, &id, "password_reset")
        .await
        .expect("queued");
    assert!(matches!(
        mailer.deliver(&tenant, &first).await,
        Delivery::Failed { .. }
    ));
    let (status, body) =
        send(app.admin(Method::POST, &format!("/emails/failed/{first}/retry"))).await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (202, Some("password_reset")),
        "{body}"
    );
    let second = pending_of_kind(&app, &id, "password_reset")
        .await
        .expect("re-queued");
    assert_ne!(second, first);
    assert!(matches!(
        mailer.deliver(&tenant, &second).await,
        Delivery::Failed { .. }
    ));

    let (status, body) = send(app.admin(Method::POST, &format!("/users/{id}/suspend"))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) =
        send(app.admin(Method::POST, &format!("/emails/failed/{second}/retry"))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("invalid_status")),
        "{body}"
    );
    assert_eq!(pending_of_kind(&app, &id, "password_reset").await, None);
    let listed = failed_emails(&app, &app.token("admin")).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], second.as_str());
}

#[tokio::test]
async fn a_failed_password_reset_is_retried_as_a_reset_on_sqlite() {
    a_failed_password_reset_is_retried_as_a_reset(peak_tests::spawn_sqlite().await).await;
}

#[tokio::test]
async fn a_failed_password_reset_is_retried_as_a_reset_on_dynamodb() {
    a_failed_password_reset_is_retried_as_a_reset(peak_tests::spawn_dynamodb().await).await;
}

/// A failed email-change verification is re-issued with a fresh link (the
/// old one stops working, the new one confirms); a failed notice to the
/// old address is written again.
async fn a_failed_email_change_is_retried_with_a_fresh_link(app: TestApp) {
    let mailer = mailer(
        &app,
        Arc::new(Switchable {
            refusing: AtomicBool::new(true),
        }),
    );
    let tenant = peak_domain::TenantId::parse(&app.tenant).unwrap();
    let (id, _) = app.seed_user("customer", &["ACME"], &[], &[]).await;
    let resp = app
        .admin(Method::GET, &format!("/users/{id}"))
        .send()
        .await
        .unwrap();
    let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    let new_email = format!("moved.{}@acme.example", ulid::Ulid::new()).to_lowercase();
    let (status, body) = send(
        app.admin(Method::PATCH, &format!("/users/{id}"))
            .header("if-match", etag)
            .json(&serde_json::json!({"email": new_email})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let link_of = |m: &peak_domain::outbox::OutboxEmail| {
        let link = m.data["link"].as_str().expect("link").to_owned();
        link.rsplit('/').next().unwrap().to_owned()
    };
    let mails: Vec<_> = app
        .my_outbox()
        .await
        .into_iter()
        .filter(|m| m.user_id.as_str() == id)
        .collect();
    assert_eq!(mails.len(), 2, "{mails:?}");
    for m in &mails {
        assert!(matches!(
            mailer.deliver(&tenant, &m.id).await,
            Delivery::Failed { .. }
        ));
    }
    let verification = mails
        .iter()
        .find(|m| m.kind.as_str() == "email_change_verification")
        .unwrap();
    let notice = mails
        .iter()
        .find(|m| m.kind.as_str() == "email_change_notice")
        .unwrap();
    let old_token = link_of(verification);
    assert_eq!(failed_emails(&app, &app.token("admin")).await.len(), 2);

    for failed in [verification, notice] {
        let (status, body) =
            send(app.admin(Method::POST, &format!("/emails/failed/{}/retry", failed.id))).await;
        assert_eq!(status, 202, "{body}");
    }
    assert!(failed_emails(&app, &app.token("admin")).await.is_empty());
    let again: Vec<_> = app
        .my_outbox()
        .await
        .into_iter()
        .filter(|m| m.user_id.as_str() == id)
        .collect();
    assert_eq!(again.len(), 2, "one verification, one notice: {again:?}");
    let fresh = again
        .iter()
        .find(|m| m.kind.as_str() == "email_change_verification")
        .expect("a fresh verification");
    assert_eq!(fresh.to.as_str(), new_email);
    let notice_again = again
        .iter()
        .find(|m| m.kind.as_str() == "email_change_notice")
        .expect("the notice again");
    assert_eq!(
        notice_again.to.as_str(),
        notice.to.as_str(),
        "to the old address"
    );
    let new_token = link_of(fresh);
    assert_ne!(new_token, old_token);

    let (status, _) =
        send(app.anonymous(Method::POST, &format!("/email-verifications/{old_token}"))).await;
    assert!(status >= 400, "the old link is dead: {status}");
    let (status, body) =
        send(app.anonymous(Method::POST, &format!("/email-verifications/{new_token}"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["email"], new_email.as_str());
}

#[tokio::test]
async fn a_failed_email_change_is_retried_with_a_fresh_link_on_sqlite() {
    a_failed_email_change_is_retried_with_a_fresh_link(peak_tests::spawn_sqlite().await).await;
}

#[tokio::test]
async fn a_failed_email_change_is_retried_with_a_fresh_link_on_dynamodb() {
    a_failed_email_change_is_retried_with_a_fresh_link(peak_tests::spawn_dynamodb().await).await;
}
