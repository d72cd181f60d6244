//! The links in our emails over HTTP, as a browser and as an API client
//! ask for them: one URL, a page or JSON by `Accept`; opening never
//! changes anything (mail scanners open links); a browser's form post
//! works as the API's POST; every link in every email leads to a page a
//! person can use; CORS preflights answer as the HTTP API's configuration.

use peak_domain::outbox::{EmailKind, OutboxEmail};
use peak_local::StartOptions;
use peak_tests::{TestApp, problem, spawn_dynamodb, spawn_sqlite, spawn_sqlite_with};
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use serde_json::{Value, json};

/// What Chromium sends when it opens a page.
const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8";
const FORM: &str = "application/x-www-form-urlencoded";

mod sqlite {
    #[tokio::test]
    async fn opening_an_invitation_changes_nothing_and_the_form_post_accepts() {
        super::opening_an_invitation(super::spawn_sqlite().await).await;
    }
}
mod dynamodb {
    #[tokio::test]
    async fn opening_an_invitation_changes_nothing_and_the_form_post_accepts() {
        super::opening_an_invitation(super::spawn_dynamodb().await).await;
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The headers every page is sent with.
fn assert_page_headers(h: &HeaderMap, what: &str) {
    assert_eq!(
        header(h, "content-type"),
        "text/html; charset=utf-8",
        "{what}"
    );
    assert_eq!(header(h, "cache-control"), "no-store", "{what}");
    assert_eq!(header(h, "referrer-policy"), "no-referrer", "{what}");
    let csp = header(h, "content-security-policy");
    for part in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "style-src 'sha256-",
    ] {
        assert!(csp.contains(part), "{what}: {csp}");
    }
    assert!(
        !csp.contains("script-src") && !csp.contains("unsafe"),
        "{what}: {csp}"
    );
}

async fn version_of(app: &TestApp, id: &str) -> u64 {
    let user: Value = app
        .admin(Method::GET, &format!("/users/{id}"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    user["version"].as_u64().expect("version")
}

async fn opening_an_invitation(app: TestApp) {
    let (id, token) = app.invite_customer("scanned@example.com").await;
    let path = format!("/invitations/{token}");

    // A mail scanner (or the person, twice) opens the link: a page, the
    // same JSON as ever to API clients, and nothing changes.
    for _ in 0..3 {
        let r = app
            .anonymous(Method::GET, &path)
            .header(ACCEPT, BROWSER)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_page_headers(r.headers(), "invitation page");
        let html = r.text().await.unwrap();
        assert!(html.contains("Tenant Admin has invited you"), "{html}");
        assert!(
            html.contains(&format!("action=\"{}{path}/accept\"", app.running.url())),
            "{html}"
        );
        let r = app
            .anonymous(Method::GET, &path)
            .header(ACCEPT, "*/*")
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            (body["state"].as_str(), body["inviter_name"].as_str()),
            (Some("pending"), Some("Tenant Admin"))
        );
    }
    assert_eq!(
        version_of(&app, &id).await,
        1,
        "opening the link changed the user"
    );
    let subject = format!("dev|{id}");
    assert!(
        peak_domain::identity::IdentityProvider::get_user(app.running.local_idp.as_ref(), &subject)
            .await
            .unwrap()
            .is_none(),
        "opening the link created a login at the identity provider"
    );

    // The page's button: a form post, answered with 303 to the password page.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirects
        .post(format!("{}{path}/accept", app.running.url()))
        .header(ACCEPT, BROWSER)
        .header(CONTENT_TYPE, FORM)
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_page_headers(r.headers(), "303");
    let location = header(r.headers(), "location");
    assert!(
        location.starts_with(&format!(
            "{}/dev-idp/set-password?ticket=",
            app.running.url()
        )),
        "{location}"
    );
    assert_eq!(
        version_of(&app, &id).await,
        2,
        "the form post accepted once"
    );
    // An API client's POST works as it always did.
    let r = app
        .anonymous(Method::POST, &format!("{path}/accept"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["password_setup_url"]
            .as_str()
            .is_some_and(|u| u.contains("ticket=")),
        "{body}"
    );
}

fn link_of(mail: &OutboxEmail) -> String {
    mail.data["link"].as_str().expect("link").to_owned()
}

async fn mails(app: &TestApp, id: &str, kind: EmailKind) -> Vec<OutboxEmail> {
    app.my_outbox()
        .await
        .into_iter()
        .filter(|m| m.user_id.as_str() == id && m.kind == kind)
        .collect()
}

#[tokio::test]
async fn email_change_links_offer_confirming_only_while_it_can_work() {
    let app = spawn_sqlite().await;
    let (id, _) = app.seed_user("customer", &["ACME"], &[], &[]).await;
    let new = "renamed@example.com";
    let r = app
        .admin(Method::PATCH, &format!("/users/{id}"))
        .header("if-match", "\"1\"")
        .json(&json!({ "email": new }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let link = link_of(&mails(&app, &id, EmailKind::EmailChangeVerification).await[0]);
    let token = link.rsplit('/').next().unwrap().to_owned();
    let path = format!("/email-verifications/{token}");
    let browser = |m: Method, p: &str| app.anonymous(m, p).header(ACCEPT, BROWSER);

    // Bogus links: no offer to confirm, neither as JSON nor as a page.
    let bogus = [
        format!(
            "/email-verifications/{}.{}.{}",
            app.tenant,
            id,
            "x".repeat(43)
        ),
        format!(
            "/email-verifications/{}.{}.whatever",
            app.tenant,
            ulid::Ulid::new()
        ),
        "/email-verifications/nonsense".to_owned(),
    ];
    for b in &bogus {
        let r = app.anonymous(Method::GET, b).send().await.unwrap();
        assert!(
            matches!(r.status().as_u16(), 404 | 410),
            "{b}: {}",
            r.status()
        );
        let r = browser(Method::GET, b).send().await.unwrap();
        assert_eq!(r.status(), 404, "{b}");
        let html = r.text().await.unwrap();
        assert!(
            html.contains("This link is not valid") && !html.contains("<form"),
            "{b}: {html}"
        );
    }

    // The real link: a page with one button; opening it changes nothing.
    let r = browser(Method::GET, &path).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_page_headers(r.headers(), "confirm page");
    let html = r.text().await.unwrap();
    assert!(
        html.contains(&format!("<form method=\"post\" action=\"{link}\">")),
        "{html}"
    );
    let r = app.anonymous(Method::GET, &path).send().await.unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["state"], "pending", "{body}");
    assert_eq!(version_of(&app, &id).await, 2);

    // The button: a done page that leads to the portal's sign-in.
    let r = browser(Method::POST, &path)
        .header(CONTENT_TYPE, FORM)
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Your new email address is confirmed"),
        "{html}"
    );
    assert!(
        html.contains(&format!("href=\"{}/dev-portal\"", app.running.url())),
        "{html}"
    );
    let user: Value = app
        .admin(Method::GET, &format!("/users/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(user["email"], new);

    // Used: the page offers nothing; the API says it was used.
    let r = browser(Method::GET, &path).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(!r.text().await.unwrap().contains("<form"));
    problem(app.anonymous(Method::GET, &path).send().await.unwrap(), 410).await;
    let r = browser(Method::POST, &path)
        .header(CONTENT_TYPE, FORM)
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "confirming again shows the not-valid page");
}

/// Every `href` of an HTML email.
fn hrefs(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|h| h.replace("&amp;", "&"))
        .collect()
}

#[tokio::test]
async fn every_link_in_every_email_opens_a_page_a_person_can_use() {
    let app = spawn_sqlite().await;
    let (invited, _) = app.invite_customer("links.invited@example.com").await;
    let r = app
        .admin(Method::POST, &format!("/users/{invited}/invitation/resend"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (active, subject) = {
        let (id, token) = app.invite_customer("links.active@example.com").await;
        (id, app.activate(&token).await)
    };
    let _ = subject;
    for (path, if_match) in [(format!("/users/{active}"), "\"3\"")] {
        let r = app
            .admin(Method::PATCH, &path)
            .header("if-match", if_match)
            .json(&json!({ "email": "links.moved@example.com" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    let r = app
        .admin(Method::POST, &format!("/users/{active}/password-reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    let state = &app.running.state;
    let api_root = app.running.url();
    let mut seen = std::collections::BTreeSet::new();
    for mail in app.my_outbox().await {
        // A reset's link is the identity provider's, made when sending.
        let link = match mail.kind {
            EmailKind::PasswordReset => {
                let tenant = mail.tenant_id.clone();
                let user = state
                    .users
                    .get_user(&tenant, &mail.user_id)
                    .await
                    .unwrap()
                    .unwrap();
                let subject = user.idp_subject.clone().unwrap();
                Some(
                    state
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
                        .unwrap(),
                )
            }
            _ => None,
        };
        let brand = state.brands.for_tenant(&mail.tenant_id);
        let email = peak_email::render(&mail, brand, link.as_deref()).unwrap();
        for href in hrefs(&email.html) {
            let trimmed = href.trim_end_matches('/');
            assert_ne!(trimmed, api_root, "{:?} links the bare API root", mail.kind);
            let r = app
                .http
                .get(&href)
                .header(ACCEPT, BROWSER)
                .send()
                .await
                .unwrap();
            // An old email's link still opens a page: the first invitation
            // of a resent one says it was replaced (404), the invitation of
            // the user who joined since says to sign in (410).
            let expected = match (mail.kind, href.contains("/invitations/")) {
                (EmailKind::Invitation, true) if mail.user_id.as_str() == invited => 404,
                (EmailKind::Invitation, true) if mail.user_id.as_str() == active => 410,
                _ => 200,
            };
            assert_eq!(r.status(), expected, "{:?}: {href}", mail.kind);
            assert!(
                header(r.headers(), "content-type").starts_with("text/html"),
                "{:?}: {href} is not a page",
                mail.kind
            );
            seen.insert(format!("{:?}", mail.kind));
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        [
            "EmailChangeNotice",
            "EmailChangeVerification",
            "Invitation",
            "InvitationResent",
            "PasswordReset"
        ]
    );
}

#[tokio::test]
async fn preflights_answer_as_the_http_apis_cors_configuration() {
    let app = spawn_sqlite_with(StartOptions {
        portal_origins: peak_api::cors::PortalOrigins::parse("https://portal.example").unwrap(),
        ..StartOptions::default()
    })
    .await;
    let preflight = |origin: &str| {
        app.anonymous(Method::OPTIONS, "/users/01ARZ3NDEKTSV4RRFFQ69G5FAV")
            .header("origin", origin)
            .header("access-control-request-method", "PATCH")
            .header(
                "access-control-request-headers",
                "authorization,if-match,content-type",
            )
            .send()
    };
    let r = preflight("https://portal.example").await.unwrap();
    assert_eq!(r.status(), 204);
    let h = r.headers();
    assert_eq!(
        header(h, "access-control-allow-origin"),
        "https://portal.example"
    );
    assert_eq!(
        header(h, "access-control-allow-methods"),
        "GET,POST,PATCH,PUT,DELETE"
    );
    assert_eq!(
        header(h, "access-control-allow-headers"),
        "authorization,content-type,if-match,idempotency-key"
    );
    assert_eq!(header(h, "access-control-allow-credentials"), "");
    let r = preflight("https://elsewhere.example").await.unwrap();
    assert_eq!(header(r.headers(), "access-control-allow-origin"), "");

    let r = app
        .as_role("customer", Method::GET, "/me")
        .header("origin", "https://portal.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(r.headers(), "access-control-allow-origin"),
        "https://portal.example"
    );
    assert_eq!(
        header(r.headers(), "access-control-expose-headers"),
        "etag,location,x-request-id,retry-after"
    );
}
