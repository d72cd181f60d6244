//! Keeps the identity provider in step with our users.
//!
//! - [`Worker`] performs the work a user write recorded as owed
//!   ([`peak_domain::idp_work`]): from the DynamoDB stream as soon as it is
//!   written ([`Worker::handle_stream_batch`]), and from a periodic sweep
//!   for retries ([`Worker::run_due`]); locally the sweep runs in-process.
//!   Work that fails is kept with its attempt count and retried with
//!   backoff (up to hourly), never dropped; from the fifth failure each
//!   attempt logs `stuck = true` at error level, which the deployment's
//!   alarm counts.
//!   The sweep also applies the provider's recorded deliveries that are
//!   due (see `peak_domain::idp_events`).
//! - [`reconcile`] compares the provider's logins (all of them, from an
//!   export) with our users and repairs drift (scheduled daily in AWS).
//!
//! Logs carry tenant, user id, operation and outcome: never emails, names
//! or tokens.

mod reconcile;
mod stream;
mod worker;

pub use reconcile::{ReconcileReport, reconcile};
pub use worker::{Outcome, SweepSummary, Worker, WorkerConfig};
