//! Identifiers. Tenants come from verified tokens; ids we mint are ULIDs so
//! that "ordered by id" is "ordered by creation".

use serde::{Deserialize, Serialize};
use std::fmt;

/// A PeakCommerce merchant. Always taken from the verified token.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(transparent)]
pub struct TenantId(String);

impl TenantId {
    /// Tenant ids are short slugs: ASCII letters, digits, `-` and `_`, at
    /// most 64 characters. Anything else is refused so a tenant id can be
    /// embedded in storage keys without escaping.
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new ULID, strictly greater than every one this process made before:
/// ids made within one millisecond still sort in the order they were made
/// (audit trails and outboxes list by id).
pub fn monotonic_ulid() -> ulid::Ulid {
    use std::sync::{LazyLock, Mutex};
    static GENERATOR: LazyLock<Mutex<ulid::Generator>> =
        LazyLock::new(|| Mutex::new(ulid::Generator::new()));
    let mut g = GENERATOR.lock().unwrap_or_else(|p| p.into_inner());
    // Overflow needs 2^80 ids in one millisecond; fall back to a plain one.
    g.generate().unwrap_or_else(|_| ulid::Ulid::new())
}

/// A profile's id: a ULID, as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProfileId(String);

impl ProfileId {
    pub fn generate() -> Self {
        Self(monotonic_ulid().to_string())
    }

    /// Accepts only a well-formed ULID, so a path segment can never smuggle
    /// key syntax into a store query.
    pub fn parse(raw: &str) -> Option<Self> {
        ulid::Ulid::from_string(raw)
            .ok()
            .map(|u| Self(u.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProfileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_refuse_key_syntax() {
        assert!(TenantId::parse("acme-01").is_some());
        assert!(TenantId::parse("").is_none());
        assert!(TenantId::parse("acme#PROFILE").is_none());
        assert!(TenantId::parse(&"a".repeat(65)).is_none());
    }

    #[test]
    fn ids_made_in_one_millisecond_still_sort_in_order() {
        let ids: Vec<_> = (0..1000).map(|_| monotonic_ulid()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn profile_ids_are_normalised_ulids() {
        let id = ProfileId::generate();
        assert_eq!(ProfileId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(
            ProfileId::parse(&id.as_str().to_lowercase()).as_ref(),
            Some(&id)
        );
        assert!(ProfileId::parse("not-a-ulid").is_none());
    }
}
