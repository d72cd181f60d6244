//! Users-export jobs: the job, its polling, and the gzipped NDJSON file
//! at its (presigned-like) location.

use super::{check_allowed, error, invalid_body, json_object, opt_str};
use crate::fake::{FakeAuth0, Job, Shared, random_hex};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::io::Write;
use std::sync::Arc;

pub(super) async fn create_export(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match try_create_export(&shared, &body) {
        Ok(r) | Err(r) => r,
    }
}

fn try_create_export(shared: &Shared, body: &Bytes) -> Result<Response, Response> {
    let body = json_object(body)?;
    check_allowed(&body, &["connection_id", "format", "limit", "fields"])?;
    let format = opt_str(&body, "format")?.unwrap_or_else(|| "csv".into());
    if format != "json" {
        return Err(error(501, "The fake exports JSON only.", "not_implemented"));
    }
    let connection = opt_str(&body, "connection_id")?;
    let limit = match body.get("limit") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|l| *l >= 1)
                .and_then(|l| usize::try_from(l).ok())
                .ok_or_else(|| invalid_body("Payload validation error: limit."))?,
        ),
    };
    let mut fields = Vec::new();
    for f in body
        .get("fields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        let name = f
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid_body("Payload validation error: fields[].name."))?;
        let export_as = f.get("export_as").and_then(Value::as_str).unwrap_or(name);
        fields.push((name.to_owned(), export_as.to_owned()));
    }
    let id = format!("job_{}", random_hex(8));
    let mut s = shared.state();
    let users = s.users.clone();
    let polls_left = s.export_polls;
    s.jobs.insert(
        id.clone(),
        Job {
            polls_left,
            fields,
            connection,
            limit,
            users,
        },
    );
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({
            "status": "pending",
            "type": "users_export",
            "id": id,
            "format": "json",
        })),
    )
        .into_response())
}

pub(super) async fn get_job(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let mut s = shared.state();
    let Some(job) = s.jobs.get_mut(&id) else {
        return error(404, "The job does not exist.", "inexistent_job");
    };
    if job.polls_left > 0 {
        job.polls_left -= 1;
        return axum::Json(json!({
            "status": "processing", "type": "users_export", "id": id, "format": "json",
        }))
        .into_response();
    }
    axum::Json(json!({
        "status": "completed",
        "type": "users_export",
        "id": id,
        "format": "json",
        "location": format!("{}/fake-exports/{id}.json.gz", shared.base_url),
    }))
    .into_response()
}

/// A field of an export (`email`, `app_metadata.tenant`,
/// `identities[0].connection`).
fn export_value(json: &Value, name: &str) -> Value {
    let mut at = json;
    for part in name.split('.') {
        let (key, index) = match part.split_once('[') {
            Some((k, i)) => (k, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        at = match at.get(key) {
            Some(v) => v,
            None => return Value::Null,
        };
        if let Some(i) = index {
            at = match at.get(i) {
                Some(v) => v,
                None => return Value::Null,
            };
        }
    }
    at.clone()
}

/// The export file: gzipped, one JSON object per line (no token needed:
/// Auth0's location is a presigned URL).
pub(super) async fn export_file(
    State(shared): State<Arc<Shared>>,
    Path(file): Path<String>,
) -> Response {
    let id = file.trim_end_matches(".json.gz");
    let s = shared.state();
    let Some(job) = s.jobs.get(id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let users = job
        .users
        .iter()
        .filter(|u| match job.connection.as_deref() {
            None => true,
            Some(id) => id == FakeAuth0::CONNECTION_ID && u.connection == shared.connection,
        })
        .take(job.limit.unwrap_or(usize::MAX));
    for u in users {
        let json = u.to_json();
        let mut line = Map::new();
        for (name, export_as) in &job.fields {
            let v = export_value(&json, name);
            if !v.is_null() {
                line.insert(export_as.clone(), v);
            }
        }
        let _ = writeln!(gz, "{}", Value::Object(line));
    }
    match gz.finish() {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/gzip")], bytes).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
