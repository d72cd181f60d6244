//! The pages a person opens from an email — an invitation, an email-change
//! confirmation, and every way those links can end — rendered on the server
//! with askama (the engine of the emails) in the tenant's brand.
//!
//! Each page is one small HTML document with its style inline and no script
//! at all: the [`Page`] carries the headers that say so to the browser (a
//! strict Content-Security-Policy that allows exactly that style by its
//! hash), keep it out of caches, keep the link's token out of `Referer`, and
//! forbid framing. Buttons are plain form POSTs, so nothing needs
//! JavaScript; the layout works from 360 px wide up.
//!
//! The local run's stand-ins (the development identity provider's
//! set-password page, the portal's sign-in page) extend the same layout: see
//! [`Frame`] and [`Page::new`].

use askama::Template;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderName, HeaderValue, StatusCode, header};
use peak_domain::users::{EmailVerificationView, InvitationView, LinkState, VerificationState};
use peak_email::{Brand, DEFAULT_ACCENT, contrast_with_white};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::macros::format_description;

/// What every page shows around its content: the brand, the title, the
/// style in the brand's colour, the portal link in the footer.
pub struct Frame {
    pub brand: String,
    pub title: String,
    pub portal_url: String,
    /// A line beside the brand (the stand-ins say what they stand in for).
    pub note: Option<String>,
    pub css: String,
}

impl Frame {
    pub fn new(brand: &Brand, title: impl Into<String>) -> Self {
        Frame {
            brand: brand.name.clone(),
            title: title.into(),
            portal_url: brand.portal_url.clone(),
            note: None,
            css: stylesheet(brand.accent()),
        }
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
}

/// The one stylesheet, in `accent` (any value that is not a `#rrggbb`
/// colour readable under white text is replaced by the default, so no
/// brand can break out of the style).
fn stylesheet(accent: &str) -> String {
    let accent = match contrast_with_white(accent) {
        Some(ratio) if ratio >= 4.5 => accent,
        _ => DEFAULT_ACCENT,
    };
    include_str!("../templates/pages.css")
        .trim_end()
        .replace("ACCENT", accent)
}

/// A rendered page: its status, its HTML, and the hash of its inline style
/// (the only thing its Content-Security-Policy lets run or apply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub status: StatusCode,
    pub html: String,
    /// Where a `303 See Other` sends the browser.
    pub location: Option<String>,
    style_hash: String,
}

impl Page {
    /// Renders `template` (which extends `layout.html` with `frame` as `f`).
    pub fn new(status: StatusCode, frame: &Frame, template: &impl Template) -> Page {
        let html = template.render().unwrap_or_else(|e| {
            // Only a formatting error can get here; a bare page still says something.
            format!("<!DOCTYPE html><title>Error</title><p>This page could not be shown ({e}).</p>")
        });
        Page {
            status,
            html,
            location: None,
            style_hash: STANDARD.encode(Sha256::digest(frame.css.as_bytes())),
        }
    }

    /// The policy: nothing may load or run but this page's own style (by
    /// its hash) and its own images; forms post to this origin, or to an
    /// https origin after a redirect (accepting an invitation answers 303
    /// to the identity provider's password page, and browsers check that
    /// redirect against `form-action`); no framing; no `<base>`.
    pub fn content_security_policy(&self) -> String {
        format!(
            "default-src 'none'; style-src 'sha256-{}'; img-src 'self'; \
             form-action 'self' https:; frame-ancestors 'none'; base-uri 'none'",
            self.style_hash
        )
    }

    /// Every header a page is sent with (besides the status).
    pub fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let mut h = vec![
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            // The page shows a one-time link's state: never from a cache.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            // The link's token must not reach the identity provider or the
            // portal through `Referer`.
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            // The same URL answers JSON to API clients.
            (header::VARY, HeaderValue::from_static("Accept")),
        ];
        if let Ok(csp) = HeaderValue::from_str(&self.content_security_policy()) {
            h.push((header::CONTENT_SECURITY_POLICY, csp));
        }
        if let Some(location) = self
            .location
            .as_deref()
            .and_then(|l| HeaderValue::from_str(l).ok())
        {
            h.push((header::LOCATION, location));
        }
        h
    }

    /// As an `http` response (the local server's stand-ins use this).
    pub fn into_response(self) -> http::Response<String> {
        let mut resp = http::Response::new(String::new());
        *resp.status_mut() = self.status;
        for (name, value) in self.headers() {
            resp.headers_mut().insert(name, value);
        }
        *resp.body_mut() = self.html;
        resp
    }
}

/// "30 November 2026" (UTC).
fn date_in_words(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[day padding:none] [month repr:long] [year]"
        ))
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "invitation.html")]
struct InvitationPage<'a> {
    f: &'a Frame,
    v: &'a InvitationView,
    expires_on: String,
    accept_url: &'a str,
}

/// An invitation link in its state: pending (200, one button that posts to
/// `accept_url`), expired, revoked or used (410).
pub fn invitation(brand: &Brand, view: &InvitationView, accept_url: &str) -> Page {
    let (status, title) = match view.state {
        LinkState::Pending => (StatusCode::OK, format!("You're invited to {}", brand.name)),
        LinkState::Expired => (StatusCode::GONE, "This invitation has expired".to_owned()),
        LinkState::Revoked => (StatusCode::GONE, "This invitation was withdrawn".to_owned()),
        LinkState::Used => (
            StatusCode::GONE,
            "You have already accepted this invitation".to_owned(),
        ),
    };
    let f = Frame::new(brand, title);
    Page::new(
        status,
        &f,
        &InvitationPage {
            f: &f,
            v: view,
            expires_on: date_in_words(view.expires_at),
            accept_url,
        },
    )
}

#[derive(Template)]
#[template(path = "link_not_valid.html")]
struct LinkNotValidPage<'a> {
    f: &'a Frame,
}

/// A link that is unknown, replaced by a newer one, or (email changes)
/// already used: one page for all, so it reveals nothing (404).
pub fn link_not_valid(brand: &Brand) -> Page {
    let f = Frame::new(brand, "This link is not valid");
    Page::new(StatusCode::NOT_FOUND, &f, &LinkNotValidPage { f: &f })
}

#[derive(Template)]
#[template(path = "portal_closed.html")]
struct PortalClosedPage<'a> {
    f: &'a Frame,
}

/// A link of a tenant an operator closed (403): nothing can be accepted or
/// confirmed, and no sign-in is offered.
pub fn portal_closed(brand: &Brand) -> Page {
    let f = Frame::new(brand, "This portal is closed");
    Page::new(StatusCode::FORBIDDEN, &f, &PortalClosedPage { f: &f })
}

#[derive(Template)]
#[template(path = "email_verification.html")]
struct EmailVerificationPage<'a> {
    f: &'a Frame,
    v: &'a EmailVerificationView,
    expires_on: String,
    confirm_url: &'a str,
}

/// An email-change link: pending (200, one button that posts to
/// `confirm_url`) or expired (410).
pub fn email_verification(brand: &Brand, view: &EmailVerificationView, confirm_url: &str) -> Page {
    let (status, title) = match view.state {
        VerificationState::Pending => (StatusCode::OK, "Confirm your new email address"),
        VerificationState::Expired => (StatusCode::GONE, "This confirmation link has expired"),
    };
    let f = Frame::new(brand, title);
    Page::new(
        status,
        &f,
        &EmailVerificationPage {
            f: &f,
            v: view,
            expires_on: date_in_words(view.expires_at),
            confirm_url,
        },
    )
}

#[derive(Template)]
#[template(path = "email_verified.html")]
struct EmailVerifiedPage<'a> {
    f: &'a Frame,
    masked_email: &'a str,
}

/// Done: the new address is the login email; sign in with it.
pub fn email_verified(brand: &Brand, masked_email: &str) -> Page {
    let f = Frame::new(brand, "Your new email address is confirmed");
    Page::new(
        StatusCode::OK,
        &f,
        &EmailVerifiedPage {
            f: &f,
            masked_email,
        },
    )
}

#[derive(Template)]
#[template(path = "trouble.html")]
struct TroublePage<'a> {
    f: &'a Frame,
    message: &'a str,
    request_id: &'a str,
}

/// Something on our side failed (`status` 5xx): try again later; the link
/// still works, since nothing changed.
pub fn trouble(brand: &Brand, status: StatusCode, request_id: &str) -> Page {
    let (title, message) = if status == StatusCode::SERVICE_UNAVAILABLE {
        (
            "Please try again in a minute",
            "We could not finish this just now because a service we depend on is busy. \
             Nothing has changed: your link still works, so try again shortly.",
        )
    } else {
        (
            "Something went wrong",
            "We could not finish this because of an error on our side. \
             Nothing has changed: your link still works, so try again later.",
        )
    };
    let f = Frame::new(brand, title);
    Page::new(
        status,
        &f,
        &TroublePage {
            f: &f,
            message,
            request_id,
        },
    )
}

#[derive(Template)]
#[template(path = "see_other.html")]
struct SeeOtherPage<'a> {
    f: &'a Frame,
    location: &'a str,
    label: &'a str,
}

/// `303 See Other` to `location` (a browser follows it at once; the body's
/// link is for anything that does not).
pub fn see_other(brand: &Brand, location: &str, label: &str) -> Page {
    let f = Frame::new(brand, label);
    let mut page = Page::new(
        StatusCode::SEE_OTHER,
        &f,
        &SeeOtherPage {
            f: &f,
            location,
            label,
        },
    );
    page.location = Some(location.to_owned());
    page
}
