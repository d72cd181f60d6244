//! Who may do what to whom: every route on a user by actor and by where
//! the target is, listing and inviting onto accounts, acting on oneself,
//! and the delegation rule. Each concern is a table of cells, printed
//! whole (wrong cells marked) when any is wrong.

use super::{ACC_A, ACC_A1, ACC_A1X, ACC_B, ACC_C, ACC_P};
use super::{all_items, ids_of, invitation, new_profile, other_tenant_with_user};
use super::{quoted, read_user, send, unique_email};
use peak_tests::TestApp;
use reqwest::{Method, RequestBuilder};
use serde_json::json;
use std::fmt::Write as _;

on_both_stores!(
    routes_on_a_user_by_actor_and_target,
    listing_an_account,
    inviting_onto_an_account,
    nobody_suspends_or_deletes_themselves,
    delegation_rule,
    account_routes_by_actor,
);

/// One checked request of a table-driven test.
struct Cell {
    route: String,
    actor: &'static str,
    target: &'static str,
    expected: u16,
    want_code: Option<&'static str>,
    got: u16,
    code: String,
    note: String,
}

impl Cell {
    fn ok(&self) -> bool {
        self.expected == self.got
            && self.note.is_empty()
            && self.want_code.is_none_or(|c| c == self.code)
    }
}

/// The usual problem code for an expected status.
fn code_for(status: u16) -> Option<&'static str> {
    match status {
        403 => Some("forbidden"),
        404 => Some("not_found"),
        _ => None,
    }
}

/// Panics with the whole table (wrong cells marked) unless every cell is right.
fn assert_cells(title: &str, cells: &[Cell]) {
    let wrong = cells.iter().filter(|c| !c.ok()).count();
    if wrong == 0 {
        return;
    }
    let mut out = format!(
        "{title}: {wrong} of {} cells wrong (marked ✗)\n",
        cells.len()
    );
    let _ = writeln!(
        out,
        "   {:<36} {:<20} {:<16} {:>24} {:>5}  code / note",
        "route", "actor", "target", "expected", "got"
    );
    for c in cells {
        let expected = match c.want_code {
            Some(code) => format!("{} {code}", c.expected),
            None => c.expected.to_string(),
        };
        let _ = writeln!(
            out,
            "{}  {:<36} {:<20} {:<16} {:>24} {:>5}  {}{}{}",
            if c.ok() { " " } else { "✗" },
            c.route,
            c.actor,
            c.target,
            expected,
            c.got,
            c.code,
            if c.note.is_empty() { "" } else { " — " },
            c.note
        );
    }
    panic!("{out}");
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Get,
    Patch,
    Suspend,
    Enable,
    Reset,
    Delete,
    Audit,
}

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::Get => "GET /users/{id}",
            Op::Patch => "PATCH /users/{id}",
            Op::Suspend => "POST /users/{id}/suspend",
            Op::Enable => "POST /users/{id}/enable (suspended)",
            Op::Reset => "POST /users/{id}/password-reset",
            Op::Delete => "DELETE /users/{id}",
            Op::Audit => "GET /users/{id}/audit",
        }
    }

    /// Whether success changes the stored user (a new version). Asking for
    /// a password reset queues an email and an audit event but leaves the
    /// user's version alone, so nobody's If-Match goes stale over it.
    fn mutates(self) -> bool {
        !matches!(self, Op::Get | Op::Audit | Op::Reset)
    }

    fn request(self, app: &TestApp, token: &str, id: &str, version: u64) -> RequestBuilder {
        let path = format!("/users/{id}");
        match self {
            Op::Get => app.with_token(token, Method::GET, &path),
            Op::Patch => app
                .with_token(token, Method::PATCH, &path)
                .header("if-match", quoted(version))
                .json(&json!({"first_name": "Changed"})),
            Op::Suspend => app.with_token(token, Method::POST, &format!("{path}/suspend")),
            Op::Enable => app.with_token(token, Method::POST, &format!("{path}/enable")),
            Op::Reset => app.with_token(token, Method::POST, &format!("{path}/password-reset")),
            Op::Delete => app.with_token(token, Method::DELETE, &path),
            Op::Audit => app.with_token(token, Method::GET, &format!("{path}/audit")),
        }
    }
}

/// "stronger": a customer of the actors' account holding an extension group
/// (Billing Manager) none of the non-admin actors holds — the delegation
/// rule lets them see that colleague but not act on them
/// (`user_holds_more_than_you`).
///
/// The child-account relation: "child account" and "grandchild acct" are
/// customers of accounts below the actors' `ACC-A` (`ACC-A1`, `ACC-A1X`),
/// which a sales rep serves as if assigned and a customer does not;
/// "parent account" is the account above `ACC-A` (`ACC-P`), which nobody
/// below it reaches.
const TARGETS: [&str; 7] = [
    "own account",
    "other account",
    "other tenant",
    "stronger, own acct",
    "child account",
    "grandchild acct",
    "parent account",
];

/// Each target's account (the other tenant's is its own).
const TARGET_ACCOUNTS: [&str; 7] = [ACC_A, ACC_B, ACC_A, ACC_A, ACC_A1, ACC_A1X, ACC_P];

/// Rows: the actors in order (admin, rep+manage, rep default,
/// cust+user_manager, customer); columns: [`TARGETS`].
#[rustfmt::skip]
const MATRIX: &[(Op, [[u16; 7]; 5])] = &[
    (Op::Get,     [[200, 200, 404, 200, 200, 200, 200], [200, 404, 404, 200, 200, 200, 404], [404, 404, 404, 404, 404, 404, 404], [200, 404, 404, 200, 404, 404, 404], [404, 404, 404, 404, 404, 404, 404]]),
    (Op::Patch,   [[200, 200, 404, 200, 200, 200, 200], [200, 404, 404, 403, 200, 200, 404], [404, 404, 404, 404, 404, 404, 404], [200, 404, 404, 403, 404, 404, 404], [404, 404, 404, 404, 404, 404, 404]]),
    (Op::Suspend, [[200, 200, 404, 200, 200, 200, 200], [200, 404, 404, 403, 200, 200, 404], [404, 404, 404, 404, 404, 404, 404], [200, 404, 404, 403, 404, 404, 404], [404, 404, 404, 404, 404, 404, 404]]),
    (Op::Enable,  [[200, 200, 404, 200, 200, 200, 200], [200, 404, 404, 403, 200, 200, 404], [404, 404, 404, 404, 404, 404, 404], [200, 404, 404, 403, 404, 404, 404], [404, 404, 404, 404, 404, 404, 404]]),
    (Op::Reset,   [[202, 202, 404, 202, 202, 202, 202], [202, 404, 404, 403, 202, 202, 404], [404, 404, 404, 404, 404, 404, 404], [202, 404, 404, 403, 404, 404, 404], [404, 404, 404, 404, 404, 404, 404]]),
    (Op::Delete,  [[204, 204, 404, 204, 204, 204, 204], [403, 404, 404, 403, 403, 403, 404], [404, 404, 404, 404, 404, 404, 404], [403, 404, 404, 403, 404, 404, 404], [404, 404, 404, 404, 404, 404, 404]]),
    (Op::Audit,   [[200, 200, 404, 200, 200, 200, 200], [403, 404, 404, 403, 403, 403, 404], [404, 404, 404, 404, 404, 404, 404], [403, 404, 404, 403, 404, 404, 404], [404, 404, 404, 404, 404, 404, 404]]),
];

struct Actor {
    name: &'static str,
    id: String,
    token: String,
}

/// The five actors of every table, seeded in this tenant: admin, a sales
/// rep of `ACC-A` who may manage and invite its customer users, a sales
/// rep with the default profile, a customer of `ACC-A` in the User Manager
/// group, and a plain customer of `ACC-A`.
async fn actors(app: &TestApp) -> [Actor; 5] {
    [
        ("admin", app.seed_user("admin", &[], &[], &[]).await),
        (
            "rep+manage",
            app.seed_user(
                "sales_rep",
                &[ACC_A],
                &[
                    ("my_customers.customer_users", "manage"),
                    ("my_customers.invite_customer_users", "enabled"),
                ],
                &[],
            )
            .await,
        ),
        (
            "rep default",
            app.seed_user("sales_rep", &[ACC_A], &[], &[]).await,
        ),
        (
            "cust+user_manager",
            app.seed_user("customer", &[ACC_A], &[], &["user_manager"])
                .await,
        ),
        (
            "customer",
            app.seed_user("customer", &[ACC_A], &[], &[]).await,
        ),
    ]
    .map(|(name, (id, token))| Actor { name, id, token })
}

/// Every route on a user × actor × where the target is; the other tenant's
/// user comes through all of it untouched.
async fn routes_on_a_user_by_actor_and_target(app: TestApp) {
    let actors = actors(&app).await;
    let admin = &actors[0].token;
    let (_, t2_admin, t2_user, _) = other_tenant_with_user(&app, &unique_email("elsewhere")).await;
    let (t2_version, _) = read_user(&app, &t2_admin, &t2_user)
        .await
        .expect("the other tenant's user");
    let mut cells = Vec::new();

    // Every route on a user × actor × where the target is. A fresh target
    // per cell (suspended first for enable), so cells cannot interfere.
    for (op, table) in MATRIX {
        for (ai, actor) in actors.iter().enumerate() {
            for (ri, target) in TARGETS.into_iter().enumerate() {
                let (id, reader) = if ri == 2 {
                    (t2_user.clone(), t2_admin.as_str())
                } else {
                    let account = TARGET_ACCOUNTS[ri];
                    let groups: &[&str] = if ri == 3 { &["billing_manager"] } else { &[] };
                    let (id, _) = app.seed_user("customer", &[account], &[], groups).await;
                    if *op == Op::Enable {
                        let r = send(app.with_token(
                            admin,
                            Method::POST,
                            &format!("/users/{id}/suspend"),
                        ))
                        .await;
                        assert_eq!(r.status, 200, "suspending a target first: {}", r.text);
                    }
                    (id, admin.as_str())
                };
                let (before, _) = read_user(&app, reader, &id).await.expect("target");
                let r = send(op.request(&app, &actor.token, &id, before)).await;
                let after = read_user(&app, reader, &id).await.map(|(v, _)| v);
                let succeeded = (200..300).contains(&r.status);
                let note = match (succeeded && op.mutates(), after) {
                    (true, Some(v)) if *op == Op::Delete => {
                        format!("deleted, yet still there (v{v})")
                    }
                    (true, Some(v)) if v <= before => format!("succeeded, yet version stayed {v}"),
                    (true, None) if *op != Op::Delete => {
                        "succeeded, and the target vanished".to_owned()
                    }
                    (false, a) if a != Some(before) => format!("target changed: v{before} → {a:?}"),
                    _ => String::new(),
                };
                let expected = table[ai][ri];
                let reach_refusal =
                    ri == 3 && expected == 403 && !matches!(op, Op::Delete | Op::Audit);
                cells.push(Cell {
                    route: op.label().to_owned(),
                    actor: actor.name,
                    target,
                    expected,
                    want_code: if reach_refusal {
                        Some("user_holds_more_than_you")
                    } else {
                        code_for(expected)
                    },
                    got: r.status,
                    code: r.code().to_owned(),
                    note,
                });
            }
        }
    }

    // The other tenant's user went through all of that untouched.
    let (t2_after, t2_now) = read_user(&app, &t2_admin, &t2_user)
        .await
        .expect("the other tenant's user still exists");
    assert_eq!(
        (t2_after, t2_now["status"].as_str()),
        (t2_version, Some("active"))
    );
    assert_cells("routes on a user", &cells);
}

/// Listing one account: who may, and what they see.
async fn listing_an_account(app: TestApp) {
    let actors = actors(&app).await;
    let (_, _, t2_user, _) = other_tenant_with_user(&app, &unique_email("elsewhere")).await;
    let mut cells = Vec::new();
    let (list_own, _) = app.seed_user("customer", &[ACC_A], &[], &[]).await;
    let (list_other, _) = app.seed_user("customer", &[ACC_B], &[], &[]).await;
    for (actor, expected) in actors.iter().zip([200, 200, 403, 200, 403]) {
        let r = send(app.with_token(
            &actor.token,
            Method::GET,
            &format!("/users?account={ACC_A}"),
        ))
        .await;
        let mut note = String::new();
        if r.status == 200 {
            let items =
                all_items(&app, &actor.token, &format!("/users?account={ACC_A}"), None).await;
            let ids = ids_of(&items);
            if !ids.contains(&list_own) {
                note.push_str("own-account user missing; ");
            }
            if ids.contains(&list_other) {
                note.push_str("other-account user listed; ");
            }
            if ids.contains(&t2_user) {
                note.push_str("other tenant's user listed; ");
            }
            if actor.name != "admin" && items.iter().any(|u| u["role"] != "customer") {
                note.push_str("a non-customer listed to a non-admin; ");
            }
            if actor.name == "admin" && !ids.contains(&actors[1].id) {
                note.push_str("the rep on the account missing for the admin; ");
            }
        }
        cells.push(Cell {
            route: format!("GET /users?account={ACC_A}"),
            actor: actor.name,
            target: "-",
            expected,
            want_code: code_for(expected),
            got: r.status,
            code: r.code().to_owned(),
            note,
        });
    }
    // A child account: a rep lists it as if assigned; a customer of the
    // parent does not (customers do not get child accounts).
    let (list_child, _) = app.seed_user("customer", &[ACC_A1], &[], &[]).await;
    for (actor, expected) in actors.iter().zip([200, 200, 403, 403, 403]) {
        let path = format!("/users?account={ACC_A1}");
        let r = send(app.with_token(&actor.token, Method::GET, &path)).await;
        let mut note = String::new();
        if r.status == 200 {
            let ids = ids_of(&all_items(&app, &actor.token, &path, None).await);
            if ids != [list_child.clone()] {
                note = format!("listed {ids:?}");
            }
        }
        cells.push(Cell {
            route: path,
            actor: actor.name,
            target: "child account",
            expected,
            want_code: code_for(expected),
            got: r.status,
            code: r.code().to_owned(),
            note,
        });
    }
    assert_cells("listing an account", &cells);
}

/// Inviting a customer onto an account the actor serves, and onto one they
/// do not.
async fn inviting_onto_an_account(app: TestApp) {
    let actors = actors(&app).await;
    let admin = &actors[0].token;
    let mut cells = Vec::new();
    let profile = new_profile(&app, "Invitees").await;
    let invite_expected = [
        [201, 201, 201],
        [201, 403, 201],
        [403, 403, 403],
        [201, 403, 403],
        [403, 403, 403],
    ];
    for (actor, expected) in actors.iter().zip(invite_expected) {
        for ((account, target), expected) in [
            (ACC_A, "onto own account"),
            (ACC_B, "onto other acct"),
            (ACC_A1, "onto child acct"),
        ]
        .into_iter()
        .zip(expected)
        {
            let email = unique_email("invitee");
            let r = send(
                app.with_token(&actor.token, Method::POST, "/users")
                    .json(&invitation(
                        "Ivy",
                        "Invitee",
                        &email,
                        "customer",
                        &[account],
                        &profile,
                    )),
            )
            .await;
            let stored = all_items(&app, admin, &format!("/users?email={email}"), None)
                .await
                .len();
            let note = match (r.status == 201, stored) {
                (true, 1) | (false, 0) => String::new(),
                (_, n) => format!("{n} users stored with that address"),
            };
            cells.push(Cell {
                route: "POST /users (customer)".to_owned(),
                actor: actor.name,
                target,
                expected,
                // Reps without the right to invite are refused as such;
                // those who may invite, for the account.
                want_code: match (expected, account) {
                    (403, ACC_B) if matches!(actor.name, "rep+manage" | "cust+user_manager") => {
                        Some("account_not_served")
                    }
                    (403, ACC_A1) if actor.name == "cust+user_manager" => {
                        Some("account_not_served")
                    }
                    _ => code_for(expected),
                },
                got: r.status,
                code: r.code().to_owned(),
                note,
            });
        }
    }
    assert_cells("inviting onto an account", &cells);
}

/// The account routes: who changes the directory (admins), who reads which
/// account (a rep: theirs and everything below; a customer: their own;
/// anything else is not found), and what each one's list holds.
async fn account_routes_by_actor(app: TestApp) {
    let actors = actors(&app).await;
    let mut cells = Vec::new();
    #[rustfmt::skip]
    let reads: [(&str, &'static str, [u16; 5]); 5] = [
        (ACC_A, "own account", [200, 200, 200, 200, 200]),
        (ACC_A1, "child account", [200, 200, 200, 404, 404]),
        (ACC_A1X, "grandchild acct", [200, 200, 200, 404, 404]),
        (ACC_P, "parent account", [200, 404, 404, 404, 404]),
        (ACC_B, "other account", [200, 404, 404, 404, 404]),
    ];
    for (number, target, expected) in reads {
        for (actor, expected) in actors.iter().zip(expected) {
            let r = send(app.with_token(&actor.token, Method::GET, &format!("/accounts/{number}")))
                .await;
            cells.push(Cell {
                route: "GET /accounts/{number}".to_owned(),
                actor: actor.name,
                target,
                expected,
                want_code: code_for(expected),
                got: r.status,
                code: r.code().to_owned(),
                note: String::new(),
            });
        }
    }
    for (i, (actor, expected)) in actors.iter().zip([201, 403, 403, 403, 403]).enumerate() {
        let number = format!("NEW-{i}");
        let r = send(
            app.with_token(&actor.token, Method::PUT, &format!("/accounts/{number}"))
                .json(&json!({"name": "New", "parent": ACC_A})),
        )
        .await;
        let stored = send(app.with_token(
            &actors[0].token,
            Method::GET,
            &format!("/accounts/{number}"),
        ))
        .await;
        let note = match (r.status == 201, stored.status) {
            (true, 200) | (false, 404) => String::new(),
            (_, s) => format!("afterwards the admin's GET is {s}"),
        };
        cells.push(Cell {
            route: "PUT /accounts/{number}".to_owned(),
            actor: actor.name,
            target: "under own account",
            expected,
            want_code: code_for(expected),
            got: r.status,
            code: r.code().to_owned(),
            note,
        });
    }
    let admin_sees = [ACC_A, ACC_A1, ACC_A1X, ACC_B, ACC_C, ACC_P, "ACME", "NEW-0"];
    let rep_sees = [ACC_A, ACC_A1, ACC_A1X, "NEW-0"];
    for (actor, sees) in
        actors
            .iter()
            .zip([&admin_sees[..], &rep_sees, &rep_sees, &[ACC_A], &[ACC_A]])
    {
        let items = all_items(&app, &actor.token, "/accounts", None).await;
        let mut listed: Vec<&str> = items
            .iter()
            .map(|a| a["number"].as_str().unwrap_or(""))
            .collect();
        listed.sort_unstable();
        let mut want = sees.to_vec();
        want.sort_unstable();
        cells.push(Cell {
            route: "GET /accounts".to_owned(),
            actor: actor.name,
            target: "-",
            expected: 200,
            want_code: None,
            got: 200,
            code: String::new(),
            note: if listed == want {
                String::new()
            } else {
                format!("listed {listed:?}")
            },
        });
    }
    assert_cells("account routes", &cells);
}

/// Nobody suspends or deletes themselves, and stays active after trying.
async fn nobody_suspends_or_deletes_themselves(app: TestApp) {
    let actors = actors(&app).await;
    let mut cells = Vec::new();
    for actor in &actors {
        for (route, req) in [
            (
                "POST /users/{me}/suspend",
                app.with_token(
                    &actor.token,
                    Method::POST,
                    &format!("/users/{}/suspend", actor.id),
                ),
            ),
            (
                "DELETE /users/{me}",
                app.with_token(
                    &actor.token,
                    Method::DELETE,
                    &format!("/users/{}", actor.id),
                ),
            ),
        ] {
            let r = send(req).await;
            let me = send(app.with_token(&actor.token, Method::GET, "/me")).await;
            cells.push(Cell {
                route: route.to_owned(),
                actor: actor.name,
                target: "themselves",
                expected: 409,
                want_code: Some("cannot_act_on_self"),
                got: r.status,
                code: r.code().to_owned(),
                note: if me.status == 200 && me.body["status"] == "active" {
                    String::new()
                } else {
                    format!("afterwards GET /me is {} {}", me.status, me.code())
                },
            });
        }
    }
    assert_cells("acting on oneself", &cells);
}

/// The delegation rule: only an admin makes someone an admin, hands out
/// accounts, groups or permissions beyond their own, sets an account number
/// or changes another user's login email.
async fn delegation_rule(app: TestApp) {
    let actors = actors(&app).await;
    let admin = &actors[0].token;
    let profile = new_profile(&app, "Invitees").await;
    let mut cells = Vec::new();
    let strong_profile = {
        let id = new_profile(&app, "Stronger than Standard").await;
        let r = send(
            app.with_token(admin, Method::PATCH, &format!("/profiles/{id}"))
                .header("if-match", "\"1\"")
                .json(&json!({"settings": {"my_subscriptions.cancel": "enabled", "my_cases.edit": "enabled"}})),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        id
    };
    for (ai, grant_expected, accounts_expected) in [(0, 200, 200), (1, 403, 403), (3, 403, 403)] {
        let actor = &actors[ai];
        for (what, patch, expected, code) in [
            (
                "role admin",
                json!({"role": "admin"}),
                grant_expected,
                "role_not_grantable",
            ),
            (
                "accounts A+B",
                json!({"customer_accounts": [ACC_A, ACC_B]}),
                accounts_expected,
                "account_not_served",
            ),
            (
                "email",
                json!({"email": unique_email("taken-over")}),
                grant_expected,
                "email_change_admin_only",
            ),
            (
                "account_number",
                json!({"account_number": "OTHER-CO-1"}),
                grant_expected,
                "account_number_admin_only",
            ),
            (
                "groups +billing_manager",
                json!({"extension_groups": ["billing_manager"]}),
                grant_expected,
                "group_not_held",
            ),
            (
                "profile stronger",
                json!({"profile_id": strong_profile}),
                grant_expected,
                "permission_exceeds_yours",
            ),
        ] {
            let (id, _) = app.seed_user("customer", &[ACC_A], &[], &[]).await;
            let (before, _) = read_user(&app, admin, &id).await.expect("target");
            let r = send(
                app.with_token(&actor.token, Method::PATCH, &format!("/users/{id}"))
                    .header("if-match", quoted(before))
                    .json(&patch),
            )
            .await;
            let (after, user) = read_user(&app, admin, &id).await.expect("target");
            let changed = after != before;
            let note = if changed == (r.status == 200) {
                String::new()
            } else {
                format!("stored user v{after}: role {}", user["role"])
            };
            cells.push(Cell {
                route: format!("PATCH /users/{{id}} {what}"),
                actor: actor.name,
                target: "own account",
                expected,
                want_code: (expected == 403).then_some(code),
                got: r.status,
                code: r.code().to_owned(),
                note,
            });
        }
        let email = unique_email("would-be-admin");
        let r = send(
            app.with_token(&actor.token, Method::POST, "/users")
                .json(&invitation(
                    "Adam",
                    "Min",
                    &email,
                    "admin",
                    &[ACC_A],
                    &profile,
                )),
        )
        .await;
        let expected = if ai == 0 { 201 } else { 403 };
        cells.push(Cell {
            route: "POST /users (role admin)".to_owned(),
            actor: actor.name,
            target: "onto own account",
            expected,
            want_code: (expected == 403).then_some("role_not_grantable"),
            got: r.status,
            code: r.code().to_owned(),
            note: String::new(),
        });
    }
    assert_cells("the delegation rule", &cells);
}
