//! What the domain is about, as data: users, profiles, tenants, the
//! identity provider's deliveries as we keep them, and the rules that keep
//! each one well formed (parsing, masking, patching). The
//! use cases (`users`, `profiles`, `tenants`) and the ports build on these;
//! nothing here reads a store or knows a caller, so every other module may
//! depend on it and it depends on none of them.

pub mod delivery;
pub mod profile;
pub mod tenant;
pub mod user;
