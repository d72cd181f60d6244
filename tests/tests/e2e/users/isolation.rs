//! Tenant isolation: another tenant's admin reaches none of this tenant's
//! users, lists never mix, and a tenant claim does not carry a subject
//! across.

use super::{ACC_A, all_items, ids_of, invitation, invite_as_admin, new_profile};
use super::{other_tenant_with_user, quoted, read_user, send, unique_email};
use peak_tests::TestApp;
use reqwest::Method;
use serde_json::json;

on_both_stores!(tenant_isolation,);

async fn tenant_isolation(app: TestApp) {
    let subject = format!("auth0|t1-only-{}", ulid::Ulid::new());
    let t1_active = app
        .seed_user_with_subject(&subject, "customer", &[ACC_A], &[], &[])
        .await;
    let profile = new_profile(&app, "Invitees").await;
    let shared_email = unique_email("shared");
    let t1_invited = invite_as_admin(
        &app,
        &invitation(
            "Tess",
            "Tenantone",
            &shared_email,
            "customer",
            &[ACC_A],
            &profile,
        ),
    )
    .await
    .id();
    let (t2, t2_admin, t2_user, _) = other_tenant_with_user(&app, &unique_email("t2")).await;
    let t1_admin = app.token("admin");
    let t1_ids = [t1_active.clone(), t1_invited.clone()];

    // Every /users/{id} route on T1's users, as T2's admin: not found.
    let mut wrong = Vec::new();
    for id in &t1_ids {
        let (before, _) = read_user(&app, &t1_admin, id).await.expect("T1 user");
        let path = format!("/users/{id}");
        let routes = [
            (Method::GET, path.clone()),
            (Method::PATCH, path.clone()),
            (Method::DELETE, path.clone()),
            (Method::POST, format!("{path}/suspend")),
            (Method::POST, format!("{path}/enable")),
            (Method::POST, format!("{path}/password-reset")),
            (Method::POST, format!("{path}/invitation/resend")),
            (Method::POST, format!("{path}/invitation/revoke")),
            (Method::GET, format!("{path}/audit")),
        ];
        for (method, route) in routes {
            let mut req = app
                .with_token(&t2_admin, method.clone(), &route)
                .header("if-match", quoted(before));
            if method == Method::PATCH {
                req = req.json(&json!({"first_name": "Pwned"}));
            }
            let r = send(req).await;
            if (r.status, r.code()) != (404, "not_found") {
                wrong.push(format!("{method} {route}: {} {}", r.status, r.text));
            }
        }
        let (after, _) = read_user(&app, &t1_admin, id)
            .await
            .expect("T1 user survives");
        if after != before {
            wrong.push(format!("T1 user {id} changed: v{before} → v{after}"));
        }
    }

    // The same address may be a user in both tenants; lists never mix.
    let t2_profile = send(app.with_token(&t2_admin, Method::GET, "/profiles"))
        .await
        .body["items"][0]["id"]
        .as_str()
        .expect("T2 profile")
        .to_owned();
    let r = send(
        app.with_token(&t2_admin, Method::POST, "/users")
            .json(&invitation(
                "Tess",
                "Tenanttwo",
                &shared_email,
                "customer",
                &[ACC_A],
                &t2_profile,
            )),
    )
    .await;
    assert_eq!(
        r.status, 201,
        "the same address in another tenant: {}",
        r.text
    );
    let t2_shared = r.id();
    let t2_ids = [t2_user.clone(), t2_shared.clone()];
    for query in [
        "/users".to_owned(),
        format!("/users?account={ACC_A}"),
        format!("/users?email={shared_email}"),
        "/users?q=tenant".to_owned(),
        "/users?status=invited".to_owned(),
        "/users?role=customer".to_owned(),
    ] {
        let t1_list = ids_of(&all_items(&app, &t1_admin, &query, None).await);
        if t1_list.iter().any(|id| t2_ids.contains(id)) {
            wrong.push(format!("T1 {query} lists a T2 user: {t1_list:?}"));
        }
        let t2_list = ids_of(&all_items(&app, &t2_admin, &query, None).await);
        if t2_list.iter().any(|id| t1_ids.contains(id)) {
            wrong.push(format!("T2 {query} lists a T1 user: {t2_list:?}"));
        }
    }
    let by_email = ids_of(
        &all_items(
            &app,
            &t1_admin,
            &format!("/users?email={shared_email}"),
            None,
        )
        .await,
    );
    if by_email != [t1_invited.clone()] {
        wrong.push(format!(
            "T1 ?email= shows {by_email:?}, not just its own user"
        ));
    }

    // T2's tenant claim with a T1 user's subject: nobody there.
    let crossed = app.running.token(&t2, &subject, "admin").expect("token");
    for route in [
        "/me".to_owned(),
        format!("/users/{t1_active}"),
        "/users".to_owned(),
    ] {
        let r = send(app.with_token(&crossed, Method::GET, &route)).await;
        if (r.status, r.code()) != (403, "unknown_user") {
            wrong.push(format!(
                "T2 claim + T1 subject, GET {route}: {} {}",
                r.status, r.text
            ));
        }
    }
    // …while the same subject in its own tenant is fine.
    let own = app
        .running
        .token(&app.tenant, &subject, "customer")
        .expect("token");
    let r = send(app.with_token(&own, Method::GET, "/me")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["id"], t1_active.as_str());

    assert!(
        wrong.is_empty(),
        "tenant isolation broken:\n{}",
        wrong.join("\n")
    );
}
