//! Users: create, read, update, delete, and look up by email.

use super::{check_allowed, check_email, error, invalid_body, json_object, not_found_user};
use super::{opt_app_metadata, opt_bool, opt_str};
use crate::fake::{FakeUser, Shared, new_user_id};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

pub(super) async fn users_by_email(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(email) = query.get("email") else {
        return error(
            400,
            "Query validation error: 'Missing required property: email'.",
            "invalid_query_string",
        );
    };
    // Case-sensitive, like Auth0's: addresses are stored lowercased.
    let found: Vec<Value> = shared
        .state()
        .users
        .iter()
        .filter(|u| &u.email == email)
        .map(FakeUser::to_json)
        .collect();
    axum::Json(Value::Array(found)).into_response()
}

pub(super) async fn create_user(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match try_create_user(&shared, &body) {
        Ok(r) | Err(r) => r,
    }
}

fn try_create_user(shared: &Shared, body: &Bytes) -> Result<Response, Response> {
    let body = json_object(body)?;
    // The definition of this body allows no other properties.
    check_allowed(
        &body,
        &[
            "email",
            "phone_number",
            "user_metadata",
            "blocked",
            "email_verified",
            "phone_verified",
            "app_metadata",
            "given_name",
            "family_name",
            "name",
            "nickname",
            "picture",
            "user_id",
            "connection",
            "password",
            "verify_email",
            "username",
        ],
    )?;
    let connection = opt_str(&body, "connection")?.unwrap_or_default();
    if connection != shared.connection {
        return Err(error(
            400,
            "The connection does not exist.",
            "inexistent_connection",
        ));
    }
    let email = opt_str(&body, "email")?
        .ok_or_else(|| {
            invalid_body("Payload validation error: 'Missing required property: email'.")
        })?
        .to_lowercase();
    check_email(&email)?;
    let password = opt_str(&body, "password")?.unwrap_or_default();
    if password.len() < 8 {
        return Err(error(
            400,
            "PasswordStrengthError: Password is too weak",
            "invalid_password",
        ));
    }
    let email_verified = opt_bool(&body, "email_verified")?.unwrap_or(false);
    let verify_email = opt_bool(&body, "verify_email")?;
    let app_metadata = opt_app_metadata(&body)?.map_or(json!({}), Value::Object);
    let user = FakeUser {
        user_id: new_user_id(),
        connection,
        email,
        email_verified,
        given_name: opt_str(&body, "given_name")?,
        family_name: opt_str(&body, "family_name")?,
        name: opt_str(&body, "name")?,
        blocked: opt_bool(&body, "blocked")?.unwrap_or(false),
        brute_force_blocked: false,
        app_metadata,
        password_set: false,
        verification_emails_sent: u32::from(!email_verified && verify_email != Some(false)),
    };
    let mut s = shared.state();
    if s.users
        .iter()
        .any(|u| u.email == user.email && u.connection == user.connection)
    {
        return Err(error(409, "The user already exists.", "auth0_idp_error"));
    }
    let json = user.to_json();
    let id = user.user_id.clone();
    s.users.push(user);
    s.index(&id);
    Ok((StatusCode::CREATED, axum::Json(json)).into_response())
}

pub(super) async fn get_user(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Response {
    match shared.state().users.iter().find(|u| u.user_id == id) {
        Some(u) => axum::Json(u.to_json()).into_response(),
        None => not_found_user(),
    }
}

pub(super) async fn patch_user(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    match try_patch_user(&shared, &id, &body) {
        Ok(r) | Err(r) => r,
    }
}

/// Properties the update definition does not name are ignored (it allows
/// additional properties); the ones it names are checked.
fn try_patch_user(shared: &Shared, id: &str, body: &Bytes) -> Result<Response, Response> {
    let body = json_object(body)?;
    let email = opt_str(&body, "email")?.map(|e| e.to_lowercase());
    if let Some(email) = &email {
        check_email(email)?;
    }
    let email_verified = opt_bool(&body, "email_verified")?;
    let verify_email = opt_bool(&body, "verify_email")?;
    let blocked = opt_bool(&body, "blocked")?;
    let given_name = opt_str(&body, "given_name")?;
    let family_name = opt_str(&body, "family_name")?;
    let name = opt_str(&body, "name")?;
    let connection = opt_str(&body, "connection")?;
    let app_metadata = opt_app_metadata(&body)?;

    let mut s = shared.state();
    let Some(index) = s.users.iter().position(|u| u.user_id == id) else {
        return Err(not_found_user());
    };
    let user_connection = s.users[index].connection.clone();
    if connection.as_ref().is_some_and(|c| *c != user_connection) {
        return Err(error(
            400,
            "The user does not have an identity in this connection.",
            "invalid_body",
        ));
    }
    if let Some(email) = &email
        && s.users
            .iter()
            .any(|u| u.user_id != id && u.connection == user_connection && &u.email == email)
    {
        return Err(error(
            400,
            "The specified new email already exists",
            "auth0_idp_error",
        ));
    }
    let user = &mut s.users[index];
    if let Some(email) = email
        && email != user.email
    {
        user.email = email;
        user.email_verified = false;
        if email_verified != Some(true) && verify_email != Some(false) {
            user.verification_emails_sent += 1;
        }
    }
    if let Some(v) = email_verified {
        user.email_verified = v;
    }
    if let Some(b) = blocked {
        user.blocked = b;
    }
    if given_name.is_some() {
        user.given_name = given_name;
    }
    if family_name.is_some() {
        user.family_name = family_name;
    }
    if name.is_some() {
        user.name = name;
    }
    if let Some(patch) = app_metadata {
        // Auth0 merges app_metadata at the top level; null removes a key.
        let mut merged = user.app_metadata.as_object().cloned().unwrap_or_default();
        for (k, v) in patch {
            if v.is_null() {
                merged.remove(&k);
            } else {
                merged.insert(k, v);
            }
        }
        user.app_metadata = Value::Object(merged);
    }
    let json = user.to_json();
    s.index(id);
    Ok(axum::Json(json).into_response())
}

/// Auth0 answers 204 whether or not the login existed.
pub(super) async fn delete_user(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Response {
    let mut s = shared.state();
    s.users.retain(|u| u.user_id != id);
    s.tickets.retain(|_, t| t.user_id != id);
    s.index(&id);
    StatusCode::NO_CONTENT.into_response()
}
