//! The peak-users domain: types, rules, permissions and the ports (traits)
//! that adapters implement. Pure: no AWS, HTTP or database types here, and
//! no environment: settings arrive as plain values ([`UserSettings`]),
//! read where a process starts.
//!
//! Use cases by resource: [`users`] (by group: invitations, edits, status,
//! passwords, email verification, identity events, queries), [`profiles`],
//! [`tenants`]; all take one [`Ctx`] and, when someone acts, one [`Actor`]
//! ([`context`]), and decide with their resource's `policy`.

pub mod audit;
pub mod bulk_job;
pub mod catalogue;
pub mod context;
pub mod cursor;
pub mod error;
pub mod identity;
pub mod idp_events;
pub mod idp_work;
pub mod ids;
pub mod outbox;
pub mod permissions;
pub mod ports;
pub mod profiles;
pub mod role;
pub mod tenant;
pub mod tenants;
pub mod users;

pub use context::{Actor, Ctx, UserSettings};
pub use error::{Error, FieldError};
pub use ids::{ProfileId, TenantId};
pub use role::Role;

/// The user types' former path (`users::model`), kept while the store
/// crates and the ports (split concurrently) still name it; drop it once
/// they say `users::model`.
#[doc(hidden)]
pub use users::model as user;

/// The profile types' former path (`profiles::model`), kept for the same
/// reason as [`user`].
#[doc(hidden)]
pub use profiles::model as profile;

/// The user policy's former path (`users::policy`), kept for the same
/// reason as [`user`].
#[doc(hidden)]
pub use users::policy as user_policy;
