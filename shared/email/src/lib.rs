//! Email content. `render` turns an outbox record into the email a person
//! receives, in the tenant's brand: a subject, an HTML body and a plain-text
//! body.
//!
//! The bodies come from askama templates under `templates/`, compiled and
//! checked at build time: one HTML and one plain-text template per kind, the
//! HTML ones extending `layout.html`, the text ones `layout.txt`. HTML
//! templates escape every value (askama's default for `.html`); text
//! templates escape nothing (`escape = "none"`), so a name reads as typed.

use std::collections::HashMap;

use askama::Template;
use peak_domain::TenantId;
use peak_domain::outbox::{EmailKind, OutboxEmail};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

/// How one tenant's emails look and where they come from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Brand {
    /// Shown in subjects and greetings, e.g. "Acme Portal".
    pub name: String,
    /// The From address (a verified SES identity).
    pub sender: String,
    #[serde(default)]
    pub reply_to: Option<String>,
    /// The portal's base URL; every link in an email is absolute to it.
    pub portal_url: String,
    /// The colour of buttons and links (`#rrggbb`), in emails and on the
    /// pages their links open; white text on it must be readable (WCAG AA,
    /// contrast at least 4.5:1). Default [`DEFAULT_ACCENT`].
    #[serde(default)]
    pub accent_color: Option<String>,
}

/// The accent colour of a brand that names none.
pub const DEFAULT_ACCENT: &str = "#1f4fd1";

impl Brand {
    /// The brand's accent colour (checked when the brands were read).
    pub fn accent(&self) -> &str {
        self.accent_color.as_deref().unwrap_or(DEFAULT_ACCENT)
    }

    /// This (deployment) brand under a tenant's own record, which wins
    /// where it says something: its display name, its sender (the admins'
    /// display name at the operator's address), its reply-to when set, and
    /// its portal URL. The colour stays the deployment's.
    pub fn under(&self, tenant: &peak_domain::model::tenant::Tenant) -> Brand {
        Brand {
            name: tenant.display_name.clone(),
            sender: tenant.sender(),
            reply_to: tenant
                .settings
                .reply_to
                .as_ref()
                .map(|r| r.as_str().to_owned())
                .or_else(|| self.reply_to.clone()),
            portal_url: tenant.portal_url.clone(),
            accent_color: self.accent_color.clone(),
        }
    }
}

/// The contrast ratio of white against `#rrggbb` (WCAG 2 relative
/// luminance); `None` when it is not such a colour.
pub fn contrast_with_white(hex: &str) -> Option<f64> {
    let digits = hex.strip_prefix('#').filter(|d| d.len() == 6)?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let channel = |i: usize| -> Option<f64> {
        let c = f64::from(u8::from_str_radix(&digits[i..i + 2], 16).ok()?) / 255.0;
        Some(if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        })
    };
    let l = 0.2126 * channel(0)? + 0.7152 * channel(2)? + 0.0722 * channel(4)?;
    Some(1.05 / (l + 0.05))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub html: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The outbox record lacks a value this kind of email needs.
    #[error("the email data lacks `{0}`")]
    MissingField(&'static str),
    /// A value is there but unusable (not a string, an unreadable date, an
    /// unknown `initiated_by`). The value itself is not repeated.
    #[error("the email data's `{0}` is not valid")]
    InvalidField(&'static str),
    /// A link (`link`, or the brand's `portal_url`) is not an absolute
    /// http(s) URL, even after resolving a relative link against the portal.
    /// The link is not repeated: it may hold a one-time token.
    #[error("`{0}` is not an absolute http(s) URL")]
    BadLink(&'static str),
    /// The template engine failed (only a formatting error can get here).
    #[error("rendering the template failed: {0}")]
    Template(String),
}

impl From<askama::Error> for RenderError {
    fn from(e: askama::Error) -> Self {
        Self::Template(e.to_string())
    }
}

/// Every tenant's brand: a default, and the tenants that have their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brands {
    default: Brand,
    by_tenant: HashMap<String, Brand>,
}

/// The shape of `EMAIL_BRANDS`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BrandsFile {
    default: Brand,
    #[serde(default)]
    tenants: HashMap<String, Brand>,
}

impl Brands {
    /// Every tenant gets `default`.
    pub fn new(default: Brand) -> Self {
        Self {
            default,
            by_tenant: HashMap::new(),
        }
    }

    /// Gives `tenant` its own brand.
    pub fn with_tenant(mut self, tenant: &TenantId, brand: Brand) -> Self {
        self.by_tenant.insert(tenant.as_str().to_owned(), brand);
        self
    }

    /// The tenant's own brand, or the default.
    pub fn for_tenant(&self, tenant: &TenantId) -> &Brand {
        self.by_tenant.get(tenant.as_str()).unwrap_or(&self.default)
    }

    pub fn default_brand(&self) -> &Brand {
        &self.default
    }

    /// Reads `{"default": {brand}, "tenants": {"acme": {brand}, ...}}`
    /// (`tenants` optional), where a brand is `{"name", "sender",
    /// "reply_to"?, "portal_url", "accent_color"?}`. Refuses unknown keys,
    /// tenant ids that are not tenant ids, and brands with an empty name or
    /// sender, a portal URL that is not absolute http(s), or an accent
    /// colour white text cannot be read on, so that a bad configuration
    /// fails at start rather than at the first send.
    pub fn from_json(json: &str) -> Result<Brands, String> {
        let file: BrandsFile =
            serde_json::from_str(json).map_err(|e| format!("email brands: {e}"))?;
        check_brand("default", &file.default)?;
        let mut by_tenant = HashMap::with_capacity(file.tenants.len());
        for (tenant, brand) in file.tenants {
            if TenantId::parse(&tenant).is_none() {
                return Err(format!("email brands: `{tenant}` is not a tenant id"));
            }
            check_brand(&format!("tenants.{tenant}"), &brand)?;
            by_tenant.insert(tenant, brand);
        }
        Ok(Brands {
            default: file.default,
            by_tenant,
        })
    }
}

fn check_brand(at: &str, brand: &Brand) -> Result<(), String> {
    if brand.name.trim().is_empty() {
        return Err(format!("email brands: {at}.name is empty"));
    }
    if brand.sender.trim().is_empty() {
        return Err(format!("email brands: {at}.sender is empty"));
    }
    if !is_absolute_http(&brand.portal_url) {
        return Err(format!(
            "email brands: {at}.portal_url is not an absolute http(s) URL"
        ));
    }
    if let Some(accent) = &brand.accent_color {
        match contrast_with_white(accent) {
            None => {
                return Err(format!(
                    "email brands: {at}.accent_color is not a #rrggbb colour"
                ));
            }
            Some(ratio) if ratio < 4.5 => {
                return Err(format!(
                    "email brands: {at}.accent_color {accent} is too light for white text \
                     (contrast {ratio:.1}:1, at least 4.5:1 needed)"
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Renders `mail` in `brand`. `link` supplies the link for emails whose link
/// is made at send time (password resets: the identity provider's
/// password-change link); otherwise `mail.data.link` is used. A relative
/// link (starting with `/`) is taken as a path on `brand.portal_url`.
pub fn render(
    mail: &OutboxEmail,
    brand: &Brand,
    link: Option<&str>,
) -> Result<RenderedEmail, RenderError> {
    let data = Data(&mail.data);
    if !is_absolute_http(&brand.portal_url) {
        return Err(RenderError::BadLink("portal_url"));
    }
    let the_link = || match link {
        Some(l) => resolve_link(l, &brand.portal_url),
        None => resolve_link(data.str("link")?, &brand.portal_url),
    };
    let common = |subject: String| -> Result<Common, RenderError> {
        Ok(Common {
            subject,
            brand: brand.name.clone(),
            accent: brand.accent().to_owned(),
            portal_url: brand.portal_url.clone(),
            first_name: data.str("first_name")?.to_owned(),
        })
    };
    let b = &brand.name;
    let (c, html, text) = match mail.kind {
        EmailKind::Invitation | EmailKind::InvitationResent => {
            let resent = mail.kind == EmailKind::InvitationResent;
            let subject = if resent {
                format!("Your new invitation to {b}")
            } else {
                format!("You're invited to {b}")
            };
            let c = common(subject)?;
            let v = Invitation {
                inviter_name: data.str("inviter_name")?.to_owned(),
                expires_on: date_in_words("expires_at", data.str("expires_at")?)?,
                link: the_link()?,
            };
            let (html, text) = if resent {
                pair(
                    &InvitationResentHtml { c: &c, v: &v },
                    &InvitationResentText { c: &c, v: &v },
                )?
            } else {
                pair(
                    &InvitationHtml { c: &c, v: &v },
                    &InvitationText { c: &c, v: &v },
                )?
            };
            (c, html, text)
        }
        EmailKind::EmailChangeVerification => {
            let c = common(format!("Confirm your new email address for {b}"))?;
            let v = Verification { link: the_link()? };
            let (html, text) = pair(
                &VerificationHtml { c: &c, v: &v },
                &VerificationText { c: &c, v: &v },
            )?;
            (c, html, text)
        }
        EmailKind::EmailChangeNotice => {
            let c = common(format!("Your {b} login email is changing"))?;
            let v = Notice {
                new_email_masked: data.str("new_email_masked")?.to_owned(),
            };
            let (html, text) = pair(&NoticeHtml { c: &c, v: &v }, &NoticeText { c: &c, v: &v })?;
            (c, html, text)
        }
        EmailKind::PasswordReset => {
            let by_admin = match data.str("initiated_by")? {
                "admin" => true,
                "self" => false,
                _ => return Err(RenderError::InvalidField("initiated_by")),
            };
            let c = common(format!("Reset your {b} password"))?;
            let v = Reset {
                by_admin,
                link: the_link()?,
            };
            let (html, text) = pair(&ResetHtml { c: &c, v: &v }, &ResetText { c: &c, v: &v })?;
            (c, html, text)
        }
        EmailKind::SuspensionNotice => {
            let c = common(format!("Your {b} access has been suspended"))?;
            let (html, text) = pair(&SuspensionHtml { c: &c }, &SuspensionText { c: &c })?;
            (c, html, text)
        }
    };
    Ok(RenderedEmail {
        subject: c.subject,
        html,
        text,
    })
}

/// Renders both bodies. Each ends with a newline (askama drops the template
/// file's last one).
fn pair(html: &impl Template, text: &impl Template) -> Result<(String, String), RenderError> {
    Ok((body(html)?, body(text)?))
}

fn body(template: &impl Template) -> Result<String, RenderError> {
    let mut s = template.render()?;
    s.push('\n');
    Ok(s)
}

/// The outbox record's template values.
struct Data<'a>(&'a serde_json::Value);

impl<'a> Data<'a> {
    fn str(&self, field: &'static str) -> Result<&'a str, RenderError> {
        match self.0.get(field) {
            None | Some(serde_json::Value::Null) => Err(RenderError::MissingField(field)),
            Some(serde_json::Value::String(s)) => Ok(s),
            Some(_) => Err(RenderError::InvalidField(field)),
        }
    }
}

/// `link` made absolute: a relative link (`/…`) is a path on the portal.
/// The result must be an absolute http(s) URL.
fn resolve_link(link: &str, portal_url: &str) -> Result<String, RenderError> {
    let link = link.trim();
    let absolute = if link.starts_with('/') {
        format!("{}{link}", portal_url.trim_end_matches('/'))
    } else {
        link.to_owned()
    };
    if is_absolute_http(&absolute) {
        Ok(absolute)
    } else {
        Err(RenderError::BadLink("link"))
    }
}

/// `https://host…` or `http://host…`, with nothing that could break out of
/// an attribute or a line (whitespace, control characters, quotes, angle
/// brackets: none of them may appear unencoded in a URL anyway).
fn is_absolute_http(url: &str) -> bool {
    let rest = ["https://", "http://"].iter().find_map(|scheme| {
        url.get(..scheme.len())
            .filter(|s| s.eq_ignore_ascii_case(scheme))
            .map(|_| &url[scheme.len()..])
    });
    match rest {
        Some(rest) => {
            !rest.is_empty()
                && !rest.starts_with('/')
                && !url
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '<' | '>'))
        }
        None => false,
    }
}

/// An RFC 3339 time as its date in words, in UTC: "30 November 2026".
fn date_in_words(field: &'static str, rfc3339: &str) -> Result<String, RenderError> {
    let t = OffsetDateTime::parse(rfc3339, &Rfc3339)
        .map_err(|_| RenderError::InvalidField(field))?
        .to_offset(time::UtcOffset::UTC);
    t.format(format_description!(
        "[day padding:none] [month repr:long] [year]"
    ))
    .map_err(|_| RenderError::InvalidField(field))
}

// ---- template values ------------------------------------------------------

/// What every email shows: the layouts use these.
struct Common {
    subject: String,
    brand: String,
    accent: String,
    portal_url: String,
    first_name: String,
}

/// Invitation and invitation resent.
struct Invitation {
    inviter_name: String,
    expires_on: String,
    link: String,
}

/// Email change: to the new address.
struct Verification {
    link: String,
}

/// Email change: to the old address.
struct Notice {
    new_email_masked: String,
}

struct Reset {
    by_admin: bool,
    link: String,
}

// ---- templates --------------------------------------------------------------

/// One HTML and one plain-text template over the same values.
macro_rules! templates {
    ($html:ident = $html_path:literal, $text:ident = $text_path:literal $(, $values:ty)?) => {
        #[derive(Template)]
        #[template(path = $html_path)]
        struct $html<'a> {
            c: &'a Common,
            $(v: &'a $values,)?
        }

        #[derive(Template)]
        #[template(path = $text_path, escape = "none")]
        struct $text<'a> {
            c: &'a Common,
            $(v: &'a $values,)?
        }
    };
}

templates!(
    InvitationHtml = "invitation.html",
    InvitationText = "invitation.txt",
    Invitation
);
templates!(
    InvitationResentHtml = "invitation_resent.html",
    InvitationResentText = "invitation_resent.txt",
    Invitation
);
templates!(
    VerificationHtml = "email_change_verification.html",
    VerificationText = "email_change_verification.txt",
    Verification
);
templates!(
    NoticeHtml = "email_change_notice.html",
    NoticeText = "email_change_notice.txt",
    Notice
);
templates!(
    ResetHtml = "password_reset.html",
    ResetText = "password_reset.txt",
    Reset
);
templates!(
    SuspensionHtml = "suspension_notice.html",
    SuspensionText = "suspension_notice.txt"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_http_urls() {
        assert!(is_absolute_http("https://portal.example"));
        assert!(is_absolute_http("HTTP://portal.example/x?a=1&b=2"));
        assert!(!is_absolute_http("https://"));
        assert!(!is_absolute_http("https:///path"));
        assert!(!is_absolute_http("javascript:alert(1)"));
        assert!(!is_absolute_http("//evil.example/x"));
        assert!(!is_absolute_http("portal.example"));
        assert!(!is_absolute_http("https://a.example/\"><x"));
        assert!(!is_absolute_http("https://a.example/ x"));
        assert!(!is_absolute_http("https://a.example/\nBcc: x"));
    }

    #[test]
    fn relative_links_are_paths_on_the_portal() {
        let r = |l| resolve_link(l, "https://portal.example/");
        assert_eq!(
            r("/invite/abc").unwrap(),
            "https://portal.example/invite/abc"
        );
        assert_eq!(
            r("//evil.example/x").unwrap(),
            "https://portal.example//evil.example/x"
        );
        assert_eq!(r("https://idp.example/t").unwrap(), "https://idp.example/t");
        assert_eq!(r("invite/abc"), Err(RenderError::BadLink("link")));
        assert_eq!(r("javascript:alert(1)"), Err(RenderError::BadLink("link")));
        assert_eq!(r(""), Err(RenderError::BadLink("link")));
    }

    #[test]
    fn accent_colours_must_carry_white_text() {
        // White on the default blue reads; on yellow it does not.
        assert!(contrast_with_white(DEFAULT_ACCENT).unwrap() >= 4.5);
        assert!(contrast_with_white("#ffd400").unwrap() < 4.5);
        assert_eq!(
            contrast_with_white("#000000").map(|r| r.round()),
            Some(21.0)
        );
        assert_eq!(contrast_with_white("1f4fd1"), None);
        assert_eq!(contrast_with_white("#1f4fdz"), None);
        let brands = |accent: &str| {
            Brands::from_json(&format!(
                r#"{{"default": {{"name": "P", "sender": "p@x.example",
                    "portal_url": "https://p.example", "accent_color": "{accent}"}}}}"#
            ))
        };
        assert!(brands("#0b6e4f").is_ok());
        assert!(brands("#ffd400").unwrap_err().contains("too light"));
        assert!(brands("red").unwrap_err().contains("#rrggbb"));
    }

    #[test]
    fn dates_in_words() {
        assert_eq!(
            date_in_words("expires_at", "2026-11-30T09:15:00Z").unwrap(),
            "30 November 2026"
        );
        assert_eq!(
            date_in_words("expires_at", "2026-12-01T01:00:00+02:00").unwrap(),
            "30 November 2026"
        );
        assert_eq!(
            date_in_words("expires_at", ""),
            Err(RenderError::InvalidField("expires_at"))
        );
    }
}
