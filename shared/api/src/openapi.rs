//! The OpenAPI 3.1 document, generated from the operations
//! (`operations::OPERATIONS`): paths, methods, summaries, query parameters,
//! and bodies and answers from the Rust types the handlers read and write
//! (via schemars). Served at `GET /openapi.json` and checked in at
//! `docs/openapi.json` (written by `cargo xtask`).

use crate::operations::OPERATIONS;
use crate::operations::Op;
use crate::spec::{Access, Method, QueryParam, QueryType, RequestBody};
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

fn path_parameters(op: &Op) -> Vec<Value> {
    op.path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect()
}

fn query_schema(q: &QueryParam) -> Value {
    let mut schema = match q.kind {
        QueryType::String => json!({"type": "string"}),
        QueryType::Integer { min, max } => {
            json!({"type": "integer", "minimum": min, "maximum": max})
        }
        QueryType::Boolean => json!({"type": "boolean"}),
    };
    if let Some(min) = q.min_length {
        schema["minLength"] = json!(min);
    }
    if let Some(max) = q.max_length {
        schema["maxLength"] = json!(max);
    }
    if !q.one_of.is_empty() {
        schema["enum"] = json!(q.one_of);
    }
    schema
}

/// The document as served: the checked-in `docs/openapi.json`, which
/// `cargo xtask` writes from [`document`] and its drift test holds equal to
/// it. Served as text so that the `openapi` function links neither the
/// operations table nor schemars (about 60 KB of its artefact, which had
/// grown past the 5 MB target).
pub const SERVED: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/openapi.json"
));

/// The whole document.
pub fn document() -> Value {
    let settings = SchemaSettings::draft2020_12().with(|s| {
        s.definitions_path = "/components/schemas".into();
    });
    let mut g = settings.into_generator();
    let mut paths = Map::new();
    for op in OPERATIONS {
        let spec = op;
        let mut parameters = path_parameters(op);
        for q in op.query {
            parameters.push(json!({"name": q.name, "in": "query", "required": false, "description": q.description, "schema": query_schema(q)}));
        }
        if spec.method == Method::Patch {
            parameters.push(json!({"name": "If-Match", "in": "header", "required": true, "description": "the ETag you read (a quoted version: `*` names none, and an edit needs one)", "schema": {"type": "string", "pattern": "^\"[0-9]+\"$"}}));
        }
        if spec.idempotent {
            parameters.push(json!({"name": "Idempotency-Key", "in": "header", "required": false, "description": "retries with the same key return the first answer", "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]+$"}}));
        }
        let mut success = json!({"description": op.summary});
        if let Some(schema) = op.answer {
            success["content"] = json!({"application/json": {"schema": schema(&mut g).to_value()}});
        }
        let mut operation = json!({
            "operationId": spec.function,
            "summary": op.summary,
            "x-lambda-function": spec.function,
            "parameters": parameters,
            "responses": {
                op.status.to_string(): success,
                "default": {"$ref": "#/components/responses/Problem"},
            },
            "security": if op.access == Access::SignedIn { json!([{"auth0": []}]) } else { json!([]) },
        });
        match op.request {
            RequestBody::None => {}
            RequestBody::Json(schema) => {
                operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": schema(&mut g).to_value()}}});
            }
            RequestBody::File => {
                operation["requestBody"] = json!({
                    "required": true,
                    "description": "the file: CSV (header row first) or Excel",
                    "content": {
                        "text/csv": {"schema": {"type": "string", "minLength": 1}},
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {"schema": {"type": "string", "format": "binary"}},
                    },
                });
            }
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

    #[test]
    fn every_route_is_documented_and_nothing_else() {
        let doc = document();
        let mut documented = BTreeSet::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for method in ops.as_object().unwrap().keys() {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
        let served: BTreeSet<_> = crate::ROUTES
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

#[cfg(test)]
mod served_tests {
    /// What `GET /openapi.json` answers is the document the operations
    /// give (the same check as the xtask drift test, here where the
    /// handler lives).
    #[test]
    fn the_served_text_is_the_generated_document() {
        let served: serde_json::Value = serde_json::from_str(super::SERVED).expect("JSON");
        assert_eq!(served, super::document(), "run `cargo xtask`");
    }
}
