//! The OpenAPI 3.1 document, generated from the code: paths and methods
//! from the route table, bodies and responses from the Rust types (via
//! schemars). Served at `GET /openapi.json` and checked in at
//! `docs/openapi.json`; tests keep both equal to the routes and the SAM
//! template.

use crate::routes::{ROUTES, Route, RouteSpec};
use crate::views::{PageView, ProfileSummary, ProfileView, UserView};
use peak_domain::audit::AuditEvent;
use peak_domain::catalogue::Catalogue;
use peak_domain::permissions::EffectivePermissions;
use peak_domain::profile::{NewProfile, ProfilePatch};
use peak_domain::users::{InviteRequest, SelfPatch, UserPatch};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

/// What the route table does not say: summary, body, success answer.
struct Operation {
    summary: &'static str,
    request: Option<Value>,
    status: &'static str,
    response: Option<Value>,
    query: &'static [(&'static str, &'static str)],
}

const PAGE: &[(&str, &str)] = &[
    ("limit", "1 to 100 items (default 25)"),
    ("cursor", "the `next_cursor` of the previous page"),
];
const USER_FILTERS: &[(&str, &str)] = &[
    ("limit", "1 to 100 items (default 25)"),
    ("cursor", "the `next_cursor` of the previous page"),
    ("status", "invited, active or suspended"),
    ("role", "admin, sales_rep, partner or customer"),
    ("profile", "a profile id"),
    (
        "account",
        "a customer account number (required for non-admins with several accounts)",
    ),
    ("q", "prefix of \"last first\" name, case-insensitive"),
    (
        "email",
        "prefix of the email address, case-insensitive (orders by email)",
    ),
];

#[derive(JsonSchema)]
#[allow(dead_code)] // a schema only
struct UserPage {
    items: Vec<UserView<'static>>,
    next_cursor: Option<String>,
}

#[derive(JsonSchema)]
#[allow(dead_code)]
struct MeView {
    #[serde(flatten)]
    user: UserView<'static>,
    permissions: EffectivePermissions,
}

#[derive(JsonSchema)]
#[allow(dead_code)]
struct PasswordResetRequest {
    tenant: String,
    email: String,
}

fn operation(route: Route, g: &mut SchemaGenerator) -> Operation {
    let mut schema = |f: fn(&mut SchemaGenerator) -> schemars::Schema| Some(f(g).to_value());
    let none: &[(&str, &str)] = &[];
    let op = |summary, request, status, response, query| Operation {
        summary,
        request,
        status,
        response,
        query,
    };
    match route {
        Route::GetCatalogue => op(
            "The seven tabs of profile settings and the extension groups",
            None,
            "200",
            schema(|g| g.subschema_for::<Catalogue>()),
            none,
        ),
        Route::ListProfiles => op(
            "A page of the tenant's profiles",
            None,
            "200",
            schema(|g| g.subschema_for::<PageView<ProfileSummary<'static>>>()),
            PAGE,
        ),
        Route::CreateProfile => op(
            "Create a profile (a name is enough)",
            schema(|g| g.subschema_for::<NewProfile>()),
            "201",
            schema(|g| g.subschema_for::<ProfileView<'static>>()),
            none,
        ),
        Route::GetProfile => op(
            "One profile, with its settings laid out as tabs",
            None,
            "200",
            schema(|g| g.subschema_for::<ProfileView<'static>>()),
            none,
        ),
        Route::UpdateProfile => op(
            "Edit a profile (If-Match required)",
            schema(|g| g.subschema_for::<ProfilePatch>()),
            "200",
            schema(|g| g.subschema_for::<ProfileView<'static>>()),
            none,
        ),
        Route::DeleteProfile => op("Delete a profile no user holds", None, "204", None, none),
        Route::ListUsers => op(
            "List and search users",
            None,
            "200",
            schema(|g| g.subschema_for::<UserPage>()),
            USER_FILTERS,
        ),
        Route::InviteUser => op(
            "Invite a user (Idempotency-Key honoured)",
            schema(|g| g.subschema_for::<InviteRequest>()),
            "201",
            schema(|g| g.subschema_for::<UserView<'static>>()),
            none,
        ),
        Route::GetUser => op(
            "One user",
            None,
            "200",
            schema(|g| g.subschema_for::<UserView<'static>>()),
            none,
        ),
        Route::UpdateUser => op(
            "Edit a user (If-Match required)",
            schema(|g| g.subschema_for::<UserPatch>()),
            "200",
            schema(|g| g.subschema_for::<UserView<'static>>()),
            none,
        ),
        Route::DeleteUser => op(
            "Delete a user and their personal data",
            None,
            "204",
            None,
            none,
        ),
        Route::SuspendUser => op(
            "Suspend a user",
            None,
            "200",
            schema(|g| g.subschema_for::<UserView<'static>>()),
            none,
        ),
        Route::EnableUser => op(
            "Enable a suspended user",
            None,
            "200",
            schema(|g| g.subschema_for::<UserView<'static>>()),
            none,
        ),
        Route::ResetUserPassword => op(
            "Email the user a password-change link",
            None,
            "202",
            None,
            none,
        ),
        Route::ResendInvitation => op(
            "Resend an invitation (the old link stops working)",
            None,
            "200",
            schema(|g| g.subschema_for::<UserView<'static>>()),
            none,
        ),
        Route::RevokeInvitation => op(
            "Revoke an invitation",
            None,
            "200",
            schema(|g| g.subschema_for::<UserView<'static>>()),
            none,
        ),
        Route::UserAudit => op(
            "A user's audit trail, newest first",
            None,
            "200",
            schema(|g| g.subschema_for::<PageView<AuditEvent>>()),
            PAGE,
        ),
        Route::TenantAudit => op(
            "The tenant's recent audit events, newest first",
            None,
            "200",
            schema(|g| g.subschema_for::<PageView<AuditEvent>>()),
            PAGE,
        ),
        Route::GetSettings => op(
            "The tenant's settings (admins; 404 for a tenant configured by deployment only)",
            None,
            "200",
            schema(|g| g.subschema_for::<crate::handlers::settings::SettingsView<'static>>()),
            none,
        ),
        Route::UpdateSettings => op(
            "Change the tenant's settings (admins, If-Match required; audited)",
            schema(|g| g.subschema_for::<peak_domain::tenant::SettingsPatch>()),
            "200",
            schema(|g| g.subschema_for::<crate::handlers::settings::SettingsView<'static>>()),
            none,
        ),
        Route::GetMe => op(
            "The signed-in user and their effective permissions",
            None,
            "200",
            schema(|g| g.subschema_for::<MeView>()),
            none,
        ),
        Route::UpdateMe => op(
            "Change one's own name or login email (If-Match required)",
            schema(|g| g.subschema_for::<SelfPatch>()),
            "200",
            schema(|g| g.subschema_for::<UserView<'static>>()),
            none,
        ),
        Route::ResetMyPassword => op(
            "Email oneself a password-change link",
            None,
            "202",
            None,
            none,
        ),
        Route::ViewInvitation => op(
            "What an invitation link shows, never consuming it: an HTML page to a browser (Accept: text/html), JSON otherwise",
            None,
            "200",
            None,
            none,
        ),
        Route::AcceptInvitation => op(
            "Accept an invitation: where to set the password, as JSON, or as 303 See Other to a browser's form post",
            None,
            "200",
            None,
            none,
        ),
        Route::ViewEmailVerification => op(
            "What an email-verification link shows, never consuming it: an HTML page to a browser, JSON otherwise",
            None,
            "200",
            None,
            none,
        ),
        Route::ConfirmEmailVerification => op(
            "Make the new address the login email: the user as JSON, or an HTML done page to a browser's form post",
            None,
            "200",
            schema(|g| g.subschema_for::<UserView<'static>>()),
            none,
        ),
        Route::RequestPasswordReset => op(
            "Signed-out password reset (same answer whether or not the address exists)",
            schema(|g| g.subschema_for::<PasswordResetRequest>()),
            "202",
            None,
            none,
        ),
        Route::BulkInviteTemplate => op(
            "The CSV template for bulk invites (header and one example row)",
            None,
            "200",
            None,
            none,
        ),
        Route::CreateBulkUpload => op(
            "A presigned URL to PUT a large bulk-invite file to (AWS); then POST /bulk-invites?upload_id=…",
            None,
            "201",
            None,
            none,
        ),
        Route::CreateBulkInvite => op(
            "Upload a .csv or .xlsx of people to invite: ?dry_run=true reports every row and writes nothing; otherwise 202 with a job",
            None,
            "202",
            schema(|g| g.subschema_for::<crate::handlers::bulk::JobView>()),
            &[
                ("dry_run", "true: check and report only"),
                ("file_name", "the uploaded file's name"),
            ],
        ),
        Route::GetBulkInvite => op(
            "A bulk invite's status, counts and progress",
            None,
            "200",
            schema(|g| g.subschema_for::<crate::handlers::bulk::JobView>()),
            none,
        ),
        Route::BulkInviteReport => op(
            "A finished bulk invite's report (CSV: row, email, outcome, column, code, reason)",
            None,
            "200",
            None,
            none,
        ),
        Route::Auth0Webhook => op(
            "Auth0 deliveries: Actions signed in the Standard Webhooks scheme, or Event Streams CloudEvents with a bearer token",
            None,
            "200",
            None,
            none,
        ),
        Route::OpenApi => op("This document", None, "200", None, none),
    }
}

fn path_parameters(spec: &RouteSpec) -> Vec<Value> {
    spec.path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect()
}

/// The whole document.
pub fn document() -> Value {
    let settings = SchemaSettings::draft2020_12().with(|s| {
        s.definitions_path = "/components/schemas".into();
    });
    let mut g = settings.into_generator();
    let mut paths = Map::new();
    for spec in ROUTES {
        let op = operation(spec.route, &mut g);
        let mut parameters = path_parameters(spec);
        for (name, description) in op.query {
            parameters.push(json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": "string"}}));
        }
        if spec.method == http::Method::PATCH {
            parameters.push(json!({"name": "If-Match", "in": "header", "required": true, "description": "the ETag you read", "schema": {"type": "string"}}));
        }
        if spec.idempotent {
            parameters.push(json!({"name": "Idempotency-Key", "in": "header", "required": false, "description": "retries with the same key return the first answer", "schema": {"type": "string"}}));
        }
        let mut success = json!({"description": op.summary});
        if let Some(schema) = op.response {
            success["content"] = json!({"application/json": {"schema": schema}});
        }
        let mut operation = json!({
            "operationId": spec.function,
            "summary": op.summary,
            "x-lambda-function": spec.function,
            "parameters": parameters,
            "responses": {
                op.status: success,
                "default": {"$ref": "#/components/responses/Problem"},
            },
            "security": if spec.authenticated { json!([{"auth0": []}]) } else { json!([]) },
        });
        if let Some(schema) = op.request {
            operation["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": schema}}});
        }
        let entry = paths
            .entry(spec.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[spec.method.as_str().to_lowercase()] = operation;
    }
    g.subschema_for::<peak_domain::FieldError>();
    let mut schemas: Map<String, Value> = g.take_definitions(true).into_iter().collect();
    schemas.insert("Problem".into(), problem_schema());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "peak-users",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "User administration for PeakCommerce customer portals. Errors are RFC 9457 problem+json with a stable `code`.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"auth0": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": schemas,
            "responses": {"Problem": {
                "description": "An error (RFC 9457)",
                "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
            }},
        },
    })
}

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "required": ["type", "title", "status", "detail", "code", "request_id"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "code": {"type": "string", "description": "stable, for programs to switch on"},
            "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
            "request_id": {"type": "string"},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    const CHECKED_IN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");

    /// `docs/openapi.json` is what the code generates. After changing a
    /// route or a type, refresh it with
    /// `UPDATE_OPENAPI=1 cargo test -p peak-api openapi`.
    #[test]
    fn checked_in_document_is_current() {
        let generated = serde_json::to_string_pretty(&document()).unwrap() + "\n";
        if std::env::var("UPDATE_OPENAPI").is_ok() {
            std::fs::write(CHECKED_IN, &generated).unwrap();
        }
        let on_disk = std::fs::read_to_string(CHECKED_IN).unwrap_or_default();
        assert!(
            on_disk == generated,
            "docs/openapi.json is stale: run UPDATE_OPENAPI=1 cargo test -p peak-api openapi"
        );
    }

    #[test]
    fn every_route_is_documented_and_nothing_else() {
        let doc = document();
        let mut documented = BTreeSet::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for method in ops.as_object().unwrap().keys() {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
        let served: BTreeSet<_> = ROUTES
            .iter()
            .map(|r| (r.method.to_string(), r.path.to_owned()))
            .collect();
        assert_eq!(documented, served);
        assert_eq!(doc["openapi"], "3.1.0");
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(schemas.contains_key(name), "dangling $ref to {name}");
        }
        let invite =
            &doc["paths"]["/users"]["post"]["requestBody"]["content"]["application/json"]["schema"];
        let name = invite["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
        let required = schemas[name]["required"].as_array().unwrap();
        assert!(required.contains(&json!("email")) && required.contains(&json!("profile_id")));
        assert_eq!(
            doc["paths"]["/invitations/{token}"]["get"]["security"],
            json!([])
        );
        assert_eq!(
            doc["paths"]["/users"]["get"]["security"],
            json!([{"auth0": []}])
        );
    }
}
