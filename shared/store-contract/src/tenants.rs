//! The tenant-store contract: tenants are created once, read by id, listed
//! in id order through every page, and changed only from their current
//! version, with their audit events in the same write.

use peak_domain::audit::AuditEvent;
use peak_domain::model::tenant::{NewTenant, Tenant, TenantStatus};
use peak_domain::ports::{PageRequest, StoreError, UserStore};
use peak_domain::tenants::TenantStore;
use time::OffsetDateTime;

pub trait TenantFullStore: TenantStore + UserStore {}
impl<T: TenantStore + UserStore> TenantFullStore for T {}

fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .expect("valid nanosecond")
}

pub fn sample_tenant() -> Tenant {
    NewTenant {
        id: super::fresh_tenant().as_str().to_owned(),
        display_name: "Acme Corp".into(),
        portal_url: "https://portal.acme.example".into(),
        sender_address: "no-reply@acme.example".into(),
        reply_to: Some("help@acme.example".into()),
        invitation_ttl_days: 7,
    }
    .validate(now())
    .expect("a valid tenant")
}

pub async fn tenant_is_created_once_and_reads_back(store: &dyn TenantFullStore) {
    let t = sample_tenant();
    assert_eq!(store.get_tenant(&t.id).await.unwrap(), None);
    store.create_tenant(&t).await.unwrap();
    assert_eq!(store.get_tenant(&t.id).await.unwrap(), Some(t.clone()));
    let mut again = t.clone();
    again.display_name = "Someone else".into();
    assert_eq!(
        store.create_tenant(&again).await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(
        store.get_tenant(&t.id).await.unwrap(),
        Some(t),
        "the first tenant is untouched"
    );
}

pub async fn tenant_updates_check_the_version_and_write_their_audit(store: &dyn TenantFullStore) {
    let t = sample_tenant();
    store.create_tenant(&t).await.unwrap();
    let mut next = t.clone();
    next.version = 2;
    next.settings.invitation_ttl_days = 14;
    next.status = TenantStatus::Closed;
    let event = AuditEvent::new(&t.id, "u1", "tenant.settings_updated", None, "r1", now());
    store
        .update_tenant(1, &next, std::slice::from_ref(&event))
        .await
        .unwrap();
    assert_eq!(store.get_tenant(&t.id).await.unwrap(), Some(next.clone()));
    let audit = store
        .list_audit(&t.id, None, &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(audit.items, vec![event]);

    // Stale: refused, nothing written (no audit event either).
    let mut stale = next.clone();
    stale.version = 3;
    stale.settings.invitation_ttl_days = 3;
    let late = AuditEvent::new(&t.id, "u2", "tenant.settings_updated", None, "r2", now());
    assert_eq!(
        store.update_tenant(1, &stale, &[late]).await,
        Err(StoreError::VersionMismatch)
    );
    assert_eq!(store.get_tenant(&t.id).await.unwrap(), Some(next));
    let audit = store
        .list_audit(&t.id, None, &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(audit.items.len(), 1);

    let missing = sample_tenant();
    assert_eq!(
        store.update_tenant(1, &missing, &[]).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(store.get_tenant(&missing.id).await.unwrap(), None);
}

pub async fn tenants_list_in_id_order_through_every_page(store: &dyn TenantFullStore) {
    let mut mine: Vec<Tenant> = (0..3).map(|_| sample_tenant()).collect();
    for t in &mine {
        store.create_tenant(t).await.unwrap();
    }
    mine.sort_by(|a, b| a.id.cmp(&b.id));
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_tenants(&PageRequest { limit: 2, cursor })
            .await
            .unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let ids: Vec<_> = seen.iter().map(|t| t.id.clone()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "in id order, each once");
    let found: Vec<_> = seen
        .into_iter()
        .filter(|t| mine.iter().any(|m| m.id == t.id))
        .collect();
    assert_eq!(found, mine);
}
