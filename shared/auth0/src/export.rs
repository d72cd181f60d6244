//! Every login of our connection, for reconciliation, through a users-export
//! job: Auth0's user search stops at 1,000 results and is eventually
//! consistent (Auth0 says not to use it for exports); an export job lists
//! every user.
//!
//! `POST /api/v2/jobs/users-exports` (scope `read:users`) with the fields we
//! read, `GET /api/v2/jobs/{id}` until it is `completed`, then the file at
//! its `location` (a presigned URL, fetched without our token): gzipped
//! newline-delimited JSON, one user a line, read one line at a time.

use crate::call::Call;
use crate::client::{Auth0Client, encode_segment, parse, rejected};
use crate::logins::{META_LEGACY_USER_ID, META_PUSHED_BLOCKED, META_TENANT, META_USER_ID};
use async_trait::async_trait;
use http::{Method, StatusCode};
use peak_domain::identity::{IdpAccount, IdpError, LoginDirectory, LoginListing};
use serde::Deserialize;
use serde_json::{Value, json};
use std::io::BufRead;
use tokio::time::Instant;

/// One line of the export: the fields asked for, under their `export_as`
/// names.
#[derive(Deserialize)]
struct ExportLine {
    user_id: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
    #[serde(default)]
    given_name: Option<String>,
    #[serde(default)]
    family_name: Option<String>,
    #[serde(default)]
    blocked: Option<bool>,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    peak_user_id: Option<String>,
    #[serde(default)]
    legacy_user_id: Option<String>,
    #[serde(default)]
    peak_blocked: Option<bool>,
    #[serde(default)]
    connection: Option<String>,
}

impl ExportLine {
    fn into_account(self) -> IdpAccount {
        IdpAccount {
            subject: self.user_id,
            email: self.email.unwrap_or_default(),
            email_verified: self.email_verified.unwrap_or(false),
            given_name: self.given_name,
            family_name: self.family_name,
            blocked: self.blocked.unwrap_or(false),
            tenant: self.tenant,
            user_id: self.peak_user_id.or(self.legacy_user_id),
            pushed_blocked: self.peak_blocked,
        }
    }
}

/// The fields the export job is asked for.
fn fields() -> Value {
    let field = |name: &str, export_as: &str| json!({ "name": name, "export_as": export_as });
    json!([
        { "name": "user_id" },
        { "name": "email" },
        { "name": "email_verified" },
        { "name": "given_name" },
        { "name": "family_name" },
        { "name": "blocked" },
        field(&format!("app_metadata.{META_TENANT}"), "tenant"),
        field(&format!("app_metadata.{META_USER_ID}"), "peak_user_id"),
        field(&format!("app_metadata.{META_LEGACY_USER_ID}"), "legacy_user_id"),
        field(&format!("app_metadata.{META_PUSHED_BLOCKED}"), "peak_blocked"),
        field("identities[0].connection", "connection"),
    ])
}

/// The export job as created (the field we read).
#[derive(Deserialize)]
pub(crate) struct ExportJobCreated {
    id: String,
}

/// The export job as polled.
#[derive(Deserialize)]
pub(crate) struct ExportJobState {
    status: String,
    #[serde(default)]
    location: Option<String>,
}

impl Auth0Client {
    async fn start_export(&self) -> Result<ExportJobCreated, IdpError> {
        let call = Call::new(
            "export_logins",
            Method::POST,
            "/api/v2/jobs/users-exports",
            "/api/v2/jobs/users-exports".into(),
        )
        .json(json!({ "format": "json", "fields": fields() }));
        let answer = self.api(call).await?;
        if !answer.status.is_success() {
            return Err(rejected("export_logins", &answer));
        }
        parse("export_logins", &answer)
    }

    async fn job(&self, id: &str) -> Result<ExportJobState, IdpError> {
        let call = Call::new(
            "export_logins",
            Method::GET,
            "/api/v2/jobs/{id}",
            format!("/api/v2/jobs/{}", encode_segment(id)),
        );
        let answer = self.api(call).await?;
        if answer.status != StatusCode::OK {
            return Err(rejected("export_logins", &answer));
        }
        parse("export_logins", &answer)
    }

    /// The export file's bytes (gzipped), from its presigned location: a
    /// large tenant's file takes longer than an API answer, so the download
    /// has the export's own time budget.
    async fn export_file(&self, location: &str) -> Result<Vec<u8>, IdpError> {
        let deadline = Instant::now() + self.config().export_wait;
        let call = Call::new(
            "export_logins",
            Method::GET,
            "<export file>",
            location.to_owned(),
        );
        let answer = self
            .send_timed(deadline, &call, None, self.config().export_wait)
            .await?;
        if !answer.status.is_success() {
            return Err(rejected("export_logins", &answer));
        }
        Ok(answer.body)
    }
}

#[async_trait]
impl LoginDirectory for Auth0Client {
    async fn all_logins(&self) -> Result<LoginListing, IdpError> {
        let config = self.config();
        let until = Instant::now() + config.export_wait;
        let job_id = self.start_export().await?.id;
        tracing::info!(op = "export_logins", "Auth0 users-export job started");
        let location = loop {
            let mut job = self.job(&job_id).await?;
            match job.status.as_str() {
                "completed" => match job.location.take() {
                    Some(location) => break location,
                    None => {
                        return Err(IdpError::Unavailable(
                            "Auth0 export_logins: the job completed without a file".into(),
                        ));
                    }
                },
                "failed" => {
                    return Err(IdpError::Unavailable(
                        "Auth0 export_logins: the export job failed".into(),
                    ));
                }
                _ => {}
            }
            if Instant::now() + config.export_poll >= until {
                return Err(IdpError::Unavailable(
                    "Auth0 export_logins: the export job did not finish in time".into(),
                ));
            }
            tokio::time::sleep(config.export_poll).await;
        };
        let gz = self.export_file(&location).await?;
        let connection = config.connection.clone();
        let lines =
            std::io::BufReader::new(flate2::read::GzDecoder::new(std::io::Cursor::new(gz))).lines();
        let accounts = lines.filter_map(move |line| {
            let line = match line {
                Ok(line) => line,
                Err(_) => {
                    return Some(Err(IdpError::Unavailable(
                        "Auth0 export_logins: the export file is not readable gzip".into(),
                    )));
                }
            };
            if line.trim().is_empty() {
                return None;
            }
            match serde_json::from_str::<ExportLine>(&line) {
                Ok(l) if l.connection.as_deref() == Some(connection.as_str()) => {
                    Some(Ok(l.into_account()))
                }
                Ok(_) => None,
                // serde's text can quote the line (personal data): not kept.
                Err(_) => Some(Err(IdpError::Unavailable(
                    "Auth0 export_logins: a line of the export is not a user".into(),
                ))),
            }
        });
        Ok(LoginListing {
            accounts: Box::new(accounts),
            source: "export",
        })
    }
}
