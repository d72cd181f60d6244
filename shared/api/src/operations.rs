//! The operations: one entry per route, holding everything about it (see
//! `spec.rs`). Adding an operation is adding its variant and its entry
//! here, and its handler with its `routes!` line in `handlers/`; `cargo
//! xtask` then writes its binary, template resource, sample event, OpenAPI
//! entry and its row in `handlers/table.rs`.

use crate::account_view::AccountView;
use crate::spec::Method::{Delete, Get, Patch, Post, Put};
use crate::spec::RequestBody::{File, Json};
use crate::spec::Table::{Nothing, Read, ReadQuery, ReadQueryBatch, Write, WriteQuery};
use crate::spec::{Operation, QueryParam as Q, SampleBody, Sizing, Throttle, schema};
use crate::views::{
    BatchView, JobView, MeView, PageView, PasswordResetRequest, ProfileSummary, ProfileView,
    SettingsView, UserDetailView, UserView,
};
use Route::*;
use peak_domain::accounts::AccountUpsert;
use peak_domain::audit::AuditEvent;
use peak_domain::catalogue::Catalogue;
use peak_domain::model::profile::{NewProfile, ProfilePatch};
use peak_domain::model::tenant::SettingsPatch;
use peak_domain::users::{
    BatchRequest, FailedEmailView, IdentityWorkView, InviteRequest, LoginSync, RetriedEmail,
    SelfPatch, UserPatch,
};

const PAGE: &[Q] = &[
    Q::integer("limit", "1 to 100 items (default 25)", 1, 100),
    Q::string("cursor", "the `next_cursor` of the previous page"),
];
const USER_FILTERS: &[Q] = &[
    Q::integer(
        "limit",
        "1 to 100 items (default 25); a filtered page may hold fewer, even none, and still give `next_cursor` (at most 1,000 users are read per request): follow it until it is absent",
        1,
        100,
    ),
    Q::string("cursor", "the `next_cursor` of the previous page"),
    Q::string("status", "invited, active or suspended").one_of(&["invited", "active", "suspended"]),
    Q::string("role", "admin, sales_rep, partner or customer").one_of(&[
        "admin",
        "sales_rep",
        "partner",
        "customer",
    ]),
    Q::string("profile", "a profile id"),
    Q::string(
        "account",
        "a customer account number: its users only (non-admins: one of their reach)",
    ),
    Q::string(
        "under",
        "a customer account number: users of it and of every account below it (non-admins: one of their reach); without `account` or `under` a non-admin lists their whole reach; at most 50 accounts in one list (else 422)",
    ),
    Q::string("q", "prefix of \"last first\" name, case-insensitive").length(1, 100),
    Q::string(
        "email",
        "prefix of the email address, case-insensitive (orders by email)",
    )
    .length(1, 100),
];
const BULK_CREATE: &[Q] = &[
    Q::boolean(
        "dry_run",
        "true: a job that checks and reports every row and writes nothing else",
    ),
    Q::string("file_name", "the uploaded file's name"),
    Q::string(
        "upload_id",
        "AWS: the id from POST /bulk-invites/uploads, for a file PUT to its URL (the body is then ignored)",
    ),
];

const JOB_KIND: &[Q] = &[Q::string(
    "kind",
    "update (users to change) or account_import (customer accounts)",
)
.one_of(&["update", "account_import"])];
const BULK_JOB_CREATE: &[Q] = &[
    Q::string(
        "kind",
        "update (users to change) or account_import (customer accounts)",
    )
    .one_of(&["update", "account_import"]),
    Q::boolean(
        "dry_run",
        "true: a job that checks and reports every row and writes nothing else",
    ),
    Q::string("file_name", "the uploaded file's name"),
    Q::string(
        "upload_id",
        "AWS: the id from POST /bulk-invites/uploads, for a file PUT to its URL (the body is then ignored)",
    ),
];

const ACCOUNT_SEARCH: &[Q] = &[
    Q::integer("limit", "1 to 100 items (default 25)", 1, 100),
    Q::string("cursor", "the `next_cursor` of the previous page"),
    Q::string(
        "q",
        "prefix of the account number or name, case-insensitive (absent: every account, by number)",
    )
    .length(1, 100),
];

const ACCOUNT: Option<crate::spec::SchemaFn> = Some(schema::<AccountView<'static>>);
const USER: Option<crate::spec::SchemaFn> = Some(schema::<UserView<'static>>);
const PROFILE: Option<crate::spec::SchemaFn> = Some(schema::<ProfileView<'static>>);
const JOB: Option<crate::spec::SchemaFn> = Some(schema::<JobView>);
const AUDIT_PAGE: Option<crate::spec::SchemaFn> = Some(schema::<PageView<AuditEvent>>);

/// The operations, by name: `UserUpdate` is the function `user-update`,
/// its handler `user_update`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Route {
    ProfileCatalogue,
    ProfileList,
    ProfileCreate,
    ProfileGet,
    ProfileUpdate,
    ProfileDelete,
    UserList,
    UserInvite,
    UserGet,
    UserUpdate,
    UserDelete,
    UserSuspend,
    UserEnable,
    UserPasswordReset,
    InvitationResend,
    InvitationRevoke,
    UserBatch,
    UserIdentity,
    UserAudit,
    TenantAudit,
    FailedEmailList,
    FailedEmailRetry,
    IdentityWorkList,
    IdentityWorkRetry,
    SettingsGet,
    SettingsUpdate,
    MeGet,
    MeUpdate,
    MePasswordReset,
    InvitationView,
    InvitationAccept,
    EmailVerificationView,
    EmailVerificationConfirm,
    PasswordResetRequest,
    BulkInviteTemplate,
    BulkInviteUpload,
    BulkInviteCreate,
    BulkInviteGet,
    BulkInviteReport,
    BulkJobTemplate,
    BulkJobCreate,
    BulkJobGet,
    BulkJobReport,
    AccountList,
    AccountGet,
    AccountUpsert,
    Auth0Webhook,
    Openapi,
}

/// An operation of this API.
pub type Op = Operation<Route>;

/// Every operation, in the order the template and the document list them.
#[rustfmt::skip]
pub const OPERATIONS: &[Op] = &[
    Op::new(ProfileCatalogue, Get, "/profile-catalogue", "profile-catalogue", Read,
        "The seven tabs of profile settings and the extension groups")
        .answers(200, Some(schema::<Catalogue>)),
    Op::new(ProfileList, Get, "/profiles", "profile-list", ReadQuery,
        "A page of the tenant's profiles")
        .query(PAGE)
        .answers(200, Some(schema::<PageView<ProfileSummary<'static>>>))
        .sample_query(&[("limit", "10")]),
    Op::new(ProfileCreate, Post, "/profiles", "profile-create", Write,
        "Create a profile (a name is enough)")
        .creates()
        .takes(Json(schema::<NewProfile>))
        .answers(201, PROFILE)
        .sample_body(SampleBody::Json(r#"{"name": "VIP Customers", "description": "Customers with every self-service option"}"#)),
    Op::new(ProfileGet, Get, "/profiles/{id}", "profile-get", Read,
        "One profile, with its settings laid out as tabs")
        .answers(200, PROFILE),
    Op::new(ProfileUpdate, Patch, "/profiles/{id}", "profile-update", Write,
        "Edit a profile (If-Match required)")
        .takes(Json(schema::<ProfilePatch>))
        .answers(200, PROFILE)
        .sample_body(SampleBody::Json(r#"{"settings": {"my_subscriptions.cancel": "enabled", "pay_invoices.payment_methods": "card"}}"#)),
    Op::new(ProfileDelete, Delete, "/profiles/{id}", "profile-delete", Write,
        "Delete a profile no user holds")
        .answers(204, None),
    Op::new(UserList, Get, "/users", "user-list", ReadQueryBatch,
        "List and search users")
        .query(USER_FILTERS)
        .answers(200, Some(schema::<PageView<UserView<'static>>>))
        .sample_query(&[("role", "customer"), ("limit", "10")]),
    Op::new(UserInvite, Post, "/users", "user-invite", Write,
        "Invite a user (Idempotency-Key honoured)")
        .creates()
        .takes(Json(schema::<InviteRequest>))
        .answers(201, USER)
        .sample_body(SampleBody::Json(r#"{"first_name": "Jane", "last_name": "Doe", "email": "jane.doe@acme.example", "role": "customer", "profile_id": "01JDPEAKSAMP1E0000000000AB", "customer_accounts": ["ACME"], "extension_groups": ["billing_manager"]}"#)),
    Op::new(UserGet, Get, "/users/{id}", "user-get", Read,
        "One user (for an admin, with the login's sync state with Auth0)")
        .answers(200, Some(schema::<UserDetailView<'static>>)),
    Op::new(UserUpdate, Patch, "/users/{id}", "user-update", Write,
        "Edit a user (If-Match required)")
        .takes(Json(schema::<UserPatch>))
        .answers(200, USER)
        .sample_body(SampleBody::Json(r#"{"last_name": "Doe-Smith", "customer_accounts": ["ACME", "ACME-EU"]}"#)),
    Op::new(UserDelete, Delete, "/users/{id}", "user-delete", WriteQuery,
        "Delete a user and their personal data")
        .answers(204, None),
    Op::new(UserSuspend, Post, "/users/{id}/suspend", "user-suspend", Write,
        "Suspend a user")
        .answers(200, USER),
    Op::new(UserEnable, Post, "/users/{id}/enable", "user-enable", Write,
        "Enable a suspended user")
        .answers(200, USER),
    Op::new(UserPasswordReset, Post, "/users/{id}/password-reset", "user-password-reset", Write,
        "Email the user a password-change link")
        .answers(202, None),
    Op::new(InvitationResend, Post, "/users/{id}/invitation/resend", "invitation-resend", Write,
        "Resend an invitation (the old link stops working)")
        .answers(200, USER),
    Op::new(InvitationRevoke, Post, "/users/{id}/invitation/revoke", "invitation-revoke", Write,
        "Revoke an invitation")
        .answers(200, USER),
    // Each operation answered as its single route would (status, ETag,
    // body or problem document); the whole request is 200. Over the limit
    // or empty: 422 naming `operations` and the limit (see handlers/batch.rs).
    Op::new(UserBatch, Post, "/users/batch", "user-batch", WriteQuery,
        "Change up to 100 users in one request: update, suspend, enable, delete, resend or revoke an invitation, reset a password; each answered as its single route would, in order (Idempotency-Key honoured)")
        .creates()
        .takes(Json(schema::<BatchRequest>))
        .answers(200, Some(schema::<BatchView>))
        .sample_body(SampleBody::Json(r#"{"operations": [{"op": "update", "id": "01JDPEAKSAMP1EVSER000000AB", "if_match": "\"4\"", "patch": {"first_name": "Batch"}}, {"op": "suspend", "id": "01JDPEAKSAMP1EVSER000000AB"}, {"op": "enable", "id": "01JDPEAKSAMP1EVSER000000AB"}, {"op": "reset_password", "id": "01JDPEAKSAMP1EVSER000000AB"}, {"op": "suspend", "id": "01JDPEAKSAMP1E0000000000ZZ"}]}"#)),
    Op::new(UserIdentity, Get, "/users/{id}/identity", "user-identity", Read,
        "Where a user's login stands with Auth0: in sync, or the work owed (admins)")
        .answers(200, Some(schema::<LoginSync>)),
    Op::new(UserAudit, Get, "/users/{id}/audit", "user-audit", ReadQuery,
        "A user's audit trail, newest first")
        .query(PAGE)
        .answers(200, AUDIT_PAGE)
        .sample_query(&[("limit", "20")]),
    Op::new(TenantAudit, Get, "/audit", "tenant-audit", ReadQuery,
        "The tenant's recent audit events, newest first")
        .query(PAGE)
        .answers(200, AUDIT_PAGE)
        .sample_query(&[("limit", "20")]),
    Op::new(FailedEmailList, Get, "/emails/failed", "failed-email-list", ReadQuery,
        "The tenant's emails the mailer gave up on, newest first (admins)")
        .query(PAGE)
        .answers(200, Some(schema::<PageView<FailedEmailView>>))
        .sample_query(&[("limit", "20")]),
    Op::new(FailedEmailRetry, Post, "/emails/failed/{id}/retry", "failed-email-retry", Write,
        "Send a failed email again, with a fresh link where it had one (admins; audited)")
        .answers(202, Some(schema::<RetriedEmail>)),
    Op::new(IdentityWorkList, Get, "/identity-work", "identity-work-list", ReadQuery,
        "The tenant's work owed to Auth0: attempts, last error, next attempt, stuck (admins)")
        .query(PAGE)
        .answers(200, Some(schema::<PageView<IdentityWorkView>>))
        .sample_query(&[("limit", "20")]),
    Op::new(IdentityWorkRetry, Post, "/identity-work/{id}/retry", "identity-work-retry", Write,
        "Make a user's owed Auth0 work due now (admins; audited)")
        .answers(202, Some(schema::<IdentityWorkView>)),
    Op::new(SettingsGet, Get, "/settings", "settings-get", Read,
        "The tenant's settings (admins; 404 for a tenant configured by deployment only)")
        .answers(200, Some(schema::<SettingsView<'static>>)),
    Op::new(SettingsUpdate, Patch, "/settings", "settings-update", Write,
        "Change the tenant's settings (admins, If-Match required; audited)")
        .takes(Json(schema::<SettingsPatch>))
        .answers(200, Some(schema::<SettingsView<'static>>))
        .sample_body(SampleBody::Json(r#"{"invitation_ttl_days": 14, "suspension_notice": true}"#)),
    Op::new(MeGet, Get, "/me", "me-get", Read,
        "The signed-in user and their effective permissions")
        .answers(200, Some(schema::<MeView<'static>>)),
    Op::new(MeUpdate, Patch, "/me", "me-update", Write,
        "Change one's own name or login email (If-Match required)")
        .takes(Json(schema::<SelfPatch>))
        .answers(200, USER)
        .sample_body(SampleBody::Json(r#"{"first_name": "Sam", "last_name": "Sample"}"#)),
    Op::new(MePasswordReset, Post, "/me/password-reset", "me-password-reset", Write,
        "Email oneself a password-change link")
        .answers(202, None),
    // The invitation page names the inviter: the audit trail says who.
    Op::new(InvitationView, Get, "/invitations/{token}", "invitation-view", ReadQuery,
        "What an invitation link shows, never consuming it: an HTML page to a browser (Accept: text/html), JSON otherwise")
        .public(Throttle::PublicRoute)
        .pages(),
    Op::new(InvitationAccept, Post, "/invitations/{token}/accept", "invitation-accept", Write,
        "Accept an invitation: where to set the password, as JSON, or as 303 See Other to a browser's form post")
        .public(Throttle::PublicRoute)
        .pages()
        .auth0()
        .sized(Sizing::AUTH0_CALLS),
    Op::new(EmailVerificationView, Get, "/email-verifications/{token}", "email-verification-view", Read,
        "What an email-verification link shows, never consuming it: an HTML page to a browser, JSON otherwise")
        .public(Throttle::PublicRoute)
        .pages(),
    Op::new(EmailVerificationConfirm, Post, "/email-verifications/{token}", "email-verification-confirm", Write,
        "Make the new address the login email: the user as JSON, or an HTML done page to a browser's form post")
        .public(Throttle::PublicRoute)
        .pages()
        .answers(200, USER),
    Op::new(PasswordResetRequest, Post, "/password-resets", "password-reset-request", Write,
        "Signed-out password reset (same answer whether or not the address exists)")
        .public(Throttle::PublicRoute)
        .takes(Json(schema::<PasswordResetRequest>))
        .answers(202, None)
        .sample_body(SampleBody::Json(r#"{"tenant": "sample-tenant", "email": "customer@sample.example"}"#)),
    Op::new(BulkInviteTemplate, Get, "/bulk-invites/template", "bulk-invite-template", Read,
        "The CSV template for bulk invites (header and one example row)"),
    Op::new(BulkInviteUpload, Post, "/bulk-invites/uploads", "bulk-invite-upload", Read,
        "A presigned URL to PUT a large bulk-invite file to (AWS); then POST /bulk-invites?upload_id=…")
        .answers(201, None)
        .bulk_bucket(&["s3:PutObject"]),
    Op::new(BulkInviteCreate, Post, "/bulk-invites", "bulk-invite-create", WriteQuery,
        "Upload a .csv or .xlsx of people to invite: 202 with a queued job the runner reads and works (?dry_run=true: a job that checks and reports every row, inviting no one)")
        .creates()
        .takes(File)
        .query(BULK_CREATE)
        .answers(202, JOB)
        .bulk_bucket(&["s3:GetObject", "s3:PutObject"])
        .sample_query(&[("dry_run", "true"), ("file_name", "people.csv")])
        .sample_body(SampleBody::File {
            content_type: "text/csv",
            text: "First name,Last name,Email,Role,Profile,Customer accounts\r\n\
                   Jane,Doe,jane.doe@acme.example,customer,Standard,ACME\r\n\
                   Bad,Row,not-an-email,customer,Standard,ACME\r\n",
        }),
    Op::new(BulkInviteGet, Get, "/bulk-invites/{id}", "bulk-invite-get", Read,
        "A bulk invite's status, counts and progress")
        .answers(200, JOB),
    Op::new(BulkInviteReport, Get, "/bulk-invites/{id}/report", "bulk-invite-report", ReadQuery,
        "A finished bulk invite's report (CSV: row, email, outcome, column, code, reason)"),
    // Bulk updates and account imports. No HTTP function parses a file
    // (only bulk-runner links the spreadsheet reader).
    Op::new(BulkJobTemplate, Get, "/bulk-jobs/template", "bulk-job-template", ReadQuery,
        "The CSV template of a bulk update or an account import")
        .query(JOB_KIND)
        .sample_query(&[("kind", "update")]),
    Op::new(BulkJobCreate, Post, "/bulk-jobs", "bulk-job-create", WriteQuery,
        "Upload a .csv or .xlsx of users to change (kind=update: as PATCH /users/{id} and suspend/enable would, as the uploader) or of customer accounts (kind=account_import, admins: as PUT /accounts/{number}): 202 with a queued job (?dry_run=true: check only)")
        .creates()
        .takes(File)
        .query(BULK_JOB_CREATE)
        .answers(202, JOB)
        .bulk_bucket(&["s3:GetObject", "s3:PutObject"])
        .sample_query(&[("kind", "update"), ("dry_run", "true"), ("file_name", "changes.csv")])
        .sample_body(SampleBody::File {
            content_type: "text/csv",
            text: "Email,Last name,Status\r\n\
                   customer@sample.example,Sample-Smith,\r\n\
                   nobody@sample.example,,suspend\r\n",
        }),
    Op::new(BulkJobGet, Get, "/bulk-jobs/{id}", "bulk-job-get", Read,
        "Any bulk job's kind, status, counts and progress (invites, updates, account imports)")
        .answers(200, JOB),
    Op::new(BulkJobReport, Get, "/bulk-jobs/{id}/report", "bulk-job-report", ReadQuery,
        "A finished bulk job's report (CSV: row, then email, user or account, outcome, column, code, reason)"),
    // Also callable by a machine client whose scope names them (machine.rs).
    Op::new(AccountList, Get, "/accounts", "account-list", ReadQuery,
        "Customer accounts whose number or name starts with q, for the invite form's association dropdown (admins: all; sales reps and partners: those they serve and their descendants; customers: their own)")
        .query(ACCOUNT_SEARCH)
        .answers(200, Some(schema::<PageView<AccountView<'static>>>))
        .sample_query(&[("q", "acme"), ("limit", "10")]),
    Op::new(AccountGet, Get, "/accounts/{number}", "account-get", ReadQuery,
        "One customer account (404 outside the caller's reach)")
        .answers(200, ACCOUNT),
    Op::new(AccountUpsert, Put, "/accounts/{number}", "account-upsert", WriteQuery,
        "Create or replace a customer account, or close it with status closed (admins and the billing sync; If-Match optional; audited). 201 when created")
        .takes(Json(schema::<AccountUpsert>))
        .answers(200, ACCOUNT)
        .sample_body(SampleBody::Json(r#"{"name": "Acme Europe", "parent": "ACME", "status": "active"}"#)),
    // Authenticated by its own signature or bearer token, not a user's JWT.
    Op::new(Auth0Webhook, Post, "/webhooks/auth0", "auth0-webhook", Write,
        "Auth0 deliveries: Actions signed in the Standard Webhooks scheme, or Event Streams CloudEvents with a bearer token")
        .public(Throttle::Webhook)
        .auth0()
        .sized(Sizing::WEBHOOK)
        // An Event Streams delivery: the sample user's login was blocked in
        // the Auth0 dashboard (signed Actions deliveries expire after five
        // minutes: see events/auth0/ and scripts/sign-webhook-event.py).
        .sample_body(SampleBody::Json(r#"{"id": "evt_sample0000000000000001", "source": "urn:auth0:your-tenant.us.auth0.com", "specversion": "1.0", "type": "user.updated", "time": "2026-11-23T14:00:00.000Z", "data": {"object": {"user_id": "auth0|target", "email": "target@sample.example", "email_verified": true, "blocked": true, "app_metadata": {"tenant": "sample-tenant"}}}}"#))
        .sample_headers(&[("authorization", "Bearer SAMPLE_EVENT_STREAM_TOKEN_set_AUTH0_EVENT_STREAM_TOKENS_to_it")]),
    Op::new(Openapi, Get, "/openapi.json", "openapi", Nothing,
        "This document")
        .public(Throttle::PublicRoute),
];
