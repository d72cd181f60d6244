//! Every sample event in `events/` (the files `sam local invoke -e` uses) is
//! fed to its function's handler — exactly that function's routes, as the
//! Lambda serves them — with its placeholders replaced by real values (a
//! fresh token, a real profile id, user id, invitation or verification
//! token), and answers the status its function promises.
//!
//! The events are written by `cargo xtask` from the operations.

use http::StatusCode;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt};
use peak_api::routes::{Matched, function_routes, match_route, spec};
use peak_api::{AppState, ROUTES, Route, Served, handle, handle_routes, handlers};
use peak_auth::{DevIdentityProvider, JwtVerifier, StaticJwks};
use peak_domain::TenantId;
use peak_domain::catalogue::catalogue;
use peak_domain::identity::{IdpAccount, IdpError, IdpUserState, SetupLink, StepOutcome};
use peak_domain::model::profile::{Profile, ProfileName, ProfileSettings};
use peak_domain::model::user::{AccountNumber, Email, PersonName, User, UserId, UserStatus};
use peak_domain::outbox::EmailKind;
use peak_domain::ports::{OutboxQueue, ProfileStore, UserRecords, UserWrite};
use peak_domain::role::Role;
use peak_domain::users::{self, InviteRequest, SelfPatch, UserSettings};
use peak_store_sqlite::SqliteStore;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// The placeholders the events carry (see `events/README.md`).
const SAMPLE_ID: &str = "01JDPEAKSAMP1E0000000000AB";
const SAMPLE_USER_ID: &str = "01JDPEAKSAMP1EVSER000000AB";
const TOKEN_PLACEHOLDER: &str = "PASTE_A_TOKEN_FROM_peak-local_token";
const INVITATION_PLACEHOLDER: &str = "PASTE_THE_TOKEN_FROM_AN_INVITATION_LINK";
const VERIFICATION_PLACEHOLDER: &str = "PASTE_THE_TOKEN_FROM_AN_EMAIL_VERIFICATION_LINK";

struct Harness {
    state: AppState,
    idp: DevIdentityProvider,
    store: Arc<SqliteStore>,
    /// The profile every seeded user holds.
    seed_profile: String,
}

/// Stands in for Auth0 on the invitation routes: every invitee gets a
/// subject, and a password-setup link that says whose it is.
struct FakeIdp;

#[async_trait::async_trait]
impl peak_domain::identity::IdentityProvider for FakeIdp {
    async fn find_login(&self, _: &User) -> Result<Option<IdpAccount>, IdpError> {
        Ok(None)
    }
    async fn create_login(&self, user: &User) -> Result<Option<String>, IdpError> {
        Ok(Some(format!("auth0|invitee-{}", user.id)))
    }
    async fn relink_login(&self, _: &str, _: &User) -> Result<bool, IdpError> {
        Ok(true)
    }
    async fn revoke_sessions(&self, _: &str) -> Result<StepOutcome, IdpError> {
        Ok(StepOutcome::Done)
    }
    async fn revoke_refresh_tokens(&self, _: &str) -> Result<StepOutcome, IdpError> {
        Ok(StepOutcome::Done)
    }
    async fn clear_login_block(&self, _: &str) -> Result<StepOutcome, IdpError> {
        Ok(StepOutcome::Done)
    }
    async fn password_setup_link(
        &self,
        _: &User,
        subject: &str,
        _: &SetupLink<'_>,
    ) -> Result<String, IdpError> {
        Ok(format!("https://idp.test/set-password?subject={subject}"))
    }
    async fn update_user(&self, _: &str, _: &IdpUserState) -> Result<bool, IdpError> {
        Ok(true)
    }
    async fn delete_user(&self, _: &str) -> Result<(), IdpError> {
        Ok(())
    }
    /// Every login it is asked about is one of the sample tenant's.
    async fn get_user(&self, subject: &str) -> Result<Option<IdpAccount>, IdpError> {
        Ok(Some(IdpAccount {
            subject: subject.to_owned(),
            email: "someone@sample.example".into(),
            email_verified: true,
            given_name: None,
            family_name: None,
            blocked: false,
            tenant: Some(TENANT.into()),
            user_id: None,
            pushed_blocked: None,
        }))
    }
}

const TENANT: &str = "sample-tenant";
/// What `events/auth0-webhook.json` carries (set AUTH0_EVENT_STREAM_TOKENS
/// to it for `sam local invoke`).
const SAMPLE_STREAM_TOKEN: &str = "SAMPLE_EVENT_STREAM_TOKEN_set_AUTH0_EVENT_STREAM_TOKENS_to_it";
/// A test secret for signing `events/auth0/*.json` with
/// scripts/sign-webhook-event.py.
const SAMPLE_WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn tenant() -> TenantId {
    TenantId::parse(TENANT).unwrap()
}

/// An active user on account ACME, stored directly (version 1).
async fn seed_user(
    store: &SqliteStore,
    profile: &peak_domain::ProfileId,
    role: Role,
    subject: &str,
    email: &str,
) -> User {
    let now = time::OffsetDateTime::now_utc();
    let user = User {
        tenant_id: tenant(),
        id: UserId::generate(),
        email: Email::parse(email).unwrap(),
        pending_email: None,
        first_name: PersonName::parse("first_name", "Sample").unwrap(),
        last_name: PersonName::parse("last_name", role.as_str()).unwrap(),
        account_number: None,
        customer_accounts: vec![AccountNumber::parse("a", "ACME").unwrap()],
        role,
        profile_id: profile.clone(),
        extension_groups: Vec::new(),
        status: UserStatus::Active,
        idp_subject: Some(subject.to_owned()),
        invitation: None,
        version: 1,
        created_at: now,
        updated_at: now,
        last_login_at: None,
    };
    store
        .write_user(UserWrite {
            previous: None,
            next: Some(&user),
            audit: &[],
            outbox: &[],
        })
        .await
        .unwrap();
    user
}

/// An app over an in-memory store with one active user per role, each
/// with subject `auth0|<role>` and email `<role>@sample.example`.
async fn harness() -> Harness {
    let idp = DevIdentityProvider::generate("https://issuer.test/", "https://api.test").unwrap();
    let verifier = JwtVerifier::new(
        idp.issuer(),
        idp.audience(),
        Arc::new(StaticJwks(idp.jwks())),
    );
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    let now = time::OffsetDateTime::now_utc();
    let profile = Profile {
        tenant_id: tenant(),
        id: peak_domain::ProfileId::generate(),
        name: ProfileName::parse("Seed").unwrap(),
        description: String::new(),
        settings: ProfileSettings::defaults(catalogue()),
        version: 1,
        holder_count: 0,
        created_at: now,
        updated_at: now,
    };
    store.insert_profile(&profile).await.unwrap();
    // The accounts the sample events put users on (invites and edits
    // refuse accounts the directory does not hold).
    let bootstrap = peak_domain::accounts::MachineClient {
        tenant_id: tenant(),
        client_id: "bootstrap".into(),
        read: true,
        write: true,
    };
    for (number, parent) in [("ACME", None), ("ACME-EU", Some("ACME"))] {
        peak_domain::accounts::upsert_account(
            store.as_ref(),
            peak_domain::accounts::AccountCaller::Machine(&bootstrap),
            number,
            None,
            &peak_domain::accounts::AccountUpsert {
                name: number.into(),
                parent: parent.map(str::to_owned),
                status: None,
            },
            "bootstrap",
            now,
        )
        .await
        .unwrap();
    }
    for role in Role::ALL {
        seed_user(
            &store,
            &profile.id,
            role,
            &format!("auth0|{role}"),
            &format!("{role}@sample.example"),
        )
        .await;
    }
    Harness {
        state: AppState {
            profiles: store.clone(),
            users: store.clone(),
            tenants: store.clone(),
            accounts: store.clone(),
            callers: store.clone(),
            idp: Arc::new(FakeIdp),
            verifier: Arc::new(verifier),
            catalogue: catalogue(),
            settings: Arc::new(UserSettings::default()),
            webhooks: Some(Arc::new(peak_api::WebhookConfig {
                action_secrets: Some(
                    peak_webhooks::WebhookSecrets::parse(SAMPLE_WEBHOOK_SECRET).unwrap(),
                ),
                event_stream_tokens: vec![SAMPLE_STREAM_TOKEN.to_owned()],
            })),
            jobs: store.clone(),
            files: Arc::new(peak_bulk_jobs::MemoryFiles::default()),
            brands: Arc::new(peak_api::portal_brands("https://portal.example")),
        },
        idp,
        store,
        seed_profile: profile.id.as_str().to_owned(),
    }
}

/// What an event's placeholders become.
#[derive(Clone)]
struct Fill {
    /// Whose token goes in `authorization` (subject `auth0|<role>`).
    role: &'static str,
    profile_id: String,
    user_id: String,
    invitation: String,
    verification: String,
    /// A bulk-invite job of the sample tenant.
    job_id: String,
}

const SAMPLE_JOB_ID: &str = "01JDPEAKSAMP1EJ0B0000000AB";
/// The failed email `failed-email-retry.json` names (none: 404).
const SAMPLE_EMAIL_ID: &str = "01JDPEAKSAMP1EMA11000000AB";

fn events_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

fn read_event(file: &str) -> String {
    let path = events_dir().join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

impl Harness {
    fn event(&self, file: &str, role: &'static str, profile_id: &str) -> Request {
        self.event_with(
            file,
            &Fill {
                role,
                profile_id: profile_id.to_owned(),
                user_id: SAMPLE_USER_ID.to_owned(),
                invitation: INVITATION_PLACEHOLDER.to_owned(),
                verification: VERIFICATION_PLACEHOLDER.to_owned(),
                job_id: SAMPLE_JOB_ID.to_owned(),
            },
        )
    }

    fn event_with(&self, file: &str, fill: &Fill) -> Request {
        let token = self
            .idp
            .token_for(
                &format!("auth0|{}", fill.role),
                TENANT,
                fill.role,
                Duration::from_secs(300),
            )
            .unwrap();
        let raw = read_event(file)
            .replace(TOKEN_PLACEHOLDER, &token)
            .replace(SAMPLE_ID, &fill.profile_id)
            .replace(SAMPLE_USER_ID, &fill.user_id)
            .replace(SAMPLE_JOB_ID, &fill.job_id)
            .replace(INVITATION_PLACEHOLDER, &fill.invitation)
            .replace(VERIFICATION_PLACEHOLDER, &fill.verification);
        lambda_http::request::from_str(&raw)
            .unwrap_or_else(|e| panic!("{file} is not an API Gateway event: {e}"))
    }

    /// The use-case view of the user with this subject.
    async fn actor(&self, subject: &str) -> peak_domain::users::policy::Actor {
        users::resolve_actor(&self.state.ctx("test-setup"), &tenant(), subject)
            .await
            .unwrap()
    }

    /// The one-time token in the link of the newest unsent email of `kind`
    /// to user `id`.
    async fn link_token(&self, kind: EmailKind, id: &UserId) -> String {
        let outbox = self
            .store
            .pending_outbox(100, time::OffsetDateTime::now_utc())
            .await
            .unwrap();
        let mail = outbox
            .iter()
            .rev()
            .find(|m| m.kind == kind && &m.user_id == id)
            .unwrap_or_else(|| panic!("no {kind:?} email for {id}"));
        let link = mail.data["link"].as_str().unwrap();
        link.rsplit('/').next().unwrap().to_owned()
    }
}

fn json(resp: &http::Response<Body>) -> serde_json::Value {
    let csv = resp
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/csv"));
    match resp.body() {
        // CSV answers (the template, a report) as a JSON string.
        Body::Text(t) if csv => serde_json::Value::String(t.clone()),
        Body::Text(t) => serde_json::from_str(t).unwrap(),
        other => panic!("expected a JSON text body, got {other:?}"),
    }
}

/// The function an event file is for: its name without `.json`.
fn function_of(file: &str) -> &str {
    file.strip_suffix(".json").unwrap()
}

/// Every `events/*.json` file name, sorted.
fn event_files() -> BTreeSet<String> {
    std::fs::read_dir(events_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect()
}
#[tokio::test]
async fn every_sample_event_gets_its_functions_answer() {
    let h = harness().await;
    let created = handle(&h.state, h.event("profile-create.json", "admin", SAMPLE_ID)).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = json(&created)["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.headers()["location"],
        format!("/profiles/{id}").as_str()
    );
    assert_eq!(created.headers()["etag"], "\"1\"");

    for (file, expected) in [
        ("profile-catalogue.json", StatusCode::OK),
        ("profile-list.json", StatusCode::OK),
        ("profile-get.json", StatusCode::OK),
        ("profile-update.json", StatusCode::OK),
        ("profile-delete.json", StatusCode::NO_CONTENT),
    ] {
        let resp = handle(&h.state, h.event(file, "admin", &id)).await;
        assert_eq!(resp.status(), expected, "{file}: {:?}", resp.body());
    }
}

#[tokio::test]
async fn the_update_event_changes_what_it_says() {
    let h = harness().await;
    let created = handle(&h.state, h.event("profile-create.json", "admin", SAMPLE_ID)).await;
    let id = json(&created)["id"].as_str().unwrap().to_owned();
    let resp = handle(&h.state, h.event("profile-update.json", "admin", &id)).await;
    let body = json(&resp);
    assert_eq!(body["settings"]["my_subscriptions.cancel"], "enabled");
    assert_eq!(body["settings"]["pay_invoices.payment_methods"], "card");
    assert_eq!(body["version"], 2);
    assert_eq!(resp.headers()["etag"], "\"2\"");
    // The same event again carries If-Match "1": now stale.
    let again = handle(&h.state, h.event("profile-update.json", "admin", &id)).await;
    assert_eq!(again.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(json(&again)["code"], "stale_version");
}

/// What a function's binary serves: its routes, with their handlers.
fn served(function: &str) -> Served {
    let routes: Vec<_> = function_routes(function)
        .into_iter()
        .map(|r| (r, handlers::handler(r)))
        .collect();
    Served::only(&routes)
}

#[tokio::test]
async fn a_function_serves_only_its_own_route() {
    let h = harness().await;
    let only_get = Served::only(&[(Route::ProfileCatalogue, handlers::ProfileCatalogue)]);
    let resp = handle_routes(
        &h.state,
        &only_get,
        h.event("profile-create.json", "admin", SAMPLE_ID),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let list = h
        .state
        .profiles
        .list_profiles(
            &TenantId::parse(TENANT).unwrap(),
            &peak_domain::ports::PageRequest::first(10),
        )
        .await
        .unwrap();
    assert!(
        list.items
            .iter()
            .all(|p| p.name.as_str() != "VIP Customers"),
        "nothing was created"
    );
    let resp = handle_routes(
        &h.state,
        &only_get,
        h.event("profile-catalogue.json", "customer", SAMPLE_ID),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(json(&resp)["tabs"].as_array().unwrap().len(), 7);
}

#[tokio::test]
async fn non_admins_are_refused_before_anything_changes() {
    let h = harness().await;
    for role in ["sales_rep", "partner", "customer"] {
        let resp = handle(&h.state, h.event("profile-create.json", role, SAMPLE_ID)).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{role}");
        assert_eq!(json(&resp)["code"], "forbidden");
    }
    let resp = handle(&h.state, h.event("profile-list.json", "admin", SAMPLE_ID)).await;
    let names: Vec<_> = json(&resp)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert_eq!(names, ["Seed"], "only the seeded profile");
}

/// The profile policy decides before the body or the path id is read (the
/// use case is handed the body unread): a non-admin gets the same 403
/// whatever they sent, and an admin sending the same is told what is wrong.
#[tokio::test]
async fn non_admins_are_refused_whatever_they_send() {
    let h = harness().await;
    let malformed = |file: &str, role: &'static str| {
        let mut req = h.event(file, role, SAMPLE_ID);
        *req.body_mut() = Body::Text("{not json".into());
        req
    };
    for role in ["sales_rep", "partner", "customer"] {
        for file in ["profile-create.json", "profile-update.json"] {
            let resp = handle(&h.state, malformed(file, role)).await;
            assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{role} {file}");
            assert_eq!(json(&resp)["code"], "forbidden", "{role} {file}");
        }
        for file in [
            "profile-get.json",
            "profile-update.json",
            "profile-delete.json",
        ] {
            let resp = handle(&h.state, h.event(file, role, "not-a-profile-id")).await;
            assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{role} {file}");
        }
    }
    let bad_limit = |role: &'static str| {
        let mut req = h.event("profile-list.json", role, SAMPLE_ID);
        *req.uri_mut() = "/profiles?limit=many".parse().unwrap();
        req
    };
    for role in ["sales_rep", "customer"] {
        let resp = handle(&h.state, bad_limit(role)).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{role} list");
    }
    let resp = handle(&h.state, bad_limit("admin")).await;
    assert_eq!(json(&resp)["errors"][0]["field"], "limit", "admin list");
    for file in ["profile-create.json", "profile-update.json"] {
        let resp = handle(&h.state, malformed(file, "admin")).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "admin {file}");
    }
    let resp = handle(
        &h.state,
        h.event("profile-get.json", "admin", "not-a-profile-id"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

/// Works a dry-run job the sample event queued, as the runner would.
async fn run_dry(h: &Harness, queued: &serde_json::Value) -> peak_domain::bulk_job::BulkJob {
    let ctx = h.state.ctx("events-runner");
    let ports = peak_bulk_jobs::Ports {
        jobs: h.state.jobs.as_ref(),
        files: h.state.files.as_ref(),
        accounts: Some(h.state.accounts.as_ref()),
    };
    let end = peak_bulk_jobs::run_job(
        &ctx,
        ports,
        &tenant(),
        queued["id"].as_str().expect("job id"),
        &peak_bulk::Limits::default(),
        |_| true,
    )
    .await
    .expect("run");
    match end {
        peak_bulk_jobs::RunEnd::Finished(job) => {
            assert!(job.dry_run);
            *job
        }
        other => panic!("{other:?}"),
    }
}

/// Feeds event files to their functions, recording what each answered.
struct Cases<'h> {
    h: &'h Harness,
    answered: Vec<(String, StatusCode)>,
}

impl Cases<'_> {
    /// `events/<file>` with `fill`, served by exactly the routes of the
    /// function the file is named after (as its Lambda serves them).
    async fn run(&mut self, file: &str, fill: &Fill, expected: StatusCode) -> serde_json::Value {
        let function = function_of(file);
        let specs = served(function);
        assert!(
            specs.routes().next().is_some(),
            "{file}: no function {function}"
        );
        let resp = handle_routes(&self.h.state, &specs, self.h.event_with(file, fill)).await;
        assert_eq!(resp.status(), expected, "{file}: {:?}", resp.body());
        self.answered.push((file.to_owned(), resp.status()));
        match resp.body() {
            Body::Empty => serde_json::Value::Null,
            _ => json(&resp),
        }
    }
}

#[tokio::test]
async fn every_function_answers_its_sample_event() {
    let h = harness().await;
    let ctx = h.state.ctx("test-setup");
    let admin = h.actor("auth0|admin").await;
    let seed = peak_domain::ProfileId::parse(&h.seed_profile).unwrap();
    // The user the /users/{id} events act on: an active customer of ACME.
    let target = seed_user(
        &h.store,
        &seed,
        Role::Customer,
        "auth0|target",
        "target@sample.example",
    )
    .await;
    // A pending invitation, and its link's token.
    let invitee = users::invite(
        &ctx,
        &admin,
        InviteRequest {
            first_name: "Ivy".into(),
            last_name: "Invitee".into(),
            email: "ivy@sample.example".into(),
            role: "customer".into(),
            profile_id: h.seed_profile.clone(),
            extension_groups: Vec::new(),
            customer_accounts: vec!["ACME".into()],
            account_number: None,
        },
    )
    .await
    .unwrap();
    let invitation = h.link_token(EmailKind::Invitation, &invitee.id).await;
    // A login-email change waiting for confirmation, and its link's token.
    let rep = h.actor("auth0|sales_rep").await;
    users::edit_self(
        &ctx,
        &rep,
        Some(rep.user.version),
        SelfPatch {
            email: Some("rep.new@sample.example".into()),
            ..SelfPatch::default()
        },
    )
    .await
    .unwrap();
    let verification = h
        .link_token(EmailKind::EmailChangeVerification, &rep.user.id)
        .await;

    // A finished bulk invite, for the job events.
    let job = {
        let admin = h.actor("auth0|admin").await;
        let csv = "First name,Last name,Email,Role,Profile,Customer accounts\n\
                   Bulk,Person,bulk.person@sample.example,customer,Seed,ACME\n";
        let upload = peak_bulk_jobs::Upload {
            bytes: csv.as_bytes(),
            file_name: Some("people.csv"),
            content_type: Some("text/csv"),
        };
        let limits = peak_bulk::Limits::default();
        let job = peak_bulk_jobs::start(
            &ctx,
            &admin,
            h.state.jobs.as_ref(),
            h.state.files.as_ref(),
            upload,
            &limits,
        )
        .await
        .unwrap();
        let end = peak_bulk_jobs::run(
            &ctx,
            h.state.jobs.as_ref(),
            h.state.files.as_ref(),
            &tenant(),
            &job.id,
            &limits,
            |_| true,
        )
        .await
        .unwrap();
        assert!(
            matches!(end, peak_bulk_jobs::RunEnd::Finished(_)),
            "{end:?}"
        );
        job.id
    };
    let admin = Fill {
        role: "admin",
        profile_id: h.seed_profile.clone(),
        user_id: target.id.to_string(),
        invitation,
        verification,
        job_id: job,
    };
    // /me events run as the seeded customer (version 1, as `If-Match` says).
    let customer = Fill {
        role: "customer",
        ..admin.clone()
    };
    // Public events carry no token; the fill is the same.
    let public = admin.clone();
    let mut c = Cases {
        h: &h,
        answered: Vec::new(),
    };

    // Profiles: the created one is the one get, update and delete act on.
    c.run("profile-catalogue.json", &admin, StatusCode::OK)
        .await;
    c.run("profile-list.json", &admin, StatusCode::OK).await;
    let created = c
        .run("profile-create.json", &admin, StatusCode::CREATED)
        .await;
    let vip = Fill {
        profile_id: created["id"].as_str().unwrap().to_owned(),
        ..admin.clone()
    };
    c.run("profile-get.json", &vip, StatusCode::OK).await;
    c.run("profile-update.json", &vip, StatusCode::OK).await;

    // Users: the invited one gets resent and revoked; the target the rest.
    let list = c.run("user-list.json", &admin, StatusCode::OK).await;
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["id"] == target.id.as_str()),
        "the target is a customer: {list}"
    );
    let invited = c.run("user-invite.json", &admin, StatusCode::CREATED).await;
    assert_eq!(invited["status"], "invited");
    assert_eq!(invited["profile_id"], h.seed_profile.as_str());
    let jane = Fill {
        user_id: invited["id"].as_str().unwrap().to_owned(),
        ..admin.clone()
    };
    c.run("user-get.json", &admin, StatusCode::OK).await;
    let updated = c.run("user-update.json", &admin, StatusCode::OK).await;
    assert_eq!(updated["last_name"], "Doe-Smith");
    assert_eq!(updated["version"], 2);
    let suspended = c.run("user-suspend.json", &admin, StatusCode::OK).await;
    assert_eq!(suspended["status"], "suspended");
    let enabled = c.run("user-enable.json", &admin, StatusCode::OK).await;
    assert_eq!(enabled["status"], "active");
    c.run("user-password-reset.json", &admin, StatusCode::ACCEPTED)
        .await;
    // The same changes in one batch (the target is at version 4 now), and
    // an unknown id answered 404 in its place.
    let batch = c.run("user-batch.json", &admin, StatusCode::OK).await;
    let statuses: Vec<_> = batch["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 200, 200, 202, 404], "{batch}");
    assert_eq!(batch["results"][0]["body"]["first_name"], "Batch");
    assert_eq!(batch["results"][4]["body"]["code"], "not_found");
    // The edits above owe Auth0 a sync of the target's login; no worker ran.
    let identity = c.run("user-identity.json", &admin, StatusCode::OK).await;
    assert_eq!(identity["state"], "pending", "{identity}");
    assert_eq!(identity["owed"], "sync", "{identity}");
    assert_eq!(identity["subject"], "auth0|target", "{identity}");
    assert_eq!(identity["due_at"], serde_json::Value::Null, "due now");
    // The same owed work, as the tenant's admins list and retry it.
    let owed = c
        .run("identity-work-list.json", &admin, StatusCode::OK)
        .await;
    assert!(
        owed["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["user_id"] == target.id.as_str() && w["operation"] == "sync"),
        "{owed}"
    );
    let retried = c
        .run("identity-work-retry.json", &admin, StatusCode::ACCEPTED)
        .await;
    assert_eq!(retried["id"], target.id.as_str(), "{retried}");
    // No email failed here: an empty list, and the sample id names none.
    let failed = c
        .run("failed-email-list.json", &admin, StatusCode::OK)
        .await;
    assert_eq!(failed["items"], serde_json::json!([]), "{failed}");
    c.run("failed-email-retry.json", &admin, StatusCode::NOT_FOUND)
        .await;
    let audit = c.run("user-audit.json", &admin, StatusCode::OK).await;
    assert!(!audit["items"].as_array().unwrap().is_empty());
    // Auth0 blocked the target's login in the dashboard (Event Streams).
    let delivered = c.run("auth0-webhook.json", &admin, StatusCode::OK).await;
    assert!(
        matches!(delivered["status"].as_str(), Some("applied" | "stale")),
        "{delivered}"
    );
    c.run("invitation-resend.json", &jane, StatusCode::OK).await;
    c.run("invitation-revoke.json", &jane, StatusCode::OK).await;
    c.run("tenant-audit.json", &admin, StatusCode::OK).await;

    // Settings: the tenant's record, as an operator creates it.
    let record = peak_domain::model::tenant::NewTenant {
        id: tenant().as_str().into(),
        display_name: "Acme".into(),
        portal_url: "https://portal.acme.example".into(),
        sender_address: "no-reply@acme.example".into(),
        reply_to: None,
        invitation_ttl_days: 7,
    }
    .validate(time::OffsetDateTime::now_utc())
    .unwrap();
    peak_domain::tenants::TenantStore::create_tenant(h.store.as_ref(), &record)
        .await
        .unwrap();
    let settings = c.run("settings-get.json", &admin, StatusCode::OK).await;
    assert_eq!(settings["invitation_ttl_days"], 7, "{settings}");
    let settings = c.run("settings-update.json", &admin, StatusCode::OK).await;
    assert_eq!(settings["invitation_ttl_days"], 14, "{settings}");

    // Bulk invites: the template, a dry run (a job; one good row, one bad),
    // the finished job and its report; this deployment has no upload
    // bucket.
    c.run("bulk-invite-template.json", &admin, StatusCode::OK)
        .await;
    let queued = c
        .run("bulk-invite-create.json", &admin, StatusCode::ACCEPTED)
        .await;
    assert_eq!(
        (&queued["status"], &queued["dry_run"]),
        (&serde_json::json!("queued"), &serde_json::json!(true)),
        "{queued}"
    );
    let checked = run_dry(&h, &queued).await;
    assert_eq!(checked.total_rows, 2, "{checked:?}");
    assert_eq!(
        checked.counts.failed, 2,
        "no profile `Standard` here, and a bad email: {checked:?}"
    );
    let job = c.run("bulk-invite-get.json", &admin, StatusCode::OK).await;
    assert_eq!(job["status"], "done");
    assert_eq!(job["counts"]["invited"], 1);
    c.run("bulk-invite-report.json", &admin, StatusCode::OK)
        .await;
    c.run("bulk-invite-upload.json", &admin, StatusCode::CONFLICT)
        .await;
    // Bulk updates and imports: the template, a dry run of an update (the
    // sample customer's new last name; a row naming nobody), and the
    // generic job routes, which show the sample bulk invite too.
    c.run("bulk-job-template.json", &admin, StatusCode::OK)
        .await;
    let queued = c
        .run("bulk-job-create.json", &admin, StatusCode::ACCEPTED)
        .await;
    let checked = run_dry(&h, &queued).await;
    assert_eq!(
        (checked.counts.invited, checked.counts.failed),
        (1, 1),
        "one valid row, one naming nobody: {checked:?}"
    );
    let entries = peak_bulk_jobs::all_entries(h.state.jobs.as_ref(), &checked)
        .await
        .unwrap();
    assert_eq!(entries[1].code, "not_found", "{entries:?}");
    let job = c.run("bulk-job-get.json", &admin, StatusCode::OK).await;
    assert_eq!(
        (&job["kind"], &job["applied"]),
        (&serde_json::json!("invite"), &serde_json::json!(1))
    );
    c.run("bulk-job-report.json", &admin, StatusCode::OK).await;

    // Customer accounts: the sample puts ACME-EU (seeded, see `harness`)
    // under ACME, renamed.
    let eu = c.run("account-upsert.json", &admin, StatusCode::OK).await;
    assert_eq!(eu["ancestors"], serde_json::json!(["ACME"]), "{eu}");
    c.run("account-get.json", &admin, StatusCode::OK).await;
    let found = c.run("account-list.json", &admin, StatusCode::OK).await;
    assert_eq!(found["items"].as_array().unwrap().len(), 2, "{found}");

    // The signed-in user's own record.
    let me = c.run("me-get.json", &customer, StatusCode::OK).await;
    assert_eq!(me["email"], "customer@sample.example");
    let me = c.run("me-update.json", &customer, StatusCode::OK).await;
    assert_eq!(me["first_name"], "Sam");
    c.run("me-password-reset.json", &customer, StatusCode::ACCEPTED)
        .await;

    // Links from emails, and the signed-out reset.
    let view = c.run("invitation-view.json", &public, StatusCode::OK).await;
    assert_eq!(view["first_name"], "Ivy");
    let accepted = c
        .run("invitation-accept.json", &public, StatusCode::OK)
        .await;
    assert_eq!(
        accepted["password_setup_url"],
        format!(
            "https://idp.test/set-password?subject=auth0|invitee-{}",
            invitee.id
        )
    );
    c.run("email-verification-view.json", &public, StatusCode::OK)
        .await;
    let confirmed = c
        .run("email-verification-confirm.json", &public, StatusCode::OK)
        .await;
    assert_eq!(confirmed["email"], "rep.new@sample.example");
    c.run("password-reset-request.json", &public, StatusCode::ACCEPTED)
        .await;
    let doc = c.run("openapi.json", &public, StatusCode::OK).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");

    // Destructive last: they remove what the events above act on.
    c.run("user-delete.json", &admin, StatusCode::NO_CONTENT)
        .await;
    c.run("profile-delete.json", &vip, StatusCode::NO_CONTENT)
        .await;
    assert_eq!(h.store.get_user(&tenant(), &target.id).await.unwrap(), None);

    let ran: BTreeSet<String> = c.answered.iter().map(|(f, _)| f.clone()).collect();
    assert_eq!(ran.len(), c.answered.len(), "each event once");
    assert_eq!(ran, event_files(), "every event file is exercised");
}

#[test]
fn every_function_has_one_sample_event_and_every_event_a_function() {
    let functions: BTreeSet<String> = ROUTES
        .iter()
        .map(|r| format!("{}.json", r.function))
        .collect();
    let files = event_files();
    let missing: Vec<_> = functions.difference(&files).collect();
    let orphans: Vec<_> = files.difference(&functions).collect();
    assert!(
        missing.is_empty(),
        "functions without events/<function>.json: {missing:?}"
    );
    assert!(orphans.is_empty(), "events naming no function: {orphans:?}");
}

#[test]
fn every_event_is_an_api_gateway_request_for_its_functions_route() {
    for file in event_files() {
        let function = function_of(&file);
        let routes = function_routes(function);
        assert_eq!(routes.len(), 1, "{file}: one route per function");
        let route = spec(routes[0]);
        let raw = read_event(&file);
        let req = lambda_http::request::from_str(&raw)
            .unwrap_or_else(|e| panic!("{file} is not an API Gateway event: {e}"));
        assert_eq!(route.method, *req.method(), "{file}");
        let path = peak_api::request::path(&req);
        let params = match match_route(&[route], req.method(), &path) {
            Matched::Found(_, params) => params,
            _ => panic!("{file}: {path} is not {}", route.path),
        };
        let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() else {
            panic!("{file}: not an HTTP API (payload v2) event");
        };
        let route_key = format!("{} {}", route.method, route.path);
        assert_eq!(ctx.route_key.as_deref(), Some(route_key.as_str()), "{file}");
        assert_eq!(ctx.http.path.as_deref(), Some(path.as_str()), "{file}");
        assert_eq!(
            ctx.request_id.as_deref(),
            Some(format!("sample-{function}").as_str()),
            "{file}"
        );
        let event: serde_json::Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(event["version"], "2.0", "{file}");
        assert_eq!(event["routeKey"], route_key.as_str(), "{file}");
        // The path parameters API Gateway would pass are the ones in the path.
        let declared = req.path_parameters();
        assert_eq!(declared.iter().count(), params.len(), "{file}");
        for (name, value) in &params {
            assert_eq!(declared.first(name), Some(value.as_str()), "{file}: {name}");
        }
        // Placeholders: a token exactly where one is needed, and ids that
        // are valid (so a hand invocation reaches the store and says 404).
        let headers = req.headers();
        let expected_authorization = if route.route == Route::Auth0Webhook {
            // The Event Stream's bearer token, not a user's.
            Some(format!("Bearer {SAMPLE_STREAM_TOKEN}"))
        } else {
            route
                .authenticated
                .then(|| "Bearer PASTE_A_TOKEN_FROM_peak-local_token".to_owned())
        };
        assert_eq!(
            headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned()),
            expected_authorization,
            "{file}"
        );
        for (name, value) in &params {
            if *name == "id" {
                assert!(
                    [SAMPLE_ID, SAMPLE_USER_ID, SAMPLE_JOB_ID, SAMPLE_EMAIL_ID]
                        .contains(&value.as_str()),
                    "{file}: {value}"
                );
            }
        }
        assert_eq!(
            headers.contains_key("idempotency-key"),
            route.idempotent,
            "{file}"
        );
        assert_eq!(
            headers.contains_key("if-match"),
            route.method == http::Method::PATCH,
            "{file}"
        );
        let has_body = event.get("body").is_some();
        assert_eq!(headers.contains_key("content-type"), has_body, "{file}");
        if has_body && headers["content-type"] == "text/csv" {
            // A bulk upload: a file, with its header row (people to
            // invite, or users to change).
            let body = event["body"].as_str().unwrap();
            assert!(
                body.starts_with("First name,Last name,Email") || body.starts_with("Email,"),
                "{file}"
            );
        } else if has_body {
            let body: serde_json::Value =
                serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
            assert!(body.is_object(), "{file}: the body is a JSON object");
        }
    }
}

#[test]
fn the_sample_ids_are_valid_ulids() {
    assert!(UserId::parse(SAMPLE_USER_ID).is_some());
    assert!(peak_domain::ProfileId::parse(SAMPLE_ID).is_some());
    assert_eq!(
        UserId::parse(SAMPLE_USER_ID).unwrap().as_str(),
        SAMPLE_USER_ID
    );
}

/// The signed Action samples (`events/auth0/`), signed as the README says:
/// by scripts/sign-webhook-event.py, then served by the webhook function.
#[tokio::test]
async fn action_samples_signed_by_the_script_are_accepted_once() {
    let h = harness().await;
    let dir = events_dir().join("auth0");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let specs = served("auth0-webhook");
    for file in files {
        let out = std::process::Command::new("python3")
            .arg(events_dir().join("../scripts/sign-webhook-event.py"))
            .arg(&file)
            .arg(SAMPLE_WEBHOOK_SECRET)
            .output()
            .expect("python3 runs scripts/sign-webhook-event.py");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let signed = String::from_utf8(out.stdout).unwrap();
        let request = || lambda_http::request::from_str(&signed).unwrap();
        let resp = handle_routes(&h.state, &specs, request()).await;
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "{}: {:?}",
            file.display(),
            resp.body()
        );
        // The very same delivery again (a replay, or the sender's retry):
        // recorded already, acknowledged, applied once.
        let again = handle_routes(&h.state, &specs, request()).await;
        assert_eq!(again.status(), StatusCode::OK, "{}", file.display());
        let body = match again.body() {
            lambda_http::Body::Text(t) => t.clone(),
            other => panic!("{other:?}"),
        };
        assert!(body.contains("\"duplicate\""), "{}: {body}", file.display());
        // Unsigned as committed: refused.
        let raw = std::fs::read_to_string(&file).unwrap();
        let unsigned = handle_routes(
            &h.state,
            &specs,
            lambda_http::request::from_str(&raw).unwrap(),
        )
        .await;
        assert_ne!(unsigned.status(), StatusCode::OK, "{}", file.display());
    }
}

/// `GET /users/{id}/identity` reads the login sync state and changes
/// nothing: a login in step owes nothing, an invitee has no login yet,
/// and only admins may look.
#[tokio::test]
async fn the_identity_event_shows_the_login_sync_state_to_admins_only() {
    let h = harness().await;
    let seed = peak_domain::ProfileId::parse(&h.seed_profile).unwrap();
    let synced = seed_user(
        &h.store,
        &seed,
        Role::Customer,
        "auth0|synced",
        "synced@sample.example",
    )
    .await;
    let fill = |role: &'static str, user: &UserId| Fill {
        role,
        profile_id: h.seed_profile.clone(),
        user_id: user.to_string(),
        invitation: INVITATION_PLACEHOLDER.to_owned(),
        verification: VERIFICATION_PLACEHOLDER.to_owned(),
        job_id: SAMPLE_JOB_ID.to_owned(),
    };
    let specs = served("user-identity");
    let resp = handle_routes(
        &h.state,
        &specs,
        h.event_with("user-identity.json", &fill("admin", &synced.id)),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body = json(&resp);
    assert_eq!(body["state"], "in_sync", "{body}");
    assert_eq!(body["owed"], serde_json::Value::Null);
    assert_eq!(body["attempts"], 0);

    let invitee = users::invite(
        &h.state.ctx("test"),
        &h.actor("auth0|admin").await,
        serde_json::from_value::<InviteRequest>(serde_json::json!({
            "first_name": "Ivy", "last_name": "Invitee", "email": "ivy@sample.example",
            "role": "customer", "profile_id": h.seed_profile, "customer_accounts": ["ACME"],
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    let resp = handle_routes(
        &h.state,
        &specs,
        h.event_with("user-identity.json", &fill("admin", &invitee.id)),
    )
    .await;
    assert_eq!(json(&resp)["state"], "no_login");

    for role in ["sales_rep", "partner", "customer"] {
        let resp = handle_routes(
            &h.state,
            &specs,
            h.event_with("user-identity.json", &fill(role, &synced.id)),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{role}");
    }
    let before = h
        .store
        .get_user(&tenant(), &synced.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.version, 1, "reading changed nothing");
}
