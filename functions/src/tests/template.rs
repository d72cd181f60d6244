//! `infra/template.yaml`, the route table the local server serves, and the
//! binaries in `functions/` must describe the same set of functions and
//! routes: a route or function on one side only fails here.

use peak_api::ROUTES;
use serde_yaml::Value;
use std::collections::BTreeSet;

/// Functions that serve no HTTP route.
const WORKERS: [&str; 6] = [
    "mailer",
    "mailer-sweeper",
    "auth0-worker",
    "auth0-sweeper",
    "auth0-reconcile",
    "bulk-runner",
];

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml");
    let text = std::fs::read_to_string(path).expect("read template");
    serde_yaml::from_str(&text).expect("template is YAML")
}

/// (method, path, binary) for every HttpApi event of every function.
fn template_routes(t: &Value) -> BTreeSet<(String, String, String)> {
    let mut routes = BTreeSet::new();
    for (name, res) in t["Resources"].as_mapping().expect("Resources") {
        if res["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = res["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{name:?} names no Binary"));
        assert_eq!(
            res["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{name:?}"
        );
        for (_, event) in res["Properties"]["Events"]
            .as_mapping()
            .into_iter()
            .flatten()
        {
            if event["Type"].as_str() == Some("HttpApi") {
                let p = &event["Properties"];
                routes.insert((
                    p["Method"].as_str().expect("Method").to_uppercase(),
                    p["Path"].as_str().expect("Path").to_owned(),
                    binary.to_owned(),
                ));
            }
        }
    }
    routes
}

#[test]
fn template_routes_equal_the_served_routes() {
    let served: BTreeSet<_> = ROUTES
        .iter()
        .map(|r| {
            (
                r.method.to_string(),
                r.path.to_owned(),
                r.function.to_owned(),
            )
        })
        .collect();
    assert_eq!(template_routes(&template()), served);
}

/// The three descriptions of the API are one set: the SAM template's
/// routes, the routes the local run (and every Lambda) serves, and the
/// OpenAPI document's paths.
#[test]
fn template_served_routes_and_openapi_agree() {
    let template: BTreeSet<_> = template_routes(&template())
        .into_iter()
        .map(|(m, p, _)| (m, p))
        .collect();
    let served: BTreeSet<_> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_owned()))
        .collect();
    let doc = peak_api::openapi::document();
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("operations").keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    assert_eq!(template, served, "template vs served");
    assert_eq!(documented, served, "OpenAPI vs served");
}

#[test]
fn every_function_has_its_binary() {
    for route in ROUTES {
        let bin = format!(
            "{}/src/bin/{}.rs",
            env!("CARGO_MANIFEST_DIR"),
            route.function
        );
        assert!(std::path::Path::new(&bin).exists(), "missing {bin}");
    }
    let bins = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/src/bin")).expect("bin dir");
    for entry in bins {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        // Workers are triggered by the stream or a schedule, not a route.
        assert!(
            WORKERS.contains(&name.as_str()) || ROUTES.iter().any(|r| r.function == name),
            "binary {name} serves no route"
        );
    }
}

#[test]
fn functions_get_only_the_table_actions_they_need() {
    let t = template();
    let policy_actions = |resource: &str| -> BTreeSet<String> {
        let mut actions = BTreeSet::new();
        for policy in t["Resources"][resource]["Properties"]["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            for st in policy["Statement"].as_sequence().into_iter().flatten() {
                for a in st["Action"].as_sequence().into_iter().flatten() {
                    actions.insert(a.as_str().expect("action").to_owned());
                }
            }
        }
        actions
    };
    let set = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>();
    // Every function reads the caller's user record (the subject guard, and
    // one query of the user's partition); readers do nothing else.
    assert_eq!(
        policy_actions("ProfileCatalogueFunction"),
        set(&["dynamodb:GetItem", "dynamodb:Query"])
    );
    assert_eq!(
        policy_actions("UserGetFunction"),
        set(&["dynamodb:GetItem", "dynamodb:Query"])
    );
    assert_eq!(
        policy_actions("UserListFunction"),
        set(&[
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:BatchGetItem"
        ])
    );
    assert!(!policy_actions("ProfileGetFunction").contains("dynamodb:PutItem"));
    // Only list functions may query an index.
    let resources = |resource: &str| -> String {
        format!("{:?}", t["Resources"][resource]["Properties"]["Policies"])
    };
    assert!(!resources("UserInviteFunction").contains("/index/"));
    assert!(resources("UserListFunction").contains("/index/"));
    for (_, res) in t["Resources"].as_mapping().expect("Resources") {
        for policy in res["Properties"]["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            for st in policy["Statement"].as_sequence().into_iter().flatten() {
                for a in st["Action"].as_sequence().into_iter().flatten() {
                    let a = a.as_str().unwrap_or("");
                    assert!(
                        !a.contains('*') && a != "dynamodb:Scan",
                        "over-broad action {a}"
                    );
                }
            }
        }
    }
}

/// A function that waits on Auth0 while answering must outlive one
/// Management API call (its deadline), or the call's answer is lost with a
/// timeout; and the webhook's hold on a delivery (the lease) must outlive
/// the function, so a retry never finds it held by a live invocation.
#[test]
fn the_webhook_outlives_an_auth0_call_and_its_lease_outlives_it() {
    let t = template();
    let timeout = t["Resources"]["Auth0WebhookFunction"]["Properties"]["Timeout"]
        .as_u64()
        .expect("the webhook function has its own Timeout");
    let deadline = peak_auth0::Auth0Config::DEFAULT_CALL_DEADLINE.as_secs();
    assert!(
        timeout > deadline,
        "webhook Timeout {timeout} s must exceed the Auth0 call deadline {deadline} s"
    );
    let lease = peak_domain::model::delivery::DELIVERY_LEASE_SECS;
    assert!(
        lease > timeout,
        "the delivery lease {lease} s must exceed the webhook Timeout {timeout} s"
    );
}

/// API Gateway's HTTP API waits at most 30 s for a function: one that runs
/// longer leaves the person with API Gateway's bare 503/504 instead of our
/// answer. Every HTTP function has its route spec's sizing (Globals are
/// `Sizing::REQUEST`), answers within that, and one that waits on Auth0
/// while answering outlives one Management API call.
#[test]
fn every_http_function_is_sized_as_its_route_says_and_answers_in_time() {
    use peak_api::spec::Sizing;
    let t = template();
    let globals = &t["Globals"]["Function"];
    assert_eq!(
        globals["MemorySize"].as_u64(),
        Some(Sizing::REQUEST.memory_mb.into())
    );
    assert_eq!(
        globals["Timeout"].as_u64(),
        Some(Sizing::REQUEST.timeout_secs.into())
    );
    let call = peak_auth0::Auth0Config::DEFAULT_CALL_DEADLINE.as_secs();
    for op in peak_api::OPERATIONS {
        let (name, res) = t["Resources"]
            .as_mapping()
            .expect("Resources")
            .iter()
            .find(|(_, r)| r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(op.function))
            .unwrap_or_else(|| panic!("no function for {}", op.function));
        let p = &res["Properties"];
        let memory = p["MemorySize"].as_u64().or(globals["MemorySize"].as_u64());
        let timeout = p["Timeout"].as_u64().or(globals["Timeout"].as_u64());
        assert_eq!(memory, Some(op.sizing.memory_mb.into()), "{name:?}");
        assert_eq!(timeout, Some(op.sizing.timeout_secs.into()), "{name:?}");
        let timeout = timeout.unwrap_or_default();
        assert!(
            timeout < 30,
            "{name:?}: Timeout {timeout} s is past API Gateway's 30 s"
        );
        if op.auth0 {
            assert!(
                timeout > call,
                "{name:?} waits on Auth0: Timeout {timeout} s must exceed one call's {call} s"
            );
        }
    }
}

/// A creating route's request holds its Idempotency-Key by a lease; the
/// function must be stopped (its `Timeout`) before the lease ends, or a
/// client's retry could run the request a second time beside the first.
#[test]
fn creating_routes_end_before_their_idempotency_lease() {
    let t = template();
    let default = t["Globals"]["Function"]["Timeout"]
        .as_u64()
        .expect("Globals.Function.Timeout");
    let mut checked = 0;
    for spec in ROUTES.iter().filter(|r| r.idempotent) {
        let (name, res) = t["Resources"]
            .as_mapping()
            .expect("Resources")
            .iter()
            .find(|(_, r)| {
                r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(spec.function)
            })
            .unwrap_or_else(|| panic!("no function for {}", spec.function));
        let timeout = res["Properties"]["Timeout"].as_u64().unwrap_or(default);
        assert!(
            timeout < peak_api::IDEMPOTENCY_LEASE_SECS,
            "{name:?}: Timeout {timeout} s must be under the idempotency lease"
        );
        checked += 1;
    }
    assert!(checked >= 3, "profiles, users, bulk invites");
}

/// Anyone can call a public route (no token): each one is throttled by
/// API Gateway below the stage's limits, and its function has a reserved
/// concurrency, so junk traffic gets 429s and cannot take the account's
/// Lambda concurrency from the authenticated routes.
#[test]
fn public_routes_are_throttled_and_their_functions_capped() {
    let t = template();
    let api = &t["Resources"]["HttpApi"]["Properties"];
    let param_default = |value: &Value| -> u64 {
        let name = value["Ref"]
            .as_str()
            .or_else(|| value.as_str())
            .unwrap_or_else(|| panic!("a parameter reference, not {value:?}"));
        t["Parameters"][name]["Default"]
            .as_u64()
            .unwrap_or_else(|| panic!("parameter {name} has a numeric default"))
    };
    let limits = |settings: &Value, what: &str| -> (u64, u64) {
        let get = |key: &str| {
            let v = &settings[key];
            assert!(!v.is_null(), "{what}: no {key}");
            param_default(&tagged(v))
        };
        (get("ThrottlingRateLimit"), get("ThrottlingBurstLimit"))
    };
    let (stage_rate, stage_burst) = limits(&api["DefaultRouteSettings"], "the stage");
    let public: Vec<_> = ROUTES.iter().filter(|r| !r.authenticated).collect();
    for path in [
        "/invitations/{token}",
        "/invitations/{token}/accept",
        "/email-verifications/{token}",
        "/password-resets",
        "/webhooks/auth0",
    ] {
        assert!(public.iter().any(|r| r.path == path), "{path} is public");
    }
    for r in public {
        let key = format!("{} {}", r.method, r.path);
        let (rate, burst) = limits(&api["RouteSettings"][key.as_str()], &key);
        assert!(
            0 < rate && rate < stage_rate && 0 < burst && burst < stage_burst,
            "{key}: {rate}/s burst {burst} must be under the stage's {stage_rate}/s burst {stage_burst}"
        );
        let (name, function) = t["Resources"]
            .as_mapping()
            .expect("Resources")
            .iter()
            .find(|(_, f)| f["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(r.function))
            .unwrap_or_else(|| panic!("no function {}", r.function));
        let reserved = tagged(&function["Properties"]["ReservedConcurrentExecutions"]);
        // !If [LimitPublicConcurrency, !Ref PublicFunctionConcurrency, !Ref AWS::NoValue]
        let branches = reserved["If"].as_sequence().unwrap_or_else(|| {
            panic!("{name:?}: ReservedConcurrentExecutions is the !If on LimitPublicConcurrency")
        });
        assert_eq!(
            branches[0].as_str(),
            Some("LimitPublicConcurrency"),
            "{name:?}"
        );
        assert!(
            param_default(&tagged(&branches[1])) > 0,
            "{name:?}: capped by default"
        );
    }
}

/// A YAML short-form tag (`!Ref X`, `!If [...]`) as the long form
/// (`{Ref: X}`, `{If: [...]}`), so tests read both alike.
fn tagged(v: &Value) -> Value {
    match v {
        Value::Tagged(t) => {
            let mut m = serde_yaml::Mapping::new();
            let name = t.tag.to_string();
            let value = match &t.value {
                Value::Sequence(items) => Value::Sequence(items.iter().map(tagged).collect()),
                other => tagged(other),
            };
            m.insert(
                Value::String(name.trim_start_matches('!').to_owned()),
                value,
            );
            Value::Mapping(m)
        }
        other => other.clone(),
    }
}

/// No secret is in the template or in a function's environment (readable
/// with `lambda:GetFunctionConfiguration`): neither a literal nor a
/// deploy-time `{{resolve:…}}` of one. The functions that call Auth0 get the
/// secret's id and may read that one secret; no other function may read any.
#[test]
fn secrets_are_read_at_runtime_and_never_in_the_environment() {
    let raw = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/template.yaml"
    ))
    .expect("template");
    assert!(
        !raw.contains("{{resolve:secretsmanager"),
        "a secret resolved into the template"
    );
    let t = template();
    let secret_arn = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${Auth0SecretId}-??????";
    let mut with_secret = BTreeSet::new();
    for (name, res) in t["Resources"].as_mapping().expect("Resources") {
        let name = name.as_str().unwrap_or_default();
        let vars = &res["Properties"]["Environment"]["Variables"];
        for (_, secret_var) in crate::secrets::AUTH0_KEYS {
            assert!(
                vars[secret_var].is_null(),
                "{name}: {secret_var} in the environment"
            );
        }
        let statements: Vec<&Value> = res["Properties"]["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|p| p["Statement"].as_sequence())
            .flatten()
            .collect();
        let reads: Vec<&Value> = statements
            .iter()
            .filter(|s| {
                s["Action"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .any(|a| a.as_str().is_some_and(|a| a.starts_with("secretsmanager:")))
            })
            .copied()
            .collect();
        if vars["AUTH0_SECRET_ID"].is_null() {
            assert!(reads.is_empty(), "{name} may read secrets it is not given");
            continue;
        }
        with_secret.insert(name.to_owned());
        assert_eq!(
            tagged(&vars["AUTH0_SECRET_ID"])["Ref"].as_str(),
            Some("Auth0SecretId"),
            "{name}"
        );
        assert_eq!(reads.len(), 1, "{name}: one statement for the secret");
        let actions: Vec<_> = reads[0]["Action"]
            .as_sequence()
            .expect("Action")
            .iter()
            .collect();
        assert_eq!(
            actions,
            [&Value::from("secretsmanager:GetSecretValue")],
            "{name}"
        );
        let resources: Vec<Value> = reads[0]["Resource"]
            .as_sequence()
            .expect("Resource")
            .iter()
            .map(tagged)
            .collect();
        assert_eq!(resources.len(), 1, "{name}: that one secret");
        assert_eq!(resources[0]["Sub"].as_str(), Some(secret_arn), "{name}");
    }
    // The functions that call Auth0: accept, webhook, mailer, mailer
    // sweeper, worker, sweeper, reconcile.
    assert_eq!(with_secret.len(), 7, "{with_secret:?}");
}

#[test]
fn only_functions_that_call_auth0_get_its_credentials() {
    let t = template();
    let with_secret: BTreeSet<String> = t["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| !r["Properties"]["Environment"]["Variables"]["AUTH0_SECRET_ID"].is_null())
        .map(|(k, _)| k.as_str().unwrap_or_default().to_owned())
        .collect();
    let expected: BTreeSet<String> = [
        "InvitationAcceptFunction",
        "Auth0WebhookFunction",
        "MailerFunction",
        "MailerSweeperFunction",
        "Auth0WorkerFunction",
        "Auth0SweeperFunction",
        "Auth0ReconcileFunction",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    assert_eq!(with_secret, expected);
}

/// Each HTTP binary's `main` names its routes' handlers (and nothing else),
/// each pair as `(Route::X, handlers::X)`, and links the S3 file store and
/// the Auth0 client exactly where the template gives the function a bucket
/// and Auth0 settings: a binary that links too little fails its requests, one
/// that links too much is bigger and slower to start than it needs to be.
#[test]
fn each_binary_links_its_own_handlers_and_only_the_ports_it_is_configured_for() {
    let t = template();
    for (_, res) in t["Resources"].as_mapping().expect("Resources") {
        let Some(binary) = res["Metadata"]["BuildProperties"]["Binary"].as_str() else {
            continue;
        };
        if WORKERS.contains(&binary) {
            continue;
        }
        let path = format!("{}/src/bin/{binary}.rs", env!("CARGO_MANIFEST_DIR"));
        let source = std::fs::read_to_string(&path).expect("read binary source");
        let compact: String = source.split_whitespace().collect();
        let pairs: Vec<(String, String)> = compact
            .split("(Route::")
            .skip(1)
            .map(|rest| {
                let pair = &rest[..rest.find(')').expect("a closed pair")];
                let (route, handler) = pair
                    .split_once(",handlers::")
                    .unwrap_or_else(|| panic!("{binary}: `{pair}` is not (Route::X, handlers::Y)"));
                (route.to_owned(), handler.trim_end_matches(',').to_owned())
            })
            .collect();
        let expected: Vec<String> = peak_api::routes::function_routes(binary)
            .iter()
            .map(|r| format!("{r:?}"))
            .collect();
        assert_eq!(
            pairs.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>(),
            expected,
            "{binary}: routes"
        );
        for (route, handler) in &pairs {
            assert_eq!(
                route, handler,
                "{binary}: Route::{route} is paired with another handler"
            );
        }
        let vars = &res["Properties"]["Environment"]["Variables"];
        assert_eq!(
            source.contains("files: s3_files"),
            !vars["BULK_BUCKET"].is_null(),
            "{binary}: links S3 exactly when it has BULK_BUCKET"
        );
        assert_eq!(
            source.contains("idp: identity_provider_from_env"),
            !vars["AUTH0_DOMAIN"].is_null(),
            "{binary}: links the Auth0 client exactly when it has AUTH0_DOMAIN"
        );
    }
}

/// What works locally works in AWS: the HTTP API's CORS configuration is
/// the one the local run answers with (`peak_api::cors`), its origins come
/// from the `PortalOrigins` parameter, and nothing allows credentials (so
/// no origin can be a wildcard with them).
#[test]
fn cors_configuration_equals_the_local_runs() {
    use peak_api::cors;
    let t = template();
    let c = &t["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"];
    let list = |key: &str| -> Vec<String> {
        c[key]
            .as_sequence()
            .unwrap_or_else(|| panic!("CorsConfiguration.{key} is a list"))
            .iter()
            .map(|v| v.as_str().expect("string").to_owned())
            .collect()
    };
    assert_eq!(list("AllowMethods"), cors::ALLOW_METHODS);
    assert_eq!(list("AllowHeaders"), cors::ALLOW_HEADERS);
    assert_eq!(list("ExposeHeaders"), cors::EXPOSE_HEADERS);
    assert_eq!(c["MaxAge"].as_u64(), Some(u64::from(cors::MAX_AGE_SECS)));
    assert_eq!(c["AllowCredentials"].as_bool(), Some(false));
    assert_eq!(reference(&c["AllowOrigins"]), Some("PortalOrigins"));
    let param = &t["Parameters"]["PortalOrigins"];
    assert_eq!(param["Type"].as_str(), Some("CommaDelimitedList"));
    // Each origin is scheme://host[:port]: `*` matches none.
    assert_eq!(
        param["AllowedPattern"].as_str(),
        Some("https?://[A-Za-z0-9.-]+(:[0-9]+)?")
    );
}

/// The name a `!Ref` refers to.
fn reference(v: &Value) -> Option<&str> {
    match v {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str(),
        _ => None,
    }
}

/// A page looks like the email that led to it: every function that answers
/// a browser with a page gets the brands.
#[test]
fn functions_that_show_pages_get_the_brands() {
    let t = template();
    for resource in [
        "InvitationViewFunction",
        "InvitationAcceptFunction",
        "EmailVerificationViewFunction",
        "EmailVerificationConfirmFunction",
    ] {
        let vars = &t["Resources"][resource]["Properties"]["Environment"]["Variables"];
        assert_eq!(
            reference(&vars["EMAIL_BRANDS"]),
            Some("EmailBrands"),
            "{resource}"
        );
    }
}

fn tagged_str<'a>(v: &'a Value, tag: &str) -> &'a str {
    match v {
        Value::Tagged(t) if t.tag == tag => t.value.as_str().unwrap_or_default(),
        other => panic!("expected !{tag}, got {other:?}"),
    }
}

/// Operators see what the functions count and every alarm in one place:
/// the dashboard shows each EMF metric the code emits, in the namespace and
/// dimension it emits them with, and every alarm of the template; and the
/// functions know the stage they emit under.
#[test]
fn the_dashboard_shows_every_metric_and_every_alarm() {
    let t = template();
    let dashboard = &t["Resources"]["Dashboard"];
    assert_eq!(
        dashboard["Type"].as_str(),
        Some("AWS::CloudWatch::Dashboard")
    );
    let body: serde_json::Value =
        serde_json::from_str(tagged_str(&dashboard["Properties"]["DashboardBody"], "Sub"))
            .expect("the dashboard body is JSON");
    let widgets = body["widgets"].as_array().expect("widgets");
    let shown: BTreeSet<String> = widgets
        .iter()
        .flat_map(|w| {
            w["properties"]["metrics"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|m| m[0] == peak_metrics::NAMESPACE)
        .map(|m| {
            assert_eq!((&m[2], &m[3]), (&"Stage".into(), &"${Stage}".into()), "{m}");
            m[1].as_str().expect("metric name").to_owned()
        })
        .collect();
    let emitted: BTreeSet<String> = peak_metrics::Metric::ALL
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    assert_eq!(shown, emitted);

    let alarms: BTreeSet<String> = t["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
        .map(|(name, _)| format!("${{{}.Arn}}", name.as_str().expect("name")))
        .collect();
    assert!(!alarms.is_empty());
    let on_dashboard: BTreeSet<String> = widgets
        .iter()
        .filter(|w| w["type"] == "alarm")
        .flat_map(|w| {
            w["properties"]["alarms"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|a| a.as_str().expect("alarm").to_owned())
        .collect();
    assert_eq!(on_dashboard, alarms);

    let env = &t["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(reference(&env["STAGE"]), Some("Stage"));
}

/// The HTTP API logs every request to a log group that expires, by route
/// template and request id: never the path (invitation and confirmation
/// tokens are in paths), the caller's address, or headers.
#[test]
fn api_access_logs_go_to_a_log_group_with_retention_and_hold_no_tokens() {
    let t = template();
    let settings = &t["Resources"]["HttpApi"]["Properties"]["AccessLogSettings"];
    let Value::Tagged(dest) = &settings["DestinationArn"] else {
        panic!("DestinationArn: {:?}", settings["DestinationArn"]);
    };
    assert_eq!(dest.tag, "GetAtt");
    let target = dest.value.as_str().expect("GetAtt X.Arn");
    let group = target.strip_suffix(".Arn").expect("an Arn");
    let group = &t["Resources"][group];
    assert_eq!(group["Type"].as_str(), Some("AWS::Logs::LogGroup"));
    assert!(
        group["Properties"]["RetentionInDays"]
            .as_u64()
            .is_some_and(|d| d > 0),
        "retention"
    );
    let format = settings["Format"].as_str().expect("Format");
    let line: serde_json::Value = serde_json::from_str(format).expect("a JSON line");
    for field in ["requestId", "routeKey", "status", "latencyMs"] {
        assert!(line.get(field).is_some(), "{field} in {format}");
    }
    for leak in [
        "$context.path",
        "sourceIp",
        "$request.",
        "userAgent",
        "$context.authorizer.claims",
    ] {
        assert!(!format.contains(leak), "{leak} in {format}");
    }
}
