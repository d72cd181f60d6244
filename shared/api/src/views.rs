//! What clients receive: JSON representations of domain types.

use peak_domain::catalogue::Catalogue;
use peak_domain::model::profile::Profile;
use serde::Serialize;
use time::OffsetDateTime;

#[derive(Serialize, schemars::JsonSchema)]
pub struct ProfileSummary<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub version: u64,
    /// How many users hold the profile (a profile in use cannot be deleted).
    pub user_count: u64,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub updated_at: OffsetDateTime,
}

impl<'a> From<&'a Profile> for ProfileSummary<'a> {
    fn from(p: &'a Profile) -> Self {
        Self {
            id: p.id.as_str(),
            name: p.name.as_str(),
            description: &p.description,
            version: p.version,
            user_count: p.holder_count,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// A profile in full: the flat `settings` map (what an edit sends back) and
/// the same choices laid out as the seven tabs, for a read-only view.
#[derive(Serialize, schemars::JsonSchema)]
pub struct ProfileView<'a> {
    #[serde(flatten)]
    pub summary: ProfileSummary<'a>,
    pub settings: &'a std::collections::BTreeMap<String, String>,
    pub tabs: Vec<TabView<'a>>,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct TabView<'a> {
    pub id: &'static str,
    pub label: &'static str,
    pub settings: Vec<SettingView<'a>>,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct SettingView<'a> {
    pub id: &'static str,
    pub label: &'static str,
    pub value: &'a str,
    pub value_label: &'static str,
    pub applies_to: &'static [peak_domain::Role],
}

pub fn profile_view<'a>(catalogue: &'static Catalogue, p: &'a Profile) -> ProfileView<'a> {
    ProfileView {
        summary: p.into(),
        settings: p.settings.as_map(),
        tabs: catalogue
            .tabs
            .iter()
            .map(|tab| TabView {
                id: tab.id,
                label: tab.label,
                settings: tab
                    .settings
                    .iter()
                    .map(|s| {
                        let value = p.settings.get(s);
                        SettingView {
                            id: s.id,
                            label: s.label,
                            value,
                            value_label: s.option(value).map(|o| o.label).unwrap_or(""),
                            applies_to: s.applies_to,
                        }
                    })
                    .collect(),
            })
            .collect(),
    }
}

#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "PageOf{T}")]
pub struct PageView<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// The signed-in user (`GET /me`): their record and what they may do.
#[derive(Serialize, schemars::JsonSchema)]
pub struct MeView<'a> {
    #[serde(flatten)]
    pub user: UserView<'a>,
    /// What the portal should let this user do.
    pub permissions: &'a peak_domain::permissions::EffectivePermissions,
}

/// A user as clients see it. Never includes token hashes.
#[derive(Serialize, schemars::JsonSchema)]
pub struct UserView<'a> {
    pub id: &'a str,
    pub email: &'a str,
    /// A new login email awaiting verification.
    pub pending_email: Option<&'a str>,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub account_number: Option<&'a str>,
    pub customer_accounts: Vec<&'a str>,
    pub role: peak_domain::Role,
    pub profile_id: &'a str,
    pub extension_groups: &'a [String],
    pub status: peak_domain::model::user::UserStatus,
    pub invitation: Option<InvitationSummary>,
    pub version: u64,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub updated_at: OffsetDateTime,
    /// The last sign-in Auth0 reported; null until the first.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub last_login_at: Option<OffsetDateTime>,
}

/// One user as `GET /users/{id}` answers: the user, and for an admin the
/// login's sync state with the identity provider (absent for anyone else).
#[derive(Serialize, schemars::JsonSchema)]
pub struct UserDetailView<'a> {
    #[serde(flatten)]
    pub user: UserView<'a>,
    /// Admins only: where the login stands with Auth0 (`no_login`,
    /// `in_sync`, `pending`, `retrying` with attempts and the last error),
    /// as `GET /users/{id}/identity` shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<peak_domain::users::LoginSync>,
    /// Each of `customer_accounts` with its name and status in the
    /// directory (`active`, `closed`, or `unknown` for a number it does not
    /// hold); a non-admin sees name and status only for the accounts they
    /// serve. Not on lists (see `users::user_accounts`).
    pub accounts: Vec<peak_domain::users::UserAccount>,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct InvitationSummary {
    pub state: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub sent_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub expires_at: OffsetDateTime,
}

impl<'a> From<&'a peak_domain::model::user::User> for UserView<'a> {
    fn from(u: &'a peak_domain::model::user::User) -> Self {
        use peak_domain::model::user::InvitationState;
        let now = OffsetDateTime::now_utc();
        Self {
            id: u.id.as_str(),
            email: u.email.as_str(),
            pending_email: u.pending_email.as_ref().map(|p| p.email.as_str()),
            first_name: u.first_name.as_str(),
            last_name: u.last_name.as_str(),
            account_number: u.account_number.as_ref().map(|a| a.as_str()),
            customer_accounts: u.customer_accounts.iter().map(|a| a.as_str()).collect(),
            role: u.role,
            profile_id: u.profile_id.as_str(),
            extension_groups: &u.extension_groups,
            status: u.status,
            invitation: u.invitation.as_ref().map(|i| InvitationSummary {
                state: match i.state {
                    _ if u.status == peak_domain::model::user::UserStatus::Invited
                        && i.is_expired(now) =>
                    {
                        "expired"
                    }
                    InvitationState::Pending => "pending",
                    InvitationState::Accepted => "accepted",
                    InvitationState::Revoked => "revoked",
                },
                sent_at: i.sent_at,
                expires_at: i.expires_at,
            }),
            version: u.version,
            created_at: u.created_at,
            updated_at: u.updated_at,
            last_login_at: u.last_login_at,
        }
    }
}

/// A job as clients see it.
#[derive(Serialize, schemars::JsonSchema)]
pub struct JobView {
    pub id: String,
    /// `invite`, `update` or `account_import`.
    pub kind: peak_domain::bulk_job::JobKind,
    pub status: peak_domain::bulk_job::JobStatus,
    pub file_name: String,
    /// A dry run: rows are checked and reported, nothing else is written.
    pub dry_run: bool,
    /// Data rows in the file: 0 until the runner has read it (the request
    /// does not parse the file).
    pub total_rows: u32,
    /// `invited` counts the rows acted on, whatever the kind (kept under
    /// that name for bulk invites' clients); `applied` says the same. In a
    /// dry run: the rows that passed every check (`valid`).
    pub counts: peak_domain::bulk_job::JobCounts,
    /// Rows acted on: invited, changed, or imported (a dry run: 0).
    pub applied: u32,
    /// A dry run's rows that passed every check (a real run: 0).
    pub valid: u32,
    /// Rows with an outcome so far.
    pub processed: u32,
    /// `processed / total_rows`, 0 to 1 (0 while the row total is unknown).
    pub progress: f64,
    /// Why the job failed, if it did.
    pub error: Option<String>,
    /// The file the runner refused (bad header, over the limits,
    /// unreadable), with the code and message a request used to answer
    /// 422 with; nothing was written.
    pub file_error: Option<FileErrorView>,
    /// Where the report is, once finished.
    pub report: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub updated_at: OffsetDateTime,
}

/// A file-level error of a job.
#[derive(Serialize, schemars::JsonSchema)]
pub struct FileErrorView {
    /// `bad_header`, `too_many_rows`, `no_rows`, `invalid_xlsx`, ...
    pub code: String,
    pub message: String,
}

impl From<&peak_domain::bulk_job::BulkJob> for JobView {
    fn from(j: &peak_domain::bulk_job::BulkJob) -> Self {
        let processed = j.counts.processed();
        Self {
            id: j.id.clone(),
            kind: j.kind,
            status: j.status,
            file_name: j.file_name.clone(),
            dry_run: j.dry_run,
            total_rows: j.total_rows,
            counts: j.counts,
            applied: if j.dry_run { 0 } else { j.counts.invited },
            valid: if j.dry_run { j.counts.invited } else { 0 },
            processed,
            // Unknown until the runner has read the file.
            progress: if j.total_rows == 0 {
                if j.status.is_finished() { 1.0 } else { 0.0 }
            } else {
                (f64::from(processed) / f64::from(j.total_rows)).min(1.0)
            },
            error: j.error.clone(),
            file_error: j
                .error
                .as_ref()
                .zip(j.error_code.as_ref())
                .map(|(message, code)| FileErrorView {
                    code: code.clone(),
                    message: format!("{message} ({code})"),
                }),
            report: j.status.is_finished().then(|| match j.kind {
                peak_domain::bulk_job::JobKind::Invite => {
                    format!("/bulk-invites/{}/report", j.id)
                }
                _ => format!("/bulk-jobs/{}/report", j.id),
            }),
            created_at: j.created_at,
            updated_at: j.updated_at,
        }
    }
}

/// The signed-out "forgot password" form.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetRequest {
    #[schemars(length(min = 1))]
    pub tenant: String,
    #[schemars(length(min = 1, max = 254), email)]
    pub email: String,
}

/// A tenant's settings as its admins see them.
#[derive(Serialize, schemars::JsonSchema)]
pub struct SettingsView<'a> {
    pub tenant: &'a str,
    pub display_name: &'a str,
    /// Operator-only.
    pub portal_url: &'a str,
    /// Operator-only: the address emails are sent from.
    pub sender_address: &'a str,
    #[serde(flatten)]
    pub settings: &'a peak_domain::model::tenant::TenantSettings,
    pub version: u64,
}

/// `POST /users/batch`: one result per operation, in the request's order.
#[derive(Serialize, schemars::JsonSchema)]
pub struct BatchView {
    pub results: Vec<BatchResultView>,
}

/// What the operation's single route would have answered: its status, its
/// `ETag` (a changed user's new version) and its body — the user, the
/// password reset's `{"status": "queued"}`, or the problem document (none
/// for a deletion's 204).
#[derive(Serialize, schemars::JsonSchema)]
pub struct BatchResultView {
    /// The target's id, as sent.
    pub id: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    // `default`: not `required` in the document (a 204 has no body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "batch_result_body")]
    pub body: Option<serde_json::Value>,
}

fn batch_result_body(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let user = g.subschema_for::<UserView<'static>>().to_value();
    schemars::json_schema!({
        "anyOf": [
            user,
            // Defined by the document (openapi.rs), as every error answer is.
            {"$ref": "#/components/schemas/Problem"},
            {
                "type": "object",
                "required": ["status"],
                "properties": {"status": {"const": "queued"}},
            },
        ]
    })
}
