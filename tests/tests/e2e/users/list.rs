//! `GET /users`: every filter and search against the full list, cursor
//! pages, and bad filters named.

use super::{ACC_A, ACC_B, ACC_C, all_ids, all_items, ids_of, invitation, invite_as_admin};
use super::{new_profile, send};
use peak_tests::TestApp;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;

on_both_stores!(list_filters_and_search, bad_list_filters_are_named,);

#[derive(Clone, Copy)]
enum Order {
    /// By "last first" (lowercased), then id.
    Name,
    /// By the lowercased email, then id.
    Email,
}

/// Checks list queries against the full list: a filtered list holds exactly
/// the users of the full list that match, in the list's order; and of the
/// users made by the test, exactly the expected ones.
struct Lister<'a> {
    app: &'a TestApp,
    token: String,
    everyone: Vec<Value>,
    mine: Vec<String>,
}

fn name_key(u: &Value) -> String {
    format!(
        "{} {}",
        u["last_name"].as_str().unwrap_or("").to_lowercase(),
        u["first_name"].as_str().unwrap_or("").to_lowercase()
    )
}

fn text(u: &Value, field: &str) -> String {
    u[field].as_str().unwrap_or("").to_owned()
}

impl Lister<'_> {
    async fn check(
        &self,
        query: &str,
        matches: impl Fn(&Value) -> bool,
        order: Order,
        expected_mine: &[&String],
    ) {
        let got = ids_of(&all_items(self.app, &self.token, query, None).await);
        let mut want: Vec<&Value> = self.everyone.iter().filter(|u| matches(u)).collect();
        match order {
            Order::Name => want.sort_by_key(|u| (name_key(u), text(u, "id"))),
            Order::Email => want.sort_by_key(|u| (text(u, "email").to_lowercase(), text(u, "id"))),
        }
        let want: Vec<String> = want.iter().map(|u| text(u, "id")).collect();
        assert_eq!(got, want, "{query}: the matching users, in order");
        let got_mine: BTreeSet<&String> = got.iter().filter(|id| self.mine.contains(id)).collect();
        let expected: BTreeSet<&String> = expected_mine.iter().copied().collect();
        assert_eq!(got_mine, expected, "{query}: of the users made here");
    }
}

async fn list_filters_and_search(app: TestApp) {
    let admin = app.token("admin");
    let p1 = new_profile(&app, "Retail").await;
    let p2 = new_profile(&app, "Wholesale").await;
    /// first, last, email, role, accounts, profile
    type Person<'a> = (&'a str, &'a str, &'a str, &'a str, &'a [&'a str], &'a str);
    let people: [Person; 5] = [
        (
            "Ada",
            "Lovelace",
            "lst-ada@example.com",
            "customer",
            &[ACC_A],
            &p1,
        ),
        (
            "Alan",
            "Turing",
            "lst-alan@example.com",
            "customer",
            &[ACC_B],
            &p2,
        ),
        (
            "Grace",
            "Hopper",
            "lst-grace@example.org",
            "sales_rep",
            &[ACC_A, ACC_B],
            &p1,
        ),
        (
            "Linus",
            "Lovell",
            "lst-linus@example.com",
            "partner",
            &[],
            &p2,
        ),
        (
            "Barbara",
            "Liskov",
            "lst-barbara@example.net",
            "customer",
            &[ACC_A],
            &p1,
        ),
    ];
    let mut ids = Vec::new();
    for (first, last, email, role, accounts, profile) in people {
        let body = invitation(first, last, email, role, accounts, profile);
        ids.push(invite_as_admin(&app, &body).await.id());
    }
    let (active, _) = app.seed_user("customer", &[ACC_C], &[], &[]).await;
    let (suspended, _) = app.seed_user("customer", &[ACC_C], &[], &[]).await;
    let r = send(app.admin(Method::POST, &format!("/users/{suspended}/suspend"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let [ada, alan, grace, linus, barbara] = [0, 1, 2, 3, 4].map(|i| ids[i].clone());
    ids.extend([active.clone(), suspended.clone()]);

    // The tenant's seeded users are in the lists too: compare with the full list.
    let everyone = all_items(&app, &admin, "/users", None).await;
    let l = Lister {
        app: &app,
        token: admin.clone(),
        everyone,
        mine: ids.clone(),
    };
    let all_mine: Vec<&String> = ids.iter().collect();
    l.check("/users", |_| true, Order::Name, &all_mine).await;

    // Status.
    let status = |s: &'static str| move |u: &Value| u["status"] == s;
    let invited = [&ada, &alan, &grace, &linus, &barbara];
    l.check(
        "/users?status=invited",
        status("invited"),
        Order::Name,
        &invited,
    )
    .await;
    l.check(
        "/users?status=active",
        status("active"),
        Order::Name,
        &[&active],
    )
    .await;
    l.check(
        "/users?status=suspended",
        status("suspended"),
        Order::Name,
        &[&suspended],
    )
    .await;
    // Role.
    let role = |r: &'static str| move |u: &Value| u["role"] == r;
    l.check(
        "/users?role=sales_rep",
        role("sales_rep"),
        Order::Name,
        &[&grace],
    )
    .await;
    l.check(
        "/users?role=partner",
        role("partner"),
        Order::Name,
        &[&linus],
    )
    .await;
    let customers = [&ada, &alan, &barbara, &active, &suspended];
    l.check(
        "/users?role=customer",
        role("customer"),
        Order::Name,
        &customers,
    )
    .await;
    // Profile.
    let profile = |p: String| move |u: &Value| u["profile_id"] == p.as_str();
    let q = format!("/users?profile={p1}");
    l.check(
        &q,
        profile(p1.clone()),
        Order::Name,
        &[&ada, &grace, &barbara],
    )
    .await;
    let q = format!("/users?profile={p2}");
    l.check(&q, profile(p2.clone()), Order::Name, &[&alan, &linus])
        .await;
    // Account.
    let account = |a: &'static str| {
        move |u: &Value| {
            u["customer_accounts"]
                .as_array()
                .is_some_and(|l| l.contains(&json!(a)))
        }
    };
    let q = format!("/users?account={ACC_A}");
    l.check(&q, account(ACC_A), Order::Name, &[&ada, &grace, &barbara])
        .await;
    let q = format!("/users?account={ACC_B}");
    l.check(&q, account(ACC_B), Order::Name, &[&alan, &grace])
        .await;
    let q = format!("/users?account={ACC_C}");
    l.check(&q, account(ACC_C), Order::Name, &[&active, &suspended])
        .await;
    // Name prefix on "last first", any case.
    let named = |p: &'static str| move |u: &Value| name_key(u).starts_with(p);
    l.check("/users?q=lov", named("lov"), Order::Name, &[&ada, &linus])
        .await;
    l.check(
        "/users?q=LOVELACE%20A",
        named("lovelace a"),
        Order::Name,
        &[&ada],
    )
    .await;
    l.check(
        "/users?q=lovelace%20b",
        named("lovelace b"),
        Order::Name,
        &[],
    )
    .await;
    l.check("/users?q=Tur", named("tur"), Order::Name, &[&alan])
        .await;
    assert_eq!(
        all_ids(&app, &admin, "/users?q=lov").await,
        [ada.clone(), linus.clone()],
        "lovelace ada before lovell linus"
    );
    // Email prefix, any case, in email order.
    let mailed = |p: &'static str| move |u: &Value| text(u, "email").to_lowercase().starts_with(p);
    l.check("/users?email=lst-", mailed("lst-"), Order::Email, &invited)
        .await;
    l.check(
        "/users?email=LST-A",
        mailed("lst-a"),
        Order::Email,
        &[&ada, &alan],
    )
    .await;
    assert_eq!(
        all_ids(&app, &admin, "/users?email=lst-").await,
        [
            ada.clone(),
            alan.clone(),
            barbara.clone(),
            grace.clone(),
            linus.clone()
        ]
    );
    // Combined.
    let q = format!("/users?status=invited&role=customer&account={ACC_A}");
    let both = |u: &Value| status("invited")(u) && role("customer")(u) && account(ACC_A)(u);
    l.check(&q, both, Order::Name, &[&ada, &barbara]).await;
    let q = format!("/users?email=lst-&account={ACC_B}");
    let both = |u: &Value| mailed("lst-")(u) && account(ACC_B)(u);
    l.check(&q, both, Order::Email, &[&alan, &grace]).await;

    // Cursor pagination with limit=2 collects the same, once, in order.
    for query in [
        "/users",
        "/users?status=invited",
        "/users?role=customer",
        "/users?email=lst-",
        "/users?q=l",
    ] {
        let paged = ids_of(&all_items(&app, &admin, query, Some(2)).await);
        let whole = all_ids(&app, &admin, query).await;
        assert_eq!(paged, whole, "{query}: pages of two");
        let unique: BTreeSet<&String> = paged.iter().collect();
        assert_eq!(unique.len(), paged.len(), "{query}: no duplicates");
    }
}

/// A bad filter is refused naming it; a cursor the server did not write is
/// refused as such.
async fn bad_list_filters_are_named(app: TestApp) {
    let admin = app.token("admin");
    for (query, field) in [
        ("/users?status=gone", "status"),
        ("/users?role=king", "role"),
        ("/users?profile=nope", "profile"),
        ("/users?account=ACC%23A", "account"),
        ("/users?q=", "q"),
        ("/users?email=", "email"),
    ] {
        let r = send(app.with_token(&admin, Method::GET, query)).await;
        assert_eq!(
            (r.status, r.code()),
            (422, "validation_failed"),
            "{query}: {}",
            r.text
        );
        assert_eq!(r.body["errors"][0]["field"], field, "{query}");
    }
    let r = send(app.with_token(&admin, Method::GET, "/users?cursor=bogus")).await;
    assert_eq!((r.status, r.code()), (400, "invalid_cursor"), "{}", r.text);
}
