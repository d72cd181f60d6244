//! Reading what a request carries: JSON bodies, `If-Match`, query strings,
//! bearer tokens, the request id.

use crate::problem::Problem;
use http::{HeaderValue, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt};
use peak_domain::FieldError;
use peak_domain::ports::PageRequest;
use serde::de::DeserializeOwned;
use std::collections::HashMap;

/// Largest body we parse (profiles are small; bulk uploads get their own path).
pub const MAX_JSON_BODY: usize = 256 * 1024;

/// Parses a JSON object body: 415 unless the content type is JSON, 400 for
/// syntax errors, 422 naming the field for well-formed JSON of the wrong
/// shape — including any top-level value that is not an object (serde's
/// derive would read an array positionally into the fields, so that
/// `["x"]` created a profile named "x" and `[null, null]` was an edit).
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, Problem> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            let essence = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            essence == "application/json"
                || (essence.starts_with("application/") && essence.ends_with("+json"))
        })
        .unwrap_or(false);
    if !is_json {
        return Err(Problem::unsupported_media_type());
    }
    let bytes: &[u8] = match req.body() {
        Body::Empty => b"",
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => b"",
    };
    if bytes.len() > MAX_JSON_BODY {
        return Err(Problem::new(
            http::StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body must be at most {MAX_JSON_BODY} bytes"),
        ));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::malformed_json(
            "the body is empty; send a JSON object",
        ));
    }
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        // Still 400 when it is not JSON at all.
        serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
            .map_err(|e| Problem::malformed_json(format!("the body is not valid JSON: {e}")))?;
        return Err(Problem::invalid_fields(vec![FieldError::new(
            "body",
            "must be a JSON object",
        )]));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => v,
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            return Err(if inner.is_data() {
                let field = if path == "." { "body".to_owned() } else { path };
                Problem::invalid_fields(vec![FieldError::new(
                    field,
                    strip_position(&inner.to_string()),
                )])
            } else {
                Problem::malformed_json(format!("the body is not valid JSON: {inner}"))
            });
        }
    };
    de.end()
        .map_err(|e| Problem::malformed_json(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// serde_json appends " at line 1 column 9"; the field name says enough.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// The precondition an `If-Match` header sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMatch {
    /// No header (or `*`): no version named.
    Absent,
    Version(u64),
    /// A header that names no version we ever issued: can never match.
    Unmatchable,
}

impl IfMatch {
    /// As the domain takes it: `Some(version)` to compare, `Some(0)` for a
    /// value that matches nothing (versions start at 1).
    pub fn as_version(self) -> Option<u64> {
        match self {
            IfMatch::Absent => None,
            IfMatch::Version(v) => Some(v),
            IfMatch::Unmatchable => Some(0),
        }
    }
}

pub fn if_match(req: &Request) -> IfMatch {
    let Some(raw) = req
        .headers()
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return IfMatch::Absent;
    };
    let raw = raw.trim();
    if raw == "*" {
        return IfMatch::Absent;
    }
    raw.strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .and_then(|v| v.parse().ok())
        .map(IfMatch::Version)
        .unwrap_or(IfMatch::Unmatchable)
}

/// Our ETags are the strong, quoted version number.
pub fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

pub fn query(req: &Request) -> HashMap<String, String> {
    form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// `?limit=&cursor=`; a limit that is not a number is a 422 naming it.
pub fn page_request(req: &Request) -> Result<PageRequest, Problem> {
    let q = query(req);
    let limit = match q.get("limit") {
        None => None,
        Some(l) => Some(l.parse::<u32>().map_err(|_| {
            Problem::invalid_fields(vec![FieldError::new("limit", "must be a whole number")])
        })?),
    };
    PageRequest::new(limit, q.get("cursor").cloned()).map_err(Problem::from)
}

pub fn bearer_token(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The path as the client sent it (API Gateway's raw path when present).
pub fn path(req: &Request) -> String {
    let raw = req.raw_http_path();
    if raw.is_empty() {
        req.uri().path().to_owned()
    } else {
        raw.to_owned()
    }
}

/// API Gateway's request id; else a client-sent `x-request-id` if it is
/// short and plain; else a fresh one.
pub fn request_id(req: &Request) -> String {
    if let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref()
        && let Some(id) = ctx.request_id.as_deref().filter(|id| !id.is_empty())
    {
        return id.to_owned();
    }
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| ulid::Ulid::new().to_string())
}
