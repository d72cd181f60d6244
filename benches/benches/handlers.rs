//! Handler CPU per request, I/O excluded (see `../README.md`).
//!
//! A benchmark, not a test: it prints times and asserts none. The only
//! checks are that each request answers the status it should before it is
//! measured, so a broken fixture cannot produce a flattering number.
//!
//! Every handler benchmark drives `peak_api::handle(&state, request)`:
//! routing, bearer-token verification (RS256, keys cached), actor
//! resolution (user + profile lookups), the use case and the JSON response,
//! over [`MemoryStore`]. Building the `Request` from an API Gateway event
//! happens in criterion's setup, outside the measured time.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::StatusCode;
use lambda_http::Request;
use peak_api::AppState;
use peak_auth::{DevIdentityProvider, JwtVerifier, StaticJwks};
use peak_benches::memory_store::MemoryStore;
use peak_domain::catalogue::catalogue;
use peak_domain::identity::{
    IdentityProvider, IdpAccount, IdpError, IdpUserState, SetupLink, StepOutcome,
};
use peak_domain::model::profile::{Profile, ProfileName, ProfileSettings};
use peak_domain::model::user::{AccountNumber, Email, PersonName, User, UserId, UserStatus};
use peak_domain::ports::{ProfileStore, UserRecords, UserWrite};
use peak_domain::role::Role;
use peak_domain::users::UserSettings;
use peak_domain::{ProfileId, TenantId};
use peak_webhooks::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, WebhookSecrets};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::runtime::Runtime;

const TENANT: &str = "acme";
const ADMIN_SUBJECT: &str = "auth0|bench-admin";
const USERS: usize = 200;

/// Placeholders of the sample events in `events/` (see `events/README.md`).
const SAMPLE_ID: &str = "01JDPEAKSAMP1E0000000000AB";
const SAMPLE_USER_ID: &str = "01JDPEAKSAMP1EVSER000000AB";
const TOKEN_PLACEHOLDER: &str = "PASTE_A_TOKEN_FROM_peak-local_token";
/// What the invite event's body and idempotency key hold, made unique per
/// request by the benchmark.
const INVITE_EMAIL: &str = "jane.doe@acme.example";
const INVITE_KEY: &str = "e293e343-323f-5a9a-95c3-f0078eeb6c10";

/// Invitations go through the store only (the IdP is called on accept).
struct UnusedIdp;

#[async_trait::async_trait]
impl IdentityProvider for UnusedIdp {
    async fn find_login(&self, _: &User) -> Result<Option<IdpAccount>, IdpError> {
        Err(IdpError::Unavailable("not used by the benchmarks".into()))
    }
    async fn create_login(&self, _: &User) -> Result<Option<String>, IdpError> {
        Err(IdpError::Unavailable("not used by the benchmarks".into()))
    }
    async fn relink_login(&self, _: &str, _: &User) -> Result<bool, IdpError> {
        Err(IdpError::Unavailable("not used by the benchmarks".into()))
    }
    async fn password_setup_link(
        &self,
        _: &User,
        _: &str,
        _: &SetupLink<'_>,
    ) -> Result<String, IdpError> {
        Err(IdpError::Unavailable("not used by the benchmarks".into()))
    }
    async fn update_user(&self, _: &str, _: &IdpUserState) -> Result<bool, IdpError> {
        Err(IdpError::Unavailable("not used by the benchmarks".into()))
    }
    async fn delete_user(&self, _: &str) -> Result<(), IdpError> {
        Err(IdpError::Unavailable("not used by the benchmarks".into()))
    }
    async fn get_user(&self, _: &str) -> Result<Option<IdpAccount>, IdpError> {
        Err(IdpError::Unavailable("not used by the benchmarks".into()))
    }
    async fn revoke_sessions(&self, _: &str) -> Result<StepOutcome, IdpError> {
        Err(IdpError::Unavailable("not used by the benchmarks".into()))
    }
    async fn revoke_refresh_tokens(&self, _: &str) -> Result<StepOutcome, IdpError> {
        Err(IdpError::Unavailable("not used by the benchmarks".into()))
    }
    async fn clear_login_block(&self, _: &str) -> Result<StepOutcome, IdpError> {
        Err(IdpError::Unavailable("not used by the benchmarks".into()))
    }
}

struct Fixture {
    state: AppState,
    store: Arc<MemoryStore>,
    verifier: Arc<JwtVerifier>,
    token: String,
    profile: ProfileId,
    /// A customer in the middle of the list.
    some_user: UserId,
}

fn tenant() -> TenantId {
    TenantId::parse(TENANT).expect("valid tenant id")
}

const FIRST: [&str; 10] = [
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Niklaus",
];
const LAST: [&str; 10] = [
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton",
    "Wirth",
];

fn seed_user(i: usize, profile: &ProfileId) -> User {
    let now = time::OffsetDateTime::now_utc();
    let (role, subject, email) = if i == 0 {
        (
            Role::Admin,
            ADMIN_SUBJECT.to_owned(),
            "admin@acme.example".to_owned(),
        )
    } else {
        (
            Role::Customer,
            format!("auth0|customer-{i}"),
            format!("customer{i}@acme.example"),
        )
    };
    User {
        tenant_id: tenant(),
        id: UserId::generate(),
        email: Email::parse(&email).expect("valid email"),
        pending_email: None,
        first_name: PersonName::parse("first_name", FIRST[i % 10]).expect("valid name"),
        last_name: PersonName::parse("last_name", &format!("{}{}", LAST[i / 10 % 10], i / 100))
            .expect("valid name"),
        account_number: None,
        customer_accounts: vec![AccountNumber::parse("a", "ACME").expect("valid account")],
        role,
        profile_id: profile.clone(),
        extension_groups: Vec::new(),
        status: UserStatus::Active,
        idp_subject: Some(subject),
        invitation: None,
        version: 1,
        created_at: now,
        updated_at: now,
        last_login_at: None,
    }
}

/// The app over a fresh memory store: one profile, `USERS` active users on
/// account ACME (the first an admin, the caller), a signed admin token and
/// the verifier's key cache warmed.
fn fixture(rt: &Runtime, idp: &DevIdentityProvider) -> Fixture {
    rt.block_on(async {
        let store = Arc::new(MemoryStore::new());
        let now = time::OffsetDateTime::now_utc();
        let profile = Profile {
            tenant_id: tenant(),
            id: ProfileId::generate(),
            name: ProfileName::parse("Standard").expect("valid profile name"),
            description: String::new(),
            settings: ProfileSettings::defaults(catalogue()),
            version: 1,
            holder_count: 0,
            created_at: now,
            updated_at: now,
        };
        store.insert_profile(&profile).await.expect("seed profile");
        let mut some_user = None;
        for i in 0..USERS {
            let user = seed_user(i, &profile.id);
            store
                .write_user(UserWrite {
                    previous: None,
                    next: Some(&user),
                    audit: &[],
                    outbox: &[],
                })
                .await
                .expect("seed user");
            if i == USERS / 2 {
                some_user = Some(user.id.clone());
            }
        }
        let verifier = Arc::new(JwtVerifier::new(
            idp.issuer(),
            idp.audience(),
            Arc::new(StaticJwks(idp.jwks())),
        ));
        verifier.warm().await.expect("keys cached");
        let token = idp
            .token_for(ADMIN_SUBJECT, TENANT, "admin", Duration::from_secs(3600))
            .expect("signed token");
        let state = AppState {
            profiles: store.clone(),
            users: store.clone(),
            tenants: store.clone(),
            accounts: store.clone(),
            callers: store.clone(),
            idp: Arc::new(UnusedIdp),
            verifier: verifier.clone(),
            catalogue: catalogue(),
            settings: Arc::new(UserSettings::default()),
            webhooks: None,
            jobs: store.clone(),
            files: Arc::new(peak_bulk_jobs::MemoryFiles::default()),
            brands: Arc::new(peak_api::portal_brands("https://portal.example")),
        };
        Fixture {
            state,
            store,
            verifier,
            token,
            profile: profile.id,
            some_user: some_user.expect("seeded"),
        }
    })
}

fn read_event(file: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn request(event: &str) -> Request {
    lambda_http::request::from_str(event).expect("an API Gateway event")
}

/// The sample events with the placeholders filled in.
struct Events {
    get_user: String,
    list_users: String,
    invite: String,
}

impl Events {
    fn new(f: &Fixture) -> Self {
        let fill = |file: &str| {
            read_event(file)
                .replace(TOKEN_PLACEHOLDER, &f.token)
                .replace(SAMPLE_ID, f.profile.as_str())
                .replace(SAMPLE_USER_ID, f.some_user.as_str())
        };
        let mut list: serde_json::Value =
            serde_json::from_str(&fill("user-list.json")).expect("JSON event");
        list["rawQueryString"] = "limit=25".into();
        list["queryStringParameters"] = serde_json::json!({ "limit": "25" });
        Self {
            get_user: fill("user-get.json"),
            list_users: list.to_string(),
            invite: fill("user-invite.json"),
        }
    }

    /// The invite event for a new email and a new idempotency key.
    fn invite(&self, n: u64) -> Request {
        request(
            &self
                .invite
                .replace(INVITE_EMAIL, &format!("jane.doe.{n}@acme.example"))
                .replace(INVITE_KEY, &format!("bench-invite-{n}")),
        )
    }
}

fn expect_status(
    rt: &Runtime,
    state: &AppState,
    req: Request,
    status: StatusCode,
    what: &str,
) -> serde_json::Value {
    let resp = rt.block_on(peak_api::handle(state, req));
    assert_eq!(resp.status(), status, "{what}: {:?}", resp.body());
    match resp.body() {
        lambda_http::Body::Text(t) => serde_json::from_str(t).expect("a JSON body"),
        other => panic!("{what}: expected a JSON text body, got {other:?}"),
    }
}

fn handlers(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    // RSA key generation: once, outside anything measured.
    let idp = DevIdentityProvider::generate("https://issuer.bench/", "https://api.bench")
        .expect("dev identity provider");
    let f = fixture(&rt, &idp);
    let events = Events::new(&f);
    let state = &f.state;

    // Each fixture answers as it should before it is measured.
    expect_status(&rt, state, request(&events.get_user), StatusCode::OK, "get");
    let page = expect_status(
        &rt,
        state,
        request(&events.list_users),
        StatusCode::OK,
        "list",
    );
    assert_eq!(
        page["items"].as_array().map(Vec::len),
        Some(25),
        "a full page"
    );
    assert!(page["next_cursor"].is_string(), "more pages follow");
    expect_status(&rt, state, events.invite(0), StatusCode::CREATED, "invite");

    let mut group = c.benchmark_group("handler");
    group.bench_function("get_user", |b| {
        b.to_async(&rt).iter_batched(
            || request(&events.get_user),
            |req| peak_api::handle(state, req),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("list_users_limit_25", |b| {
        b.to_async(&rt).iter_batched(
            || request(&events.list_users),
            |req| peak_api::handle(state, req),
            BatchSize::SmallInput,
        )
    });
    // Last, as it grows the store (by one invited user per iteration).
    let counter = AtomicU64::new(1);
    group.bench_function("invite_user", |b| {
        b.to_async(&rt).iter_batched(
            || events.invite(counter.fetch_add(1, Ordering::Relaxed)),
            |req| peak_api::handle(state, req),
            BatchSize::SmallInput,
        )
    });
    group.finish();
    let (audit, outbox) = f.store.written_side_effects();
    eprintln!(
        "invite_user: store grew to {} users ({audit} audit events, {outbox} outbox emails written)",
        f.store.user_count()
    );

    c.bench_function("jwt/verify_cached_keys", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(f.verifier.verify(black_box(&f.token)).await) })
    });
}

/// A Post Login delivery from our Action, 1024 bytes of JSON.
fn action_body(id: &str) -> String {
    let body = |user_agent: &str| {
        serde_json::json!({
            "type": "user.logged_in",
            "id": id,
            "time": "2026-05-04T10:15:30.123Z",
            "data": {
                "user_id": "auth0|6650a1b2c3d4e5f607182930",
                "tenant": TENANT,
                "email": "jane.doe@acme.example",
                "email_verified": true,
                "connection": "Username-Password-Authentication",
                "client_id": "Xq7pTz3LwV9kR2mN8bY4cH6dJ1fG5sA0",
                "client_name": "PeakCommerce Customer Portal",
                "ip": "203.0.113.42",
                "user_agent": user_agent,
                "logins_count": 17,
                "last_login": "2026-05-03T08:01:12.000Z",
                "locale": "en-GB",
            }
        })
        .to_string()
    };
    let len = body("").len();
    assert!(len <= 1024, "the body without padding is {len} bytes");
    let ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
              Chrome/124.0.0.0 Safari/537.36 "
        .repeat(16);
    let full = body(&ua[..1024 - len]);
    assert_eq!(full.len(), 1024);
    full
}

fn webhooks(c: &mut Criterion) {
    let secret = format!("whsec_{}", STANDARD.encode([7u8; 32]));
    let secrets = WebhookSecrets::parse(&secret).expect("secret");
    let id = "msg_2f7bQk9XcVd3LmN8pR4sT6wY";
    let body = action_body(id);
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut headers = http::HeaderMap::new();
    headers.insert(HEADER_ID, id.parse().expect("header value"));
    headers.insert(
        HEADER_TIMESTAMP,
        timestamp.to_string().parse().expect("header value"),
    );
    headers.insert(
        HEADER_SIGNATURE,
        secrets
            .sign(id, timestamp, body.as_bytes())
            .parse()
            .expect("header value"),
    );
    let lookup = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    // The delivery is authentic and a valid Action event.
    peak_webhooks::verify_action_delivery(
        &secrets,
        lookup,
        body.as_bytes(),
        time::OffsetDateTime::now_utc(),
    )
    .expect("a valid delivery");

    c.bench_function("webhook/verify_1KiB_action", |b| {
        b.iter(|| {
            peak_webhooks::verify(
                &secrets,
                lookup,
                black_box(body.as_bytes()),
                time::OffsetDateTime::now_utc(),
            )
        })
    });
}

criterion_group!(benches, handlers, webhooks);
criterion_main!(benches);
