//! One user's whole life: invited, the link opened and accepted, the
//! password set, edited with versions, suspended and enabled, a password
//! reset, deleted, and the audit trail that is left.

use super::{ACC_A, emails_to, invitation, invite_as_admin, link_token, new_profile, quoted};
use super::{read_user, send, unique_email};
use peak_domain::outbox::EmailKind;
use peak_tests::{TestApp, problem};
use reqwest::Method;
use serde_json::json;

on_both_stores!(lifecycle_walk_through,);

async fn lifecycle_walk_through(app: TestApp) {
    let profile = new_profile(&app, "Standard customers").await;
    let (first, last) = ("Zelphira", "Quintanilla");
    let email = unique_email("zelphira.quintanilla");

    // Invite: 201, Location, ETag "1", invited, one invitation email.
    let r = invite_as_admin(
        &app,
        &invitation(first, last, &email, "customer", &[ACC_A], &profile),
    )
    .await;
    assert_eq!(r.etag(), "\"1\"");
    let id = r.id();
    assert_eq!(r.header("location"), Some(format!("/users/{id}").as_str()));
    assert_eq!(r.body["status"], "invited");
    assert_eq!(r.body["email"], email);
    assert_eq!(r.body["invitation"]["state"], "pending");
    assert_eq!(r.body["customer_accounts"], json!([ACC_A]));
    let mails = emails_to(&app, &email).await;
    assert_eq!(
        mails.len(),
        1,
        "exactly one email to the invitee: {mails:?}"
    );
    assert_eq!(mails[0].kind, EmailKind::Invitation);
    assert_eq!(mails[0].user_id.as_str(), id);
    let link = mails[0].data["link"].as_str().expect("link");
    assert!(
        link.starts_with(&format!("{}/invitations/", app.running.url())),
        "{link}"
    );
    let token = link_token(&mails[0]);
    assert!(token.len() >= 32, "an unguessable token: {token}");

    // Opening the link (twice) shows the invitation and consumes nothing.
    for _ in 0..2 {
        let r = send(app.anonymous(Method::GET, &format!("/invitations/{token}"))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["state"], "pending");
        assert_eq!(r.body["first_name"], first);
        assert_eq!(r.body["tenant"], app.tenant);
        let shown = r.body["email"].as_str().expect("masked email");
        assert!(shown.contains("***") && shown != email, "{shown}");
    }
    let (version, user) = read_user(&app, &app.token("admin"), &id)
        .await
        .expect("invited user");
    assert_eq!((version, user["status"].as_str()), (1, Some("invited")));

    // Accepting: where to set the password.
    let r = send(app.anonymous(Method::POST, &format!("/invitations/{token}/accept"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.body["password_setup_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("http")),
        "{}",
        r.text
    );
    // Setting the password activates the user.
    let user_token = app.activate(&token).await;
    let r = send(app.admin(Method::GET, &format!("/users/{id}"))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.body["invitation"]["state"], "accepted");
    let v = r.body["version"].as_u64().expect("version");
    assert_eq!(r.etag(), quoted(v));
    // An admin sees where the login stands with Auth0; the user does not
    // (it names the login and the provider's errors).
    assert!(r.body["login"]["subject"].is_string(), "{}", r.text);
    assert!(r.body["login"]["state"].is_string(), "{}", r.text);
    let own = send(app.with_token(&user_token, Method::GET, &format!("/users/{id}"))).await;
    assert_eq!(own.status, 200, "{}", own.text);
    assert!(own.body.get("login").is_none(), "{}", own.text);
    // The link has done its job.
    let r = send(app.anonymous(Method::GET, &format!("/invitations/{token}"))).await;
    assert_eq!(r.status, 410, "{}", r.text);
    assert_eq!(r.code(), "invitation_used");

    // Edit with If-Match; a stale one is refused and changes nothing; none
    // at all is a 428.
    let path = format!("/users/{id}");
    let r = send(
        app.admin(Method::PATCH, &path)
            .header("if-match", quoted(v))
            .json(&json!({"first_name": "Zelphine"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.etag(), quoted(v + 1));
    assert_eq!(r.body["first_name"], "Zelphine");
    let r = send(
        app.admin(Method::PATCH, &path)
            .header("if-match", quoted(v))
            .json(&json!({"first_name": "Stale"})),
    )
    .await;
    assert_eq!((r.status, r.code()), (412, "stale_version"), "{}", r.text);
    let r = send(
        app.admin(Method::PATCH, &path)
            .json(&json!({"first_name": "NoMatch"})),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (428, "if_match_required"),
        "{}",
        r.text
    );
    let (now_v, now) = read_user(&app, &app.token("admin"), &id)
        .await
        .expect("user");
    assert_eq!(
        (now_v, now["first_name"].as_str()),
        (v + 1, Some("Zelphine"))
    );

    // Suspend: the user's own token is refused at once, on every route.
    let r = send(app.admin(Method::POST, &format!("{path}/suspend"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "suspended");
    for route in ["/me", "/profile-catalogue"] {
        let r = send(app.with_token(&user_token, Method::GET, route)).await;
        assert_eq!(
            (r.status, r.code()),
            (403, "user_suspended"),
            "{route}: {}",
            r.text
        );
    }

    // Enable: the token works again.
    let r = send(app.admin(Method::POST, &format!("{path}/enable"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "active");
    let r = send(app.with_token(&user_token, Method::GET, "/me")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["id"], id.as_str());

    // A password reset by the admin: 202 and an email.
    let r = send(app.admin(Method::POST, &format!("{path}/password-reset"))).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let resets: Vec<_> = emails_to(&app, &email)
        .await
        .into_iter()
        .filter(|m| m.kind == EmailKind::PasswordReset)
        .collect();
    assert_eq!(resets.len(), 1, "{resets:?}");

    // Delete: gone, and the token belongs to nobody.
    let r = send(app.admin(Method::DELETE, &path)).await;
    assert_eq!(r.status, 204, "{}", r.text);
    problem(app.admin(Method::GET, &path).send().await.unwrap(), 404).await;
    let r = send(app.with_token(&user_token, Method::GET, "/me")).await;
    assert_eq!((r.status, r.code()), (403, "unknown_user"), "{}", r.text);

    // The audit trail, newest first, without who they were.
    let r = send(app.admin(Method::GET, &format!("{path}/audit"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let actions: Vec<&str> = r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        [
            "user.deleted",
            "user.password_reset_requested",
            "user.enabled",
            "user.suspended",
            "user.updated",
            "user.activated",
            "invitation.accepted",
            "user.invited",
        ]
    );
    let local_part = email.split('@').next().unwrap();
    for personal in [first, last, "Zelphine", email.as_str(), local_part] {
        assert!(
            !r.text.contains(personal),
            "the audit of a deleted user still holds {personal:?}: {}",
            r.text
        );
    }
}
