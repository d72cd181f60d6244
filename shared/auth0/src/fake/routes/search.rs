//! User search (`GET /api/v2/users`): eventually consistent (what it sees
//! lags the writes), `q` terms joined by `AND`, `sort`, paging that stops
//! at Auth0's result limit.

use super::error;
use crate::fake::{FakeState, FakeUser, Shared};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Auth0's search shows at most this many results of one query.
const SEARCH_RESULT_LIMIT: u64 = 1_000;

/// What search sees of one user now: the newest snapshot whose lag has
/// passed.
fn visible(s: &FakeState, id: &str, now: Instant) -> Option<FakeUser> {
    s.index
        .get(id)?
        .iter()
        .rev()
        .find(|(at, _)| *at <= now)
        .and_then(|(_, u)| u.clone())
}

/// A `q` term (`field:"value"` or `field:value`) on one user.
fn term_matches(u: &FakeUser, field: &str, value: &str) -> Option<bool> {
    let meta = |k: &str| u.app_metadata.get(k).and_then(Value::as_str) == Some(value);
    Some(match field {
        "identities.connection" => u.connection == value,
        "email" => u.email == value.to_lowercase(),
        "user_id" => u.user_id == value,
        "blocked" => u.blocked.to_string() == value,
        "app_metadata.tenant" => meta("tenant"),
        "app_metadata.peak_user_id" => meta("peak_user_id"),
        _ => return None,
    })
}

fn parse_q(q: &str) -> Result<Vec<(String, String)>, Response> {
    q.split(" AND ")
        .map(|term| {
            let (field, value) = term.trim().split_once(':').ok_or_else(|| {
                error(
                    400,
                    "Query validation error: bad q.",
                    "invalid_query_string",
                )
            })?;
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value)
                .replace("\\\"", "\"");
            Ok((field.trim().to_owned(), value))
        })
        .collect()
}

pub(super) async fn search_users(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let number = |k: &str, default: u64| -> Result<u64, Response> {
        match query.get(k) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                error(
                    400,
                    &format!("Query validation error: 'Expected type integer' on property {k}."),
                    "invalid_query_string",
                )
            }),
        }
    };
    let (page, per_page) = match (number("page", 0), number("per_page", 50)) {
        (Ok(p), Ok(pp)) => (p, pp),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    if per_page > 100 {
        return error(
            400,
            "Query validation error: 'Number is greater than maximum: 100' on property per_page.",
            "invalid_query_string",
        );
    }
    if page * per_page >= SEARCH_RESULT_LIMIT {
        return error(
            400,
            "You can only page through the first 1000 records.",
            "invalid_paging",
        );
    }
    let terms = match query.get("q").map(|q| parse_q(q)).transpose() {
        Ok(t) => t.unwrap_or_default(),
        Err(r) => return r,
    };
    let s = shared.state();
    let now = Instant::now();
    let mut matching = Vec::new();
    for id in s.index.keys() {
        let Some(u) = visible(&s, id, now) else {
            continue;
        };
        let mut keep = true;
        for (field, value) in &terms {
            match term_matches(&u, field, value) {
                Some(m) => keep &= m,
                None => {
                    return error(
                        400,
                        &format!("The fake does not search on {field}."),
                        "invalid_query_string",
                    );
                }
            }
        }
        if keep {
            matching.push(u);
        }
    }
    let created = |u: &FakeUser| s.created.get(&u.user_id).copied().unwrap_or(0);
    let sort = query
        .get("sort")
        .map(String::as_str)
        .unwrap_or("created_at:1");
    let Some((field, order)) = sort.split_once(':') else {
        return error(
            400,
            "Query validation error: bad sort.",
            "invalid_query_string",
        );
    };
    match field {
        "created_at" => matching.sort_by_key(|u| created(u)),
        "email" => matching.sort_by(|a, b| a.email.cmp(&b.email)),
        "user_id" => matching.sort_by(|a, b| a.user_id.cmp(&b.user_id)),
        _ => {
            return error(
                400,
                &format!("The fake does not sort on {field}."),
                "invalid_query_string",
            );
        }
    }
    if order == "-1" {
        matching.reverse();
    }
    let total = matching.len();
    let start = usize::try_from(page * per_page).unwrap_or(usize::MAX);
    let users: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(usize::try_from(per_page).unwrap_or(usize::MAX))
        .map(FakeUser::to_json)
        .collect();
    if query.get("include_totals").is_some_and(|v| v == "true") {
        axum::Json(json!({
            "start": start,
            "limit": per_page,
            "length": users.len(),
            "total": total,
            "users": users,
        }))
        .into_response()
    } else {
        axum::Json(Value::Array(users)).into_response()
    }
}
