//! SES delivery against moto, and the mailer end to end on a SQLite store.
//!
//! Needs `SES_ENDPOINT` (moto): `scripts/moto.sh start` prints it;
//! scripts/test.sh starts and stops it. Every test uses its own recipients,
//! so the tests can share one moto.

mod common;

use common::*;
use peak_domain::outbox::{EmailKind, OutboxClaim};
use peak_domain::ports::{OutboxQueue, UserRecords, UserWrite};
use peak_mailer::{Delivery, EmailSender, OutgoingEmail, RateLimiter, SendError};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

fn outgoing(to: &str, subject: &str) -> OutgoingEmail {
    OutgoingEmail {
        from: format!("Acme Portal <{FROM_ADDRESS}>"),
        reply_to: Some("support@acme.example".into()),
        to: email(to),
        subject: subject.into(),
        html: "<p>Grüße, <a href=\"https://portal.acme.example/x\">open</a></p>".into(),
        text: "Grüße: https://portal.acme.example/x".into(),
        configuration_set: None,
        idempotency_id: ulid::Ulid::new().to_string(),
        kind: Some("invitation".into()),
    }
}

#[tokio::test]
async fn ses_sender_sends_one_message_with_subject_and_body() {
    let ses = ses().await;
    let to = unique_address("ses");
    let subject = format!("Hello ü {}", ulid::Ulid::new());
    let message_id = ses.send(&outgoing(&to, &subject)).await.expect("sent");
    assert!(!message_id.is_empty());
    let messages = messages_to(&to).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    assert_eq!(m["id"], message_id.as_str());
    assert_eq!(m["subject"], subject.as_str());
    assert_eq!(
        m["source"],
        format!("Acme Portal <{FROM_ADDRESS}>").as_str()
    );
    assert!(
        m["body"].as_str().unwrap_or_default().contains("Grüße"),
        "{m}"
    );
}

#[tokio::test]
async fn an_unverified_sender_is_a_permanent_failure() {
    let ses = ses().await;
    let to = unique_address("unverified");
    let mut mail = outgoing(&to, "never sent");
    mail.from = "someone@unverified.example".into();
    match ses.send(&mail).await {
        Err(SendError::Permanent(reason)) => {
            assert!(reason.contains("MessageRejected"), "{reason}");
            assert!(
                !reason.contains("someone@"),
                "addresses are masked: {reason}"
            );
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    assert!(messages_to(&to).await.is_empty());
}

#[tokio::test]
async fn an_invitation_is_delivered_once_and_a_redelivery_sends_nothing() {
    let ses = Arc::new(ses().await);
    let (store, t, p) = store().await;
    let to = unique_address("invitee");
    let (user, mail) = user_with_email(&store, &t, &p, &to, EmailKind::Invitation).await;
    let mailer = mailer(store.clone(), ses, brands());

    let first = mailer.deliver(&t, &mail.id).await;
    let Delivery::Sent { message_id } = &first else {
        panic!("expected Sent, got {first:?}");
    };
    let messages = messages_to(&to).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["id"], message_id.as_str());
    assert_eq!(messages[0]["subject"], "You're invited to Acme Portal");
    let body = messages[0]["body"].as_str().unwrap_or_default();
    assert!(
        body.contains(&format!(
            "https://portal.acme.example/invitations/tok-{}",
            user.id
        )),
        "{body}"
    );

    // The stream delivers a record again: nothing more is sent.
    assert_eq!(mailer.deliver(&t, &mail.id).await, Delivery::AlreadySent);
    let now = OffsetDateTime::now_utc();
    assert!(
        store
            .pending_outbox(1000, now)
            .await
            .unwrap()
            .iter()
            .all(|m| m.id != mail.id)
    );
    assert_eq!(mailer.drain_once(100).await.unwrap().sent, 0);
    assert_eq!(
        store.claim_outbox(&t, &mail.id, now, 30).await.unwrap(),
        OutboxClaim::AlreadySent
    );
    assert_eq!(messages_to(&to).await.len(), 1, "still exactly one");
}

#[tokio::test]
async fn transient_failures_are_retried_with_backoff_until_sent() {
    let flaky = Arc::new(FlakySender::new(ses().await, "", 2));
    let (store, t, p) = store().await;
    let to = unique_address("flaky");
    let (_, mail) = user_with_email(&store, &t, &p, &to, EmailKind::Invitation).await;
    let mailer = mailer(store.clone(), flaky.clone(), brands());

    let Delivery::Retrying {
        attempts: 1,
        retry_at: first_retry,
        error,
    } = mailer.deliver(&t, &mail.id).await
    else {
        panic!("the first attempt fails transiently");
    };
    assert!(error.contains("TooManyRequests"), "{error}");
    assert!(messages_to(&to).await.is_empty());
    // Not due before its retry time, due from then on.
    let pending_at = |at: OffsetDateTime| {
        let store = store.clone();
        let id = mail.id.clone();
        async move {
            store
                .pending_outbox(1000, at)
                .await
                .unwrap()
                .iter()
                .any(|m| m.id == id)
        }
    };
    assert!(!pending_at(first_retry - Duration::from_millis(1)).await);
    assert!(pending_at(first_retry).await);

    // The next delivery waits for the retry time, then fails again.
    let Delivery::Retrying {
        attempts: 2,
        retry_at: second_retry,
        ..
    } = mailer.deliver(&t, &mail.id).await
    else {
        panic!("the second attempt fails transiently");
    };
    let Delivery::Sent { .. } = mailer.deliver(&t, &mail.id).await else {
        panic!("the third attempt sends");
    };
    let calls = flaky.calls_to(&to);
    assert_eq!(calls.len(), 3);
    assert!(calls[1] >= first_retry, "no retry before its time");
    assert!(calls[2] >= second_retry, "no retry before its time");
    assert!(second_retry > first_retry);
    assert_eq!(messages_to(&to).await.len(), 1);
    assert_eq!(mailer.deliver(&t, &mail.id).await, Delivery::AlreadySent);
    assert_eq!(messages_to(&to).await.len(), 1);
}

#[tokio::test]
async fn a_permanent_failure_is_listed_and_not_retried() {
    let ses = Arc::new(ses().await);
    let (store, t, p) = store().await;
    let to = unique_address("rejected");
    let (_, mail) = user_with_email(&store, &t, &p, &to, EmailKind::Invitation).await;
    // The brand's sender is not a verified identity: SES refuses the email.
    let unverified = peak_email::Brands::new(brand("Nobody <nobody@unverified.example>"));
    let mailer = mailer(store.clone(), ses, unverified);

    let Delivery::Failed { reason } = mailer.deliver(&t, &mail.id).await else {
        panic!("a rejected email fails for good");
    };
    assert!(reason.contains("MessageRejected"), "{reason}");
    let failed = store.failed_outbox(1000).await.unwrap();
    let mine: Vec<_> = failed.iter().filter(|f| f.email.id == mail.id).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].reason, reason);
    assert_eq!(mine[0].attempts, 1);
    assert!(
        store
            .pending_outbox(1000, OffsetDateTime::now_utc() + Duration::from_secs(3600))
            .await
            .unwrap()
            .iter()
            .all(|m| m.id != mail.id),
        "never pending again"
    );
    assert_eq!(mailer.deliver(&t, &mail.id).await, Delivery::Gone);
    assert!(messages_to(&to).await.is_empty());
}

#[tokio::test]
async fn transient_failures_past_the_last_attempt_fail_for_good() {
    let flaky = Arc::new(FlakySender::new(ses().await, "", 100));
    let (store, t, p) = store().await;
    let to = unique_address("hopeless");
    let (_, mail) = user_with_email(&store, &t, &p, &to, EmailKind::Invitation).await;
    let mut config = quick_config();
    config.max_attempts = 3;
    let mailer = mailer(store.clone(), flaky.clone(), brands()).with_config(config);
    assert!(matches!(
        mailer.deliver(&t, &mail.id).await,
        Delivery::Retrying { attempts: 1, .. }
    ));
    assert!(matches!(
        mailer.deliver(&t, &mail.id).await,
        Delivery::Retrying { attempts: 2, .. }
    ));
    let Delivery::Failed { reason } = mailer.deliver(&t, &mail.id).await else {
        panic!("out of attempts");
    };
    assert!(reason.starts_with("gave up after 3 attempts"), "{reason}");
    let failed = store.failed_outbox(1000).await.unwrap();
    let mine = failed
        .iter()
        .find(|f| f.email.id == mail.id)
        .expect("listed");
    assert_eq!(mine.attempts, 3);
    assert_eq!(flaky.calls_to(&to).len(), 3);
    assert!(messages_to(&to).await.is_empty());
}

#[tokio::test]
async fn an_email_of_a_deleted_user_is_dropped_unsent() {
    let ses = Arc::new(ses().await);
    let (store, t, p) = store().await;
    let to = unique_address("deleted");
    let (user, mail) = user_with_email(&store, &t, &p, &to, EmailKind::Invitation).await;
    store
        .write_user(UserWrite {
            previous: Some(&user),
            next: None,
            audit: &[],
            outbox: &[],
        })
        .await
        .expect("delete the user");
    let mailer = mailer(store.clone(), ses, brands());
    assert_eq!(
        mailer.deliver(&t, &mail.id).await,
        Delivery::Failed {
            reason: "user deleted".into()
        }
    );
    let failed = store.failed_outbox(1000).await.unwrap();
    assert!(
        failed
            .iter()
            .any(|f| f.email.id == mail.id && f.reason == "user deleted")
    );
    assert!(messages_to(&to).await.is_empty());
}

#[tokio::test]
async fn a_password_reset_carries_the_identity_providers_link() {
    let ses = Arc::new(ses().await);
    let (store, t, p) = store().await;
    let to = unique_address("reset");
    let (user, mail) = user_with_email(&store, &t, &p, &to, EmailKind::PasswordReset).await;
    let mailer = mailer(store.clone(), ses, brands());
    assert!(matches!(
        mailer.deliver(&t, &mail.id).await,
        Delivery::Sent { .. }
    ));
    let messages = messages_to(&to).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["subject"], "Reset your Acme Portal password");
    let body = messages[0]["body"].as_str().unwrap_or_default();
    assert!(
        body.contains(&format!(
            "https://idp.acme.example/set-password?ticket={}",
            user.id
        )),
        "{body}"
    );
}

#[tokio::test]
async fn drain_sends_everything_due_through_ses() {
    let ses = Arc::new(ses().await);
    let (store, t, p) = store().await;
    let mut addresses = Vec::new();
    for i in 0..3 {
        let to = unique_address(&format!("drain{i}"));
        user_with_email(&store, &t, &p, &to, EmailKind::Invitation).await;
        addresses.push(to);
    }
    let mailer = mailer(store.clone(), ses, brands()).with_rate(RateLimiter::per_second(50.0));
    let summary = mailer.drain_once(100).await.unwrap();
    assert_eq!(summary.sent, 3, "{summary:?}");
    assert_eq!(summary.total(), 3);
    for to in &addresses {
        assert_eq!(messages_to(to).await.len(), 1);
    }
    assert_eq!(mailer.drain_once(100).await.unwrap().total(), 0);
}

/// The send rate is a wait, never an error: with a limit of 2 a second
/// every email goes, in order, the later ones later. (Paused tokio time:
/// the clock moves only while every task waits, so the times below are
/// exact whatever the machine's speed.)
#[tokio::test(start_paused = true)]
async fn the_rate_limit_delays_sends_and_refuses_none() {
    let memory = Arc::new(MemorySender::default());
    let (store, t, p) = store().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let (_, mail) = user_with_email(
            &store,
            &t,
            &p,
            &format!("rate{i}@example.com"),
            EmailKind::Invitation,
        )
        .await;
        ids.push(mail.id);
    }
    let mailer =
        mailer(store.clone(), memory.clone(), brands()).with_rate(RateLimiter::per_second(2.0));
    let start = tokio::time::Instant::now();
    let summary = mailer.drain_once(100).await.unwrap();
    assert_eq!(summary.sent, 5, "{summary:?}");
    assert_eq!(summary.failed + summary.retrying + summary.unavailable, 0);
    let sent = memory.sent.lock().unwrap();
    let order: Vec<_> = sent.iter().map(|(m, _)| m.idempotency_id.clone()).collect();
    assert_eq!(order, ids, "oldest first");
    let offsets: Vec<_> = sent.iter().map(|(_, at)| *at - start).collect();
    let ms = |n| Duration::from_millis(n);
    // A burst of two, then one every half second.
    assert!(offsets[0] < ms(500) && offsets[1] < ms(500), "{offsets:?}");
    assert!(offsets[2] >= ms(500) && offsets[3] >= ms(1000) && offsets[4] >= ms(1500));
}

/// The tenant `t` as an operator creates it, with its admins' sender name
/// and reply-to.
async fn tenant_record(store: &peak_store_sqlite::SqliteStore, t: &peak_domain::TenantId) {
    use peak_domain::tenants::TenantStore;
    let mut tenant = peak_domain::model::tenant::NewTenant {
        id: t.as_str().into(),
        display_name: "Globex Portal".into(),
        portal_url: "https://portal.globex.example".into(),
        sender_address: FROM_ADDRESS.into(),
        reply_to: Some("help@globex.example".into()),
        invitation_ttl_days: 7,
    }
    .validate(OffsetDateTime::now_utc())
    .expect("valid tenant");
    tenant.settings.sender_name = "Globex Team".into();
    store.create_tenant(&tenant).await.expect("create tenant");
}

#[tokio::test]
async fn a_tenants_own_sender_reply_to_and_portal_win_over_its_brand() {
    let ses = Arc::new(ses().await);
    let (store, t, p) = store().await;
    tenant_record(&store, &t).await;
    let to = unique_address("branded");
    let (_, mail) = user_with_email(&store, &t, &p, &to, EmailKind::Invitation).await;
    let memory = Arc::new(MemorySender::default());
    let (_, again) = user_with_email(
        &store,
        &t,
        &p,
        &unique_address("branded-mem"),
        EmailKind::Invitation,
    )
    .await;

    // Through SES (moto): the tenant's sender and name.
    let sent = mailer(store.clone(), ses, brands())
        .deliver(&t, &mail.id)
        .await;
    assert!(matches!(sent, Delivery::Sent { .. }), "{sent:?}");
    let messages = messages_to(&to).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(
        messages[0]["source"],
        format!("Globex Team <{FROM_ADDRESS}>").as_str()
    );
    assert_eq!(messages[0]["subject"], "You're invited to Globex Portal");
    let body = messages[0]["body"].as_str().unwrap_or_default();
    assert!(body.contains("https://portal.globex.example"), "{body}");
    assert!(!body.contains("portal.acme.example\""), "{body}");

    // The reply-to too (moto does not keep it).
    let sent = mailer(store.clone(), memory.clone(), brands())
        .deliver(&t, &again.id)
        .await;
    assert!(matches!(sent, Delivery::Sent { .. }), "{sent:?}");
    let out = memory.sent.lock().unwrap()[0].0.clone();
    assert_eq!(out.reply_to.as_deref(), Some("help@globex.example"));
    assert_eq!(out.from, format!("Globex Team <{FROM_ADDRESS}>"));
}

#[tokio::test]
async fn a_closed_tenants_email_is_not_sent() {
    let (store, t, p) = store().await;
    tenant_record(&store, &t).await;
    let (_, mail) = user_with_email(
        &store,
        &t,
        &p,
        &unique_address("closed"),
        EmailKind::Invitation,
    )
    .await;
    peak_domain::tenants::close_tenant(&*store, &t, OffsetDateTime::now_utc())
        .await
        .expect("close");
    let memory = Arc::new(MemorySender::default());
    let outcome = mailer(store.clone(), memory.clone(), brands())
        .deliver(&t, &mail.id)
        .await;
    assert!(memory.sent.lock().unwrap().is_empty(), "{outcome:?}");
    assert!(matches!(outcome, Delivery::Failed { .. }), "{outcome:?}");
}
