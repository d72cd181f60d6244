//! A request that sends no `If-Match` set no precondition, so it never gets
//! 412 `stale_version`: when a concurrent edit moves the user between its
//! read and its write, it reads again and reapplies itself (or, if it keeps
//! losing, answers 409 `conflict`). 412 is only the answer to an `If-Match`
//! the client sent. Raced here: an edit (with `If-Match`) against resend,
//! revoke and delete (without), on both stores.

use peak_tests::{TestApp, spawn_dynamodb, spawn_sqlite};
use reqwest::Method;
use serde_json::{Value, json};

const ROUNDS: usize = 10;
/// Edits with `If-Match` per round (one wins, the others are stale).
const EDITS: usize = 3;

async fn status_and_code(req: reqwest::RequestBuilder) -> (u16, String) {
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (status, body["code"].as_str().unwrap_or("").to_owned())
}

async fn unconditional_writes_never_answer_412(app: TestApp) {
    let ops: [(&str, Method, &str, u16); 3] = [
        ("resend", Method::POST, "/invitation/resend", 200),
        ("revoke", Method::POST, "/invitation/revoke", 200),
        ("delete", Method::DELETE, "", 204),
    ];
    let mut answers = Vec::new();
    for round in 0..ROUNDS {
        for (name, method, suffix, _) in &ops {
            let email = format!("race.{name}.{round}.{}@acme.example", ulid::Ulid::new());
            let (id, _) = app.invite_customer(&email).await;
            let edits = (0..EDITS).map(|i| {
                status_and_code(
                    app.admin(Method::PATCH, &format!("/users/{id}"))
                        .header("if-match", "\"1\"")
                        .json(&json!({ "first_name": format!("Edit{i}") })),
                )
            });
            let op = status_and_code(app.admin(method.clone(), &format!("/users/{id}{suffix}")));
            let (op, _) = tokio::join!(op, futures_join_all(edits));
            answers.push((*name, op));
        }
    }
    let stale: Vec<_> = answers.iter().filter(|(_, (s, _))| *s == 412).collect();
    for (name, (status, code)) in &answers {
        let ok = ops.iter().find(|o| o.0 == *name).map(|o| o.3);
        assert!(
            Some(*status) == ok || (*status, code.as_str()) == (409, "conflict") || *status == 412,
            "{name}: {status} {code}"
        );
    }
    assert!(
        stale.is_empty(),
        "{} of {} requests without If-Match got 412: {stale:?}",
        stale.len(),
        answers.len()
    );
}

/// Runs the futures at the same time (no extra crate for `join_all`).
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let tasks: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconditional_writes_never_answer_412_on_sqlite() {
    unconditional_writes_never_answer_412(spawn_sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconditional_writes_never_answer_412_on_dynamodb() {
    unconditional_writes_never_answer_412(spawn_dynamodb().await).await;
}
