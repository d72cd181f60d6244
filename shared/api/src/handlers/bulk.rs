//! Bulk invites: `/bulk-invites`.
//!
//! - `GET /bulk-invites/template`: the CSV template.
//! - `POST /bulk-invites` with the file as the body (`Content-Type`
//!   `text/csv` or the `.xlsx` type; `?file_name=` optional): 202 and the
//!   job; with `?dry_run=true` the job (`dry_run: true`) checks and reports
//!   every row and writes nothing else.
//! - `GET /bulk-invites/{id}`: status, counts, progress.
//! - `GET /bulk-invites/{id}/report`: the report as CSV once finished.
//!
//! Bulk updates and account imports: `/bulk-jobs`.
//!
//! No route here parses the file: a request checks what needs no parser
//! (non-empty, the size limit, CSV or `.xlsx` by the first bytes, name and
//! type; the kind; the caller's permission to start it), stores the file
//! and queues a job; `bulk-runner` reads it. So no HTTP function links the
//! spreadsheet reader (calamine, zip, quick-xml: ~450 KB each artefact
//! carried, putting two over the 5 MB target), and a dry run of a large
//! file is worked in checkpointed chunks instead of timing out a 10 s
//! request at about 2,000 rows. A file the runner refuses (bad header, over
//! the limits, unreadable) fails the job: `status: failed` with
//! `file_error: {code, message}`, nothing written.
//!
//! - `GET /bulk-jobs/template?kind=update|account_import`: the CSV template.
//! - `POST /bulk-jobs?kind=update|account_import` with the file as the body
//!   (or `?upload_id=` from `POST /bulk-invites/uploads`): 202 and the job
//!   (`?dry_run=true`: a job that checks and reports every row, writing
//!   nothing else).
//! - `GET /bulk-jobs/{id}`, `GET /bulk-jobs/{id}/report`: any kind's status
//!   and report (a bulk invite's too; `/bulk-invites/{id}` shows invites
//!   only, as before).
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
use peak_domain::bulk_job::{BulkJob, JobKind};
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
            "then": format!("POST /bulk-invites?upload_id={upload_id}&file_name=<name> (add dry_run=true for a job that checks only)"),
        }),
    ))
}

pub async fn bulk_invite_create(
    ctx: &Ctx<'_>,
    state: &AppState,
    actor: &Actor,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    create(ctx, state, actor, req, JobKind::Invite).await
}

/// The `kind` query parameter of `/bulk-jobs` (invites have their own
/// routes).
fn kind_param(req: &Request) -> Result<JobKind, Problem> {
    match query(req).get("kind").map(String::as_str) {
        Some("update") => Ok(JobKind::Update),
        Some("account_import") => Ok(JobKind::AccountImport),
        _ => Err(Problem::from(peak_domain::Error::invalid(
            "kind",
            "must be update or account_import (bulk invites: POST /bulk-invites)",
        ))),
    }
}

pub fn bulk_job_template(req: &Request) -> Result<Response<Body>, Problem> {
    Ok(match kind_param(req)? {
        JobKind::AccountImport => csv(
            peak_bulk::ACCOUNT_TEMPLATE_CSV.to_owned(),
            "account-import-template.csv",
        ),
        _ => csv(
            peak_bulk::UPDATE_TEMPLATE_CSV.to_owned(),
            "bulk-update-template.csv",
        ),
    })
}

pub async fn bulk_job_create(
    ctx: &Ctx<'_>,
    state: &AppState,
    actor: &Actor,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let kind = kind_param(req)?;
    create(ctx, state, actor, req, kind).await
}

async fn create(
    ctx: &Ctx<'_>,
    state: &AppState,
    actor: &Actor,
    req: &Request,
    kind: JobKind,
) -> Result<Response<Body>, Problem> {
    peak_bulk_jobs::may_start(actor, kind)?;
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
    let job = peak_bulk_jobs::start_kind(
        ctx,
        actor,
        state.jobs.as_ref(),
        state.files.as_ref(),
        peak_bulk_jobs::JobSpec { kind, dry_run },
        upload,
        &limits,
    )
    .await?;
    let mut resp = json(StatusCode::ACCEPTED, &JobView::from(&job));
    let at = match kind {
        JobKind::Invite => "bulk-invites",
        _ => "bulk-jobs",
    };
    if let Ok(v) = HeaderValue::from_str(&format!("/{at}/{}", job.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// The job, if the caller may see it (and, for `/bulk-invites/...`, it
/// is an invite).
async fn visible(
    state: &AppState,
    actor: &Actor,
    id: Option<&str>,
    only: Option<JobKind>,
) -> Result<BulkJob, Problem> {
    let what = if only.is_some() {
        "bulk invite"
    } else {
        "bulk job"
    };
    let not_found = || Problem::from(peak_domain::Error::NotFound(what));
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
    if only.is_some_and(|k| k != job.kind) {
        return Err(not_found());
    }
    Ok(job)
}

pub async fn bulk_invite_get(
    state: &AppState,
    actor: &Actor,
    id: Option<&str>,
) -> Result<Response<Body>, Problem> {
    let job = visible(state, actor, id, Some(JobKind::Invite)).await?;
    Ok(json(StatusCode::OK, &JobView::from(&job)))
}

pub async fn bulk_invite_report(
    state: &AppState,
    actor: &Actor,
    id: Option<&str>,
) -> Result<Response<Body>, Problem> {
    let job = visible(state, actor, id, Some(JobKind::Invite)).await?;
    report(state, &job).await
}

pub async fn bulk_job_get(
    state: &AppState,
    actor: &Actor,
    id: Option<&str>,
) -> Result<Response<Body>, Problem> {
    let job = visible(state, actor, id, None).await?;
    Ok(json(StatusCode::OK, &JobView::from(&job)))
}

pub async fn bulk_job_report(
    state: &AppState,
    actor: &Actor,
    id: Option<&str>,
) -> Result<Response<Body>, Problem> {
    let job = visible(state, actor, id, None).await?;
    report(state, &job).await
}

async fn report(state: &AppState, job: &BulkJob) -> Result<Response<Body>, Problem> {
    if !job.status.is_finished() {
        let at = match job.kind {
            JobKind::Invite => "/bulk-invites/{id}",
            _ => "/bulk-jobs/{id}",
        };
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "job_not_finished",
            format!("the report is ready when the job is done; poll GET {at}"),
        ));
    }
    let entries = peak_bulk_jobs::all_entries(state.jobs.as_ref(), job).await?;
    let mut body = peak_bulk_jobs::report_csv_for(job.kind, &entries);
    if let Some(e) = &job.error {
        let code = job.error_code.as_deref().unwrap_or("file");
        body.push_str(&format!(
            ",\"\",\"failed\",\"\",\"{}\",\"{}\"\r\n",
            peak_bulk::neutralize(code).replace('"', "\"\""),
            peak_bulk::neutralize(e).replace('"', "\"\"")
        ));
    }
    let name = match (job.kind, job.dry_run) {
        (JobKind::Invite, false) => "bulk-invite",
        (JobKind::Update, false) => "bulk-update",
        (JobKind::AccountImport, false) => "account-import",
        (JobKind::Invite, true) => "bulk-invite-check",
        (JobKind::Update, true) => "bulk-update-check",
        (JobKind::AccountImport, true) => "account-import-check",
    };
    Ok(csv(body, &format!("{name}-{}.csv", job.id)))
}

crate::dispatch::routes! {
    signed_in BulkInviteTemplate |_c, _a| Ok(bulk_invite_template());
    signed_in BulkInviteUpload |c, a| bulk_invite_upload(c.state, &a).await;
    signed_in BulkInviteCreate |c, a| bulk_invite_create(&c.ctx(), c.state, &a, &c.req).await;
    signed_in BulkInviteGet |c, a| bulk_invite_get(c.state, &a, c.id()).await;
    signed_in BulkInviteReport |c, a| bulk_invite_report(c.state, &a, c.id()).await;
    signed_in BulkJobTemplate |c, _a| bulk_job_template(&c.req);
    signed_in BulkJobCreate |c, a| bulk_job_create(&c.ctx(), c.state, &a, &c.req).await;
    signed_in BulkJobGet |c, a| bulk_job_get(c.state, &a, c.id()).await;
    signed_in BulkJobReport |c, a| bulk_job_report(c.state, &a, c.id()).await;
}
