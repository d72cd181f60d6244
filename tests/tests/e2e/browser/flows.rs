//! The scenarios of issue 13, each by clicking only: what the admin (or
//! the portal on the person's behalf) does goes through the API, as in
//! the other tests; everything the person does is a click or a keystroke
//! in the browser.

use super::mailbox::Mailbox;
use super::{Browser, on_both_screens};
use fantoccini::Locator;
use peak_domain::outbox::{EmailKind, OutboxEmail};
use peak_local::StartOptions;
use peak_tests::{TestApp, spawn_sqlite_with};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery";

/// The local server as the person meets it: the owed identity-provider
/// work runs in-process (as `peak-local` runs it) so an email change
/// reaches the development identity provider, and `portal` is a portal
/// origin allowed to call the API.
async fn app(portal: &Mailbox) -> TestApp {
    spawn_sqlite_with(StartOptions {
        idp_sync_every: Some(Duration::from_millis(100)),
        portal_origins: peak_api::cors::PortalOrigins::parse(&portal.origin).expect("origin"),
        ..StartOptions::default()
    })
    .await
}

fn unique_email(label: &str) -> String {
    format!(
        "{label}.{}@example.com",
        ulid::Ulid::new().to_string().to_lowercase()
    )
}

/// The newest email of `kind` to `user`, with its HTML part as the mail
/// program shows it (rendered in the tenant's brand, as the mailer does;
/// `link` for emails whose link is made when sending).
async fn email_of(
    app: &TestApp,
    user: &str,
    kind: EmailKind,
    link: Option<&str>,
) -> (OutboxEmail, String) {
    let mail = app
        .my_outbox()
        .await
        .into_iter()
        .rfind(|m| m.user_id.as_str() == user && m.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} email to {user}"));
    let brand = app.running.state.brands.for_tenant(&mail.tenant_id);
    let rendered = peak_email::render(&mail, brand, link).expect("render the email");
    (mail, rendered.html)
}

/// An invited customer who accepted and set `PASSWORD` (through the API
/// and the identity provider, not the browser): (user id, subject, email).
async fn active_customer(app: &TestApp) -> (String, String, String) {
    let email = unique_email("active");
    let (id, token) = app.invite_customer(&email).await;
    let accepted: Value = app
        .anonymous(Method::POST, &format!("/invitations/{token}/accept"))
        .send()
        .await
        .expect("accept")
        .json()
        .await
        .expect("json");
    let url = accepted["password_setup_url"]
        .as_str()
        .expect("password page");
    let ticket = peak_local::LocalIdentityProvider::ticket_of(url).expect("ticket");
    let (_, subject) = app
        .running
        .local_idp
        .set_password(&app.running.state, ticket, PASSWORD)
        .await
        .expect("set password");
    (id, subject, email)
}

/// Signs in on the local portal stand-in and checks who it says you are.
async fn sign_in(b: &Browser, email: &str, password: &str) {
    b.expect_page("Sign in", "sign-in").await;
    b.fill("Email address", email).await;
    b.fill("Password", password).await;
    b.click("Sign in").await;
}

async fn expect_signed_in(b: &Browser, email: &str) {
    b.expect_page("Signed in as Ada Lovelace", "signed-in")
        .await;
    b.expect_text(email).await;
    b.expect_text("Customer").await;
    b.expect_text("ACME").await;
    let tabs = b
        .client
        .find_all(Locator::Css("nav[aria-label='Permission tabs'] a"))
        .await
        .unwrap_or_default();
    let mut labels = Vec::new();
    for t in &tabs {
        labels.push(t.text().await.unwrap_or_default());
    }
    if labels
        != [
            "My Account",
            "My Subscriptions",
            "My Customers",
            "My Cases",
            "Pay Invoices",
            "Configurations",
            "Currencies",
        ]
    {
        b.fail(&format!(
            "the permissions are not the seven tabs: {labels:?}"
        ))
        .await;
    }
    // A customer's My Customers settings have no effect, and the page says so.
    b.expect_text("Does not apply to your role").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitation_accept_set_password_sign_in() {
    on_both_screens("invitation", |b| async move {
        let mailbox = Mailbox::start().await;
        let app = app(&mailbox).await;
        // Each run has a tenant and identity provider of its own.
        let email = "ada@example.com".to_owned();
        let (id, _) = app.invite_customer(&email).await;
        let (_, html) = email_html(&app, &id, EmailKind::Invitation).await;

        b.goto(&mailbox.put(html)).await;
        b.shot("invitation-email").await;
        b.click("Accept invitation").await;
        b.expect_page("You're invited to Peak Portal", "invitation")
            .await;
        b.expect_text("Tenant Admin has invited you").await;
        b.click("Accept invitation").await;

        b.expect_page("Choose your password", "set-password").await;
        let referrer = b.referrer().await;
        if !referrer.is_empty() {
            b.fail(&format!(
                "the password page learnt where the person came from: {referrer}"
            ))
            .await;
        }
        b.fill("New password", "short").await;
        // The browser itself refuses a password under the minimum length.
        b.click("Set password").await;
        b.expect_page("Choose your password", "set-password-too-short")
            .await;
        b.fill("New password", PASSWORD).await;
        b.click("Set password").await;

        sign_in(&b, &email, PASSWORD).await;
        expect_signed_in(&b, &email).await;
        let user: Value = app
            .admin(Method::GET, &format!("/users/{id}"))
            .send()
            .await
            .expect("get user")
            .json()
            .await
            .expect("json");
        assert_eq!(user["status"], "active", "{user}");
    })
    .await;
}

async fn email_html(app: &TestApp, user: &str, kind: EmailKind) -> (OutboxEmail, String) {
    email_of(app, user, kind, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_change_confirm_sign_in_with_the_new_address() {
    on_both_screens("email-change", |b| async move {
        let mailbox = Mailbox::start().await;
        let app = app(&mailbox).await;
        let (id, subject, old_email) = active_customer(&app).await;
        let token = app.token_for_subject(&subject);
        let me: Value = app
            .with_token(&token, Method::GET, "/me")
            .send()
            .await
            .expect("me")
            .json()
            .await
            .expect("json");
        let new_email = unique_email("ada.new");
        let resp = app
            .with_token(&token, Method::PATCH, "/me")
            .header("if-match", format!("\"{}\"", me["version"]))
            .json(&json!({ "email": new_email }))
            .send()
            .await
            .expect("patch me");
        assert_eq!(
            resp.status(),
            200,
            "{}",
            resp.text().await.unwrap_or_default()
        );
        let (mail, html) = email_html(&app, &id, EmailKind::EmailChangeVerification).await;
        let link = mail.data["link"].as_str().expect("link").to_owned();

        b.goto(&mailbox.put(html)).await;
        b.shot("confirm-email").await;
        b.click("Confirm email address").await;
        b.expect_page("Confirm your new email address", "confirm")
            .await;
        b.click("Confirm email address").await;
        b.expect_page("Your new email address is confirmed", "confirmed")
            .await;
        b.click("Sign in to Peak Portal").await;
        b.expect_page("Sign in", "sign-in").await;

        // The identity provider hears of the new address from the owed
        // work (every 100 ms here), as Auth0 does from its worker.
        let started = Instant::now();
        while app
            .running
            .local_idp
            .check_password(&new_email, PASSWORD)
            .is_none()
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the identity provider never learnt the new address"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        sign_in(&b, &old_email, PASSWORD).await;
        b.expect_page("Sign in", "old-address-refused").await;
        b.expect_text("do not match").await;
        sign_in(&b, &new_email, PASSWORD).await;
        expect_signed_in(&b, &new_email).await;

        // The used link offers nothing to confirm any more.
        b.goto(&link).await;
        b.expect_page("This link is not valid", "confirm-used")
            .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_reset_from_the_email() {
    on_both_screens("password-reset", |b| async move {
        let mailbox = Mailbox::start().await;
        let app = app(&mailbox).await;
        let (id, subject, email) = active_customer(&app).await;
        let resp = app
            .admin(Method::POST, &format!("/users/{id}/password-reset"))
            .send()
            .await
            .expect("reset");
        assert_eq!(resp.status(), 202);
        // The mailer asks the identity provider for the link as it sends.
        let tenant = peak_domain::TenantId::parse(&app.tenant).expect("tenant");
        let user_id = peak_domain::model::user::UserId::parse(&id).expect("id");
        let user = app
            .stores
            .users
            .get_user(&tenant, &user_id)
            .await
            .expect("read")
            .expect("user");
        let link = app
            .running
            .state
            .idp
            .password_setup_link(
                &user,
                &subject,
                &peak_domain::identity::SetupLink {
                    portal_url: "http://portal.example",
                    valid_for: None,
                },
            )
            .await
            .expect("link");
        let (_, html) = email_of(&app, &id, EmailKind::PasswordReset, Some(&link)).await;

        b.goto(&mailbox.put(html)).await;
        b.shot("reset-email").await;
        b.click("Choose a new password").await;
        b.expect_page("Choose your password", "set-password").await;
        let new_password = "a brand new passphrase";
        b.fill("New password", new_password).await;
        b.click("Set password").await;
        sign_in(&b, &email, PASSWORD).await;
        b.expect_page("Sign in", "old-password-refused").await;
        b.expect_text("do not match").await;
        sign_in(&b, &email, new_password).await;
        expect_signed_in(&b, &email).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_revoked_used_and_unknown_links_show_their_pages() {
    on_both_screens("link-outcomes", |b| async move {
        let mailbox = Mailbox::start().await;
        let app = app(&mailbox).await;
        let base = app.running.url();

        // Revoked.
        let (id, token) = app.invite_customer(&unique_email("revoked")).await;
        let r = app
            .admin(Method::POST, &format!("/users/{id}/invitation/revoke"))
            .send()
            .await
            .expect("revoke");
        assert_eq!(r.status(), 200);
        b.goto(&format!("{base}/invitations/{token}")).await;
        b.expect_page("This invitation was withdrawn", "revoked")
            .await;
        b.expect_text("ask Tenant Admin about it").await;

        // Expired: the invitation's date moved into the past.
        let (id, token) = app.invite_customer(&unique_email("expired")).await;
        expire_invitation(&app, &id).await;
        b.goto(&format!("{base}/invitations/{token}")).await;
        b.expect_page("This invitation has expired", "expired")
            .await;
        b.expect_text("Ask Tenant Admin to send you a new one")
            .await;

        // Used: signing in is the way on.
        let email = unique_email("used");
        let (id, token) = app.invite_customer(&email).await;
        let accepted: Value = app
            .anonymous(Method::POST, &format!("/invitations/{token}/accept"))
            .send()
            .await
            .expect("accept")
            .json()
            .await
            .expect("json");
        let ticket = peak_local::LocalIdentityProvider::ticket_of(
            accepted["password_setup_url"].as_str().expect("url"),
        )
        .expect("ticket")
        .to_owned();
        app.running
            .local_idp
            .set_password(&app.running.state, &ticket, PASSWORD)
            .await
            .expect("set password");
        b.goto(&format!("{base}/invitations/{token}")).await;
        b.expect_page("You have already accepted this invitation", "used")
            .await;
        b.click("Sign in to Peak Portal").await;
        sign_in(&b, &email, PASSWORD).await;
        expect_signed_in(&b, &email).await;
        let _ = id;

        // Unknown and replaced: one page, word for word.
        b.goto(&format!("{base}/invitations/no-such-invitation-link"))
            .await;
        b.expect_page("This link is not valid", "unknown").await;
        let unknown = b.main_text().await;
        let (id, old) = app.invite_customer(&unique_email("replaced")).await;
        let r = app
            .admin(Method::POST, &format!("/users/{id}/invitation/resend"))
            .send()
            .await
            .expect("resend");
        assert_eq!(r.status(), 200);
        b.goto(&format!("{base}/invitations/{old}")).await;
        b.expect_page("This link is not valid", "replaced").await;
        if b.main_text().await != unknown {
            b.fail("a replaced link's page differs from an unknown link's")
                .await;
        }

        // A bogus email-change link offers nothing to confirm.
        let bogus = format!("{}.{}.bogus", app.tenant, ulid::Ulid::new());
        b.goto(&format!("{base}/email-verifications/{bogus}")).await;
        b.expect_page("This link is not valid", "confirm-bogus")
            .await;
        if b.client.find(Locator::XPath("//button")).await.is_ok() {
            b.fail("a bogus confirmation link shows a button").await;
        }
    })
    .await;
}

/// Moves the user's invitation expiry a minute into the past.
async fn expire_invitation(app: &TestApp, id: &str) {
    let tenant = peak_domain::TenantId::parse(&app.tenant).expect("tenant");
    let user_id = peak_domain::model::user::UserId::parse(id).expect("id");
    let before = app
        .stores
        .users
        .get_user(&tenant, &user_id)
        .await
        .expect("read")
        .expect("user");
    let mut after = before.clone();
    after.version += 1;
    if let Some(inv) = after.invitation.as_mut() {
        inv.expires_at = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    }
    app.stores
        .users
        .write_user(peak_domain::ports::UserWrite {
            previous: Some(&before),
            next: Some(&after),
            audit: &[],
            outbox: &[],
        })
        .await
        .expect("expire the invitation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_on_a_listed_origin_may_call_the_api_and_others_may_not() {
    on_both_screens("cors", |b| async move {
        let listed = Mailbox::start().await;
        let unlisted = Mailbox::start().await;
        let app = app(&listed).await;
        let token = app.token("customer");
        let api = app.running.url();

        b.goto(&listed.portal_app(&api, &token)).await;
        b.expect_page("allowed: 200", "listed-origin").await;
        let heading = b.heading().await;
        if !heading.contains("@seed.example") || heading.ends_with("etag null") {
            b.fail(&format!(
                "the portal could not read /me or its ETag: {heading}"
            ))
            .await;
        }
        b.goto(&unlisted.portal_app(&api, &token)).await;
        b.expect_page("blocked: TypeError", "unlisted-origin").await;
    })
    .await;
}
