//! Auth0 as peak-users' identity provider.
//!
//! [`Auth0Client`] implements [`peak_domain::identity::IdentityProvider`]
//! and [`peak_domain::identity::LoginDirectory`] over the Auth0 Management
//! API (client-credentials token, one retry policy with a per-call
//! deadline). With the `fake` feature, [`fake::FakeAuth0`] is
//! a stateful loopback fake of the routes it calls, for tests.

mod call;
mod client;
mod config;
mod export;
mod logins;
#[doc(hidden)]
pub mod reads;
mod retry;

#[cfg(feature = "fake")]
pub mod fake;

pub use client::{Auth0Client, RATE_BUDGET_BUCKET};
pub use config::{Auth0Config, ConfigError};
pub use logins::RESERVED_APP_METADATA_KEYS;
pub use retry::{BACKOFF_BASE, BACKOFF_CAP};
