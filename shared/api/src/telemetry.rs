//! Structured JSON logs. Level from `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced
//! logging controls), else `RUST_LOG`, else `info`. Handlers log ids, routes
//! and statuses — never tokens, passwords or email addresses.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .map(|l| l.to_ascii_lowercase())
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned());
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(EnvFilter::new(filter))
        .with_current_span(false)
        .with_target(false)
        .try_init();
}

/// The same JSON logs for tests, through the test harness's capture: shown
/// for a failing test, silent for passing ones.
pub fn init_for_tests() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(EnvFilter::new(
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
        ))
        .with_current_span(false)
        .with_target(false)
        .with_test_writer()
        .try_init();
}
