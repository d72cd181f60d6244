//! Issue 5's end-to-end promise, through every real part: an invite made
//! over HTTP produces exactly one SES message (moto's server) to the right
//! address; the link in that message, followed, accepts the invitation and
//! leads to the password page that activates the user; sending again (a
//! redelivered stream record, a second sweep) sends nothing more.

use peak_email::{Brand, Brands};
use peak_mailer::{Mailer, SesSender};
use peak_tests::{TestApp, spawn_dynamodb, spawn_sqlite};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;

const FROM: &str = "no-reply@portal.example";

fn ses_endpoint() -> String {
    std::env::var("SES_ENDPOINT").unwrap_or_else(|_| {
        panic!("moto is not running: start it with `scripts/moto.sh start` and export SES_ENDPOINT, or run scripts/test.sh")
    })
}

async fn messages_to(to: &str) -> Vec<Value> {
    let url = format!(
        "{}/moto-api/data.json",
        ses_endpoint().trim_end_matches('/')
    );
    let data: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| {
            m["destinations"]["ToAddresses"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == to))
        })
        .collect()
}

#[tokio::test]
async fn invitation_email_over_ses_on_sqlite() {
    invitation_email_over_ses(spawn_sqlite().await).await;
}

#[tokio::test]
async fn invitation_email_over_ses_on_dynamodb() {
    invitation_email_over_ses(spawn_dynamodb().await).await;
}

async fn invitation_email_over_ses(app: TestApp) {
    app.seed_accounts(&["ACME"]).await;
    ses_endpoint();
    let sender = SesSender::from_env().await;
    sender
        .client()
        .create_email_identity()
        .email_identity(FROM)
        .send()
        .await
        .expect("sender identity in moto");
    let brands = Brands::new(Brand {
        name: "Acme Portal".into(),
        sender: format!("Acme Portal <{FROM}>"),
        reply_to: None,
        portal_url: app.running.url(),
        accent_color: None,
    });
    let mailer = Mailer::new(
        app.stores.users.clone(),
        app.stores.users.clone(),
        app.stores.tenants.clone(),
        Arc::new(sender),
        brands,
        app.running.state.idp.clone(),
    );

    let to = format!(
        "ada.{}@example.com",
        ulid::Ulid::new().to_string().to_lowercase()
    );
    let standard = app
        .all_items(&app.token("admin"), "/profiles")
        .await
        .into_iter()
        .find(|p| p["name"] == "Standard")
        .expect("Standard profile");
    let resp = app
        .admin(Method::POST, "/users")
        .json(
            &json!({"first_name": "Ada", "last_name": "Lovelace", "email": to, "role": "customer",
                       "profile_id": standard["id"], "customer_accounts": ["ACME"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let user: Value = resp.json().await.unwrap();

    mailer.drain_once(100).await.expect("drain");
    let sent = messages_to(&to).await;
    assert_eq!(sent.len(), 1, "exactly one message to the invitee");
    // Sending again — a redelivered stream record or the next sweep — sends nothing.
    mailer.drain_once(100).await.expect("drain");
    for mail in app.my_outbox().await {
        let _ = mailer.deliver(&mail.tenant_id, &mail.id).await;
    }
    assert_eq!(messages_to(&to).await.len(), 1, "no second message");

    // The link in the message, followed, accepts the invitation.
    let body = sent[0]["body"]
        .as_str()
        .or(sent[0]["text_part"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| sent[0].to_string());
    let prefix = format!("{}/invitations/", app.running.url());
    let start = body
        .find(&prefix)
        .expect("the invitation link is in the message");
    let link: String = body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "-_:/.".contains(*c))
        .collect();
    let resp = app.http.get(&link).send().await.unwrap();
    assert_eq!(resp.status(), 200, "opening the link");
    let resp = app
        .http
        .post(format!("{link}/accept"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "accepting");
    let setup: Value = resp.json().await.unwrap();
    let ticket =
        peak_local::LocalIdentityProvider::ticket_of(setup["password_setup_url"].as_str().unwrap())
            .unwrap();
    app.running
        .local_idp
        .set_password(&app.running.state, ticket, "correct horse battery")
        .await
        .unwrap();
    let now: Value = app
        .admin(
            Method::GET,
            &format!("/users/{}", user["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(now["status"], "active");
}
