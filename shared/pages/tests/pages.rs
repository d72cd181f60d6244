//! Every page as a browser gets it: what it says in each state, that values
//! are escaped, and that its policy allows its own style and nothing else.

use base64::Engine;
use http::{StatusCode, header};
use peak_domain::TenantId;
use peak_domain::users::{EmailVerificationView, InvitationView, LinkState, VerificationState};
use peak_email::Brand;
use peak_pages::Page;
use sha2::{Digest, Sha256};
use time::macros::datetime;

const PORTAL: &str = "https://portal.acme.example/sign-in";
const ACCEPT: &str = "https://api.example/invitations/tok/accept";

fn brand(accent: Option<&str>) -> Brand {
    Brand {
        name: "Acme Portal".into(),
        sender: "no-reply@acme.example".into(),
        reply_to: None,
        portal_url: PORTAL.into(),
        accent_color: accent.map(str::to_owned),
    }
}

fn invitation(state: LinkState, inviter: Option<&str>) -> InvitationView {
    InvitationView {
        tenant: TenantId::parse("acme").unwrap(),
        state,
        first_name: "Ada".into(),
        masked_email: "a***@example.com".into(),
        expires_at: datetime!(2026-11-30 09:15 UTC),
        inviter_name: inviter.map(str::to_owned),
    }
}

fn verification(state: VerificationState) -> EmailVerificationView {
    EmailVerificationView {
        tenant: TenantId::parse("acme").unwrap(),
        state,
        first_name: "Ada".into(),
        new_email_masked: "n***@example.com".into(),
        expires_at: datetime!(2026-11-30 09:15 UTC),
    }
}

fn header_of(page: &Page, name: header::HeaderName) -> String {
    page.headers()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no {name} header"))
}

fn every_page() -> Vec<(&'static str, Page)> {
    let b = brand(None);
    vec![
        (
            "pending",
            peak_pages::invitation(
                &b,
                &invitation(LinkState::Pending, Some("Grace Hopper")),
                ACCEPT,
            ),
        ),
        (
            "expired",
            peak_pages::invitation(
                &b,
                &invitation(LinkState::Expired, Some("Grace Hopper")),
                ACCEPT,
            ),
        ),
        (
            "revoked",
            peak_pages::invitation(&b, &invitation(LinkState::Revoked, None), ACCEPT),
        ),
        (
            "used",
            peak_pages::invitation(&b, &invitation(LinkState::Used, None), ACCEPT),
        ),
        ("not valid", peak_pages::link_not_valid(&b)),
        ("portal closed", peak_pages::portal_closed(&b)),
        (
            "confirm",
            peak_pages::email_verification(
                &b,
                &verification(VerificationState::Pending),
                "https://api.example/email-verifications/t",
            ),
        ),
        (
            "confirm expired",
            peak_pages::email_verification(
                &b,
                &verification(VerificationState::Expired),
                "https://api.example/email-verifications/t",
            ),
        ),
        (
            "confirmed",
            peak_pages::email_verified(&b, "n***@example.com"),
        ),
        (
            "trouble",
            peak_pages::trouble(&b, StatusCode::SERVICE_UNAVAILABLE, "req-1"),
        ),
        (
            "see other",
            peak_pages::see_other(&b, "https://idp.example/reset?ticket=x", "Continue"),
        ),
    ]
}

#[test]
fn every_page_allows_its_own_style_and_no_script() {
    for (name, page) in every_page() {
        let html = &page.html;
        assert!(!html.contains("<script"), "{name}: a script");
        assert!(
            !html.contains(" style=\""),
            "{name}: an inline style attribute"
        );
        let style = html
            .split_once("<style>")
            .and_then(|(_, rest)| rest.split_once("</style>"))
            .map(|(css, _)| css)
            .unwrap_or_else(|| panic!("{name}: no <style>"));
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(style));
        let csp = header_of(&page, header::CONTENT_SECURITY_POLICY);
        assert!(
            csp.contains(&format!("style-src 'sha256-{hash}'")),
            "{name}: {csp}"
        );
        for part in [
            "default-src 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(part), "{name}: {csp}");
        }
        assert!(!csp.contains("unsafe"), "{name}: {csp}");
        assert_eq!(
            header_of(&page, header::CACHE_CONTROL),
            "no-store",
            "{name}"
        );
        assert_eq!(
            header_of(&page, header::REFERRER_POLICY),
            "no-referrer",
            "{name}"
        );
        assert_eq!(
            header_of(&page, header::CONTENT_TYPE),
            "text/html; charset=utf-8"
        );
        assert!(html.contains("<html lang=\"en\">"), "{name}");
        assert!(html.contains("name=\"viewport\""), "{name}");
        assert!(
            html.contains(&format!("href=\"{PORTAL}\"")),
            "{name}: the footer's portal link"
        );
    }
}

#[test]
fn each_invitation_state_says_what_to_do() {
    let b = brand(None);
    let pending = peak_pages::invitation(
        &b,
        &invitation(LinkState::Pending, Some("Grace Hopper")),
        ACCEPT,
    );
    assert_eq!(pending.status, StatusCode::OK);
    assert_eq!(pending.html.matches("<form").count(), 1, "one button");
    assert!(
        pending
            .html
            .contains(&format!("<form method=\"post\" action=\"{ACCEPT}\">"))
    );
    assert!(pending.html.contains("Grace Hopper has invited you"));
    assert!(pending.html.contains("30 November 2026"));

    let expired = peak_pages::invitation(
        &b,
        &invitation(LinkState::Expired, Some("Grace Hopper")),
        ACCEPT,
    );
    assert_eq!(expired.status, StatusCode::GONE);
    assert!(
        expired
            .html
            .contains("Ask Grace Hopper to send you a new one")
    );
    assert!(!expired.html.contains("<form"), "nothing to accept");
    let nobody = peak_pages::invitation(&b, &invitation(LinkState::Expired, None), ACCEPT);
    assert!(nobody.html.contains("Ask your administrator"));

    let revoked = peak_pages::invitation(&b, &invitation(LinkState::Revoked, None), ACCEPT);
    assert_eq!(revoked.status, StatusCode::GONE);
    assert!(revoked.html.contains("withdrawn"));

    let used = peak_pages::invitation(&b, &invitation(LinkState::Used, None), ACCEPT);
    assert!(used.html.contains(&format!(
        "<a class=\"button\" href=\"{PORTAL}\">Sign in to Acme Portal</a>"
    )));
    assert!(!used.html.contains("<form"));

    let unknown = peak_pages::link_not_valid(&b);
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(!unknown.html.contains("<form"));
    assert!(!unknown.html.contains("Ada"), "names nobody");
}

#[test]
fn email_change_pages_offer_confirming_only_while_it_can_work() {
    let b = brand(None);
    let url = "https://api.example/email-verifications/t";
    let pending =
        peak_pages::email_verification(&b, &verification(VerificationState::Pending), url);
    assert!(
        pending
            .html
            .contains(&format!("<form method=\"post\" action=\"{url}\">"))
    );
    assert!(pending.html.contains("Confirm email address"));
    let expired =
        peak_pages::email_verification(&b, &verification(VerificationState::Expired), url);
    assert_eq!(expired.status, StatusCode::GONE);
    assert!(!expired.html.contains("<form"));
    let done = peak_pages::email_verified(&b, "n***@example.com");
    assert!(done.html.contains("n***@example.com"));
    assert!(done.html.contains(&format!("href=\"{PORTAL}\"")));
}

#[test]
fn values_are_escaped() {
    let mut v = invitation(LinkState::Pending, Some("<script>alert(1)</script>"));
    v.first_name = "Ada \"<b>\"".into();
    let page = peak_pages::invitation(&brand(None), &v, ACCEPT);
    assert!(!page.html.contains("<script>alert"));
    assert!(!page.html.contains("<b>"));
    assert!(page.html.contains("alert(1)"), "the name is shown, escaped");
}

#[test]
fn the_brand_colours_the_page_and_cannot_break_out_of_the_style() {
    let green = peak_pages::link_not_valid(&brand(Some("#0b6e4f")));
    assert!(green.html.contains("background:#0b6e4f"));
    for hostile in ["red}body{display:none", "#ffffff", "</style><script>"] {
        let page = peak_pages::link_not_valid(&brand(Some(hostile)));
        assert!(page.html.contains("background:#1f4fd1"), "{hostile}");
        assert!(!page.html.contains(hostile), "{hostile}");
    }
}

#[test]
fn see_other_names_where_to_go() {
    let page = peak_pages::see_other(
        &brand(None),
        "https://idp.example/reset?ticket=x&a=1",
        "Continue",
    );
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        header_of(&page, header::LOCATION),
        "https://idp.example/reset?ticket=x&a=1"
    );
}
