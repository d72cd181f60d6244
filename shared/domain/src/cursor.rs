//! Opaque pagination cursors. Both stores order lists by a sort key and
//! resume "after" the last key returned; the cursor carries that key and the
//! tenant it was issued to, so a cursor is useless in another tenant.

use crate::ids::TenantId;
use crate::store_error::StoreError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Cursor {
    /// Tenant the cursor was issued to.
    t: String,
    /// What list it belongs to (e.g. "profiles").
    l: String,
    /// The sort key of the last item returned.
    a: String,
}

pub fn encode(tenant: &TenantId, list: &str, after: &str) -> String {
    let c = Cursor {
        t: tenant.as_str().to_owned(),
        l: list.to_owned(),
        a: after.to_owned(),
    };
    // Serializing three strings cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap_or_default())
}

/// Returns the "after" key, or `InvalidCursor` when the text is not a cursor
/// this tenant was given for this list.
pub fn decode(tenant: &TenantId, list: &str, raw: &str) -> Result<String, StoreError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(raw)
        .map_err(|_| StoreError::InvalidCursor)?;
    let c: Cursor = serde_json::from_slice(&bytes).map_err(|_| StoreError::InvalidCursor)?;
    if c.t != tenant.as_str() || c.l != list {
        return Err(StoreError::InvalidCursor);
    }
    Ok(c.a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_within_its_tenant_and_list_only() {
        let a = TenantId::parse("a").unwrap();
        let b = TenantId::parse("b").unwrap();
        let c = encode(&a, "profiles", "01J0");
        assert_eq!(decode(&a, "profiles", &c).unwrap(), "01J0");
        assert_eq!(decode(&b, "profiles", &c), Err(StoreError::InvalidCursor));
        assert_eq!(decode(&a, "users", &c), Err(StoreError::InvalidCursor));
        assert_eq!(
            decode(&a, "profiles", "%%%"),
            Err(StoreError::InvalidCursor)
        );
        assert_eq!(
            decode(&a, "profiles", "e30"),
            Err(StoreError::InvalidCursor)
        );
    }
}
