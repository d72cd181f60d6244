//! Invitations: resent, revoked and renewed links; the address taken while
//! one is pending; `Idempotency-Key` replays; concurrent invites of one
//! address.

use super::{ACC_A, Reply, all_items, emails_to, ids_of, invitation, invite_as_admin};
use super::{link_token, new_profile, send, unique_email};
use peak_domain::outbox::EmailKind;
use peak_tests::TestApp;
use reqwest::Method;
use std::collections::BTreeSet;

on_both_stores!(
    invitation_link_states,
    idempotent_invite,
    concurrent_invites_of_one_email_create_one_user,
);

async fn invitation_link_states(app: TestApp) {
    let profile = new_profile(&app, "Invitees").await;
    let email = unique_email("link.states");
    let body = invitation("Ruth", "Resend", &email, "customer", &[ACC_A], &profile);
    let id = invite_as_admin(&app, &body).await.id();
    let first = link_token(&emails_to(&app, &email).await[0]);

    // Resend: a new link; the old one is unknown from now on.
    let r = send(app.admin(Method::POST, &format!("/users/{id}/invitation/resend"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "invited");
    assert_eq!(r.body["invitation"]["state"], "pending");
    let mails = emails_to(&app, &email).await;
    assert_eq!(mails.len(), 2, "{mails:?}");
    let resent = mails
        .iter()
        .find(|m| m.kind == EmailKind::InvitationResent)
        .expect("an invitation_resent email");
    let second = link_token(resent);
    assert_ne!(first, second);
    let r = send(app.anonymous(Method::GET, &format!("/invitations/{first}"))).await;
    assert_eq!((r.status, r.code()), (404, "not_found"), "{}", r.text);
    let r = send(app.anonymous(Method::POST, &format!("/invitations/{first}/accept"))).await;
    assert_eq!(
        r.status, 404,
        "the replaced link cannot be accepted: {}",
        r.text
    );
    let r = send(app.anonymous(Method::GET, &format!("/invitations/{second}"))).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // The address is taken while the invitation is pending (in any case).
    for address in [email.clone(), email.to_uppercase()] {
        let r = send(app.admin(Method::POST, "/users").json(&invitation(
            "Other",
            "Person",
            &address,
            "customer",
            &[ACC_A],
            &profile,
        )))
        .await;
        assert_eq!(
            (r.status, r.code()),
            (409, "email_taken"),
            "{address}: {}",
            r.text
        );
    }

    // Revoke: the link says so; revoking again is a conflict.
    let r = send(app.admin(Method::POST, &format!("/users/{id}/invitation/revoke"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["invitation"]["state"], "revoked");
    assert_eq!(r.body["status"], "invited");
    let r = send(app.anonymous(Method::GET, &format!("/invitations/{second}"))).await;
    assert_eq!(
        (r.status, r.code()),
        (410, "invitation_revoked"),
        "{}",
        r.text
    );
    let r = send(app.anonymous(Method::POST, &format!("/invitations/{second}/accept"))).await;
    assert_eq!(
        (r.status, r.code()),
        (410, "invitation_revoked"),
        "{}",
        r.text
    );
    let r = send(app.admin(Method::POST, &format!("/users/{id}/invitation/revoke"))).await;
    assert_eq!(
        (r.status, r.code()),
        (409, "no_pending_invitation"),
        "{}",
        r.text
    );

    // Inviting the address again is a fresh invite of the same user.
    let again = invitation("Ruth", "Reinvited", &email, "customer", &[ACC_A], &profile);
    let r = invite_as_admin(&app, &again).await;
    assert_eq!(r.id(), id, "re-invite keeps the user id");
    assert_eq!(r.body["status"], "invited");
    assert_eq!(r.body["last_name"], "Reinvited");
    assert_eq!(r.body["invitation"]["state"], "pending");
    let tokens: BTreeSet<String> = emails_to(&app, &email)
        .await
        .iter()
        .filter(|m| m.kind == EmailKind::Invitation)
        .map(link_token)
        .collect();
    let third: Vec<&String> = tokens.iter().filter(|t| **t != first).collect();
    assert_eq!(third.len(), 1, "one new invitation email: {tokens:?}");
    let r = send(app.anonymous(Method::GET, &format!("/invitations/{}", third[0]))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(app.anonymous(Method::GET, &format!("/invitations/{second}"))).await;
    assert_eq!(r.status, 404, "only the newest link resolves: {}", r.text);
    let list = all_items(
        &app,
        &app.token("admin"),
        &format!("/users?email={email}"),
        None,
    )
    .await;
    assert_eq!(ids_of(&list), [id]);
}

async fn idempotent_invite(app: TestApp) {
    let profile = new_profile(&app, "Invitees").await;
    let email = unique_email("idem");
    let body = invitation("Ida", "Potent", &email, "customer", &[ACC_A], &profile);
    let key = format!("invite-{}", ulid::Ulid::new());

    let first = send(
        app.admin(Method::POST, "/users")
            .header("idempotency-key", key.as_str())
            .json(&body),
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.header("idempotent-replayed"), None);
    let second = send(
        app.admin(Method::POST, "/users")
            .header("idempotency-key", key.as_str())
            .json(&body),
    )
    .await;
    assert_eq!(second.status, 201, "{}", second.text);
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(second.text, first.text, "the same body");
    assert_eq!(second.header("location"), first.header("location"));
    assert_eq!(second.header("etag"), first.header("etag"));

    let list = all_items(
        &app,
        &app.token("admin"),
        &format!("/users?email={email}"),
        None,
    )
    .await;
    assert_eq!(ids_of(&list), [first.id()], "exactly one user");
    let mails = emails_to(&app, &email).await;
    assert_eq!(mails.len(), 1, "exactly one invitation email: {mails:?}");

    // The same key for another request is refused and creates nothing.
    let other_email = unique_email("idem.other");
    let other = invitation("Ida", "Other", &other_email, "customer", &[ACC_A], &profile);
    let r = send(
        app.admin(Method::POST, "/users")
            .header("idempotency-key", key.as_str())
            .json(&other),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (422, "idempotency_key_reused"),
        "{}",
        r.text
    );
    let list = all_items(
        &app,
        &app.token("admin"),
        &format!("/users?email={other_email}"),
        None,
    )
    .await;
    assert!(list.is_empty(), "{list:?}");
    // Keys are per caller: another admin may use the same key.
    let (_, other_admin) = app.seed_user("admin", &[], &[], &[]).await;
    let r = send(
        app.with_token(&other_admin, Method::POST, "/users")
            .header("idempotency-key", key.as_str())
            .json(&other),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.header("idempotent-replayed"), None);
}

async fn concurrent_invites_of_one_email_create_one_user(app: TestApp) {
    let profile = new_profile(&app, "Invitees").await;
    let email = unique_email("race");
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let req = app.admin(Method::POST, "/users").json(&invitation(
                &format!("Racer{i}"),
                "Same",
                &email,
                "customer",
                &[ACC_A],
                &profile,
            ));
            tokio::spawn(send(req))
        })
        .collect();
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.expect("task"));
    }
    let summary: Vec<String> = replies
        .iter()
        .map(|r| format!("{} {}", r.status, r.code()))
        .collect();
    let created: Vec<&Reply> = replies.iter().filter(|r| r.status == 201).collect();
    assert_eq!(created.len(), 1, "exactly one 201: {summary:?}");
    assert!(
        replies
            .iter()
            .filter(|r| r.status != 201)
            .all(|r| r.status == 409 && r.code() == "email_taken"),
        "every other one 409 email_taken: {summary:?}"
    );
    let list = all_items(
        &app,
        &app.token("admin"),
        &format!("/users?email={email}"),
        None,
    )
    .await;
    assert_eq!(ids_of(&list), [created[0].id()], "one user");
    let mails = emails_to(&app, &email).await;
    assert_eq!(mails.len(), 1, "one invitation email: {mails:?}");
    assert_eq!(mails[0].user_id.as_str(), created[0].id());
}
