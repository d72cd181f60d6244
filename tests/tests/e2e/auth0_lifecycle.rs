//! The identity lifecycle against the fake Auth0, on both stores: what a
//! suspension, an enable and a deletion do to the person's Auth0 sessions,
//! refresh tokens and brute-force block (through an outage), and the races
//! of issue 12 — each reproduced here first, then fixed:
//! - delete → re-invite → accept while the old login's delete is owed;
//! - revoke and expiry after accept;
//! - a sender's retry while the first delivery is still being applied;
//! - our own block push read back as a dashboard block after an enable;
//! - (the lost `last_login_at` is the store contract's
//!   `sign_ins_are_recorded_newest_wins_without_a_new_version`).
//!
//! Plus: Event Streams deliveries while our store fails, and a
//! reconciliation of 5,000 logins through the users-export job.

use crate::auth0_sync::{
    Env, STREAM_TOKEN, active_user, drain_later, env, env_over, owed, password_changed, secret,
    send, user,
};
use peak_auth0::fake::{FakeUser, Fault};
use peak_domain::ports::UserWrite;
use peak_idp_sync::reconcile;
use peak_tests::{DynamoFaults, StoreFault, TestApp};
use peak_webhooks::WebhookSecrets;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("format")
}

/// An Event Streams delivery (CloudEvents), with the login as Auth0 shows
/// it: its `blocked` and `app_metadata`.
fn stream_event(
    kind: &str,
    subject: &str,
    blocked: bool,
    app_metadata: &Value,
    at: OffsetDateTime,
) -> String {
    json!({
        "id": format!("evt_{}", ulid::Ulid::new()),
        "source": "urn:auth0:fake.auth0app.com",
        "specversion": "1.0",
        "type": kind,
        "time": rfc3339(at),
        "data": { "object": {
            "user_id": subject,
            "email": "someone@acme.example",
            "blocked": blocked,
            "app_metadata": app_metadata,
        }}
    })
    .to_string()
}

async fn post_stream(app: &TestApp, body: &str) -> (u16, Value) {
    send(
        app.anonymous(Method::POST, "/webhooks/auth0")
            .header("authorization", format!("Bearer {STREAM_TOKEN}"))
            .header("content-type", "application/cloudevents+json")
            .body(body.to_owned()),
    )
    .await
}

/// A signed Post Change Password delivery (no tenant) that happened at `at`.
fn password_changed_at(subject: &str, at: OffsetDateTime) -> (String, i64, String, String) {
    let id = format!("pcp_{}", ulid::Ulid::new());
    let now = OffsetDateTime::now_utc();
    let body = json!({
        "type": "password.changed", "id": id, "time": rfc3339(at),
        "data": { "user_id": subject, "tenant": null },
    })
    .to_string();
    let signature = WebhookSecrets::parse(&secret()).expect("secret").sign(
        &id,
        now.unix_timestamp(),
        body.as_bytes(),
    );
    (id, now.unix_timestamp(), body, signature)
}

async fn post_signed(app: &TestApp, d: &(String, i64, String, String)) -> (u16, Value) {
    send(
        app.anonymous(Method::POST, "/webhooks/auth0")
            .header("webhook-id", &d.0)
            .header("webhook-timestamp", d.1.to_string())
            .header("webhook-signature", &d.3)
            .body(d.2.clone()),
    )
    .await
}

/// The user's login sync state (`GET /users/{id}/identity`), which
/// `GET /users/{id}` shows an admin too, as its `login`.
async fn login_sync(app: &TestApp, id: &str) -> Value {
    let (status, body) = send(app.admin(Method::GET, &format!("/users/{id}/identity"))).await;
    assert_eq!(status, 200, "{body}");
    let (status, user) = send(app.admin(Method::GET, &format!("/users/{id}"))).await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(
        user["login"], body,
        "GET /users/{{id}} shows the same sync state"
    );
    body
}

async fn accept(app: &TestApp, token: &str) -> (u16, Value) {
    send(app.anonymous(Method::POST, &format!("/invitations/{token}/accept"))).await
}

// ------------------------------------------------------------- revocation

async fn sessions_end_and_blocks_lift_through_an_outage(sqlite: bool) {
    let e = env(sqlite).await;
    let (id, subject) = active_user(&e, "sol@acme.example").await;
    // Signed in on two devices, and locked out by brute-force protection.
    e.fake.sign_in(&subject);
    e.fake.sign_in(&subject);
    e.fake.set_brute_force_blocked(&subject, true);

    // Suspend while Auth0 is down: owed, retried, done once it is back.
    e.fake.set_down(true);
    let (status, _) = send(e.app.admin(Method::POST, &format!("/users/{id}/suspend"))).await;
    assert_eq!(status, 200);
    assert_eq!(drain_later(&e).await.failed, 1);
    let sync = &login_sync(&e.app, &id).await;
    assert_eq!(sync["state"], "retrying", "{sync}");
    assert_eq!(sync["attempts"], 1, "{sync}");
    assert_eq!(
        e.fake.sessions(&subject),
        2,
        "nothing revoked while Auth0 is down"
    );
    e.fake.set_down(false);
    assert_eq!(drain_later(&e).await.done, 1);
    assert!(e.fake.user(&subject).unwrap().blocked);
    assert_eq!(
        (e.fake.sessions(&subject), e.fake.refresh_tokens(&subject)),
        (0, 0),
        "suspended: signed out everywhere, no refresh token left"
    );
    let sync = &login_sync(&e.app, &id).await;
    assert_eq!(
        (
            sync["state"].as_str(),
            sync["notes"].as_array().map(Vec::len)
        ),
        (Some("in_sync"), Some(0))
    );

    // Enable, with an outage in the middle: the brute-force block lifts too.
    e.fake.set_down(true);
    let (status, _) = send(e.app.admin(Method::POST, &format!("/users/{id}/enable"))).await;
    assert_eq!(status, 200);
    assert_eq!(drain_later(&e).await.failed, 1);
    assert!(e.fake.user(&subject).unwrap().brute_force_blocked);
    e.fake.set_down(false);
    assert_eq!(drain_later(&e).await.done, 1);
    let login = e.fake.user(&subject).unwrap();
    assert!(
        !login.blocked && !login.brute_force_blocked,
        "enabled: can sign in again"
    );

    // Delete, with an outage in the middle: sessions end, then the login goes.
    e.fake.sign_in(&subject);
    e.fake.set_down(true);
    let (status, _) = send(e.app.admin(Method::DELETE, &format!("/users/{id}"))).await;
    assert_eq!(status, 204);
    assert_eq!(drain_later(&e).await.failed, 1);
    e.fake.set_down(false);
    assert_eq!(drain_later(&e).await.done, 1);
    assert!(e.fake.user(&subject).is_none());
    assert_eq!(
        (e.fake.sessions(&subject), e.fake.refresh_tokens(&subject)),
        (0, 0)
    );
    assert!(owed(&e.app).await.is_empty());
}

#[tokio::test]
async fn sessions_end_and_blocks_lift_through_an_outage_on_sqlite() {
    sessions_end_and_blocks_lift_through_an_outage(true).await;
}

#[tokio::test]
async fn sessions_end_and_blocks_lift_through_an_outage_on_dynamodb() {
    sessions_end_and_blocks_lift_through_an_outage(false).await;
}

#[tokio::test]
async fn a_plan_without_session_revocation_shows_in_the_users_sync_state() {
    let e = env(true).await;
    // As on a plan without the session endpoints (or a grant without the
    // scope): 403, before the worker's first token.
    e.fake.withhold_scope("delete:sessions");
    let (id, subject) = active_user(&e, "pat@acme.example").await;
    e.fake.sign_in(&subject);
    let (status, _) = send(e.app.admin(Method::POST, &format!("/users/{id}/suspend"))).await;
    assert_eq!(status, 200);
    let summary = drain_later(&e).await;
    assert_eq!(
        (summary.done, summary.failed),
        (1, 0),
        "degraded, not stuck"
    );
    assert!(
        e.fake.user(&subject).unwrap().blocked,
        "the block still holds"
    );
    assert_eq!(
        e.fake.sessions(&subject),
        1,
        "the plan offers no revocation"
    );
    assert_eq!(e.fake.refresh_tokens(&subject), 0, "what it offers is done");
    let sync = &login_sync(&e.app, &id).await;
    assert_eq!(sync["state"], "in_sync");
    let notes = sync["notes"].as_array().expect("notes");
    assert_eq!(notes.len(), 1, "{sync}");
    assert!(
        notes[0]
            .as_str()
            .unwrap()
            .starts_with("sessions not revoked: Auth0 revoke_sessions: 403"),
        "{sync}"
    );
    assert!(owed(&e.app).await.is_empty(), "not retried forever");
}

// ------------------------------------------------ delete → re-invite → accept

async fn a_reinvite_waits_for_the_deleted_users_owed_login_delete(sqlite: bool) {
    let e = env(sqlite).await;
    let (old_id, old_login) = active_user(&e, "rob@acme.example").await;
    // Deleted while Auth0 is down: the login's delete is owed.
    e.fake.set_down(true);
    let (status, _) = send(e.app.admin(Method::DELETE, &format!("/users/{old_id}"))).await;
    assert_eq!(status, 204);
    assert_eq!(drain_later(&e).await.failed, 1);
    e.fake.set_down(false);

    // Invited again and accepted before the worker's next run: the old
    // login is about to be deleted, so it is not taken over.
    let (new_id, token) = e.app.invite_customer("rob@acme.example").await;
    let (status, body) = accept(&e.app, &token).await;
    assert_eq!(status, 503, "the old login's delete is still owed: {body}");
    assert_eq!(
        e.fake.user(&old_login).unwrap().app_metadata["peak_user_id"],
        old_id.as_str(),
        "the old login still names the deleted user"
    );

    // The owed delete runs: it deletes the login (still the old user's).
    assert_eq!(drain_later(&e).await.done, 1);
    assert!(e.fake.user(&old_login).is_none());
    // Auth0's Event Stream reports that deletion: nobody here is affected.
    let gone = stream_event(
        "user.deleted",
        &old_login,
        false,
        &json!({ "tenant": e.app.tenant, "peak_user_id": old_id }),
        OffsetDateTime::now_utc(),
    );
    let (status, body) = post_stream(&e.app, &gone).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("no_change")),
        "{body}"
    );

    // Accepting now makes a new login for the new user, who then activates.
    let (status, body) = accept(&e.app, &token).await;
    assert_eq!(status, 200, "{body}");
    let url = body["password_setup_url"].as_str().expect("ticket url");
    let new_login = e.fake.complete_ticket(url).expect("ticket");
    assert_ne!(new_login, old_login);
    assert_eq!(
        e.fake.user(&new_login).unwrap().app_metadata["peak_user_id"],
        new_id.as_str()
    );
    let (status, _) = password_changed(&e.app, &new_login).await;
    assert_eq!(status, 200);
    let u = user(&e.app, &new_id).await;
    assert_eq!(u["status"], "active");
    assert!(owed(&e.app).await.is_empty());
    assert_eq!(
        drain_later(&e).await,
        peak_idp_sync::SweepSummary::default()
    );
    assert!(
        e.fake.user(&new_login).is_some(),
        "the new user's login stays"
    );
}

#[tokio::test]
async fn a_reinvite_waits_for_the_deleted_users_owed_login_delete_on_sqlite() {
    a_reinvite_waits_for_the_deleted_users_owed_login_delete(true).await;
}

#[tokio::test]
async fn a_reinvite_waits_for_the_deleted_users_owed_login_delete_on_dynamodb() {
    a_reinvite_waits_for_the_deleted_users_owed_login_delete(false).await;
}

#[tokio::test]
async fn an_owed_delete_leaves_a_login_that_names_another_user() {
    let e = env(true).await;
    let (old_id, login) = active_user(&e, "ida@acme.example").await;
    e.fake.set_down(true);
    let (status, _) = send(e.app.admin(Method::DELETE, &format!("/users/{old_id}"))).await;
    assert_eq!(status, 204);
    assert_eq!(drain_later(&e).await.failed, 1);
    e.fake.set_down(false);
    // Meanwhile the login came to name another user (relinked before this
    // rule existed, or by hand).
    let other = peak_domain::model::user::UserId::generate();
    e.fake.set_app_metadata(
        &login,
        json!({ "tenant": e.app.tenant, "peak_user_id": other.as_str() }),
    );
    assert_eq!(drain_later(&e).await.done, 1, "done: nothing of it is ours");
    assert!(
        e.fake.user(&login).is_some(),
        "not deleted: it is not the deleted user's"
    );
    assert!(owed(&e.app).await.is_empty());
}

// --------------------------------------------- revocation and expiry after accept

async fn a_revoked_accepted_invitation_loses_its_login_and_activates_nobody(sqlite: bool) {
    let e = env(sqlite).await;
    let (id, token) = e.app.invite_customer("val@acme.example").await;
    let (status, body) = accept(&e.app, &token).await;
    assert_eq!(status, 200, "{body}");
    let url = body["password_setup_url"].as_str().unwrap().to_owned();
    let login = e
        .fake
        .user_by_email("val@acme.example")
        .expect("login")
        .user_id;

    // The admin revokes the accepted invitation.
    let (status, body) = send(
        e.app
            .admin(Method::POST, &format!("/users/{id}/invitation/revoke")),
    )
    .await;
    assert_eq!(status, 200, "revoking an accepted invitation: {body}");
    assert_eq!(body["invitation"]["state"], "revoked");
    // The person sets a password on the ticket they already had.
    let subject = e
        .fake
        .complete_ticket(&url)
        .expect("the ticket still works at Auth0");
    let (status, body) = password_changed(&e.app, &subject).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        user(&e.app, &id).await["status"],
        "invited",
        "nobody activated"
    );
    // The link says it was revoked; the login it created is deleted.
    let (status, body) = send(
        e.app
            .anonymous(Method::GET, &format!("/invitations/{token}")),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (410, Some("invitation_revoked"))
    );
    assert_eq!(drain_later(&e).await.done, 1);
    assert!(
        e.fake.user(&login).is_none(),
        "the revoked invitation's login is gone"
    );
}

#[tokio::test]
async fn a_revoked_accepted_invitation_loses_its_login_and_activates_nobody_on_sqlite() {
    a_revoked_accepted_invitation_loses_its_login_and_activates_nobody(true).await;
}

#[tokio::test]
async fn a_revoked_accepted_invitation_loses_its_login_and_activates_nobody_on_dynamodb() {
    a_revoked_accepted_invitation_loses_its_login_and_activates_nobody(false).await;
}

/// Moves the user's invitation expiry (as if time passed).
async fn expire_invitation(app: &TestApp, id: &str, expires_at: OffsetDateTime) {
    let tenant = peak_domain::TenantId::parse(&app.tenant).unwrap();
    let uid = peak_domain::model::user::UserId::parse(id).unwrap();
    let current = app
        .stores
        .users
        .get_user(&tenant, &uid)
        .await
        .unwrap()
        .unwrap();
    let mut next = current.clone();
    next.version += 1;
    next.invitation.as_mut().unwrap().expires_at = expires_at;
    app.stores
        .users
        .write_user(UserWrite {
            previous: Some(&current),
            next: Some(&next),
            audit: &[],
            outbox: &[],
        })
        .await
        .unwrap();
}

async fn an_accepted_link_expires_with_its_invitation(sqlite: bool) {
    let e = env(sqlite).await;
    let (id, token) = e.app.invite_customer("kit@acme.example").await;
    let (status, body) = accept(&e.app, &token).await;
    assert_eq!(status, 200, "{body}");
    let url = body["password_setup_url"].as_str().unwrap().to_owned();
    // The password ticket lives no longer than the invitation.
    let expires = OffsetDateTime::parse(
        user(&e.app, &id).await["invitation"]["expires_at"]
            .as_str()
            .unwrap(),
        &Rfc3339,
    )
    .unwrap();
    let left = (expires - OffsetDateTime::now_utc()).whole_seconds() as u64;
    let ttl = e.fake.ticket(&url).unwrap().ttl_sec;
    assert!(
        ttl <= left && ttl > 0,
        "ticket {ttl} s, invitation {left} s"
    );

    // A password set after the invitation expired activates nobody.
    let subject = e.fake.complete_ticket(&url).unwrap();
    let late = password_changed_at(&subject, expires + time::Duration::minutes(1));
    let (status, body) = post_signed(&e.app, &late).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("refused")),
        "{body}"
    );
    assert_eq!(user(&e.app, &id).await["status"], "invited");

    // Once expired, the accepted link says so and mints no more tickets.
    expire_invitation(
        &e.app,
        &id,
        OffsetDateTime::now_utc() - time::Duration::minutes(1),
    )
    .await;
    let tickets_before = e.fake.count("POST", "/api/v2/tickets/password-change");
    let (status, body) = accept(&e.app, &token).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (410, Some("invitation_expired")),
        "{body}"
    );
    assert_eq!(
        e.fake.count("POST", "/api/v2/tickets/password-change"),
        tickets_before
    );
    assert_eq!(user(&e.app, &id).await["invitation"]["state"], "expired");
}

#[tokio::test]
async fn an_accepted_link_expires_with_its_invitation_on_sqlite() {
    an_accepted_link_expires_with_its_invitation(true).await;
}

#[tokio::test]
async fn an_accepted_link_expires_with_its_invitation_on_dynamodb() {
    an_accepted_link_expires_with_its_invitation(false).await;
}

// ------------------------------------------------------- webhook in flight

async fn a_retry_while_the_first_attempt_applies_is_not_lost(sqlite: bool) {
    let e = env(sqlite).await;
    let (id, token) = e.app.invite_customer("amy@acme.example").await;
    let (_, body) = accept(&e.app, &token).await;
    let subject = e
        .fake
        .complete_ticket(body["password_setup_url"].as_str().unwrap())
        .unwrap();
    // The tenant lookup at Auth0 is slow: the sender times out and retries
    // the same delivery while the first attempt is still applying it.
    e.fake
        .fail_next(2, Fault::Delay(Duration::from_millis(1500)));
    let delivery = password_changed_at(&subject, OffsetDateTime::now_utc());
    let first = {
        let app_url = e.app.running.url();
        let d = delivery.clone();
        tokio::spawn(async move {
            let resp = reqwest::Client::new()
                .post(format!("{app_url}/webhooks/auth0"))
                .header("webhook-id", &d.0)
                .header("webhook-timestamp", d.1.to_string())
                .header("webhook-signature", &d.3)
                .body(d.2.clone())
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, body) = post_signed(&e.app, &delivery).await;
    assert!(
        (200..300).contains(&status),
        "a retry in flight is acknowledged, not refused: {status} {body}"
    );
    assert_eq!(body["status"], "in_progress");
    let (status, body) = first.await.unwrap();
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("applied")),
        "{body}"
    );
    assert_eq!(user(&e.app, &id).await["status"], "active");

    // And if the first attempt fails (Auth0 down for the lookup), the
    // delivery is kept and the sweeper applies it once Auth0 is back.
    let (id2, token2) = e.app.invite_customer("ben@acme.example").await;
    let (_, body) = accept(&e.app, &token2).await;
    let subject2 = e
        .fake
        .complete_ticket(body["password_setup_url"].as_str().unwrap())
        .unwrap();
    e.fake.set_down(true);
    let (status, body) = password_changed(&e.app, &subject2).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (202, Some("accepted")),
        "{body}"
    );
    assert_eq!(user(&e.app, &id2).await["status"], "invited");
    e.fake.set_down(false);
    let summary = drain_later(&e).await;
    assert_eq!(summary.deliveries_applied, 1, "{summary:?}");
    assert_eq!(user(&e.app, &id2).await["status"], "active");
}

#[tokio::test]
async fn a_retry_while_the_first_attempt_applies_is_not_lost_on_sqlite() {
    a_retry_while_the_first_attempt_applies_is_not_lost(true).await;
}

#[tokio::test]
async fn a_retry_while_the_first_attempt_applies_is_not_lost_on_dynamodb() {
    a_retry_while_the_first_attempt_applies_is_not_lost(false).await;
}

// ------------------------------------------- our own block push, read back

async fn our_own_block_read_back_does_not_undo_a_newer_enable(sqlite: bool) {
    let e = env(sqlite).await;
    let (id, subject) = active_user(&e, "ned@acme.example").await;
    let (status, _) = send(e.app.admin(Method::POST, &format!("/users/{id}/suspend"))).await;
    assert_eq!(status, 200);
    assert_eq!(drain_later(&e).await.done, 1, "the worker pushes the block");
    let pushed = e.fake.user(&subject).unwrap();
    assert!(pushed.blocked);
    // The admin enables; Auth0's event for the earlier push arrives after,
    // stamped later than the enable (Auth0's clock, a slow stream).
    let (status, _) = send(e.app.admin(Method::POST, &format!("/users/{id}/enable"))).await;
    assert_eq!(status, 200);
    let event = stream_event(
        "user.updated",
        &subject,
        true,
        &pushed.app_metadata,
        OffsetDateTime::now_utc() + time::Duration::seconds(5),
    );
    let (status, body) = post_stream(&e.app, &event).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("own_change")),
        "{body}"
    );
    assert_eq!(
        user(&e.app, &id).await["status"],
        "active",
        "the enable stands"
    );

    // A real dashboard block (after our unblock was pushed) still suspends.
    assert_eq!(drain_later(&e).await.done, 1);
    e.fake.set_blocked(&subject, true);
    let login = e.fake.user(&subject).unwrap();
    let event = stream_event(
        "user.updated",
        &subject,
        true,
        &login.app_metadata,
        OffsetDateTime::now_utc() + time::Duration::seconds(5),
    );
    let (status, body) = post_stream(&e.app, &event).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("applied")),
        "{body}"
    );
    assert_eq!(user(&e.app, &id).await["status"], "suspended");
}

#[tokio::test]
async fn our_own_block_read_back_does_not_undo_a_newer_enable_on_sqlite() {
    our_own_block_read_back_does_not_undo_a_newer_enable(true).await;
}

#[tokio::test]
async fn our_own_block_read_back_does_not_undo_a_newer_enable_on_dynamodb() {
    our_own_block_read_back_does_not_undo_a_newer_enable(false).await;
}

// ------------------------------------ Event Streams while our store fails

#[tokio::test]
async fn an_event_stream_delivery_during_a_store_outage_is_kept_and_applied_after() {
    let faults = DynamoFaults::start().await;
    let e: Env = env_over(faults.stores().await, Duration::from_secs(2)).await;
    let (id, subject) = active_user(&e, "dee@acme.example").await;
    let login = e.fake.user(&subject).unwrap();
    let block = stream_event(
        "user.updated",
        &subject,
        true,
        &json!({ "tenant": e.app.tenant, "peak_user_id": id, "peak_blocked": false }),
        OffsetDateTime::now_utc() + time::Duration::seconds(1),
    );
    assert!(!login.blocked);

    // The store refuses everything: the delivery cannot be recorded, and
    // Auth0 is told to retry (5xx), never refused (4xx).
    faults.set(StoreFault::All);
    let (status, body) = post_stream(&e.app, &block).await;
    assert!((500..600).contains(&status), "{status} {body}");
    // Auth0 retries; the store records but cannot apply (user writes fail):
    // kept, and acknowledged so Auth0 stops.
    faults.set(StoreFault::Transactions);
    let (status, body) = post_stream(&e.app, &block).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (202, Some("accepted")),
        "{body}"
    );
    // Another retry meanwhile changes nothing.
    let (status, body) = post_stream(&e.app, &block).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (202, Some("in_progress")),
        "{body}"
    );

    // The store recovers: the sweeper applies the kept delivery.
    faults.set(StoreFault::None);
    assert_eq!(user(&e.app, &id).await["status"], "active");
    let summary = drain_later(&e).await;
    assert_eq!(summary.deliveries_applied, 1, "{summary:?}");
    assert_eq!(user(&e.app, &id).await["status"], "suspended");
    let (status, body) = post_stream(&e.app, &block).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("duplicate")),
        "{body}"
    );
}

// --------------------------------------------------------- reconciliation

#[tokio::test]
async fn reconciliation_of_5000_logins_goes_through_the_export_and_reports() {
    use peak_domain::model::user::{Email, PersonName, User, UserId, UserStatus};
    let e = env(true).await;
    let tenant = peak_domain::TenantId::parse(&e.app.tenant).unwrap();
    let profile = e.app.create_profile("Recon").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let now = OffsetDateTime::now_utc();
    let mut drifted = Vec::new();
    for i in 0..4_990 {
        let id = UserId::generate();
        let email = format!("p{i}@recon.example");
        let subject = e.fake.insert_user(FakeUser {
            given_name: Some("Pat".into()),
            family_name: Some(format!("N{i}")),
            // Ten logins unblocked in the dashboard while suspended here.
            blocked: i >= 10,
            ..FakeUser::new(&e.fake.connection, &email).with_tenant(&e.app.tenant, id.as_str())
        });
        if i < 10 {
            drifted.push(subject.clone());
        }
        let u = User {
            tenant_id: tenant.clone(),
            id,
            email: Email::parse(&email).unwrap(),
            pending_email: None,
            first_name: PersonName::parse("first_name", "Pat").unwrap(),
            last_name: PersonName::parse("last_name", &format!("N{i}")).unwrap(),
            account_number: None,
            customer_accounts: vec![],
            role: peak_domain::Role::Admin,
            profile_id: peak_domain::ProfileId::parse(&profile).unwrap(),
            extension_groups: vec![],
            status: UserStatus::Suspended,
            idp_subject: Some(subject),
            invitation: None,
            version: 1,
            created_at: now,
            updated_at: now,
            last_login_at: None,
        };
        e.app
            .stores
            .users
            .write_user(UserWrite {
                previous: None,
                next: Some(&u),
                audit: &[],
                outbox: &[],
            })
            .await
            .unwrap();
    }
    // Five logins whose user is gone here, five made by hand.
    for i in 0..5 {
        e.fake.insert_user(
            FakeUser::new(&e.fake.connection, format!("gone{i}@recon.example"))
                .with_tenant(&e.app.tenant, &UserId::generate().to_string()),
        );
        e.fake.insert_user(FakeUser::new(
            &e.fake.connection,
            format!("hand{i}@recon.example"),
        ));
    }
    assert_eq!(e.fake.users().len(), 5_000);
    e.fake.clear_requests();
    let report = reconcile(e.app.stores.users.as_ref(), e.idp.as_ref(), &e.client).await;
    assert!(report.complete, "{report:?}");
    assert_eq!(report.source, "export");
    assert_eq!(report.logins_seen, 5_000, "{report:?}");
    assert_eq!(
        (
            report.repaired,
            report.deleted_orphans,
            report.foreign,
            report.in_step,
            report.errors
        ),
        (10, 5, 5, 4_980, 0),
        "{report:?}"
    );
    for s in &drifted {
        assert!(e.fake.user(s).unwrap().blocked, "repaired");
    }
    assert_eq!(e.fake.users().len(), 4_995);
    assert_eq!(e.fake.count("POST", "/api/v2/jobs/users-exports"), 1);
    assert_eq!(e.fake.count("GET", "/api/v2/users"), 0, "no user search");
}
