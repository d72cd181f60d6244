//! A user's sessions, refresh tokens and brute-force block: what signing
//! someone out everywhere and unblocking them call.

use super::not_found_user;
use crate::fake::Shared;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Session revocation is asynchronous at Auth0 (202); the fake ends them at
/// once.
pub(super) async fn delete_sessions(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Response {
    shared.state().sessions.retain(|_, u| *u != id);
    StatusCode::ACCEPTED.into_response()
}

pub(super) async fn delete_refresh_tokens(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Response {
    shared.state().refresh_tokens.retain(|_, u| *u != id);
    StatusCode::ACCEPTED.into_response()
}

/// Lifts the brute-force block (by user id here; Auth0 also takes an
/// identifier at `/user-blocks?identifier=`).
pub(super) async fn delete_user_blocks(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Response {
    let mut s = shared.state();
    match s.users.iter_mut().find(|u| u.user_id == id) {
        Some(u) => {
            u.brute_force_blocked = false;
            StatusCode::NO_CONTENT.into_response()
        }
        None => not_found_user(),
    }
}
