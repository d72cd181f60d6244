//! HTTP glue shared by every Lambda function and the local server: the
//! operations (`operations.rs`, one entry each, read by `cargo xtask`), the
//! router, authentication of the caller, request parsing, problem+json
//! errors, and the handlers that call the domain's use cases.
//!
//! Modules depend one way: `spec` ← `operations` ← `routes` ← `dispatch`
//! ← `handlers` (each declares its routes' functions with
//! `dispatch::routes!`; `handlers/table.rs` is generated) ← `app`, the
//! pipeline, with `auth`, `idempotency` and `preconditions`; everything
//! reads `state` (and `state` reads `config`, the settings read at
//! process start). None imports a module that imports it.
//!
//! A handler takes a `lambda_http::Request`, so the same code serves API
//! Gateway events in Lambda, `sam local invoke -e events/…`, and the local
//! server (which converts its requests into the same type).

pub mod account_view;
pub mod app;
pub mod auth;
pub mod config;
pub mod cors;
pub mod dispatch;
pub mod handlers;
mod idempotency;
pub mod lambda;
pub mod machine;
pub mod openapi;
pub mod operations;
mod preconditions;
pub mod problem;
pub mod request;
pub mod routes;
pub mod spec;
pub mod state;
pub mod telemetry;
pub mod views;

pub use app::{Served, handle, handle_routes};
pub use config::WebhookConfig;
pub use dispatch::Handler;
pub use idempotency::LEASE_SECS as IDEMPOTENCY_LEASE_SECS;
pub use operations::OPERATIONS;
pub use routes::{ROUTES, Route, RouteSpec};
pub use state::{AppState, portal_brands};
