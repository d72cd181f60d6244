//! An expired invitation says so distinctly, cannot be accepted, and never
//! blocks a fresh invite of the same address. Time is moved by running the
//! use cases with a later `now` against the same store the server uses.

use peak_domain::Error;
use peak_domain::users::{self, InviteRequest};
use peak_tests::{TestApp, spawn_dynamodb, spawn_sqlite};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn expired_invitation_on_sqlite() {
    expired_invitation_says_so_and_never_blocks_a_fresh_invite(spawn_sqlite().await).await;
}

#[tokio::test]
async fn expired_invitation_on_dynamodb() {
    expired_invitation_says_so_and_never_blocks_a_fresh_invite(spawn_dynamodb().await).await;
}

async fn expired_invitation_says_so_and_never_blocks_a_fresh_invite(app: TestApp) {
    app.seed_accounts(&["ACME"]).await;
    let standard = app
        .all_items(&app.token("admin"), "/profiles")
        .await
        .into_iter()
        .find(|p| p["name"] == "Standard")
        .expect("Standard profile");
    let body = json!({
        "first_name": "Grace", "last_name": "Hopper", "email": "grace@example.com",
        "role": "customer", "profile_id": standard["id"], "customer_accounts": ["ACME"]
    });
    let resp = app
        .admin(Method::POST, "/users")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let user: Value = resp.json().await.unwrap();
    let mail = app
        .my_outbox()
        .await
        .into_iter()
        .find(|m| m.user_id.as_str() == user["id"])
        .expect("invitation email");
    let token = mail.data["link"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();

    // Eight days later (the default lifetime is seven).
    let state = &app.running.state;
    let mut later = state.ctx("expiry-test");
    later.now += time::Duration::days(8);
    let expired = |r: Result<_, Error>| {
        matches!(
            r,
            Err(Error::Gone {
                code: "invitation_expired",
                ..
            })
        )
    };
    let seen = users::view_invitation(&later, &token)
        .await
        .expect("view")
        .expect("the link is known");
    assert_eq!(seen.state, users::LinkState::Expired);
    assert_eq!(seen.inviter_name.as_deref(), Some("Tenant Admin"));
    assert!(expired(
        users::accept_invitation(&later, state.idp.as_ref(), &token)
            .await
            .map(|_| ())
    ));

    // Today the same link still works, and re-inviting a pending address is a conflict.
    let resp = app
        .anonymous(Method::GET, &format!("/invitations/{token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = app
        .admin(Method::POST, "/users")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);

    // Once expired, a fresh invite goes through: same user, new link, old link dead.
    let tenant = peak_domain::TenantId::parse(&app.tenant).unwrap();
    let admin = users::resolve_actor(&later, &tenant, "auth0|admin")
        .await
        .expect("admin");
    let request: InviteRequest = serde_json::from_value(body.clone()).unwrap();
    let again = users::invite(&later, &admin, request)
        .await
        .expect("re-invite after expiry");
    assert_eq!(again.id.as_str(), user["id"].as_str().unwrap());
    assert_eq!(
        users::view_invitation(&later, &token).await,
        Ok(None),
        "the replaced link is unknown"
    );
    let fresh = app
        .my_outbox()
        .await
        .into_iter()
        .filter(|m| m.user_id == again.id)
        .map(|m| {
            m.data["link"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned()
        })
        .find(|t| *t != token)
        .expect("a second invitation email");
    let seen = users::view_invitation(&later, &fresh)
        .await
        .expect("view")
        .expect("the fresh link is known");
    assert_eq!(seen.state, users::LinkState::Pending);
}
