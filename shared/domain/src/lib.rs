//! The peak-users domain: types, rules, permissions and the ports (traits)
//! that adapters implement. Pure: no AWS, HTTP or database types here, and
//! no environment: settings arrive as plain values ([`UserSettings`]),
//! read where a process starts.
//!
//! The data is in [`model`] (users, profiles, tenants), beneath everything
//! else. Use cases by resource: [`users`] (by group: invitations, edits, status,
//! passwords, email verification, identity events, queries), [`profiles`],
//! [`tenants`]; all take one [`Ctx`] and, when someone acts, one [`Actor`]
//! ([`context`]), and decide with their resource's `policy`.

pub mod accounts;
pub mod actor;
pub mod audit;
pub mod bulk_job;
pub mod catalogue;
pub mod context;
pub mod cursor;
pub mod error;
pub mod identity;
pub mod idp_work;
pub mod ids;
pub mod model;
pub mod outbox;
pub mod permissions;
pub mod ports;
pub mod profiles;
pub mod role;
pub mod store_error;
pub mod tenants;
pub mod users;

pub use context::{Actor, Ctx, UserSettings};
pub use error::{Error, FieldError};
pub use ids::{ProfileId, TenantId};
pub use role::Role;
