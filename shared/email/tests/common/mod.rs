//! Fixed brand and outbox records the tests render.

#![allow(dead_code)] // each test crate uses its own part

use peak_domain::TenantId;
use peak_domain::model::user::{Email, UserId};
use peak_domain::outbox::{EmailKind, OutboxEmail};
use peak_email::Brand;
use serde_json::{Value, json};
use time::macros::datetime;

pub const PORTAL: &str = "https://portal.acme.example";
pub const INVITE_LINK: &str = "https://portal.acme.example/invitations/inv-token-123";
pub const VERIFY_LINK: &str =
    "https://portal.acme.example/email-verification/acme.01JBRAND0000000000000000.verify-token";
pub const RESET_LINK: &str = "https://login.acme.example/lo/reset?ticket=rst-token&flow=reset";

pub fn brand() -> Brand {
    Brand {
        name: "Acme Portal".into(),
        sender: "Acme Portal <no-reply@acme.example>".into(),
        reply_to: Some("support@acme.example".into()),
        portal_url: PORTAL.into(),
        accent_color: None,
    }
}

pub fn mail(kind: EmailKind, data: Value) -> OutboxEmail {
    OutboxEmail {
        tenant_id: TenantId::parse("acme").expect("tenant id"),
        id: "01JBZ8Q5M6X1V9T3K7R2N4P0WD".into(),
        kind,
        to: Email::parse("ada@example.com").expect("email"),
        user_id: UserId::parse("01JBZ8Q5M6X1V9T3K7R2N4P0WE").expect("user id"),
        data,
        created_at: datetime!(2026-11-23 09:15 UTC),
    }
}

pub fn invitation_data(first_name: &str, inviter_name: &str) -> Value {
    json!({
        "first_name": first_name,
        "inviter_name": inviter_name,
        "tenant": "acme",
        "link": INVITE_LINK,
        "expires_at": "2026-11-30T09:15:00Z",
        "portal_url": PORTAL,
    })
}

pub fn verification_data() -> Value {
    json!({ "first_name": "Ada", "link": VERIFY_LINK, "portal_url": PORTAL })
}

pub fn notice_data() -> Value {
    json!({ "first_name": "Ada", "new_email_masked": "n***@example.org", "portal_url": PORTAL })
}

pub fn reset_data(initiated_by: &str) -> Value {
    json!({ "first_name": "Ada", "initiated_by": initiated_by, "portal_url": PORTAL })
}

pub fn suspension_data() -> Value {
    json!({ "first_name": "Ada", "portal_url": PORTAL })
}

/// A name and what to render: every kind, both reset variants, and a hostile
/// first name.
pub fn cases() -> Vec<(&'static str, OutboxEmail, Option<&'static str>)> {
    use EmailKind::*;
    vec![
        (
            "invitation",
            mail(Invitation, invitation_data("Ada", "Grace Hopper")),
            None,
        ),
        (
            "invitation_resent",
            mail(InvitationResent, invitation_data("Ada", "Grace Hopper")),
            None,
        ),
        (
            "email_change_verification",
            mail(EmailChangeVerification, verification_data()),
            None,
        ),
        (
            "email_change_notice",
            mail(EmailChangeNotice, notice_data()),
            None,
        ),
        (
            "password_reset_admin",
            mail(PasswordReset, reset_data("admin")),
            Some(RESET_LINK),
        ),
        (
            "password_reset_self",
            mail(PasswordReset, reset_data("self")),
            Some(RESET_LINK),
        ),
        (
            "suspension_notice",
            mail(SuspensionNotice, suspension_data()),
            None,
        ),
        (
            "invitation_script_name",
            mail(
                Invitation,
                invitation_data("<script>alert(1)</script>", "Tom O'Neil & \"Sons\""),
            ),
            None,
        ),
    ]
}
