//! Where the Management API is and how we may call it.

use std::fmt;
use std::time::Duration;

/// The Auth0 tenant and the machine-to-machine application we call it as.
///
/// `Debug` prints everything but the client secret.
#[derive(Clone)]
pub struct Auth0Config {
    /// `https://tenant.eu.auth0.com` (no trailing slash). `http://` is
    /// accepted so tests can point at a loopback fake.
    pub base_url: String,
    /// The machine-to-machine application (client credentials grant).
    pub client_id: String,
    pub client_secret: String,
    /// The Management API identifier: `https://<tenant domain>/api/v2/`.
    /// Set it explicitly when `base_url` is a custom domain.
    pub audience: String,
    /// The database connection our logins live in, e.g.
    /// `Username-Password-Authentication`.
    pub connection: String,
    /// Where in the tenant's portal a password-change ticket returns the
    /// person once the password is set: its sign-in route (`/login`).
    pub ticket_return_path: String,
    /// How long a password-setup link stays valid (at most; an invitation's
    /// link ends with the invitation).
    pub ticket_ttl_secs: u64,
    /// Total time one port call may take, retries and waits included.
    pub call_deadline: Duration,
    /// Time for one HTTP attempt (connect to last body byte).
    pub request_timeout: Duration,
    /// How often reconciliation asks whether its users-export job is done.
    pub export_poll: Duration,
    /// How long reconciliation waits for its users-export job.
    pub export_wait: Duration,
    /// Management API requests per second this Auth0 tenant allows (its
    /// plan's limit; `AUTH0_MAX_RPS`). Used by a client given a shared
    /// budget ([`crate::Auth0Client::with_rate_budget`]).
    pub max_rps: u32,
}

impl Auth0Config {
    pub const DEFAULT_TICKET_TTL_SECS: u64 = 86_400;
    pub const DEFAULT_CALL_DEADLINE: Duration = Duration::from_secs(10);
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
    pub const DEFAULT_TICKET_RETURN_PATH: &'static str = "/login";
    pub const DEFAULT_EXPORT_POLL: Duration = Duration::from_secs(2);
    pub const DEFAULT_EXPORT_WAIT: Duration = Duration::from_secs(600);
    /// The free plan's Management API limit (requests per second).
    pub const DEFAULT_MAX_RPS: u32 = 2;

    /// A config with the default audience (`{base_url}/api/v2/`), ticket
    /// return path (`/login`) and lifetime (one day), call deadline (10 s),
    /// request timeout (5 s) and export wait (10 minutes, polled every 2 s).
    /// `base_url` may be a bare host (`tenant.eu.auth0.com`): `https://` is
    /// assumed.
    pub fn new(
        base_url: impl AsRef<str>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        connection: impl Into<String>,
    ) -> Self {
        let base_url = normalize_base_url(base_url.as_ref());
        Self {
            audience: format!("{base_url}/api/v2/"),
            base_url,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            connection: connection.into(),
            ticket_return_path: Self::DEFAULT_TICKET_RETURN_PATH.to_owned(),
            ticket_ttl_secs: Self::DEFAULT_TICKET_TTL_SECS,
            call_deadline: Self::DEFAULT_CALL_DEADLINE,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            export_poll: Self::DEFAULT_EXPORT_POLL,
            export_wait: Self::DEFAULT_EXPORT_WAIT,
            max_rps: Self::DEFAULT_MAX_RPS,
        }
    }

    /// Reads `AUTH0_DOMAIN` (host or URL), `AUTH0_CLIENT_ID`,
    /// `AUTH0_CLIENT_SECRET`, `AUTH0_CONNECTION` and, optionally,
    /// `AUTH0_AUDIENCE`, `AUTH0_TICKET_TTL_SECS`,
    /// `AUTH0_TICKET_RETURN_PATH` (the portal's sign-in route, `/login`) and
    /// `AUTH0_MAX_RPS` (the plan's Management API requests per second, 2).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Auth0Config::from_env`] over any source of variables.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let need = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));
        let domain = need("AUTH0_DOMAIN")?;
        let mut config = Self::new(
            &domain,
            need("AUTH0_CLIENT_ID")?,
            need("AUTH0_CLIENT_SECRET")?,
            need("AUTH0_CONNECTION")?,
        );
        if !config.base_url.starts_with("https://") && !config.base_url.starts_with("http://") {
            return Err(ConfigError::Invalid {
                name: "AUTH0_DOMAIN",
                why: "must be a host name or an http(s) URL",
            });
        }
        if let Some(audience) = get("AUTH0_AUDIENCE") {
            config.audience = audience;
        }
        if let Some(path) = get("AUTH0_TICKET_RETURN_PATH") {
            if !path.starts_with('/') || path.contains(char::is_whitespace) {
                return Err(ConfigError::Invalid {
                    name: "AUTH0_TICKET_RETURN_PATH",
                    why: "must be a path starting with /",
                });
            }
            config.ticket_return_path = path;
        }
        if let Some(ttl) = get("AUTH0_TICKET_TTL_SECS") {
            config.ticket_ttl_secs =
                ttl.parse()
                    .ok()
                    .filter(|&t| t > 0)
                    .ok_or(ConfigError::Invalid {
                        name: "AUTH0_TICKET_TTL_SECS",
                        why: "must be a positive number of seconds",
                    })?;
        }
        if let Some(rps) = get("AUTH0_MAX_RPS") {
            config.max_rps = rps
                .parse()
                .ok()
                .filter(|&r| r > 0)
                .ok_or(ConfigError::Invalid {
                    name: "AUTH0_MAX_RPS",
                    why: "must be a positive number of requests per second",
                })?;
        }
        Ok(config)
    }
}

fn normalize_base_url(raw: &str) -> String {
    let trimmed = raw.trim().trim_end_matches('/');
    if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("https://{trimmed}")
    }
}

impl fmt::Debug for Auth0Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth0Config")
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("audience", &self.audience)
            .field("connection", &self.connection)
            .field("ticket_return_path", &self.ticket_return_path)
            .field("ticket_ttl_secs", &self.ticket_ttl_secs)
            .field("call_deadline", &self.call_deadline)
            .field("request_timeout", &self.request_timeout)
            .field("export_poll", &self.export_poll)
            .field("export_wait", &self.export_wait)
            .field("max_rps", &self.max_rps)
            .finish()
    }
}

/// A configuration variable is missing or unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} {why}")]
    Invalid {
        name: &'static str,
        why: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const ALL: [(&str, &str); 4] = [
        ("AUTH0_DOMAIN", "tenant.eu.auth0.com"),
        ("AUTH0_CLIENT_ID", "cid"),
        ("AUTH0_CLIENT_SECRET", "s3cret-value"),
        ("AUTH0_CONNECTION", "Username-Password-Authentication"),
    ];

    #[test]
    fn reads_the_environment_with_defaults() {
        let c = Auth0Config::from_lookup(vars(&ALL)).unwrap();
        assert_eq!(c.base_url, "https://tenant.eu.auth0.com");
        assert_eq!(c.audience, "https://tenant.eu.auth0.com/api/v2/");
        assert_eq!(c.ticket_ttl_secs, 86_400);
        assert_eq!(c.ticket_return_path, "/login");
        assert_eq!(c.call_deadline, Duration::from_secs(10));
        assert_eq!(c.max_rps, 2, "the free plan's limit");

        let mut more = ALL.to_vec();
        more[0].1 = "https://login.example.com/";
        more.push(("AUTH0_AUDIENCE", "https://tenant.eu.auth0.com/api/v2/"));
        more.push(("AUTH0_TICKET_TTL_SECS", "3600"));
        more.push(("AUTH0_TICKET_RETURN_PATH", "/sign-in"));
        more.push(("AUTH0_MAX_RPS", "50"));
        let c = Auth0Config::from_lookup(vars(&more)).unwrap();
        assert_eq!(c.max_rps, 50);
        assert_eq!(c.ticket_return_path, "/sign-in");
        assert_eq!(c.base_url, "https://login.example.com");
        assert_eq!(c.audience, "https://tenant.eu.auth0.com/api/v2/");
        assert_eq!(c.ticket_ttl_secs, 3600);
    }

    #[test]
    fn names_the_missing_or_bad_variable() {
        for i in 0..ALL.len() {
            let mut some = ALL.to_vec();
            let (name, _) = some.remove(i);
            let err = Auth0Config::from_lookup(vars(&some)).unwrap_err();
            assert_eq!(err, ConfigError::Missing(name));
            assert!(err.to_string().contains(name));
        }
        let mut bad = ALL.to_vec();
        bad.push(("AUTH0_TICKET_TTL_SECS", "soon"));
        let err = Auth0Config::from_lookup(vars(&bad)).unwrap_err();
        assert!(err.to_string().contains("AUTH0_TICKET_TTL_SECS"));
        for rps in ["0", "fast"] {
            let mut bad = ALL.to_vec();
            bad.push(("AUTH0_MAX_RPS", rps));
            let err = Auth0Config::from_lookup(vars(&bad)).unwrap_err();
            assert!(err.to_string().contains("AUTH0_MAX_RPS"), "{rps}");
        }
        let mut bad = ALL.to_vec();
        bad.push((
            "AUTH0_TICKET_RETURN_PATH",
            "https://elsewhere.example/login",
        ));
        let err = Auth0Config::from_lookup(vars(&bad)).unwrap_err();
        assert!(err.to_string().contains("AUTH0_TICKET_RETURN_PATH"));
    }

    #[test]
    fn debug_redacts_the_secret() {
        let c = Auth0Config::from_lookup(vars(&ALL)).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret-value"));
        assert!(shown.contains("<redacted>"));
    }
}
