//! Every sample event in `events/` (the files `sam local invoke -e` uses) is
//! fed to the handlers, with a fresh token and a real profile id substituted,
//! and answers the status its function promises.

use http::StatusCode;
use lambda_http::{Body, Request};
use peak_api::{AppState, Route, handle, handle_routes, routes::spec};
use peak_auth::{DevIdentityProvider, JwtVerifier, StaticJwks};
use peak_domain::TenantId;
use peak_domain::catalogue::catalogue;
use peak_domain::identity::IdpError;
use peak_domain::ports::{ProfileStore, UserStore, UserWrite};
use peak_domain::profile::{Profile, ProfileName, ProfileSettings};
use peak_domain::role::Role;
use peak_domain::user::{AccountNumber, Email, PersonName, User, UserId, UserStatus};
use peak_domain::users::UserSettings;
use peak_store_sqlite::SqliteStore;
use std::sync::Arc;
use std::time::Duration;

const SAMPLE_ID: &str = "01JDPEAKSAMP1E0000000000AB";
const TOKEN_PLACEHOLDER: &str = "PASTE_A_TOKEN_FROM_peak-local_token";

struct Harness {
    state: AppState,
    idp: DevIdentityProvider,
}

/// No identity-provider calls happen on these routes.
struct NoIdp;

#[async_trait::async_trait]
impl peak_domain::identity::IdentityProvider for NoIdp {
    async fn ensure_user(&self, _: &User) -> Result<String, IdpError> {
        Err(IdpError::Unavailable("not in this test".into()))
    }
    async fn password_setup_link(&self, _: &User, _: &str) -> Result<String, IdpError> {
        Err(IdpError::Unavailable("not in this test".into()))
    }
}

const TENANT: &str = "sample-tenant";

/// An app over an in-memory store with one active user per role, each
/// with subject `auth0|<role>`.
async fn harness() -> Harness {
    let idp = DevIdentityProvider::generate("https://issuer.test/", "https://api.test").unwrap();
    let verifier = JwtVerifier::new(
        idp.issuer(),
        idp.audience(),
        Arc::new(StaticJwks(idp.jwks())),
    );
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    let tenant = TenantId::parse(TENANT).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let profile = Profile {
        tenant_id: tenant.clone(),
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
    for role in Role::ALL {
        let id = UserId::generate();
        let user = User {
            tenant_id: tenant.clone(),
            id: id.clone(),
            email: Email::parse(&format!("{role}@sample.example")).unwrap(),
            pending_email: None,
            first_name: PersonName::parse("first_name", "Sample").unwrap(),
            last_name: PersonName::parse("last_name", role.as_str()).unwrap(),
            account_number: None,
            customer_accounts: vec![AccountNumber::parse("a", "ACME").unwrap()],
            role,
            profile_id: profile.id.clone(),
            extension_groups: Vec::new(),
            status: UserStatus::Active,
            idp_subject: Some(format!("auth0|{role}")),
            invitation: None,
            version: 1,
            created_at: now,
            updated_at: now,
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
    }
    Harness {
        state: AppState {
            profiles: store.clone(),
            users: store,
            idp: Arc::new(NoIdp),
            verifier: Arc::new(verifier),
            catalogue: catalogue(),
            settings: Arc::new(UserSettings::default()),
        },
        idp,
    }
}

impl Harness {
    fn event(&self, file: &str, role: &str, profile_id: &str) -> Request {
        let path = format!("{}/../../events/{file}", env!("CARGO_MANIFEST_DIR"));
        let raw = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let token = self
            .idp
            .token_for(
                &format!("auth0|{role}"),
                TENANT,
                role,
                Duration::from_secs(300),
            )
            .unwrap();
        let raw = raw
            .replace(TOKEN_PLACEHOLDER, &token)
            .replace(SAMPLE_ID, profile_id);
        lambda_http::request::from_str(&raw)
            .unwrap_or_else(|e| panic!("{file} is not an API Gateway event: {e}"))
    }
}

fn json(resp: &http::Response<Body>) -> serde_json::Value {
    match resp.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap(),
        other => panic!("expected a JSON text body, got {other:?}"),
    }
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

#[tokio::test]
async fn a_function_serves_only_its_own_route() {
    let h = harness().await;
    let only_get = [spec(Route::GetCatalogue)];
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
