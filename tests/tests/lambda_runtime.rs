//! The built artefacts (`sam build`'s `bootstrap` files) started on a Lambda
//! Runtime API stand-in, with the template's environment, fed their sample
//! events: what `sam local invoke <Function> -e events/<function>.json`
//! would check where Docker is available.
//!
//! Run it after `scripts/sam-build.sh` (which puts the artefacts in
//! `target/sam/build/<LogicalId>/bootstrap`; `LAMBDA_ARTEFACTS` names
//! another directory) with DynamoDB Local and moto running:
//!
//! ```sh
//! scripts/sam-build.sh && scripts/test.sh -p peak-tests --test lambda_runtime
//! ```
//!
//! It is not part of `cargo test --workspace` (`test = false` in
//! tests/Cargo.toml): the artefacts are release builds that take minutes;
//! `.ci/run` runs it after `sam build`. Missing artefacts fail it, naming
//! the command that builds them; it never skips.
//!
//! Each function runs as Lambda runs it: the process gets the template's
//! `Globals` and own `Environment` (parameters resolved to the test's
//! values: its table in DynamoDB Local, the fake Auth0 of
//! `peak_auth0::fake`, the Auth0 secret created in moto's Secrets Manager),
//! what Lambda itself sets (`AWS_LAMBDA_RUNTIME_API`, ...) and, as the only
//! additions, the loopback endpoints of DynamoDB Local and moto. The stand-in
//! (scripts/lib/lambda_runtime_api.py, also the init benchmark's) hands it
//! an event and returns its answer.

use aws_sdk_dynamodb::types::AttributeValue;
use peak_auth::DevIdentityProvider;
use peak_auth0::fake::FakeAuth0;
use peak_domain::ports::PageRequest;
use serde_json::{Value, json};
use serde_yaml::Value as Yaml;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SENDER: &str = "no-reply@lambda-test.example";
const STREAM_TOKEN: &str = "lambda-test-stream-token-0123456789";
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const AUDIENCE: &str = "https://api.peak-users.test";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn stand_in(var: &str, what: &str, script: &str) -> String {
    let value = std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{what} is not running: run this test with scripts/test.sh, or start it with \
             `{script} start` and export the {var} it prints"
        )
    });
    assert!(
        value.starts_with("http://127.0.0.1:"),
        "loopback only, not {value}"
    );
    value
}

/// The directory `sam build` wrote; fails (never skips) without it.
fn artefacts() -> PathBuf {
    let dir = std::env::var_os("LAMBDA_ARTEFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/sam/build"));
    assert!(
        dir.join("template.yaml").is_file(),
        "no `sam build` output in {}: run scripts/sam-build.sh first (it builds every function \
         with cargo-lambda and runs `sam build`), or set LAMBDA_ARTEFACTS to such a directory",
        dir.display()
    );
    dir
}

// --- The template ------------------------------------------------------------

struct Template {
    doc: Yaml,
    /// Parameter values for this test, by name; the template's defaults
    /// fill the rest.
    params: BTreeMap<&'static str, String>,
    table: String,
}

impl Template {
    fn load(params: BTreeMap<&'static str, String>, table: String) -> Self {
        let path = repo_root().join("infra/template.yaml");
        let text = std::fs::read_to_string(&path).expect("read infra/template.yaml");
        let doc = serde_yaml::from_str(&text).expect("infra/template.yaml is YAML");
        Self { doc, params, table }
    }

    /// The logical id of the function whose `BuildProperties.Binary` is `binary`.
    fn logical_id(&self, binary: &str) -> String {
        let resources = self.doc["Resources"].as_mapping().expect("Resources");
        resources
            .iter()
            .find(|(_, r)| {
                r["Type"] == "AWS::Serverless::Function"
                    && r["Metadata"]["BuildProperties"]["Binary"] == binary
            })
            .and_then(|(k, _)| k.as_str())
            .unwrap_or_else(|| panic!("no function builds binary {binary} in the template"))
            .to_owned()
    }

    fn param(&self, name: &str) -> String {
        if let Some(v) = self.params.get(name) {
            return v.clone();
        }
        match &self.doc["Parameters"][name]["Default"] {
            Yaml::String(s) => s.clone(),
            Yaml::Number(n) => n.to_string(),
            _ => panic!(
                "template parameter {name} has no default and this test gives it no value: \
                 add it to the test's parameters"
            ),
        }
    }

    /// A value as CloudFormation would resolve it, for what a function's
    /// environment uses: literals, `!Ref` of a parameter or of the table,
    /// `!Sub` of parameters. Anything else fails, naming it.
    fn resolve(&self, what: &str, v: &Yaml) -> String {
        match v {
            Yaml::String(s) => s.clone(),
            Yaml::Number(n) => n.to_string(),
            Yaml::Bool(b) => b.to_string(),
            Yaml::Tagged(t) if t.tag == "Ref" => match t.value.as_str() {
                Some("Table") => self.table.clone(),
                Some(p) if !self.doc["Parameters"][p].is_null() => self.param(p),
                other => panic!("{what}: the test cannot resolve !Ref {other:?}"),
            },
            Yaml::Tagged(t) if t.tag == "Sub" => {
                let mut s = t.value.as_str().expect("!Sub of a string").to_owned();
                while let Some(start) = s.find("${") {
                    let end = start + s[start..].find('}').expect("closed ${");
                    let name = s[start + 2..end].to_owned();
                    assert!(
                        !self.doc["Parameters"][name.as_str()].is_null(),
                        "{what}: the test cannot resolve ${{{name}}}"
                    );
                    s.replace_range(start..=end, &self.param(&name));
                }
                s
            }
            other => panic!("{what}: the test cannot resolve {other:?}"),
        }
    }

    /// The environment the template gives the function, resolved, plus
    /// what Lambda sets for a function's process.
    fn environment(&self, logical_id: &str) -> BTreeMap<String, String> {
        let globals = &self.doc["Globals"]["Function"];
        let function = &self.doc["Resources"][logical_id]["Properties"];
        let mut env = BTreeMap::new();
        for vars in [
            &globals["Environment"]["Variables"],
            &function["Environment"]["Variables"],
        ] {
            for (k, v) in vars.as_mapping().into_iter().flatten() {
                let k = k.as_str().expect("variable name").to_owned();
                let value = self.resolve(&format!("{logical_id} {k}"), v);
                env.insert(k, value);
            }
        }
        let name = self.resolve("FunctionName", &function["FunctionName"]);
        let memory = match &function["MemorySize"] {
            Yaml::Null => self.resolve("MemorySize", &globals["MemorySize"]),
            m => self.resolve("MemorySize", m),
        };
        let log_level = self.resolve(
            "ApplicationLogLevel",
            &globals["LoggingConfig"]["ApplicationLogLevel"],
        );
        for (k, v) in [
            ("AWS_LAMBDA_FUNCTION_NAME", name.as_str()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory.as_str()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("AWS_LAMBDA_LOG_LEVEL", log_level.as_str()),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("LANG", "C.UTF-8"),
            ("TZ", ":UTC"),
            ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        ] {
            env.insert(k.to_owned(), v.to_owned());
        }
        // Lambda gives the execution role's keys. Here: the keys this test
        // process uses (peak_aws_env's "local" when it has none), since
        // DynamoDB Local keeps a separate database per access key and the
        // functions must see the table this test made.
        let key = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        env.insert(
            "AWS_ACCESS_KEY_ID".into(),
            key("AWS_ACCESS_KEY_ID").unwrap_or_else(|| "local".into()),
        );
        env.insert(
            "AWS_SECRET_ACCESS_KEY".into(),
            key("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|| "local".into()),
        );
        if let Some(token) = key("AWS_SESSION_TOKEN") {
            env.insert("AWS_SESSION_TOKEN".into(), token);
        }
        env
    }

    /// The mailer's event filter (`FilterCriteria` of its stream event), as JSON.
    fn mailer_filter(&self) -> Value {
        let id = self.logical_id("mailer");
        let events = self.doc["Resources"][id.as_str()]["Properties"]["Events"]
            .as_mapping()
            .expect("the mailer's events");
        let stream = events
            .values()
            .find(|e| e["Type"] == "DynamoDB")
            .expect("the mailer has a DynamoDB stream event");
        let pattern = stream["Properties"]["FilterCriteria"]["Filters"][0]["Pattern"]
            .as_str()
            .expect("a filter pattern");
        serde_json::from_str(pattern).expect("the pattern is JSON")
    }
}

/// Does `record` pass an EventBridge-style pattern of exact values, as
/// Lambda's event filtering applies it (every key of the pattern present,
/// a leaf array listing the allowed values)?
fn matches(pattern: &Value, record: &Value) -> bool {
    match pattern {
        Value::Object(p) => p
            .iter()
            .all(|(k, sub)| record.get(k).is_some_and(|field| matches(sub, field))),
        Value::Array(allowed) => allowed.contains(record),
        other => other == record,
    }
}

// --- One function on the stand-in --------------------------------------------

struct Function {
    name: String,
    api: String,
    stand_in: Child,
    process: Child,
    log: PathBuf,
    http: reqwest::Client,
}

impl Function {
    fn start(template: &Template, dir: &Path, binary: &str, extra: &[(&str, &str)]) -> Self {
        let logical_id = template.logical_id(binary);
        let bootstrap = dir.join(&logical_id).join("bootstrap");
        assert!(
            bootstrap.is_file(),
            "{} is missing: run scripts/sam-build.sh first",
            bootstrap.display()
        );
        let mut stand_in = Command::new("python3")
            .arg(repo_root().join("scripts/lib/lambda_runtime_api.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the Runtime API stand-in (python3)");
        let mut first = String::new();
        BufReader::new(stand_in.stdout.as_mut().expect("stdout"))
            .read_line(&mut first)
            .expect("the stand-in prints its address");
        let api = first.trim().to_owned();
        assert!(api.starts_with("127.0.0.1:"), "stand-in said {first:?}");

        let log =
            std::env::temp_dir().join(format!("lambda-runtime-{binary}-{}.log", ulid::Ulid::new()));
        let out = std::fs::File::create(&log).expect("log file");
        let home = std::env::temp_dir().join(format!("lambda-home-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&home).expect("an empty HOME");
        let mut env = template.environment(&logical_id);
        env.insert("AWS_LAMBDA_RUNTIME_API".into(), api.clone());
        env.insert("HOME".into(), home.display().to_string());
        for (k, v) in extra {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        let process = Command::new(&bootstrap)
            .env_clear()
            .envs(&env)
            .current_dir(&home)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bootstrap.display()));
        Self {
            name: binary.to_owned(),
            api,
            stand_in,
            process,
            log,
            http: reqwest::Client::new(),
        }
    }

    fn output(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Invokes the function with `event`; its answer (the function's error
    /// or its death fail the test, with its output).
    async fn invoke(&mut self, event: &Value) -> Value {
        let url = format!(
            "http://{}/2015-03-31/functions/function/invocations",
            self.api
        );
        let call = self
            .http
            .post(&url)
            .json(event)
            .timeout(Duration::from_secs(90))
            .send();
        tokio::pin!(call);
        let resp = loop {
            tokio::select! {
                r = &mut call => break r.unwrap_or_else(|e| panic!("{}: invoke: {e}", self.name)),
                () = tokio::time::sleep(Duration::from_millis(100)) => {
                    if let Some(status) = self.process.try_wait().expect("wait") {
                        panic!("{} exited ({status}) during the invocation:\n{}", self.name, self.output());
                    }
                }
            }
        };
        let failed = resp.headers().contains_key("x-amz-function-error");
        let status = resp.status();
        let body = resp.text().await.expect("the answer");
        assert!(
            status == 200 && !failed,
            "{} failed ({status}): {body}\n--- its output ---\n{}",
            self.name,
            self.output()
        );
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("{}: not JSON: {body}", self.name))
    }

    /// An API Gateway event's answer: (status, JSON body).
    async fn http(&mut self, event: &Value) -> (u16, Value) {
        let answer = self.invoke(event).await;
        let status = answer["statusCode"].as_u64().expect("statusCode") as u16;
        assert!(
            status < 500,
            "{} answered {status}: {answer}\n--- its output ---\n{}",
            self.name,
            self.output()
        );
        let body = answer["body"].as_str().unwrap_or("");
        let body = if answer["isBase64Encoded"] == true {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(body)
                .expect("base64 body");
            String::from_utf8(bytes).expect("UTF-8 body")
        } else {
            body.to_owned()
        };
        (
            status,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        drop(self.stand_in.stdin.take()); // the stand-in exits when its stdin closes
        let _ = self.stand_in.kill();
        let _ = self.stand_in.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

// --- Events ------------------------------------------------------------------

fn event(function: &str) -> Value {
    let path = repo_root().join(format!("events/{function}.json"));
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("an event is JSON")
}

/// `event` with each placeholder replaced, everywhere it occurs.
fn substitute(event: &Value, pairs: &[(&str, &str)]) -> Value {
    let mut text = event.to_string();
    for (from, to) in pairs {
        text = text.replace(from, to);
    }
    serde_json::from_str(&text).expect("still JSON")
}

fn with_token(event: &Value, token: &str) -> Value {
    substitute(event, &[("PASTE_A_TOKEN_FROM_peak-local_token", token)])
}

/// A DynamoDB attribute as a stream record carries it.
fn stream_attr(v: &AttributeValue) -> Value {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    match v {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::B(b) => json!({ "B": b64(b.as_ref()) }),
        AttributeValue::Ss(v) => json!({ "SS": v }),
        AttributeValue::Ns(v) => json!({ "NS": v }),
        AttributeValue::Bs(v) => {
            json!({ "BS": v.iter().map(|b| b64(b.as_ref())).collect::<Vec<_>>() })
        }
        AttributeValue::L(v) => json!({ "L": v.iter().map(stream_attr).collect::<Vec<_>>() }),
        AttributeValue::M(m) => {
            json!({ "M": m.iter().map(|(k, v)| (k.clone(), stream_attr(v))).collect::<serde_json::Map<_, _>>() })
        }
        other => panic!("attribute type not expected in the table: {other:?}"),
    }
}

/// The INSERT record of the table's stream (`NEW_AND_OLD_IMAGES`) for `item`.
fn insert_record(table: &str, item: &std::collections::HashMap<String, AttributeValue>) -> Value {
    let image: serde_json::Map<String, Value> = item
        .iter()
        .map(|(k, v)| (k.clone(), stream_attr(v)))
        .collect();
    let keys: serde_json::Map<String, Value> = ["PK", "SK"]
        .iter()
        .map(|k| ((*k).to_owned(), image[*k].clone()))
        .collect();
    json!({
        "eventID": ulid::Ulid::new().to_string(),
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": time::OffsetDateTime::now_utc().unix_timestamp(),
            "Keys": keys,
            "NewImage": image,
            "SequenceNumber": "100000000000000000001",
            "SizeBytes": 512,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
        "eventSourceARN": format!(
            "arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/2026-12-07T00:00:00.000"
        ),
    })
}

/// Signs an Auth0 Action delivery as Auth0 would (Standard Webhooks), with
/// the script the README gives for `sam local invoke`.
fn sign_action(event: &Value) -> Value {
    let file = std::env::temp_dir().join(format!("lambda-action-{}.json", ulid::Ulid::new()));
    std::fs::write(&file, event.to_string()).expect("write the delivery");
    let out = Command::new("python3")
        .arg(repo_root().join("scripts/sign-webhook-event.py"))
        .arg(&file)
        .arg(WEBHOOK_SECRET)
        .output()
        .expect("python3 scripts/sign-webhook-event.py");
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a signed event")
}

fn rfc3339_now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

// --- Stand-ins of the rest ---------------------------------------------------

/// An identity provider whose issuer is a loopback server of its JWKS
/// (at `/.well-known/jwks.json`, where the functions look by default).
async fn identity_provider() -> DevIdentityProvider {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let issuer = format!("http://{}/", listener.local_addr().expect("address"));
    let idp = DevIdentityProvider::generate(&issuer, AUDIENCE).expect("a signing key");
    let jwks = serde_json::to_value(idp.jwks()).expect("JWKS as JSON");
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    idp
}

/// One request of moto's AWS JSON protocol (moto checks no signature).
async fn moto_json(moto: &str, service: &str, target: &str, body: Value) -> Value {
    let resp = reqwest::Client::new()
        .post(format!("{moto}/"))
        .header("x-amz-target", target)
        .header("content-type", "application/x-amz-json-1.1")
        .header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, \
                 SignedHeaders=host, Signature=0"
            ),
        )
        .body(body.to_string())
        .send()
        .await
        .expect("moto");
    let status = resp.status();
    let body: Value = resp.json().await.expect("moto answers JSON");
    assert!(status.is_success(), "moto {target}: {status} {body}");
    body
}

async fn messages_to(moto: &str, to: &str) -> Vec<Value> {
    let data: Value = reqwest::get(format!("{moto}/moto-api/data.json"))
        .await
        .expect("moto data")
        .json()
        .await
        .expect("JSON");
    data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| {
            m["destinations"]["ToAddresses"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == to))
        })
        .collect()
}

// --- The test ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_functions_answer_their_sample_events_on_the_runtime_api() {
    // The test's own logs (the store's errors included) show on failure.
    peak_api::telemetry::init_for_tests();
    let dir = artefacts();
    stand_in(
        "DYNAMODB_ENDPOINT",
        "DynamoDB Local",
        "scripts/dynamodb-local.sh",
    );
    let moto = stand_in("SES_ENDPOINT", "moto", "scripts/moto.sh");
    let dynamodb = std::env::var("DYNAMODB_ENDPOINT").expect("checked");

    // The table, the tenant and its admin.
    let client = peak_store_dynamodb::client_from_env().await;
    let table = format!("lambda-{}", ulid::Ulid::new());
    peak_store_dynamodb::create_table(&client, &table)
        .await
        .expect("create the table in DynamoDB Local");
    let stores = peak_local::Stores::from(peak_store_dynamodb::DynamoStore::new(
        client.clone(),
        table.clone(),
    ));
    let tenant = format!("t{}", ulid::Ulid::new()).to_lowercase();
    let admin = peak_local::seed_admin(&stores, &tenant, "auth0|admin", "admin@tenant.example")
        .await
        .expect("seed the tenant's admin");
    // The accounts the sample events name: invites and edits refuse an
    // account the directory does not hold.
    peak_local::seed_accounts(
        &stores,
        &tenant,
        &[
            ("ACME", "Acme", None),
            ("ACME-EU", "Acme Europe", Some("ACME")),
        ],
    )
    .await
    .expect("seed the sample events' accounts");
    let tenant_id = peak_domain::TenantId::parse(&tenant).expect("tenant id");
    let standard = stores
        .profiles
        .list_profiles(&tenant_id, &PageRequest::first(10))
        .await
        .expect("profiles")
        .items
        .into_iter()
        .find(|p| p.name.as_str() == "Standard")
        .expect("the seeded Standard profile");

    // Auth0: the fake, its client secret and the webhook secrets in moto's
    // Secrets Manager under the name the template passes; the JWKS the
    // functions verify tokens with, at the issuer.
    let auth0 = FakeAuth0::start().await;
    let secret_id = format!("peak-users/lambda-test-{}", ulid::Ulid::new());
    moto_json(
        &moto,
        "secretsmanager",
        "secretsmanager.CreateSecret",
        json!({
            "Name": secret_id,
            "SecretString": json!({
                "client_secret": auth0.config().client_secret,
                "webhook_secrets": WEBHOOK_SECRET,
                "event_stream_tokens": STREAM_TOKEN,
            }).to_string(),
        }),
    )
    .await;
    let idp = identity_provider().await;
    let token = |subject: &str, role: &str| {
        idp.token_for(subject, &tenant, role, Duration::from_secs(600))
            .expect("sign a token")
    };
    let admin_token = token("auth0|admin", "admin");

    // SES in moto sends only from a verified identity (the brand's sender).
    peak_mailer::SesSender::from_env()
        .await
        .client()
        .create_email_identity()
        .email_identity(SENDER)
        .send()
        .await
        .expect("the sender's identity in moto");

    let auth0_url = auth0.config().base_url;
    let brands = json!({ "default": {
        "name": "Lambda Test Portal",
        "sender": format!("Lambda Test Portal <{SENDER}>"),
        "portal_url": "https://portal.lambda-test.example",
    }})
    .to_string();
    let template = Template::load(
        BTreeMap::from([
            ("Stage", "lambdatest".to_owned()),
            ("Auth0Issuer", idp.issuer().to_owned()),
            ("Auth0Audience", AUDIENCE.to_owned()),
            ("Auth0Domain", auth0_url.clone()),
            ("Auth0ClientId", auth0.config().client_id),
            ("Auth0SecretId", secret_id.clone()),
            ("PublicApiUrl", "https://api.lambda-test.example".to_owned()),
            ("PortalUrl", "https://portal.lambda-test.example".to_owned()),
            ("EmailBrands", brands),
        ]),
        table.clone(),
    );
    // Not in the template: where the AWS services' stand-ins are (in AWS the
    // SDKs find the real ones from the region).
    let endpoints = [
        ("DYNAMODB_ENDPOINT", dynamodb.as_str()),
        ("SES_ENDPOINT", moto.as_str()),
        ("SECRETS_MANAGER_ENDPOINT", moto.as_str()),
    ];
    let start = |binary: &str| Function::start(&template, &dir, binary, &endpoints);

    // user-get: the admin reads their own user; without a token, 401.
    let mut user_get = start("user-get");
    let get = |id: &str, bearer: &str| {
        with_token(
            &substitute(&event("user-get"), &[("01JDPEAKSAMP1EVSER000000AB", id)]),
            bearer,
        )
    };
    let (status, body) = user_get.http(&get(admin.id.as_str(), &admin_token)).await;
    assert_eq!(status, 200, "user-get: {body}");
    assert_eq!(body["id"], admin.id.as_str());
    assert_eq!(body["email"], "admin@tenant.example");
    assert_eq!(body["role"], "admin");
    let (status, body) = user_get.http(&get(admin.id.as_str(), "not-a-token")).await;
    assert_eq!(status, 401, "user-get without a valid token: {body}");

    // user-invite: the sample invitation, in the admin's tenant; the user and
    // their invitation email are in the table.
    let mut user_invite = start("user-invite");
    let invite = with_token(
        &substitute(
            &event("user-invite"),
            &[("01JDPEAKSAMP1E0000000000AB", standard.id.as_str())],
        ),
        &admin_token,
    );
    let (status, invited) = user_invite.http(&invite).await;
    assert_eq!(status, 201, "user-invite: {invited}");
    assert_eq!(invited["email"], "jane.doe@acme.example");
    assert_eq!(invited["status"], "invited");
    let jane_id = invited["id"]
        .as_str()
        .expect("the new user's id")
        .to_owned();
    let (status, body) = user_get.http(&get(&jane_id, &admin_token)).await;
    assert_eq!(
        (status, &body["status"]),
        (200, &json!("invited")),
        "{body}"
    );

    // mailer: the stream record of the outbox item the invite wrote, as the
    // template's filter lets it through; the email goes out through moto.
    let items = client
        .scan()
        .table_name(&table)
        .filter_expression("entity = :outbox")
        .expression_attribute_values(":outbox", AttributeValue::S("outbox".into()))
        .send()
        .await
        .expect("scan the table")
        .items
        .unwrap_or_default();
    assert_eq!(items.len(), 1, "one email owed: the invitation");
    let record = insert_record(&table, &items[0]);
    assert!(
        matches(&template.mailer_filter(), &record),
        "the template's filter would not pass {record}"
    );
    // (moto outlives a run: count only what this run sends.)
    let before = messages_to(&moto, "jane.doe@acme.example").await.len();
    let mut mailer = start("mailer");
    let answer = mailer.invoke(&json!({ "Records": [record] })).await;
    assert_eq!(answer["batchItemFailures"], json!([]), "mailer: {answer}");
    let sent = messages_to(&moto, "jane.doe@acme.example").await;
    assert_eq!(
        sent.len(),
        before + 1,
        "one message to the invitee: {sent:?}"
    );
    let text = sent[before].to_string();
    let prefix = "https://api.lambda-test.example/invitations/";
    let start_at = text
        .find(prefix)
        .expect("the invitation link is in the message");
    let invitation: String = text[start_at + prefix.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "-_".contains(*c))
        .collect();
    assert!(!invitation.is_empty(), "a token in the link");
    let pending = stores
        .users
        .pending_outbox(100, time::OffsetDateTime::now_utc())
        .await
        .expect("the outbox");
    assert!(
        pending.is_empty(),
        "the email is no longer owed: {pending:?}"
    );

    // invitation-accept: the link's token; the login is created in (fake)
    // Auth0 and the answer is where to set the password.
    let mut accept = start("invitation-accept");
    let accept_event = substitute(
        &event("invitation-accept"),
        &[("PASTE_THE_TOKEN_FROM_AN_INVITATION_LINK", &invitation)],
    );
    let (status, body) = accept.http(&accept_event).await;
    assert_eq!(status, 200, "invitation-accept: {body}");
    let setup = body["password_setup_url"]
        .as_str()
        .expect("password_setup_url");
    assert!(
        setup.starts_with(&auth0_url),
        "a ticket of the fake Auth0: {setup}"
    );
    let login = auth0
        .user_by_email("jane.doe@acme.example")
        .expect("a login in Auth0");
    assert_eq!(login.app_metadata["tenant"], tenant.as_str());

    // auth0-webhook: Auth0's Action after the password is set (signed with
    // the secret read from Secrets Manager) activates the user; then the
    // sample Event Streams delivery (a dashboard block, bearer token from
    // the secret) suspends them.
    let mut webhook = start("auth0-webhook");
    let mut action = event("auth0/password-changed");
    let mut delivery: Value =
        serde_json::from_str(action["body"].as_str().expect("body")).expect("JSON body");
    delivery["data"]["user_id"] = json!(login.user_id);
    delivery["time"] = json!(rfc3339_now());
    action["body"] = json!(delivery.to_string());
    let (status, body) = webhook.http(&sign_action(&action)).await;
    assert_eq!(
        (status, &body["status"]),
        (200, &json!("applied")),
        "{body}"
    );
    let (_, body) = user_get.http(&get(&jane_id, &admin_token)).await;
    assert_eq!(
        body["status"], "active",
        "after the password was set: {body}"
    );

    let mut block = event("auth0-webhook");
    let mut cloud_event: Value =
        serde_json::from_str(block["body"].as_str().expect("body")).expect("JSON body");
    cloud_event["id"] = json!(format!("evt_{}", ulid::Ulid::new()));
    cloud_event["time"] = json!(rfc3339_now());
    cloud_event["data"]["object"]["user_id"] = json!(login.user_id);
    cloud_event["data"]["object"]["app_metadata"]["tenant"] = json!(tenant);
    block["body"] = json!(cloud_event.to_string());
    let block = substitute(
        &block,
        &[(
            "SAMPLE_EVENT_STREAM_TOKEN_set_AUTH0_EVENT_STREAM_TOKENS_to_it",
            STREAM_TOKEN,
        )],
    );
    let (status, body) = webhook.http(&block).await;
    assert_eq!(
        (status, &body["status"]),
        (200, &json!("applied")),
        "{body}"
    );
    let (_, body) = user_get.http(&get(&jane_id, &admin_token)).await;
    assert_eq!(
        body["status"], "suspended",
        "after the block in Auth0: {body}"
    );

    // A delivery without the token changes nothing.
    let unsigned = substitute(&block, &[(STREAM_TOKEN, "wrong-token-0123456789")]);
    let (status, _) = webhook.http(&unsigned).await;
    assert_eq!(status, 401, "a delivery with a wrong token is refused");

    drop((user_get, user_invite, mailer, accept, webhook));
    auth0.stop().await;
}
