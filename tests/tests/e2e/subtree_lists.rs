//! A user list that covers an account and everything below it
//! (`GET /users?under=X`), and a non-admin's whole reach when they name no
//! account, on both stores: a rep serving a parent account sees its, its
//! child's and its grandchild's customer users — each once, paged — and
//! not a sibling's; `under=` an account they do not serve is refused as
//! `account=` is; a customer's list stays on their own accounts; and one
//! list covers at most 50 accounts.

use peak_tests::{TestApp, problem};
use reqwest::Method;
use std::collections::BTreeSet;

on_both_stores!(
    a_rep_lists_a_subtree_or_their_whole_reach,
    a_customer_lists_their_own_accounts_only,
    one_list_covers_at_most_50_accounts,
);

/// ROOT above PARENT (above CHILD, above GRAND) and SIBLING; OTHER another
/// company.
async fn tree(app: &TestApp) {
    for (number, parent) in [
        ("ROOT", None),
        ("PARENT", Some("ROOT")),
        ("CHILD", Some("PARENT")),
        ("GRAND", Some("CHILD")),
        ("SIBLING", Some("ROOT")),
        ("OTHER", None),
    ] {
        app.seed_account(number, number, parent).await;
    }
}

async fn customer(app: &TestApp, accounts: &[&str]) -> String {
    app.seed_user("customer", accounts, &[], &[]).await.0
}

/// Every page of `path` at 2 per page: the users' ids, each once.
async fn ids(app: &TestApp, token: &str, path: &str) -> BTreeSet<String> {
    let items = app.all_items(token, &format!("{path}&limit=2")).await;
    let ids: Vec<String> = items
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(set.len(), ids.len(), "{path}: a user listed twice");
    let names: Vec<&str> = items
        .iter()
        .map(|u| u["last_name"].as_str().unwrap())
        .collect();
    assert!(names.is_sorted(), "{path}: not in name order: {names:?}");
    set
}

fn set(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).clone()).collect()
}

async fn status(app: &TestApp, token: &str, path: &str) -> u16 {
    app.with_token(token, Method::GET, path)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn a_rep_lists_a_subtree_or_their_whole_reach(app: TestApp) {
    tree(&app).await;
    let admin = app.token("admin");
    let root = customer(&app, &["ROOT"]).await;
    let parent = customer(&app, &["PARENT"]).await;
    let child = customer(&app, &["CHILD"]).await;
    let grand = customer(&app, &["GRAND"]).await;
    let both = customer(&app, &["PARENT", "GRAND"]).await;
    let sibling = customer(&app, &["SIBLING"]).await;
    let other = customer(&app, &["OTHER"]).await;
    let (colleague, _) = app.seed_user("sales_rep", &["PARENT"], &[], &[]).await;
    let (rep_id, rep) = app
        .seed_user(
            "sales_rep",
            &["PARENT", "OTHER"],
            &[("my_customers.customer_users", "view")],
            &[],
        )
        .await;

    // The subtree: parent, child and grandchild, the user on two of them
    // once; customer users only; not the sibling's or the root's.
    assert_eq!(
        ids(&app, &rep, "/users?under=PARENT").await,
        set(&[&parent, &child, &grand, &both])
    );
    assert_eq!(
        ids(&app, &rep, "/users?under=CHILD").await,
        set(&[&child, &grand, &both])
    );
    // `account=` is still one account.
    assert_eq!(
        ids(&app, &rep, "/users?account=PARENT").await,
        set(&[&parent, &both])
    );
    // No parameter: the whole reach (before: 422, choose an account).
    assert_eq!(
        ids(&app, &rep, "/users?role=customer").await,
        set(&[&parent, &child, &grand, &both, &other])
    );
    // Filters still apply within the subtree.
    assert_eq!(
        ids(&app, &rep, "/users?under=PARENT&role=sales_rep").await,
        BTreeSet::new()
    );

    // Not theirs: refused as `account=` is.
    for path in [
        "/users?under=SIBLING",
        "/users?account=SIBLING",
        "/users?under=ROOT",
        "/users?under=NOPE",
    ] {
        problem(
            app.with_token(&rep, Method::GET, path)
                .send()
                .await
                .unwrap(),
            403,
        )
        .await;
    }
    problem(
        app.with_token(&rep, Method::GET, "/users?account=PARENT&under=PARENT")
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
    problem(
        app.with_token(&rep, Method::GET, "/users?under=")
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;

    // An admin names any account, sees every role; an unknown one is an
    // empty list, as `account=` is.
    assert_eq!(
        ids(&app, &admin, "/users?under=ROOT").await,
        set(&[
            &root, &parent, &child, &grand, &both, &sibling, &colleague, &rep_id
        ])
    );
    assert_eq!(
        ids(&app, &admin, "/users?under=NOPE").await,
        BTreeSet::new()
    );
    assert_eq!(status(&app, &admin, "/users?under=NOPE").await, 200);
}

/// Customers do not get child accounts: `under=` one of their accounts is
/// that account; with no parameter, all of their own accounts at once.
async fn a_customer_lists_their_own_accounts_only(app: TestApp) {
    tree(&app).await;
    let parent = customer(&app, &["PARENT"]).await;
    let _child = customer(&app, &["CHILD"]).await;
    let sibling = customer(&app, &["SIBLING"]).await;
    let _other = customer(&app, &["OTHER"]).await;
    let (me, token) = app
        .seed_user(
            "customer",
            &["PARENT", "SIBLING"],
            &[("my_account.account_users", "view")],
            &[],
        )
        .await;
    assert_eq!(
        ids(&app, &token, "/users?role=customer").await,
        set(&[&parent, &sibling, &me])
    );
    assert_eq!(
        ids(&app, &token, "/users?under=PARENT").await,
        set(&[&parent, &me])
    );
    assert_eq!(status(&app, &token, "/users?under=CHILD").await, 403);
    assert_eq!(status(&app, &token, "/users?under=ROOT").await, 403);
}

/// TOP above BIG (49 children: 50 accounts, one list) and EXTRA: 52
/// accounts are over the bound.
async fn one_list_covers_at_most_50_accounts(app: TestApp) {
    app.seed_account("TOP", "TOP", None).await;
    app.seed_account("BIG", "BIG", Some("TOP")).await;
    app.seed_account("EXTRA", "EXTRA", Some("TOP")).await;
    for i in 0..49 {
        let number = format!("B{i:02}");
        app.seed_account(&number, &number, Some("BIG")).await;
    }
    let admin = app.token("admin");
    let b07 = customer(&app, &["B07"]).await;
    let big = customer(&app, &["BIG"]).await;
    let _extra = customer(&app, &["EXTRA"]).await;
    let view = [("my_customers.customer_users", "view")];
    let (_, rep) = app.seed_user("sales_rep", &["TOP"], &view, &[]).await;
    for (token, path) in [
        (&rep, "/users?role=customer"),
        (&rep, "/users?under=TOP"),
        (&admin, "/users?under=TOP"),
    ] {
        let body = problem(
            app.with_token(token, Method::GET, path)
                .send()
                .await
                .unwrap(),
            422,
        )
        .await;
        assert!(
            body.to_string().contains("more than 50 accounts"),
            "{path}: {body}"
        );
    }
    // Exactly 50: one list.
    assert_eq!(
        ids(&app, &rep, "/users?under=BIG").await,
        set(&[&b07, &big])
    );
    assert_eq!(ids(&app, &rep, "/users?under=B07").await, set(&[&b07]));
    let (_, rep50) = app.seed_user("sales_rep", &["BIG"], &view, &[]).await;
    assert_eq!(
        ids(&app, &rep50, "/users?role=customer").await,
        set(&[&b07, &big])
    );
}
