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
    parse_if_match(
        req.headers()
            .get(header::IF_MATCH)
            .and_then(|v| v.to_str().ok()),
    )
}

/// An `If-Match` value (a header, or a batch operation's `if_match`).
pub fn parse_if_match(raw: Option<&str>) -> IfMatch {
    let Some(raw) = raw else {
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

/// Whether the client prefers an HTML page to JSON: `text/html` ranks
/// strictly higher in `Accept` than `application/json` does (a browser's
/// navigation: `text/html,…,*/*;q=0.8`). No `Accept`, `*/*` (curl) or a
/// tie answers JSON, the API's default.
pub fn wants_html(req: &Request) -> bool {
    let accept = req
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    accept_quality(&accept, "text", "html") > accept_quality(&accept, "application", "json")
}

/// The quality `accept` gives `kind/sub`: that of its most specific
/// matching range (RFC 9110 §12.5.1), 0 when none matches.
fn accept_quality(accept: &str, kind: &str, sub: &str) -> f32 {
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let Some((k, s)) = parts.next().and_then(|m| m.trim().split_once('/')) else {
            continue;
        };
        let specificity = match (k.trim(), s.trim()) {
            ("*", "*") => 0,
            (k, "*") if k.eq_ignore_ascii_case(kind) => 1,
            (k, s) if k.eq_ignore_ascii_case(kind) && s.eq_ignore_ascii_case(sub) => 2,
            _ => continue,
        };
        let q = parts
            .filter_map(|p| p.trim().split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
            .and_then(|(_, v)| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0)
            .clamp(0.0, 1.0);
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, q));
        }
    }
    best.map_or(0.0, |(_, q)| q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepting(accept: Option<&str>) -> Request {
        let mut b = http::Request::builder().uri("/invitations/x");
        if let Some(a) = accept {
            b = b.header(header::ACCEPT, a);
        }
        b.body(Body::Empty).expect("request")
    }

    #[test]
    fn browsers_get_html_and_api_clients_json() {
        let html = |a| wants_html(&accepting(a));
        // Chromium's and Firefox's navigation Accept headers.
        assert!(html(Some(
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
        )));
        assert!(html(Some(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        )));
        assert!(!html(None), "no Accept: JSON");
        assert!(!html(Some("*/*")), "curl: JSON");
        assert!(!html(Some("application/json")));
        assert!(!html(Some("text/html, application/json")), "a tie: JSON");
        assert!(!html(Some("text/html;q=0.5, application/json")));
        assert!(html(Some("text/html, application/json;q=0.9")));
        assert!(!html(Some("text/html;q=0")));
        assert!(html(Some("text/*")));
    }
}
