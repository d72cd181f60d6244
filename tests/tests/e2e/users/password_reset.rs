//! The signed-out password reset: the same answer whether or not the
//! address is known, an email only for an active user, a rate limit per
//! address.

use super::{ACC_A, emails_to, invitation, invite_as_admin, new_profile, send, unique_email};
use peak_domain::outbox::EmailKind;
use peak_tests::TestApp;
use reqwest::Method;
use serde_json::json;

on_both_stores!(signed_out_reset_reveals_nothing,);

async fn signed_out_reset_reveals_nothing(app: TestApp) {
    let (_, token) = app.seed_user("customer", &[ACC_A], &[], &[]).await;
    let me = send(app.with_token(&token, Method::GET, "/me")).await;
    let known = me.body["email"].as_str().expect("email").to_owned();
    let reset = |email: &str| {
        app.anonymous(Method::POST, "/password-resets")
            .json(&json!({"tenant": app.tenant, "email": email}))
    };
    let outbox_before = app.outbox().await.len();

    let for_known = send(reset(&known)).await;
    let unknown = unique_email("nobody");
    let for_unknown = send(reset(&unknown)).await;
    assert_eq!(for_known.status, 202, "{}", for_known.text);
    assert_eq!(for_unknown.status, 202, "{}", for_unknown.text);
    assert_eq!(for_known.text, for_unknown.text, "identical bodies");
    assert_eq!(
        for_known.header("content-type"),
        for_unknown.header("content-type")
    );
    let resets = emails_to(&app, &known).await;
    assert_eq!(resets.len(), 1, "{resets:?}");
    assert_eq!(resets[0].kind, EmailKind::PasswordReset);
    assert!(emails_to(&app, &unknown).await.is_empty());
    assert_eq!(app.outbox().await.len(), outbox_before + 1);

    // An invited user (no password yet) gets the same answer and no email.
    let profile = new_profile(&app, "Invitees").await;
    let invited = unique_email("invited");
    invite_as_admin(
        &app,
        &invitation("Ina", "Vited", &invited, "customer", &[ACC_A], &profile),
    )
    .await;
    let r = send(reset(&invited)).await;
    assert_eq!((r.status, r.text.as_str()), (202, for_known.text.as_str()));
    assert!(
        emails_to(&app, &invited)
            .await
            .iter()
            .all(|m| m.kind != EmailKind::PasswordReset)
    );

    // Five an hour per address; the sixth is a 429 with Retry-After. (The
    // window is the clock hour: if the loop straddles one, try again.)
    let hour = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            / 3600
    };
    let mut limited = None;
    for _attempt in 0..2 {
        let address = unique_email("flood");
        let started = hour();
        let mut statuses = Vec::new();
        for _ in 0..5 {
            statuses.push(send(reset(&address)).await.status);
        }
        let sixth = send(reset(&address)).await;
        if hour() != started {
            continue;
        }
        assert_eq!(statuses, [202; 5], "the first five are accepted");
        limited = Some(sixth);
        break;
    }
    let sixth = limited.expect("a rate-limit window without an hour boundary");
    assert_eq!(
        (sixth.status, sixth.code()),
        (429, "too_many_requests"),
        "{}",
        sixth.text
    );
    let retry_after: u64 = sixth
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    // The limit is per address.
    assert_eq!(send(reset(&known)).await.status, 202);

    let r = send(reset("not an address")).await;
    assert_eq!(
        (r.status, r.code()),
        (422, "validation_failed"),
        "{}",
        r.text
    );
    assert_eq!(r.body["errors"][0]["field"], "email");
}
