//! Edits racing on one version: exactly one wins.

use super::unique_email;
use super::{ACC_A, Reply, invitation, invite_as_admin, new_profile, read_user, send};
use peak_tests::TestApp;
use reqwest::Method;
use serde_json::json;

on_both_stores!(concurrent_edits_with_one_version,);

async fn concurrent_edits_with_one_version(app: TestApp) {
    let profile = new_profile(&app, "Invitees").await;
    let email = unique_email("edits");
    let id = invite_as_admin(
        &app,
        &invitation("Eddie", "Edits", &email, "customer", &[ACC_A], &profile),
    )
    .await
    .id();
    let path = format!("/users/{id}");
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let req = app
                .admin(Method::PATCH, &path)
                .header("if-match", "\"1\"")
                .json(&json!({"first_name": format!("Editor{i}")}));
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
    let won: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
    assert_eq!(won.len(), 1, "exactly one 200: {summary:?}");
    assert_eq!(
        replies
            .iter()
            .filter(|r| r.status == 412 && r.code() == "stale_version")
            .count(),
        19,
        "19 × 412 stale_version: {summary:?}"
    );
    let winner = won[0].body["first_name"].as_str().expect("name").to_owned();
    let (version, now) = read_user(&app, &app.token("admin"), &id)
        .await
        .expect("user");
    assert_eq!(version, 2);
    assert_eq!(now["first_name"], winner.as_str());
}
