//! Email content. `render` turns an outbox record into the email a person
//! receives, in the tenant's brand. (Skeleton: the templates come next.)

use peak_domain::outbox::OutboxEmail;
use serde::Deserialize;

/// How one tenant's emails look and where they come from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Brand {
    /// Shown in subjects and greetings, e.g. "Acme Portal".
    pub name: String,
    /// The From address (a verified SES identity).
    pub sender: String,
    #[serde(default)]
    pub reply_to: Option<String>,
    /// The portal's base URL; every link in an email is absolute to it.
    pub portal_url: String,
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
}

/// Renders `mail` in `brand`. `link` supplies the link for emails whose link
/// is made at send time (password resets: the identity provider's
/// password-change link); otherwise `mail.data.link` is used.
pub fn render(mail: &OutboxEmail, brand: &Brand, link: Option<&str>) -> Result<RenderedEmail, RenderError> {
    let link = link
        .map(str::to_owned)
        .or_else(|| mail.data.get("link").and_then(|l| l.as_str()).map(str::to_owned));
    let subject = format!("{}: {:?}", brand.name, mail.kind);
    let text = format!("{subject}\n\n{}\n", link.as_deref().unwrap_or(""));
    Ok(RenderedEmail {
        subject,
        html: format!("<p>{}</p>", text),
        text,
    })
}
