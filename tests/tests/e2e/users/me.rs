//! Self-service on `/me`: reading one's permissions, changing one's name
//! and login email (verified by link), one's own password reset, and
//! nothing else.

use super::{ACC_A, emails_to, quoted, send, unique_email};
use peak_domain::outbox::{EmailKind, OutboxEmail};
use peak_tests::TestApp;
use reqwest::Method;
use serde_json::{Value, json};

on_both_stores!(me_self_service,);

async fn me_self_service(app: TestApp) {
    let (id, token) = app
        .seed_user(
            "customer",
            &[ACC_A],
            &[("my_subscriptions.cancel", "enabled")],
            &[],
        )
        .await;
    let me = |method: Method, path: &str| app.with_token(&token, method, path);

    let r = send(me(Method::GET, "/me")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["id"], id.as_str());
    assert_eq!(r.body["role"], "customer");
    assert_eq!(r.body["status"], "active");
    let permissions = &r.body["permissions"];
    assert_eq!(permissions["role"], "customer", "{}", r.text);
    assert_eq!(
        permissions["settings"]["my_subscriptions.cancel"],
        "enabled"
    );
    assert_eq!(
        permissions["settings"]["my_account.account_users"],
        "hidden"
    );
    assert!(
        permissions["settings"]
            .get("my_customers.customer_users")
            .is_none(),
        "My Customers does not apply to a customer: {permissions}"
    );
    let old_email = r.body["email"].as_str().expect("email").to_owned();
    let v = r.body["version"].as_u64().expect("version");
    assert_eq!(r.etag(), quoted(v));

    // Names, with If-Match.
    let r = send(me(Method::PATCH, "/me").json(&json!({"first_name": "Renata"}))).await;
    assert_eq!(
        (r.status, r.code()),
        (428, "if_match_required"),
        "{}",
        r.text
    );
    let r = send(
        me(Method::PATCH, "/me")
            .header("if-match", quoted(v))
            .json(&json!({"first_name": "Renata", "last_name": "Self"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.etag(), quoted(v + 1));
    assert_eq!(
        (r.body["first_name"].as_str(), r.body["last_name"].as_str()),
        (Some("Renata"), Some("Self"))
    );
    let r = send(
        me(Method::PATCH, "/me")
            .header("if-match", quoted(v))
            .json(&json!({"first_name": "Stale"})),
    )
    .await;
    assert_eq!((r.status, r.code()), (412, "stale_version"), "{}", r.text);

    // A new login email waits for verification; both addresses hear of it.
    let new_email = unique_email("moved");
    let r = send(
        me(Method::PATCH, "/me")
            .header("if-match", quoted(v + 1))
            .json(&json!({"email": new_email})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["email"], old_email.as_str(), "login email unchanged");
    assert_eq!(r.body["pending_email"], new_email.as_str());
    let r = send(me(Method::GET, "/me")).await;
    assert_eq!(
        (r.body["email"].as_str(), r.body["pending_email"].as_str()),
        (Some(old_email.as_str()), Some(new_email.as_str()))
    );
    let mails: Vec<OutboxEmail> = app
        .outbox()
        .await
        .into_iter()
        .filter(|m| m.user_id.as_str() == id)
        .collect();
    assert_eq!(mails.len(), 2, "{mails:?}");
    let verification = mails
        .iter()
        .find(|m| m.kind == EmailKind::EmailChangeVerification)
        .expect("a verification email");
    assert!(verification.to.as_str().eq_ignore_ascii_case(&new_email));
    let notice = mails
        .iter()
        .find(|m| m.kind == EmailKind::EmailChangeNotice)
        .expect("a notice to the old address");
    assert!(notice.to.as_str().eq_ignore_ascii_case(&old_email));
    assert!(
        !notice.data.to_string().contains(&new_email),
        "the notice masks the new address: {}",
        notice.data
    );

    // Following the link: opening shows, POST confirms, once.
    let link = verification.data["link"].as_str().expect("link");
    assert!(link.contains("/email-verifications/"), "{link}");
    let vtoken = link.rsplit('/').next().expect("token");
    let r = send(app.anonymous(Method::GET, &format!("/email-verifications/{vtoken}"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(app.anonymous(Method::POST, &format!("/email-verifications/{vtoken}"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["email"], new_email.as_str());
    assert_eq!(r.body["pending_email"], Value::Null);
    let r = send(app.anonymous(Method::POST, &format!("/email-verifications/{vtoken}"))).await;
    assert_eq!(
        (r.status, r.code()),
        (410, "verification_used"),
        "{}",
        r.text
    );
    let r = send(me(Method::GET, "/me")).await;
    assert_eq!(r.status, 200, "the same sign-in still works: {}", r.text);
    assert_eq!(r.body["email"], new_email.as_str());
    let current = r.body["version"].as_u64().expect("version");

    // A password reset for oneself goes to the new address.
    let r = send(me(Method::POST, "/me/password-reset")).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let resets: Vec<_> = emails_to(&app, &new_email)
        .await
        .into_iter()
        .filter(|m| m.kind == EmailKind::PasswordReset)
        .collect();
    assert_eq!(resets.len(), 1, "{resets:?}");

    // Nothing else about oneself can be changed here.
    let r = send(
        me(Method::PATCH, "/me")
            .header("if-match", quoted(current + 1))
            .json(&json!({"role": "admin"})),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (422, "validation_failed"),
        "{}",
        r.text
    );
    assert!(
        r.body["errors"][0]["reason"]
            .as_str()
            .is_some_and(|m| m.contains("unknown field `role`")),
        "{}",
        r.text
    );
    let r = send(me(Method::GET, "/me")).await;
    assert_eq!(r.body["role"], "customer");
}
