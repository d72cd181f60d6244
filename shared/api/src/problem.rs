//! RFC 9457 problem details. Every error a client sees is built here, with a
//! stable `code` a frontend can switch on. Internal error text goes to the
//! log (with the request id), never to the client.

use http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use peak_domain::{Error, FieldError};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    /// Text for the log only (internal errors).
    pub internal: Option<String>,
    /// One extra response header (`Allow` for 405, `Retry-After` for 429
    /// and 503).
    pub header: Option<Box<(http::HeaderName, String)>>,
}

/// `Retry-After` of a 503: by the time a request answers 503 the SDK has
/// already retried the call (3 attempts with backoff), so the throttle or
/// outage has lasted about a second. DynamoDB's throttling (a hot partition
/// splitting, on-demand capacity doubling) and SES's per-second rate clear
/// within seconds, and a portal user is waiting: 2 s lets the burst pass
/// without making the person wait long. Clients should add jitter.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u32 = 2;

#[derive(Serialize)]
struct Body9457<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [FieldError],
    request_id: &'a str,
}

impl Problem {
    /// `title` is the status's standard reason phrase; `code` and `detail`
    /// say what went wrong.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            internal: None,
            header: None,
        }
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
    }

    pub fn malformed_json(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, "malformed_json", detail)
    }

    pub fn invalid_fields(errors: Vec<FieldError>) -> Self {
        let mut p = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "the request has invalid fields; see errors",
        );
        p.errors = errors;
        p
    }

    pub fn unsupported_media_type() -> Self {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json",
        )
    }

    pub fn route_not_found() -> Self {
        Problem::new(StatusCode::NOT_FOUND, "route_not_found", "no such route")
    }

    pub fn method_not_allowed(allow: String) -> Self {
        let mut p = Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("this route accepts: {allow}"),
        );
        p.header = Some(Box::new((header::ALLOW, allow)));
        p
    }

    /// 503 `temporarily_unavailable` with `Retry-After`: a backend (the
    /// store, the signing keys) is throttled or unreachable after the SDK's
    /// own retries. The wait is [`UNAVAILABLE_RETRY_AFTER_SECS`].
    pub fn unavailable(detail: impl Into<String>, log_text: impl Into<String>) -> Self {
        let mut p = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            detail,
        );
        p.internal = Some(log_text.into());
        p.header = Some(Box::new((
            header::RETRY_AFTER,
            UNAVAILABLE_RETRY_AFTER_SECS.to_string(),
        )));
        p
    }

    pub fn internal(log_text: impl Into<String>) -> Self {
        let mut p = Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "something went wrong on our side; quote the request id if you contact support",
        );
        p.internal = Some(log_text.into());
        p
    }

    /// The problem document a response carries (also each failed item of
    /// a batch: the same shape its single route answers).
    pub fn document(&self, request_id: &str) -> serde_json::Value {
        let body = Body9457 {
            kind: format!("urn:peak-users:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: &self.detail,
            code: self.code,
            errors: &self.errors,
            request_id,
        };
        serde_json::to_value(&body).unwrap_or_default()
    }

    pub fn into_response(self, request_id: &str) -> Response<Body> {
        let json = self.document(request_id).to_string();
        let mut resp = Response::new(Body::Text(json));
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some((name, value)) = self.header.as_deref()
            && let Ok(v) = HeaderValue::from_str(value)
        {
            h.insert(name.clone(), v);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<Error> for Problem {
    fn from(err: Error) -> Self {
        match err {
            Error::Forbidden(_) => {
                Problem::new(StatusCode::FORBIDDEN, "forbidden", err.to_string())
            }
            Error::NotFound(_) => Problem::new(StatusCode::NOT_FOUND, "not_found", err.to_string()),
            Error::AccessDenied { code, detail } => {
                Problem::new(StatusCode::FORBIDDEN, code, detail)
            }
            Error::Exceeds {
                code,
                detail,
                errors,
            } => {
                let mut p = Problem::new(StatusCode::FORBIDDEN, code, detail);
                p.errors = errors;
                p
            }
            Error::Gone { code, detail } => Problem::new(StatusCode::GONE, code, detail),
            Error::TooManyRequests { retry_after_secs } => {
                let mut p = Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_requests",
                    format!("too many requests; try again in {retry_after_secs} seconds"),
                );
                p.header = Some(Box::new((
                    header::RETRY_AFTER,
                    retry_after_secs.to_string(),
                )));
                p
            }
            Error::Conflict { code, detail } => Problem::new(StatusCode::CONFLICT, code, detail),
            Error::PreconditionFailed(_) => Problem::new(
                StatusCode::PRECONDITION_FAILED,
                "stale_version",
                err.to_string(),
            ),
            Error::PreconditionRequired(_) => Problem::new(
                StatusCode::PRECONDITION_REQUIRED,
                "if_match_required",
                err.to_string(),
            ),
            Error::Validation(errors) => Problem::invalid_fields(errors),
            Error::BadRequest { code, detail } => {
                Problem::new(StatusCode::BAD_REQUEST, code, detail)
            }
            Error::Unavailable(msg) => {
                Problem::unavailable("a backend is temporarily unavailable; retry shortly", msg)
            }
            Error::Internal(msg) => Problem::internal(msg),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unavailable_backend_is_503_with_retry_after_and_no_internal_text() {
        let resp = Problem::from(Error::Unavailable(
            "get: ProvisionedThroughputExceededException".into(),
        ))
        .into_response("req-2");
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "2");
        let Body::Text(text) = resp.body() else {
            panic!("text body")
        };
        assert!(!text.contains("ProvisionedThroughput"));
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["code"], "temporarily_unavailable");
    }

    #[test]
    fn internal_text_never_reaches_the_client() {
        let resp = Problem::from(Error::Internal("db password=hunter2 at line 3".into()))
            .into_response("req-1");
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let Body::Text(text) = resp.body() else {
            panic!("text body")
        };
        assert!(!text.contains("hunter2"));
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["code"], "internal_error");
        assert_eq!(v["request_id"], "req-1");
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }
}
