//! CORS for portal frontends: browser apps on their own origins that call
//! this API with a bearer token. In AWS the HTTP API answers preflights and
//! adds the headers itself, from `CorsConfiguration` in
//! `infra/template.yaml` (origins from the `PortalOrigins` parameter); the
//! local run answers the same way from `PORTAL_ORIGINS`, with the lists
//! below, which a template test keeps equal to the template's.
//!
//! No credentials (cookies) are allowed: portals send `Authorization`, so
//! no origin ever needs to be `*` with credentials.

use http::{HeaderName, HeaderValue, Method, header};

/// Request headers a portal may send.
pub const ALLOW_HEADERS: [&str; 4] = [
    "authorization",
    "content-type",
    "if-match",
    "idempotency-key",
];
/// Response headers a portal's script may read.
pub const EXPOSE_HEADERS: [&str; 4] = ["etag", "location", "x-request-id", "retry-after"];
/// The methods the API's routes use.
pub const ALLOW_METHODS: [&str; 5] = ["GET", "POST", "PATCH", "PUT", "DELETE"];
/// How long a browser may reuse a preflight answer.
pub const MAX_AGE_SECS: u32 = 600;

/// The origins allowed to call the API from a browser.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortalOrigins(Vec<String>);

impl PortalOrigins {
    /// `https://portal.example,http://localhost:5173`: each an origin
    /// (scheme, host, optional port; no path, no `*`). Empty: none.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut origins = Vec::new();
        for raw in list.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let rest = raw
                .strip_prefix("https://")
                .or_else(|| raw.strip_prefix("http://"))
                .ok_or_else(|| {
                    format!("portal origin `{raw}` must start with https:// or http://")
                })?;
            let (host, port) = rest.rsplit_once(':').unwrap_or((rest, "1"));
            let host_ok = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
            if !host_ok || port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "portal origin `{raw}` must be scheme://host[:port], without a path or `*`"
                ));
            }
            origins.push(raw.to_ascii_lowercase());
        }
        Ok(Self(origins))
    }

    pub fn allows(&self, origin: &str) -> bool {
        self.0.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// The answer to a preflight (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`): the CORS headers for an allowed
    /// origin, none for another (the browser then blocks the call).
    pub fn preflight(&self, origin: Option<&str>) -> Vec<(HeaderName, HeaderValue)> {
        let Some(origin) = origin.filter(|o| self.allows(o)) else {
            return vec![(header::VARY, HeaderValue::from_static("Origin"))];
        };
        let mut h = self.allow_origin(origin);
        for (name, value) in [
            (
                header::ACCESS_CONTROL_ALLOW_METHODS,
                ALLOW_METHODS.join(","),
            ),
            (
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                ALLOW_HEADERS.join(","),
            ),
            (header::ACCESS_CONTROL_MAX_AGE, MAX_AGE_SECS.to_string()),
        ] {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.push((name, v));
            }
        }
        h
    }

    /// What an actual response adds for a request from `origin`.
    pub fn response(&self, origin: Option<&str>) -> Vec<(HeaderName, HeaderValue)> {
        match origin.filter(|o| self.allows(o)) {
            Some(origin) => {
                let mut h = self.allow_origin(origin);
                if let Ok(v) = HeaderValue::from_str(&EXPOSE_HEADERS.join(",")) {
                    h.push((header::ACCESS_CONTROL_EXPOSE_HEADERS, v));
                }
                h
            }
            None => vec![(header::VARY, HeaderValue::from_static("Origin"))],
        }
    }

    fn allow_origin(&self, origin: &str) -> Vec<(HeaderName, HeaderValue)> {
        let mut h = vec![(header::VARY, HeaderValue::from_static("Origin"))];
        if let Ok(v) = HeaderValue::from_str(origin) {
            h.push((header::ACCESS_CONTROL_ALLOW_ORIGIN, v));
        }
        h
    }
}

/// A CORS preflight: `OPTIONS` naming the method it asks about.
pub fn is_preflight(method: &Method, headers: &http::HeaderMap) -> bool {
    method == Method::OPTIONS
        && headers.contains_key(header::ORIGIN)
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value<'a>(h: &'a [(HeaderName, HeaderValue)], name: &HeaderName) -> Option<&'a str> {
        h.iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.to_str().ok())
    }

    #[test]
    fn only_listed_origins_get_cors_headers() {
        let o = PortalOrigins::parse(" https://portal.example , http://localhost:5173").unwrap();
        let pre = o.preflight(Some("https://portal.example"));
        assert_eq!(
            value(&pre, &header::ACCESS_CONTROL_ALLOW_ORIGIN),
            Some("https://portal.example")
        );
        assert_eq!(
            value(&pre, &header::ACCESS_CONTROL_ALLOW_HEADERS),
            Some("authorization,content-type,if-match,idempotency-key")
        );
        assert_eq!(value(&pre, &header::ACCESS_CONTROL_ALLOW_CREDENTIALS), None);
        let resp = o.response(Some("http://localhost:5173"));
        assert_eq!(
            value(&resp, &header::ACCESS_CONTROL_EXPOSE_HEADERS),
            Some("etag,location,x-request-id,retry-after")
        );
        for other in [Some("https://evil.example"), Some("null"), None] {
            assert_eq!(
                value(&o.preflight(other), &header::ACCESS_CONTROL_ALLOW_ORIGIN),
                None
            );
            assert_eq!(
                value(&o.response(other), &header::ACCESS_CONTROL_ALLOW_ORIGIN),
                None
            );
        }
    }

    #[test]
    fn origins_are_origins() {
        assert_eq!(PortalOrigins::parse("").unwrap(), PortalOrigins::default());
        for bad in [
            "*",
            "portal.example",
            "https://*.portal.example",
            "https://portal.example/app",
            "https://portal.example:",
            "ftp://portal.example",
        ] {
            assert!(PortalOrigins::parse(bad).is_err(), "{bad}");
        }
    }
}
