//! Structured JSON logs. Level from `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced
//! logging controls), else `RUST_LOG`, else `info`. Handlers log ids, routes
//! and statuses — never tokens, passwords or email addresses.
//!
//! The filter is `tracing_subscriber`'s `Targets` (a default level plus
//! `target=level` directives, e.g. `RUST_LOG=info,peak_auth0=debug`), not
//! `EnvFilter`: EnvFilter's span and field matchers bring a regex engine,
//! ~0.3 MB of every function binary, for filters Lambda never sets.

use tracing_subscriber::filter::{LevelFilter, Targets};

pub fn init() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_max_level(LevelFilter::TRACE)
        .with_current_span(false)
        .with_target(false)
        .finish()
        .with(filter_from_env())
        .try_init();
}

/// The same JSON logs for tests, through the test harness's capture: shown
/// for a failing test, silent for passing ones.
pub fn init_for_tests() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_max_level(LevelFilter::TRACE)
        .with_current_span(false)
        .with_target(false)
        .with_test_writer()
        .finish()
        .with(filter_from_env())
        .try_init();
}

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn filter_from_env() -> Targets {
    filter(
        std::env::var("AWS_LAMBDA_LOG_LEVEL")
            .ok()
            .or_else(|| std::env::var("RUST_LOG").ok())
            .as_deref(),
    )
}

/// The filter for a level setting: Lambda's `TRACE` … `FATAL` (any case;
/// `FATAL` is `error`), or `RUST_LOG`-style directives. Unset, unreadable, or
/// directives without a default level: `info` for everything not named (a
/// wrong setting must not silence the logs).
fn filter(setting: Option<&str>) -> Targets {
    let info = || Targets::new().with_default(LevelFilter::INFO);
    let Some(setting) = setting.map(str::trim).filter(|s| !s.is_empty()) else {
        return info();
    };
    let setting = setting.to_ascii_lowercase();
    let setting = if setting == "fatal" {
        "error"
    } else {
        &setting
    };
    match setting.parse::<Targets>() {
        Ok(t) if t.default_level().is_some() => t,
        Ok(t) => t.with_default(LevelFilter::INFO),
        Err(_) => info(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    fn enabled(setting: Option<&str>, target: &str, level: Level) -> bool {
        filter(setting).would_enable(target, &level)
    }

    #[test]
    fn lambda_levels_in_any_case() {
        assert!(enabled(Some("DEBUG"), "peak_api", Level::DEBUG));
        assert!(!enabled(Some("WARN"), "peak_api", Level::INFO));
        assert!(enabled(Some("warn"), "peak_api", Level::WARN));
        assert!(!enabled(Some("FATAL"), "peak_api", Level::WARN));
        assert!(enabled(Some("FATAL"), "peak_api", Level::ERROR));
    }

    #[test]
    fn rust_log_directives_per_target() {
        let s = Some("info,peak_auth0=trace");
        assert!(enabled(s, "peak_auth0::client", Level::TRACE));
        assert!(!enabled(s, "peak_api", Level::DEBUG));
        assert!(enabled(s, "peak_api", Level::INFO));
        let only = Some("peak_auth0=debug");
        assert!(enabled(only, "peak_auth0", Level::DEBUG));
        assert!(enabled(only, "peak_api", Level::INFO));
    }

    #[test]
    fn unset_or_unreadable_settings_log_at_info() {
        for s in [None, Some(""), Some("loud"), Some("peak=[{x}]")] {
            assert!(enabled(s, "peak_api", Level::INFO), "{s:?}");
            assert!(!enabled(s, "peak_api", Level::DEBUG), "{s:?}");
        }
    }
}
