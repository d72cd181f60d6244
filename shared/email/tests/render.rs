//! Render errors, link resolution and brands.

mod common;

use common::{INVITE_LINK, PORTAL, RESET_LINK, brand, mail};
use peak_domain::TenantId;
use peak_domain::outbox::EmailKind;
use peak_email::{Brand, Brands, RenderError, render};
use serde_json::{Value, json};

fn without(mut data: Value, field: &str) -> Value {
    data.as_object_mut().unwrap().remove(field);
    data
}

#[test]
fn a_missing_field_is_named() {
    use EmailKind::*;
    let cases: Vec<(EmailKind, Value, Option<&str>, &str)> = vec![
        (
            Invitation,
            common::invitation_data("Ada", "Grace"),
            None,
            "first_name",
        ),
        (
            Invitation,
            common::invitation_data("Ada", "Grace"),
            None,
            "inviter_name",
        ),
        (
            Invitation,
            common::invitation_data("Ada", "Grace"),
            None,
            "expires_at",
        ),
        (
            Invitation,
            common::invitation_data("Ada", "Grace"),
            None,
            "link",
        ),
        (
            InvitationResent,
            common::invitation_data("Ada", "Grace"),
            None,
            "inviter_name",
        ),
        (
            InvitationResent,
            common::invitation_data("Ada", "Grace"),
            None,
            "link",
        ),
        (
            EmailChangeVerification,
            common::verification_data(),
            None,
            "link",
        ),
        (
            EmailChangeVerification,
            common::verification_data(),
            None,
            "first_name",
        ),
        (
            EmailChangeNotice,
            common::notice_data(),
            None,
            "new_email_masked",
        ),
        (EmailChangeNotice, common::notice_data(), None, "first_name"),
        (
            PasswordReset,
            common::reset_data("self"),
            Some(RESET_LINK),
            "initiated_by",
        ),
        (
            PasswordReset,
            common::reset_data("admin"),
            Some(RESET_LINK),
            "first_name",
        ),
        (
            SuspensionNotice,
            common::suspension_data(),
            None,
            "first_name",
        ),
    ];
    for (kind, data, link, field) in cases {
        let got = render(&mail(kind, without(data, field)), &brand(), link);
        assert_eq!(
            got,
            Err(RenderError::MissingField(field)),
            "{kind:?} without {field}"
        );
    }
}

#[test]
fn a_reset_without_any_link_is_missing_its_link() {
    let got = render(
        &mail(EmailKind::PasswordReset, common::reset_data("self")),
        &brand(),
        None,
    );
    assert_eq!(got, Err(RenderError::MissingField("link")));
}

#[test]
fn data_that_is_not_an_object_is_missing_fields_not_a_panic() {
    for data in [Value::Null, json!([]), json!("x"), json!(1)] {
        let got = render(&mail(EmailKind::SuspensionNotice, data), &brand(), None);
        assert_eq!(got, Err(RenderError::MissingField("first_name")));
    }
    let mut data = common::suspension_data();
    data["first_name"] = Value::Null;
    let got = render(&mail(EmailKind::SuspensionNotice, data), &brand(), None);
    assert_eq!(got, Err(RenderError::MissingField("first_name")));
}

#[test]
fn unusable_values_are_invalid() {
    let mut data = common::invitation_data("Ada", "Grace");
    data["expires_at"] = json!(""); // what the domain writes when there is no invitation
    let got = render(&mail(EmailKind::Invitation, data), &brand(), None);
    assert_eq!(got, Err(RenderError::InvalidField("expires_at")));

    let mut data = common::invitation_data("Ada", "Grace");
    data["first_name"] = json!(42);
    let got = render(&mail(EmailKind::Invitation, data), &brand(), None);
    assert_eq!(got, Err(RenderError::InvalidField("first_name")));

    let got = render(
        &mail(EmailKind::PasswordReset, common::reset_data("robot")),
        &brand(),
        Some(RESET_LINK),
    );
    assert_eq!(got, Err(RenderError::InvalidField("initiated_by")));
}

#[test]
fn the_expiry_date_is_in_words() {
    let email = render(
        &mail(
            EmailKind::Invitation,
            common::invitation_data("Ada", "Grace"),
        ),
        &brand(),
        None,
    )
    .unwrap();
    assert!(
        email.text.contains("expires on 30 November 2026"),
        "{}",
        email.text
    );
    assert!(
        email.html.contains("expires on 30 November 2026"),
        "{}",
        email.html
    );
}

#[test]
fn a_relative_link_is_made_absolute_on_the_brand_portal() {
    let mut data = common::invitation_data("Ada", "Grace");
    data["link"] = json!("/invitations/tok");
    let mut brand = brand();
    brand.portal_url = format!("{PORTAL}/"); // a trailing slash does not double
    let email = render(&mail(EmailKind::Invitation, data), &brand, None).unwrap();
    let absolute = "https://portal.acme.example/invitations/tok";
    assert!(
        email.html.contains(&format!(r#"href="{absolute}""#)),
        "{}",
        email.html
    );
    assert!(
        email.text.contains(&format!("\n{absolute}\n")),
        "{}",
        email.text
    );
    assert!(!email.text.contains("example//invitations"));

    // The same for a link made at send time.
    let email = render(
        &mail(EmailKind::PasswordReset, common::reset_data("self")),
        &brand,
        Some("/reset/abc"),
    )
    .unwrap();
    assert!(
        email
            .text
            .contains("\nhttps://portal.acme.example/reset/abc\n"),
        "{}",
        email.text
    );
}

#[test]
fn an_absolute_link_is_kept_and_the_send_time_link_wins() {
    let email = render(
        &mail(
            EmailKind::Invitation,
            common::invitation_data("Ada", "Grace"),
        ),
        &brand(),
        None,
    )
    .unwrap();
    assert!(email.text.contains(INVITE_LINK));

    let mut data = common::reset_data("self");
    data["link"] = json!("https://stale.example/old");
    let email = render(
        &mail(EmailKind::PasswordReset, data),
        &brand(),
        Some(RESET_LINK),
    )
    .unwrap();
    assert!(email.text.contains(RESET_LINK));
    assert!(!email.text.contains("stale.example"));
}

#[test]
fn a_link_that_is_not_http_is_refused() {
    for bad in [
        "javascript:alert(1)",
        "invitations/tok",
        "ftp://files.example/x",
        "",
        "https://",
    ] {
        let mut data = common::invitation_data("Ada", "Grace");
        data["link"] = json!(bad);
        let got = render(&mail(EmailKind::Invitation, data), &brand(), None);
        assert_eq!(got, Err(RenderError::BadLink("link")), "{bad:?}");
    }
    let got = render(
        &mail(EmailKind::PasswordReset, common::reset_data("admin")),
        &brand(),
        Some("data:text/html,x"),
    );
    assert_eq!(got, Err(RenderError::BadLink("link")));
}

#[test]
fn a_brand_portal_that_is_not_http_is_refused() {
    let mut brand = brand();
    brand.portal_url = "portal.acme.example".into();
    let got = render(
        &mail(EmailKind::SuspensionNotice, common::suspension_data()),
        &brand,
        None,
    );
    assert_eq!(got, Err(RenderError::BadLink("portal_url")));
}

#[test]
fn errors_do_not_repeat_the_link() {
    let mut data = common::invitation_data("Ada", "Grace");
    data["link"] = json!("invitations/secret-token");
    let err = render(&mail(EmailKind::Invitation, data), &brand(), None).unwrap_err();
    assert!(!err.to_string().contains("secret-token"), "{err}");
}

// ---- Brands -----------------------------------------------------------------

const BRANDS: &str = r#"{
    "default": {
        "name": "PeakCommerce",
        "sender": "no-reply@peak.example",
        "portal_url": "https://portal.peak.example"
    },
    "tenants": {
        "acme": {
            "name": "Acme Portal",
            "sender": "Acme Portal <no-reply@acme.example>",
            "reply_to": "support@acme.example",
            "portal_url": "https://portal.acme.example"
        }
    }
}"#;

fn tenant(id: &str) -> TenantId {
    TenantId::parse(id).unwrap()
}

#[test]
fn brands_from_json_give_a_tenant_its_own_brand_or_the_default() {
    let brands = Brands::from_json(BRANDS).unwrap();
    assert_eq!(brands.for_tenant(&tenant("acme")), &brand());
    let other = brands.for_tenant(&tenant("globex"));
    assert_eq!(other.name, "PeakCommerce");
    assert_eq!(other.reply_to, None);
    assert_eq!(brands.default_brand(), other);
}

#[test]
fn brands_without_tenants_are_just_the_default() {
    let brands = Brands::from_json(
        r#"{"default": {"name": "P", "sender": "p@p.example", "portal_url": "http://127.0.0.1:3000"}}"#,
    )
    .unwrap();
    assert_eq!(brands.for_tenant(&tenant("acme")).name, "P");
    assert_eq!(brands, Brands::new(brands.default_brand().clone()));
}

#[test]
fn brands_built_in_code() {
    let default = Brand {
        name: "P".into(),
        ..brand()
    };
    let brands = Brands::new(default.clone()).with_tenant(&tenant("acme"), brand());
    assert_eq!(brands.for_tenant(&tenant("acme")), &brand());
    assert_eq!(brands.for_tenant(&tenant("globex")), &default);
}

#[test]
fn bad_brands_are_refused_with_a_reason() {
    let ok = r#"{"name": "A", "sender": "a@a.example", "portal_url": "https://a.example"}"#;
    let with_default = |rest: &str| format!(r#"{{"default": {ok}{rest}}}"#);
    let brand = |name: &str, sender: &str, portal: &str| {
        format!(r#"{{"name": "{name}", "sender": "{sender}", "portal_url": "{portal}"}}"#)
    };
    let cases = [
        ("not json".to_owned(), "email brands"),
        (r#"{"tenants": {}}"#.to_owned(), "default"),
        (
            with_default(&format!(r#", "tenants": {{"no such tenant": {ok}}}"#)),
            "not a tenant id",
        ),
        (
            format!(r#"{{"default": {}}}"#, brand("A", "a@a.example", "a.example")),
            "default.portal_url",
        ),
        (
            format!(r#"{{"default": {}}}"#, brand("", "a@a.example", "https://a.example")),
            "default.name",
        ),
        (
            with_default(&format!(
                r#", "tenants": {{"acme": {}}}"#,
                brand("A", " ", "https://a.example")
            )),
            "tenants.acme.sender",
        ),
        (
            r#"{"default": {"name": "A", "sender": "a", "portal_url": "https://a.example", "replyTo": "x"}}"#
                .to_owned(),
            "replyTo",
        ),
        (with_default(r#", "tenant": {}"#), "tenant"),
    ];
    for (json, needle) in cases {
        let err = Brands::from_json(&json).unwrap_err();
        assert!(err.contains(needle), "{json}: {err}");
    }
}
