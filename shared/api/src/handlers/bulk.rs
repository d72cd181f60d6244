//! Bulk invites: `/bulk-invites`.
//!
//! - `GET /bulk-invites/template`: the CSV template.
//! - `POST /bulk-invites` with the file as the body (`Content-Type`
//!   `text/csv` or the `.xlsx` type; `?file_name=` optional): with
//!   `?dry_run=true` every row is checked and reported (JSON, or CSV with
//!   `Accept: text/csv`) and nothing is written; otherwise 202 and the job.
//! - `GET /bulk-invites/{id}`: status, counts, progress.
//! - `GET /bulk-invites/{id}/report`: the report as CSV once finished.
//!
//! A job is visible to the user who started it and to admins; to anyone
//! else it does not exist (404).

use super::json;
use crate::problem::Problem;
use crate::request::query;
use crate::state::AppState;
use crate::views::JobView;
use http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use peak_bulk::Limits;
use peak_bulk_jobs::Upload;
use peak_domain::Actor;
use peak_domain::Role;
use peak_domain::bulk_job::BulkJob;
use peak_domain::users::Ctx;
use time::OffsetDateTime;

fn csv(body: String, file_name: &str) -> Response<Body> {
    let mut resp = Response::new(Body::Text(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

pub fn bulk_invite_template() -> Response<Body> {
    csv(
        peak_bulk::TEMPLATE_CSV.to_owned(),
        "bulk-invite-template.csv",
    )
}

/// How long a presigned upload URL works.
const UPLOAD_URL_SECS: u64 = 15 * 60;

fn upload_key(actor: &Actor, upload_id: &str) -> String {
    format!("bulk/{}/uploads/{upload_id}", actor.user.tenant_id.as_str())
}

/// `POST /bulk-invites/uploads`: where to PUT a file too large for a request
/// body (API Gateway takes 10 MB). The local run takes every file in the
/// body: there this answers 409 `direct_upload`.
pub async fn bulk_invite_upload(
    state: &AppState,
    actor: &Actor,
) -> Result<Response<Body>, Problem> {
    peak_domain::users::policy::authorize_invite(actor)?;
    let upload_id = ulid::Ulid::new().to_string();
    let url = state
        .files
        .upload_url(&upload_key(actor, &upload_id), UPLOAD_URL_SECS)
        .await
        .map_err(|e| Problem::from(peak_domain::Error::from_store(e, "upload")))?;
    let Some(url) = url else {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "direct_upload",
            "this deployment takes the file as the body of POST /bulk-invites",
        ));
    };
    let expires_at = OffsetDateTime::now_utc() + time::Duration::seconds(UPLOAD_URL_SECS as i64);
    Ok(json(
        StatusCode::CREATED,
        &serde_json::json!({
            "upload_id": upload_id,
            "upload_url": url,
            "method": "PUT",
            "expires_at": expires_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "then": format!("POST /bulk-invites?upload_id={upload_id}&file_name=<name> (add dry_run=true to check only)"),
        }),
    ))
}

pub async fn bulk_invite_create(
    ctx: &Ctx<'_>,
    state: &AppState,
    actor: &Actor,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let params = query(req);
    let uploaded;
    let bytes: &[u8] = match (params.get("upload_id"), req.body()) {
        (Some(upload_id), _) => {
            let not_found = || Problem::from(peak_domain::Error::NotFound("upload"));
            if ulid::Ulid::from_string(upload_id).is_err() {
                return Err(not_found());
            }
            uploaded = state
                .files
                .get_file(&upload_key(actor, upload_id))
                .await
                .map_err(|e| Problem::from(peak_domain::Error::from_store(e, "upload")))?
                .ok_or_else(not_found)?;
            &uploaded
        }
        (None, Body::Text(t)) => t.as_bytes(),
        (None, Body::Binary(b)) => b,
        _ => b"",
    };
    if bytes.is_empty() {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "empty_upload",
            "send the .csv or .xlsx file as the request body",
        ));
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let upload = Upload {
        bytes,
        file_name: params.get("file_name").map(String::as_str),
        content_type,
    };
    let limits = Limits::default();
    let dry_run = params
        .get("dry_run")
        .is_some_and(|v| v == "true" || v == "1");
    if dry_run {
        let report = peak_bulk_jobs::dry_run(ctx, actor, upload, &limits).await?;
        let wants_csv = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/csv"));
        if wants_csv {
            let mut out = Vec::new();
            let r = peak_bulk::Report {
                counts: report.counts,
                entries: report.entries,
                file_error: report.file_error,
            };
            r.write_csv(&mut out)
                .map_err(|e| Problem::internal(format!("writing the report: {e}")))?;
            return Ok(csv(
                String::from_utf8_lossy(&out).into_owned(),
                "bulk-invite-check.csv",
            ));
        }
        return Ok(json(StatusCode::OK, &report));
    }
    let job = peak_bulk_jobs::start(
        ctx,
        actor,
        state.jobs.as_ref(),
        state.files.as_ref(),
        upload,
        &limits,
    )
    .await?;
    let mut resp = json(StatusCode::ACCEPTED, &JobView::from(&job));
    if let Ok(v) = HeaderValue::from_str(&format!("/bulk-invites/{}", job.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// The job, if the caller may see it.
async fn visible(state: &AppState, actor: &Actor, id: Option<&str>) -> Result<BulkJob, Problem> {
    let not_found = || Problem::from(peak_domain::Error::NotFound("bulk invite"));
    let id = id
        .filter(|i| ulid::Ulid::from_string(i).is_ok())
        .ok_or_else(not_found)?;
    let job = state
        .jobs
        .get_job(&actor.user.tenant_id, id)
        .await
        .map_err(|e| Problem::from(peak_domain::Error::from_store(e, "bulk invite")))?
        .ok_or_else(not_found)?;
    if actor.user.role != Role::Admin && job.created_by != actor.user.id {
        return Err(not_found());
    }
    Ok(job)
}

pub async fn bulk_invite_get(
    state: &AppState,
    actor: &Actor,
    id: Option<&str>,
) -> Result<Response<Body>, Problem> {
    let job = visible(state, actor, id).await?;
    Ok(json(StatusCode::OK, &JobView::from(&job)))
}

pub async fn bulk_invite_report(
    state: &AppState,
    actor: &Actor,
    id: Option<&str>,
) -> Result<Response<Body>, Problem> {
    let job = visible(state, actor, id).await?;
    if !job.status.is_finished() {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "job_not_finished",
            "the report is ready when the job is done; poll GET /bulk-invites/{id}",
        ));
    }
    let entries = peak_bulk_jobs::all_entries(state.jobs.as_ref(), &job).await?;
    let mut body = peak_bulk_jobs::report_csv(&entries);
    if let Some(e) = &job.error {
        body.push_str(&format!(
            ",\"\",\"failed\",\"\",\"file\",\"{}\"\r\n",
            peak_bulk::neutralize(e).replace('"', "\"\"")
        ));
    }
    Ok(csv(body, &format!("bulk-invite-{}.csv", job.id)))
}

crate::dispatch::routes! {
    signed_in BulkInviteTemplate |_c, _a| Ok(bulk_invite_template());
    signed_in BulkInviteUpload |c, a| bulk_invite_upload(c.state, &a).await;
    signed_in BulkInviteCreate |c, a| bulk_invite_create(&c.ctx(), c.state, &a, &c.req).await;
    signed_in BulkInviteGet |c, a| bulk_invite_get(c.state, &a, c.id()).await;
    signed_in BulkInviteReport |c, a| bulk_invite_report(c.state, &a, c.id()).await;
}
