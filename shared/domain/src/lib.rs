//! The peak-users domain: types, rules, permissions and the ports (traits)
//! that adapters implement. Pure: no AWS, HTTP or database types here.

pub mod accounts;
pub mod audit;
pub mod bulk_job;
pub mod catalogue;
pub mod cursor;
pub mod error;
pub mod identity;
pub mod idp_events;
pub mod idp_work;
pub mod ids;
pub mod outbox;
pub mod permissions;
pub mod policy;
pub mod ports;
pub mod profile;
pub mod profiles;
pub mod role;
pub mod tenant;
pub mod tenants;
pub mod user;
pub mod user_policy;
pub mod users;

pub use error::{Error, FieldError};
pub use ids::{ProfileId, TenantId};
pub use policy::{Action, Caller};
pub use role::Role;
