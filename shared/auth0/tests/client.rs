//! The Auth0 client against the stateful fake: what a user or an SRE would
//! notice. Timing assertions are lower bounds or generous upper bounds, so a
//! loaded machine does not make them flaky.

use peak_auth0::fake::{FakeAuth0, FakeRequest, FakeUser, Fault};
use peak_auth0::{Auth0Client, Auth0Config};
use peak_domain::ProfileId;
use peak_domain::identity::{
    IdentityProvider, IdpError, IdpUserState, LoginDirectory, SetupLink, StepOutcome,
};
use peak_domain::model::user::{Email, PersonName, User, UserId, UserStatus};
use peak_domain::role::Role;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TENANT: &str = "acme";
const NO_SUCH: &str = "auth0|000000000000000000000000";

fn user(tenant: &str, email: &str) -> User {
    let now = time::OffsetDateTime::now_utc();
    User {
        tenant_id: peak_domain::TenantId::parse(tenant).unwrap(),
        id: UserId::generate(),
        email: Email::parse(email).unwrap(),
        pending_email: None,
        first_name: PersonName::parse("first_name", "Jane").unwrap(),
        last_name: PersonName::parse("last_name", "Doe").unwrap(),
        account_number: None,
        customer_accounts: Vec::new(),
        role: Role::Customer,
        profile_id: ProfileId::generate(),
        extension_groups: Vec::new(),
        status: UserStatus::Invited,
        idp_subject: None,
        invitation: None,
        version: 1,
        created_at: now,
        updated_at: now,
        last_login_at: None,
    }
}

fn client_with(fake: &FakeAuth0, deadline_ms: u64, request_timeout_ms: u64) -> Auth0Client {
    let mut config = fake.config();
    config.call_deadline = Duration::from_millis(deadline_ms);
    config.request_timeout = Duration::from_millis(request_timeout_ms);
    Auth0Client::new(config)
}

fn user_path(subject: &str) -> String {
    format!("/api/v2/users/{}", subject.replace('|', "%7C"))
}

/// Our login for `user`: found by email, else created (a 409 means another
/// caller created it meanwhile: found again), as the accept use case does.
async fn ensure(client: &Auth0Client, user: &User) -> Result<String, IdpError> {
    for _ in 0..2 {
        if let Some(login) = client.find_login(user).await? {
            return Ok(login.subject);
        }
        if let Some(subject) = client.create_login(user).await? {
            return Ok(subject);
        }
    }
    Err(IdpError::Unavailable("not visible".into()))
}

const PORTAL: SetupLink<'static> = SetupLink {
    portal_url: "https://portal.acme.example",
    valid_for: None,
};

/// Fetches a token so later request counts are about the call under test.
async fn warm(client: &Auth0Client) {
    assert_eq!(client.get_user(NO_SUCH).await.unwrap(), None);
}

fn to_path<'a>(log: &'a [FakeRequest], path: &str) -> Vec<&'a FakeRequest> {
    log.iter().filter(|r| r.path == path).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_token_serves_many_calls_even_concurrent_ones() {
    let fake = FakeAuth0::start().await;
    let client = fake.client();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let c = client.clone();
        tasks.push(tokio::spawn(async move { c.get_user(NO_SUCH).await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), None);
    }
    for _ in 0..4 {
        client.get_user(NO_SUCH).await.unwrap();
    }
    assert_eq!(fake.token_requests(), 1);
    assert_eq!(fake.requests().len(), 11);
}

#[tokio::test]
async fn token_is_fetched_again_after_expiry_and_after_a_401() {
    let fake = FakeAuth0::start().await;
    fake.set_token_ttl(Duration::from_secs(1));
    let client = fake.client();
    warm(&client).await;
    fake.set_token_ttl(Duration::from_secs(3600));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    warm(&client).await;
    assert_eq!(fake.token_requests(), 2);
    assert!(fake.requests().iter().all(|r| r.status != 401));

    warm(&client).await;
    fake.expire_tokens();
    warm(&client).await;
    assert_eq!(fake.token_requests(), 3);
    let statuses: Vec<u16> = to_path(&fake.requests(), &user_path(NO_SUCH))
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [404, 404, 404, 401, 404]);
}

#[tokio::test]
async fn a_wrong_secret_is_rejected_once_without_retries() {
    let fake = FakeAuth0::start().await;
    let mut config = fake.config();
    config.client_secret = "not-the-secret".into();
    let err = Auth0Client::new(config)
        .get_user(NO_SUCH)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        IdpError::Rejected("Auth0 token: 401 Unauthorized (access_denied)".into())
    );
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn ensure_user_creates_once_then_finds_the_same_login() {
    let fake = FakeAuth0::start().await;
    let client = fake.client();
    let jane = user(TENANT, "Jane.Doe@Example.com");
    let subject = ensure(&client, &jane).await.unwrap();
    assert!(subject.starts_with("auth0|"));
    assert_eq!(ensure(&client, &jane).await.unwrap(), subject);

    assert_eq!(fake.users().len(), 1);
    assert_eq!(fake.count("POST", "/api/v2/users"), 1);
    let login = fake.user(&subject).unwrap();
    assert_eq!(login.connection, fake.connection);
    assert_eq!(login.email, "jane.doe@example.com");
    assert!(login.email_verified);
    assert_eq!(login.verification_emails_sent, 0);
    assert!(!login.password_set);
    assert_eq!(login.given_name.as_deref(), Some("Jane"));
    assert_eq!(login.family_name.as_deref(), Some("Doe"));
    assert_eq!(login.name.as_deref(), Some("Jane Doe"));
    assert!(!login.blocked);
    assert_eq!(login.app_metadata["tenant"], TENANT);
    assert_eq!(login.app_metadata["peak_user_id"], jane.id.as_str());
    for reserved in peak_auth0::RESERVED_APP_METADATA_KEYS {
        assert!(
            login.app_metadata.get(reserved).is_none(),
            "app_metadata.{reserved} is reserved by Auth0"
        );
    }
}

#[tokio::test]
async fn a_concurrent_create_is_resolved_through_the_409() {
    let fake = FakeAuth0::start().await;
    let client = fake.client();
    warm(&client).await;
    // Both lookups answer late (and empty), so both callers then create.
    fake.fail_next(2, Fault::Delay(Duration::from_millis(300)));
    let jane = user(TENANT, "jane@example.com");
    let (a, b) = tokio::join!(ensure(&client, &jane), ensure(&client, &jane));
    assert_eq!(a.unwrap(), b.unwrap());
    assert_eq!(fake.users().len(), 1);
    let creates: Vec<u16> = to_path(&fake.requests(), "/api/v2/users")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(creates.len(), 2);
    assert!(
        creates.contains(&201) && creates.contains(&409),
        "{creates:?}"
    );
}

#[tokio::test]
async fn another_tenants_or_a_foreign_login_is_rejected() {
    let fake = FakeAuth0::start().await;
    let client = fake.client();
    fake.insert_user(
        FakeUser::new(&fake.connection, "taken@example.com").with_tenant("globex", "01J0000000"),
    );
    fake.insert_user(FakeUser::new(&fake.connection, "dashboard@example.com"));

    let err = ensure(&client, &user(TENANT, "Taken@example.com"))
        .await
        .unwrap_err();
    let IdpError::Rejected(msg) = &err else {
        panic!("{err:?}")
    };
    assert!(msg.contains("another tenant"), "{msg}");
    assert!(!msg.to_lowercase().contains("taken"), "{msg}");

    let err = ensure(&client, &user(TENANT, "dashboard@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(err, IdpError::Rejected(_)), "{err:?}");
    assert_eq!(fake.count("POST", "/api/v2/users"), 0);
}

#[tokio::test]
async fn logins_in_other_connections_are_not_ours() {
    let fake = FakeAuth0::start().await;
    let client = fake.client();
    let social = fake.insert_user(FakeUser {
        user_id: "google-oauth2|1234".into(),
        ..FakeUser::new("google-oauth2", "jane@example.com").with_tenant("globex", "x")
    });
    let subject = ensure(&client, &user(TENANT, "jane@example.com"))
        .await
        .unwrap();
    assert_ne!(subject, social);
    assert_eq!(fake.users().len(), 2);
}

#[tokio::test]
async fn a_login_of_an_earlier_record_is_found_and_relinked_without_reserved_keys() {
    let fake = FakeAuth0::start().await;
    let client = fake.client();
    let old = fake.insert_user(
        FakeUser::new(&fake.connection, "jane@example.com").with_tenant(TENANT, "01OLDRECORD"),
    );
    let jane = user(TENANT, "jane@example.com");
    let found = client.find_login(&jane).await.unwrap().expect("found");
    assert_eq!(
        (found.subject.as_str(), found.user_id.as_deref()),
        (old.as_str(), Some("01OLDRECORD"))
    );
    assert!(client.relink_login(&old, &jane).await.unwrap());
    let account = client.get_user(&old).await.unwrap().unwrap();
    assert_eq!(account.user_id.as_deref(), Some(jane.id.as_str()));
    assert_eq!(account.tenant.as_deref(), Some(TENANT));
    assert_eq!(fake.users().len(), 1);
    assert!(!client.relink_login(NO_SUCH, &jane).await.unwrap());

    // A login made before `peak_user_id` (our id under Auth0's reserved
    // `user_id`) is still read as ours.
    let legacy = fake.insert_user(FakeUser {
        app_metadata: serde_json::json!({ "tenant": TENANT, "user_id": "01LEGACY" }),
        ..FakeUser::new(&fake.connection, "legacy@example.com")
    });
    let account = client.get_user(&legacy).await.unwrap().unwrap();
    assert_eq!(account.user_id.as_deref(), Some("01LEGACY"));
}

#[tokio::test]
async fn update_get_and_delete_round_trip() {
    let fake = FakeAuth0::start().await;
    let client = fake.client();
    let jane = user(TENANT, "jane@example.com");
    let subject = ensure(&client, &jane).await.unwrap();

    let state = IdpUserState {
        email: "jane.smith@example.org".into(),
        given_name: "Janet".into(),
        family_name: "Smith".into(),
        blocked: true,
    };
    assert!(client.update_user(&subject, &state).await.unwrap());
    let account = client.get_user(&subject).await.unwrap().unwrap();
    assert_eq!(account.subject, subject);
    assert_eq!(account.email, "jane.smith@example.org");
    assert!(account.email_verified);
    assert_eq!(account.given_name.as_deref(), Some("Janet"));
    assert_eq!(account.family_name.as_deref(), Some("Smith"));
    assert!(account.blocked);
    assert_eq!(account.tenant.as_deref(), Some(TENANT));
    assert_eq!(account.user_id.as_deref(), Some(jane.id.as_str()));
    let login = fake.user(&subject).unwrap();
    assert_eq!(login.name.as_deref(), Some("Janet Smith"));
    assert_eq!(login.verification_emails_sent, 0);

    // Unblocked from the dashboard: the next whole-state update wins.
    fake.set_blocked(&subject, false);
    assert!(client.update_user(&subject, &state).await.unwrap());
    assert!(fake.user(&subject).unwrap().blocked);

    client.delete_user(&subject).await.unwrap();
    assert_eq!(client.get_user(&subject).await.unwrap(), None);
    assert!(!client.update_user(&subject, &state).await.unwrap());
    client.delete_user(&subject).await.unwrap();
    fake.fail_next(1, Fault::Status(404));
    client.delete_user(&subject).await.unwrap();
    assert!(fake.users().is_empty());
}

#[tokio::test]
async fn every_login_of_our_connection_comes_from_an_export_job() {
    let fake = FakeAuth0::start().await;
    fake.set_export_polls(3);
    let client = fake.client();
    let mut ours = HashSet::new();
    for i in 0..7 {
        ours.insert(fake.insert_user(
            FakeUser::new(&fake.connection, format!("u{i}@example.com")).with_tenant(TENANT, "x"),
        ));
    }
    fake.insert_user(FakeUser {
        user_id: "google-oauth2|1".into(),
        ..FakeUser::new("google-oauth2", "social@example.com")
    });
    let listing = client.all_logins().await.unwrap();
    assert_eq!(listing.source, "export");
    let seen: Vec<_> = listing.accounts.map(|a| a.unwrap()).collect();
    assert_eq!(seen.len(), 7, "our connection only");
    assert!(seen.iter().all(|a| a.tenant.as_deref() == Some(TENANT)));
    assert_eq!(
        seen.into_iter().map(|a| a.subject).collect::<HashSet<_>>(),
        ours
    );
    assert_eq!(fake.count("POST", "/api/v2/jobs/users-exports"), 1);
    assert!(
        fake.count("GET", "/api/v2/users") == 0,
        "no user search (it stops at 1,000)"
    );
}

#[tokio::test]
async fn the_password_setup_link_is_a_working_ticket() {
    let fake = FakeAuth0::start().await;
    let client = fake.client();
    let jane = user(TENANT, "jane@example.com");
    let subject = ensure(&client, &jane).await.unwrap();
    let url = client
        .password_setup_link(&jane, &subject, &PORTAL)
        .await
        .unwrap();
    assert!(url.starts_with(&fake.base_url), "{url}");

    let ticket = fake.ticket(&url).unwrap();
    assert_eq!(ticket.user_id, subject);
    // Back to the tenant's portal sign-in, not one application's login.
    assert_eq!(ticket.client_id, None);
    assert_eq!(
        ticket.result_url.as_deref(),
        Some("https://portal.acme.example/login")
    );
    assert_eq!(ticket.ttl_sec, Auth0Config::DEFAULT_TICKET_TTL_SECS);
    assert!(ticket.mark_email_as_verified);

    assert_eq!(fake.complete_ticket(&url), Some(subject.clone()));
    assert!(fake.user(&subject).unwrap().password_set);
    assert_eq!(fake.complete_ticket(&url), None, "a ticket works once");

    let err = client
        .password_setup_link(&jane, NO_SUCH, &PORTAL)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        IdpError::Rejected("Auth0 password_setup_link: 404 Not Found (inexistent_user)".into())
    );
}

#[tokio::test]
async fn a_429_is_waited_out_without_hammering() {
    let fake = FakeAuth0::start().await;
    let client = fake.client();
    warm(&client).await;
    fake.fail_next(
        1,
        Fault::RateLimitRetryAfter {
            retry_after_secs: 1,
        },
    );
    let start = Instant::now();
    assert_eq!(client.get_user(NO_SUCH).await.unwrap(), None);
    assert!(start.elapsed() >= Duration::from_millis(950));

    let log = fake.requests();
    let calls = to_path(&log, &user_path(NO_SUCH));
    let statuses: Vec<u16> = calls.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [404, 429, 404]);
    assert!(calls[2].at - calls[1].at >= Duration::from_millis(950));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_the_rate_limit_wait() {
    let fake = FakeAuth0::start().await;
    let client = fake.client();
    warm(&client).await;
    fake.clear_requests();
    fake.fail_next(
        1,
        Fault::RateLimitRetryAfter {
            retry_after_secs: 1,
        },
    );

    let a = {
        let c = client.clone();
        tokio::spawn(async move { c.get_user(NO_SUCH).await })
    };
    let limited_at = loop {
        if let Some(r) = fake.requests().iter().find(|r| r.status == 429) {
            break r.at;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // Give the first caller a moment to read its answer, then call again.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(client.get_user(NO_SUCH).await.unwrap().is_none());
    assert_eq!(a.await.unwrap().unwrap(), None);

    let log = fake.requests();
    assert_eq!(log.len(), 3, "{log:?}");
    for r in log.iter().filter(|r| r.status != 429) {
        assert!(r.at - limited_at >= Duration::from_millis(950), "{log:?}");
    }
}

#[tokio::test]
async fn a_rate_limit_past_the_deadline_fails_fast_for_every_caller() {
    let fake = FakeAuth0::start().await;
    let client = fake.client();
    warm(&client).await;
    fake.fail_next(
        1,
        Fault::RateLimitRetryAfter {
            retry_after_secs: 60,
        },
    );
    let start = Instant::now();
    assert!(matches!(
        client.get_user(NO_SUCH).await,
        Err(IdpError::Unavailable(_))
    ));
    let before = fake.requests().len();
    assert!(matches!(
        client.get_user(NO_SUCH).await,
        Err(IdpError::Unavailable(_))
    ));
    assert_eq!(fake.requests().len(), before, "the second caller waited");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn server_errors_are_retried() {
    let fake = FakeAuth0::start().await;
    let client = fake.client();
    warm(&client).await;
    fake.fail_next(2, Fault::Status(503));
    assert_eq!(client.get_user(NO_SUCH).await.unwrap(), None);
    let statuses: Vec<u16> = to_path(&fake.requests(), &user_path(NO_SUCH))
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [404, 503, 503, 404]);
}

#[tokio::test]
async fn other_client_errors_are_not_retried() {
    let fake = FakeAuth0::start().await;
    let client = fake.client();
    warm(&client).await;
    for status in [400, 403] {
        fake.clear_requests();
        fake.fail_next(1, Fault::Status(status));
        let err = client.get_user(NO_SUCH).await.unwrap_err();
        let IdpError::Rejected(msg) = err else {
            panic!("{err:?}")
        };
        assert!(
            msg.contains(&status.to_string()) && msg.contains("fake_fault"),
            "{msg}"
        );
        assert!(
            !msg.contains("Injected"),
            "the message is not echoed: {msg}"
        );
        assert_eq!(fake.requests().len(), 1);
    }
}

#[tokio::test]
async fn an_outage_past_the_deadline_is_unavailable_in_time() {
    let fake = FakeAuth0::start().await;
    let client = client_with(&fake, 1500, 500);
    warm(&client).await;
    fake.clear_requests();
    fake.set_down(true);
    let start = Instant::now();
    let err = client.get_user(NO_SUCH).await.unwrap_err();
    let elapsed = start.elapsed();
    assert!(matches!(err, IdpError::Unavailable(_)), "{err:?}");
    assert!(elapsed <= Duration::from_millis(1500 + 1500), "{elapsed:?}");
    let tries = fake.requests().len();
    assert!((2..30).contains(&tries), "{tries} tries");

    // Without a token the token request is what fails, just as fast.
    let fresh = client_with(&fake, 1500, 500);
    let start = Instant::now();
    assert!(matches!(
        fresh.get_user(NO_SUCH).await,
        Err(IdpError::Unavailable(_))
    ));
    assert!(start.elapsed() <= Duration::from_secs(3));

    fake.set_down(false);
    assert_eq!(fresh.get_user(NO_SUCH).await.unwrap(), None);
}

/// The accept function runs two Management API calls of 10 s each in a
/// Lambda that may have less left: a call started late gets what remains of
/// the invocation, so the function answers (503) instead of being stopped
/// mid-call by Lambda.
#[tokio::test]
async fn a_call_ends_with_its_invocation_not_its_own_budget() {
    let fake = FakeAuth0::start().await;
    let client = client_with(&fake, 10_000, 500);
    warm(&client).await;
    fake.clear_requests();
    fake.set_down(true);
    let invocation_ends = tokio::time::Instant::now() + Duration::from_millis(1500);
    let start = Instant::now();
    let err = peak_aws_env::invocation::within(Some(invocation_ends), client.get_user(NO_SUCH))
        .await
        .unwrap_err();
    let elapsed = start.elapsed();
    assert!(matches!(err, IdpError::Unavailable(_)), "{err:?}");
    // Its own budget is 10 s; the invocation's 1.5 s is what it spent.
    assert!(elapsed <= Duration::from_millis(1500 + 1500), "{elapsed:?}");
    // (It may stop before 1.5 s: a retry whose backoff would end past the
    // deadline is not waited for.) It did try, more than once:
    let tries = fake.requests().len();
    assert!(tries >= 2, "{tries} tries");

    // Outside an invocation the same call keeps its own budget: it outlasts
    // a short outage that the capped call could not.
    let (answer, ()) = tokio::join!(client.get_user(NO_SUCH), async {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        fake.set_down(false);
    });
    assert_eq!(answer.unwrap(), None);
}

#[tokio::test]
async fn a_stopped_provider_is_unavailable() {
    let fake = FakeAuth0::start().await;
    let client = client_with(&fake, 1000, 300);
    warm(&client).await;
    fake.stop().await;
    let start = Instant::now();
    assert!(matches!(
        client.get_user(NO_SUCH).await,
        Err(IdpError::Unavailable(_))
    ));
    assert!(start.elapsed() <= Duration::from_secs(3));
}

#[tokio::test]
async fn a_slow_answer_is_abandoned_and_retried() {
    let fake = FakeAuth0::start().await;
    let client = client_with(&fake, 10_000, 500);
    warm(&client).await;
    fake.clear_requests();
    fake.fail_next(1, Fault::Delay(Duration::from_secs(4)));
    let start = Instant::now();
    assert_eq!(client.get_user(NO_SUCH).await.unwrap(), None);
    assert!(start.elapsed() < Duration::from_millis(3500));
    assert!(fake.requests().len() >= 2);
}

/// Log lines written by the code under test (this thread only).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_token_email_or_name_in_errors_logs_or_debug() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("peak_auth0=trace")
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let fake = FakeAuth0::start().await;
    let client = client_with(&fake, 3000, 400);
    let mut shown = vec![format!("{:?}", fake.config()), format!("{client:?}")];
    let jane = user(TENANT, "jane.secretperson@example.com");
    let subject = ensure(&client, &jane).await.unwrap();
    client
        .password_setup_link(&jane, &subject, &PORTAL)
        .await
        .unwrap();

    // Auth0 quotes a refused address in its message.
    let bad = IdpUserState {
        email: "jane.secretperson@".into(),
        given_name: "Janet".into(),
        family_name: "Secretperson".into(),
        blocked: false,
    };
    shown.push(
        client
            .update_user(&subject, &bad)
            .await
            .unwrap_err()
            .to_string(),
    );
    fake.insert_user(
        FakeUser::new(&fake.connection, "other.secretperson@example.com")
            .with_tenant("globex", "x"),
    );
    shown.push(
        ensure(&client, &user(TENANT, "other.secretperson@example.com"))
            .await
            .unwrap_err()
            .to_string(),
    );
    fake.fail_next(1, Fault::Status(503));
    fake.fail_next(
        1,
        Fault::RateLimitRetryAfter {
            retry_after_secs: 1,
        },
    );
    ensure(&client, &jane).await.unwrap();
    fake.expire_tokens();
    client.get_user(&subject).await.unwrap();
    fake.set_down(true);
    shown.push(ensure(&client, &jane).await.unwrap_err().to_string());
    let mut wrong = fake.config();
    wrong.client_secret.push('x');
    shown.push(
        Auth0Client::new(wrong)
            .get_user(&subject)
            .await
            .unwrap_err()
            .to_string(),
    );

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("retrying an Auth0 call"), "{logs}");
    assert!(logs.contains("/api/v2/users-by-email"), "{logs}");
    let mut forbidden = vec![
        fake.client_secret.clone(),
        "secretperson".into(),
        "Janet".into(),
        "Jane".into(),
        "Doe".into(),
    ];
    let tokens = fake.access_tokens();
    assert_eq!(tokens.len(), 2);
    forbidden.extend(tokens);
    for text in shown.iter().chain([&logs]) {
        for bad in &forbidden {
            assert!(!text.contains(bad.as_str()), "{bad:?} in {text}");
        }
    }
}

#[tokio::test]
async fn a_429_with_only_the_rate_limit_reset_is_waited_out_until_the_reset() {
    let fake = FakeAuth0::start().await;
    let client = fake.client();
    warm(&client).await;
    fake.clear_requests();
    // Auth0's global limit: no Retry-After, only x-ratelimit-reset (whole
    // Unix seconds), 2 s ahead.
    fake.fail_next(1, Fault::RateLimit { reset_in_secs: 2 });
    assert_eq!(client.get_user(NO_SUCH).await.unwrap(), None);
    let log = fake.requests();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0].status, 429);
    let waited = log[1].at - log[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "the retry came before the reset: {waited:?}"
    );
}

#[tokio::test]
async fn sessions_refresh_tokens_and_the_brute_force_block_are_ended() {
    let fake = FakeAuth0::start().await;
    let client = fake.client();
    let jane = user(TENANT, "jane@example.com");
    let subject = ensure(&client, &jane).await.unwrap();
    fake.sign_in(&subject);
    fake.sign_in(&subject);
    fake.set_brute_force_blocked(&subject, true);
    assert_eq!(
        (fake.sessions(&subject), fake.refresh_tokens(&subject)),
        (2, 2)
    );
    assert_eq!(
        client.revoke_sessions(&subject).await.unwrap(),
        StepOutcome::Done
    );
    assert_eq!(
        client.revoke_refresh_tokens(&subject).await.unwrap(),
        StepOutcome::Done
    );
    assert_eq!(
        (fake.sessions(&subject), fake.refresh_tokens(&subject)),
        (0, 0)
    );
    assert_eq!(
        client.clear_login_block(&subject).await.unwrap(),
        StepOutcome::Done
    );
    assert!(!fake.user(&subject).unwrap().brute_force_blocked);
    // A login that is gone has nothing left to revoke.
    assert_eq!(
        client.revoke_sessions(NO_SUCH).await.unwrap(),
        StepOutcome::Done
    );
}

#[tokio::test]
async fn a_plan_or_grant_without_session_revocation_is_unsupported_not_retried() {
    let fake = FakeAuth0::start().await;
    fake.withhold_scope("delete:sessions");
    let client = fake.client();
    let subject = ensure(&client, &user(TENANT, "jane@example.com"))
        .await
        .unwrap();
    fake.sign_in(&subject);
    fake.clear_requests();
    let outcome = client.revoke_sessions(&subject).await.unwrap();
    assert_eq!(
        outcome,
        StepOutcome::Unsupported(
            "Auth0 revoke_sessions: 403 Forbidden (insufficient_scope)".into()
        )
    );
    assert_eq!(fake.requests().len(), 1, "a 403 is not retried");
    assert_eq!(fake.sessions(&subject), 1);
    // The other steps still work.
    assert_eq!(
        client.revoke_refresh_tokens(&subject).await.unwrap(),
        StepOutcome::Done
    );
}

/// Two instances (two clients, each with its own connection pool, token and
/// 429 pause) over one store share one Management API budget: together they
/// never send more than `max_rps` requests in a second, as Auth0 counts
/// them (at arrival), and none is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_rate_budget() {
    // No limit at the fake: it counts what arrives, per second (its own
    // limit would also count the token requests, which Auth0 limits apart).
    let fake = FakeAuth0::start().await;
    let store: Arc<dyn peak_domain::ports::RateLimits> =
        Arc::new(peak_store_sqlite::SqliteStore::open_in_memory().unwrap());
    let instance = || {
        let mut config = fake.config();
        config.max_rps = 3;
        config.call_deadline = Duration::from_secs(30);
        Auth0Client::new(config).with_rate_budget(store.clone())
    };
    let (a, b) = (instance(), instance());
    let calls = (0..8).flat_map(|_| [a.clone(), b.clone()]).map(|c| {
        tokio::spawn(async move { c.get_user(NO_SUCH).await.map(|found| found.is_none()) })
    });
    for call in calls.collect::<Vec<_>>() {
        assert!(call.await.unwrap().unwrap(), "answered, not refused");
    }
    let api: Vec<FakeRequest> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/api/v2/"))
        .collect();
    let seen: Vec<_> = api.iter().map(|r| (r.unix_ms, r.status)).collect();
    assert_eq!(api.len(), 16, "one request per call: {seen:?}");
    assert!(api.iter().all(|r| r.status == 404), "{seen:?}");
    let mut per_second = std::collections::BTreeMap::<u64, u32>::new();
    for r in &api {
        *per_second.entry(r.unix_ms / 1000).or_default() += 1;
    }
    assert!(
        per_second.values().all(|&n| n <= 3),
        "more than the budget in a second: {per_second:?}"
    );
    assert!(per_second.len() >= 6, "16 requests at 3/s: {per_second:?}");
}

/// A call that cannot get a slot of the budget within its deadline gives
/// up as unavailable without sending anything.
#[tokio::test]
async fn a_spent_budget_past_the_deadline_sends_nothing() {
    let fake = FakeAuth0::start().await;
    let store = Arc::new(peak_store_sqlite::SqliteStore::open_in_memory().unwrap());
    let mut config = fake.config();
    config.max_rps = 1;
    config.call_deadline = Duration::from_millis(300);
    let client = Auth0Client::new(config).with_rate_budget(store.clone());
    // Another instance spent this second's and the next seconds' budget.
    let now = time::OffsetDateTime::now_utc();
    // Latest first: the SQLite store drops a bucket's earlier windows.
    for s in (0..3).rev() {
        let at = now + time::Duration::seconds(s);
        use peak_domain::ports::RateLimits;
        assert!(
            store
                .take_rate_limit(peak_auth0::RATE_BUDGET_BUCKET, at, 1, 1)
                .await
                .unwrap()
        );
    }
    let err = client.get_user(NO_SUCH).await.unwrap_err();
    assert!(
        matches!(&err, IdpError::Throttled(m) if m.contains("rate budget")),
        "{err:?}"
    );
    assert_eq!(
        fake.requests()
            .iter()
            .filter(|r| r.path.starts_with("/api/v2/"))
            .count(),
        0
    );
}
