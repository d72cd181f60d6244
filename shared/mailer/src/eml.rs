//! The local sender: every email becomes an RFC 5322 `.eml` file
//! (multipart/alternative, plain text then HTML, UTF-8) in a folder that any
//! mail client opens, plus one console line with the email's links.

use crate::{EmailSender, OutgoingEmail, SendError};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

/// Writes `<dir>/<outbox id>[-<kind>].eml` and prints
/// `mail: <kind> to a***@example.com -> <links>`. The same email sent again
/// overwrites its own file.
#[derive(Debug, Clone)]
pub struct EmlFolderSender {
    dir: PathBuf,
    /// Print the console line (on by default).
    console: bool,
}

impl EmlFolderSender {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            console: true,
        }
    }

    /// Without the console line (tests).
    pub fn quiet(mut self) -> Self {
        self.console = false;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file an email is written to.
    pub fn path_of(&self, email: &OutgoingEmail) -> PathBuf {
        let mut name = safe_file_part(&email.idempotency_id);
        if let Some(kind) = &email.kind {
            name.push('-');
            name.push_str(&safe_file_part(kind));
        }
        name.push_str(".eml");
        self.dir.join(name)
    }
}

#[async_trait]
impl EmailSender for EmlFolderSender {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError> {
        let message_id = format!(
            "{}@peak-users.localhost",
            safe_file_part(&email.idempotency_id)
        );
        let eml = to_eml(email, &message_id, OffsetDateTime::now_utc());
        let path = self.path_of(email);
        let dir = self.dir.clone();
        let written = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            // Write then rename: a reader never sees half a file.
            let tmp = path.with_extension("eml.tmp");
            std::fs::write(&tmp, eml)?;
            std::fs::rename(&tmp, &path)
        })
        .await
        .map_err(|e| SendError::Transient(format!("writing the .eml did not finish: {e}")))?;
        written.map_err(|e| {
            SendError::Transient(format!(
                "cannot write the .eml into {}: {e}",
                self.dir.display()
            ))
        })?;
        if self.console {
            let links = action_links(&email.text);
            println!(
                "mail: {} to {} -> {}",
                email.kind.as_deref().unwrap_or(&email.subject),
                email.to.masked(),
                if links.is_empty() {
                    "(no link)".to_owned()
                } else {
                    links.join(" ")
                }
            );
        }
        Ok(message_id)
    }
}

/// The http(s) links in a text, in order, each once.
pub(crate) fn links_in(text: &str) -> Vec<String> {
    let mut links: Vec<String> = Vec::new();
    for word in text.split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\'')) {
        let Some(start) = word.find("http://").or_else(|| word.find("https://")) else {
            continue;
        };
        let link = word[start..].trim_end_matches(['.', ',', ';', ':', ')', ']', '!', '?']);
        if !links.iter().any(|l| l == link) {
            links.push(link.to_owned());
        }
    }
    links
}

/// The links worth printing: every link but those that are only the base
/// of another one (the portal's address in the footer, say).
pub(crate) fn action_links(text: &str) -> Vec<String> {
    let links = links_in(text);
    links
        .iter()
        .filter(|l| {
            !links
                .iter()
                .any(|other| other != *l && other.starts_with(l.as_str()))
        })
        .cloned()
        .collect()
}

fn safe_file_part(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if cleaned.is_empty() {
        "email".to_owned()
    } else {
        cleaned
    }
}

/// The email as an RFC 5322 message: CRLF line ends, RFC 2047 encoded
/// words for non-ASCII header text, multipart/alternative with the plain
/// text first, each part UTF-8 in 8bit (or quoted-printable when a line is
/// too long for 8bit).
pub fn to_eml(email: &OutgoingEmail, message_id: &str, date: OffsetDateTime) -> String {
    let boundary = boundary_for(email);
    let mut m = String::new();
    let date = date
        .format(&Rfc2822)
        .unwrap_or_else(|_| "Thu, 01 Jan 1970 00:00:00 +0000".to_owned());
    header(&mut m, "Date", &date);
    header(&mut m, "From", &address_header(&email.from));
    header(&mut m, "To", &address_header(email.to.as_str()));
    if let Some(reply_to) = &email.reply_to {
        header(&mut m, "Reply-To", &address_header(reply_to));
    }
    header(&mut m, "Subject", &encode_words(&email.subject));
    header(&mut m, "Message-ID", &format!("<{message_id}>"));
    header(&mut m, "MIME-Version", "1.0");
    header(
        &mut m,
        "X-Peak-Outbox-Id",
        &safe_file_part(&email.idempotency_id),
    );
    header(
        &mut m,
        "Content-Type",
        &format!("multipart/alternative; boundary=\"{boundary}\""),
    );
    m.push_str("\r\n");
    m.push_str("This is a multi-part message in MIME format.\r\n");
    for (subtype, body) in [("plain", &email.text), ("html", &email.html)] {
        let (encoding, encoded) = encode_body(body);
        let _ = write!(
            m,
            "\r\n--{boundary}\r\nContent-Type: text/{subtype}; charset=UTF-8\r\n\
             Content-Transfer-Encoding: {encoding}\r\n\r\n{encoded}"
        );
    }
    let _ = write!(m, "\r\n--{boundary}--\r\n");
    m
}

fn header(m: &mut String, name: &str, value: &str) {
    let _ = write!(m, "{name}: {value}\r\n");
}

/// A boundary that appears in neither body.
fn boundary_for(email: &OutgoingEmail) -> String {
    let base = format!("=_peak_{}", safe_file_part(&email.idempotency_id));
    let mut boundary = base.clone();
    let mut n = 0u32;
    while email.text.contains(&boundary) || email.html.contains(&boundary) {
        n += 1;
        boundary = format!("{base}_{n}");
    }
    boundary
}

/// `addr`, or `Name <addr>` with the name quoted or encoded as needed.
fn address_header(raw: &str) -> String {
    let raw = strip_controls(raw);
    match (raw.rfind('<'), raw.ends_with('>')) {
        (Some(open), true) => {
            let name = raw[..open].trim().trim_matches('"').trim();
            let addr = &raw[open..];
            if name.is_empty() {
                addr.to_owned()
            } else if name.is_ascii() {
                format!("\"{}\" {addr}", name.replace(['\\', '"'], ""))
            } else {
                format!("{} {addr}", encode_words(name))
            }
        }
        _ => raw.trim().to_owned(),
    }
}

fn strip_controls(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_control()).collect()
}

/// Header text: as is when printable ASCII, else RFC 2047 base64 encoded
/// words of at most 75 characters each, folded onto continuation lines.
fn encode_words(raw: &str) -> String {
    let text = strip_controls(raw);
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) && !text.contains("=?") {
        return text;
    }
    // "=?UTF-8?B?" + "?=" is 12 characters; 45 bytes make 60 of base64.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(&chunk)));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(&chunk)));
    }
    words.join("\r\n ")
}

/// A body with CRLF line ends: 8bit if every line fits in 998 bytes,
/// otherwise quoted-printable.
fn encode_body(body: &str) -> (&'static str, String) {
    let lines: Vec<&str> = body.split('\n').map(|l| l.trim_end_matches('\r')).collect();
    if lines.iter().all(|l| l.len() <= 998) {
        return ("8bit", lines.join("\r\n"));
    }
    ("quoted-printable", quoted_printable(&lines))
}

fn quoted_printable(lines: &[&str]) -> String {
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        let mut width = 0;
        let bytes = line.as_bytes();
        for (j, &b) in bytes.iter().enumerate() {
            let last = j + 1 == bytes.len();
            let literal =
                (b == b' ' || b == b'\t') && !last || (0x21..=0x7e).contains(&b) && b != b'=';
            let piece = if literal {
                (b as char).to_string()
            } else {
                format!("={b:02X}")
            };
            if width + piece.len() > 75 {
                out.push_str("=\r\n");
                width = 0;
            }
            out.push_str(&piece);
            width += piece.len();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use peak_domain::model::user::Email;
    use time::macros::datetime;

    fn sample() -> OutgoingEmail {
        OutgoingEmail {
            from: "Acme Portál <no-reply@acme.example>".into(),
            reply_to: Some("support@acme.example".into()),
            to: Email::parse("jane.doe@example.com").unwrap(),
            subject: "Willkommen bei Acme – Ihre Einladung".into(),
            html: "<p>Hallo Jörg,</p>\n<p><a href=\"https://acme.example/invitations/tok\">Annehmen</a></p>".into(),
            text: "Hallo Jörg,\n\nAnnehmen: https://acme.example/invitations/tok.\n".into(),
            configuration_set: None,
            idempotency_id: "01JAAAAAAAAAAAAAAAAAAAAAAA".into(),
            kind: Some("invitation".into()),
        }
    }

    #[test]
    fn an_eml_has_headers_and_both_parts() {
        let eml = to_eml(&sample(), "x@peak", datetime!(2025-03-04 05:06:07 UTC));
        assert!(
            eml.starts_with("Date: Tue, 04 Mar 2025 05:06:07 +0000\r\n"),
            "{eml}"
        );
        assert!(eml.contains("\r\nFrom: =?UTF-8?B?"), "{eml}");
        assert!(eml.contains(" <no-reply@acme.example>\r\n"));
        assert!(eml.contains("\r\nTo: jane.doe@example.com\r\n"));
        assert!(eml.contains("\r\nReply-To: support@acme.example\r\n"));
        assert!(eml.contains("\r\nSubject: =?UTF-8?B?"));
        assert!(eml.contains("\r\nMessage-ID: <x@peak>\r\n"));
        assert!(eml.contains("\r\nMIME-Version: 1.0\r\n"));
        assert!(
            eml.contains("multipart/alternative; boundary=\"=_peak_01JAAAAAAAAAAAAAAAAAAAAAAA\"")
        );
        let plain = eml.find("Content-Type: text/plain; charset=UTF-8").unwrap();
        let html = eml.find("Content-Type: text/html; charset=UTF-8").unwrap();
        assert!(plain < html, "plain text first, HTML last (preferred)");
        assert!(eml.contains("Annehmen: https://acme.example/invitations/tok.\r\n"));
        assert!(eml.ends_with("--=_peak_01JAAAAAAAAAAAAAAAAAAAAAAA--\r\n"));
        assert!(!eml.replace("\r\n", "").contains('\n'), "CRLF only");
        assert!(!eml.replace("\r\n", "").contains('\r'), "CRLF only");
    }

    #[test]
    fn encoded_subjects_decode_back() {
        let subject = "Ünïcödé ".repeat(12);
        let encoded = encode_words(&subject);
        let decoded: String = encoded
            .split("\r\n ")
            .map(|w| {
                assert!(w.len() <= 75, "{w}");
                let b64 = w
                    .strip_prefix("=?UTF-8?B?")
                    .unwrap()
                    .strip_suffix("?=")
                    .unwrap();
                String::from_utf8(STANDARD.decode(b64).unwrap()).unwrap()
            })
            .collect();
        assert_eq!(decoded, subject);
        assert_eq!(encode_words("Plain subject"), "Plain subject");
        assert_eq!(encode_words("Injected\r\nBcc: x@y.z"), "InjectedBcc: x@y.z");
    }

    #[test]
    fn long_lines_go_quoted_printable() {
        let long = format!("{}é=", "a".repeat(1200));
        let (encoding, body) = encode_body(&long);
        assert_eq!(encoding, "quoted-printable");
        assert!(body.split("\r\n").all(|l| l.len() <= 76));
        assert!(body.contains("=C3=A9=3D"));
        assert_eq!(encode_body("short\nlines").0, "8bit");
    }

    #[test]
    fn links_are_found_once_without_trailing_punctuation() {
        assert_eq!(
            links_in(
                "Go to https://a.example/x?t=1. Or (http://b.example/y) or https://a.example/x?t=1"
            ),
            ["https://a.example/x?t=1", "http://b.example/y"]
        );
        assert!(links_in("nothing").is_empty());
        assert_eq!(
            action_links("Open http://h:3000/invitations/t\n--\nhttp://h:3000\n"),
            ["http://h:3000/invitations/t"]
        );
        assert_eq!(action_links("--\nhttp://h:3000\n"), ["http://h:3000"]);
    }

    #[tokio::test]
    async fn the_folder_gets_one_file_per_email() {
        let dir = std::env::temp_dir().join(format!("peak-eml-{}", std::process::id()));
        let sender = EmlFolderSender::new(&dir).quiet();
        let email = sample();
        let id = sender.send(&email).await.unwrap();
        let again = sender.send(&email).await.unwrap();
        assert_eq!(id, again);
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(files.len(), 1, "sending twice overwrites");
        let path = sender.path_of(&email);
        assert!(path.ends_with("01JAAAAAAAAAAAAAAAAAAAAAAA-invitation.eml"));
        let eml = std::fs::read_to_string(&path).unwrap();
        assert!(eml.contains("https://acme.example/invitations/tok"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
