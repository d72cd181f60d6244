//! Every kind of email rendered for a fixed brand and fixed data, compared
//! with `tests/snapshots/<name>.{subject,html,txt}`.
//!
//! To (re)write the snapshots after changing a template:
//! `UPDATE_SNAPSHOTS=1 cargo test -p peak-email --test snapshots`, then read
//! the diff before committing it.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{RESET_LINK, brand, cases, mail};
use peak_domain::outbox::EmailKind;
use peak_email::render;

fn snapshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots")
}

fn updating() -> bool {
    std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1")
}

fn check(file: &str, actual: &str, failures: &mut Vec<String>) {
    let path = snapshot_dir().join(file);
    if updating() {
        std::fs::create_dir_all(snapshot_dir()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    match std::fs::read_to_string(&path) {
        Ok(expected) if expected == actual => {}
        Ok(expected) => failures.push(format!(
            "{file} differs from the snapshot\n--- expected\n{expected}\n--- actual\n{actual}\n"
        )),
        Err(e) => failures.push(format!("{file}: cannot read the snapshot ({e})")),
    }
}

#[test]
fn every_email_matches_its_snapshot() {
    let brand = brand();
    let mut failures = Vec::new();
    let mut expected_files = BTreeSet::new();
    for (name, mail, link) in cases() {
        let email = render(&mail, &brand, link).unwrap_or_else(|e| panic!("{name}: {e}"));
        for (ext, body) in [
            ("subject", &email.subject),
            ("html", &email.html),
            ("txt", &email.text),
        ] {
            let file = format!("{name}.{ext}");
            check(&file, body, &mut failures);
            expected_files.insert(file);
        }
    }
    // A snapshot no case writes any more is stale.
    for entry in std::fs::read_dir(snapshot_dir()).unwrap() {
        let file = entry.unwrap().file_name().to_string_lossy().into_owned();
        if !expected_files.contains(&file) {
            if updating() {
                std::fs::remove_file(snapshot_dir().join(&file)).unwrap();
            } else {
                failures.push(format!("{file}: stale snapshot, no case renders it"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n(run with UPDATE_SNAPSHOTS=1 to accept the new output)",
        failures.join("\n")
    );
}

#[test]
fn a_hostile_first_name_is_escaped_in_html_and_verbatim_in_text() {
    let (_, mail, link) = cases()
        .into_iter()
        .find(|(name, ..)| *name == "invitation_script_name")
        .unwrap();
    let email = render(&mail, &brand(), link).unwrap();
    // askama's HTML escaper writes numeric character references: `&#60;` is
    // `&lt;`, `&#62;` is `&gt;` (as safe, and read the same by every client).
    assert!(
        email
            .html
            .contains("Hi &#60;script&#62;alert(1)&#60;/script&#62;,"),
        "{}",
        email.html
    );
    assert!(!email.html.contains("<script"), "{}", email.html);
    assert!(!email.html.contains("</script"), "{}", email.html);
    assert!(
        email.html.contains("Tom O&#39;Neil &#38; &#34;Sons&#34;"),
        "{}",
        email.html
    );
    assert!(
        email.text.contains("Hi <script>alert(1)</script>,"),
        "{}",
        email.text
    );
    assert!(
        email.text.contains("Tom O'Neil & \"Sons\" has invited you"),
        "{}",
        email.text
    );
}

#[test]
fn every_email_names_the_brand_and_links_the_portal() {
    let brand = brand();
    for (name, mail, link) in cases() {
        let email = render(&mail, &brand, link).unwrap();
        assert!(
            email.subject.contains("Acme Portal"),
            "{name}: {}",
            email.subject
        );
        assert!(
            email
                .html
                .contains(r#"<a href="https://portal.acme.example" "#),
            "{name}: {}",
            email.html
        );
        assert!(
            email.text.contains("\nhttps://portal.acme.example\n"),
            "{name}: {}",
            email.text
        );
    }
}

#[test]
fn reset_wording_depends_on_who_asked() {
    let render_reset = |by| {
        render(
            &mail(EmailKind::PasswordReset, common::reset_data(by)),
            &brand(),
            Some(RESET_LINK),
        )
        .unwrap()
    };
    let admin = render_reset("admin");
    let own = render_reset("self");
    assert!(admin.text.contains("An administrator of Acme Portal"));
    assert!(!own.text.contains("administrator of"));
    assert!(own.text.contains("We received a request"));
    // `&` in a link is an entity in HTML and a plain `&` in text.
    assert!(admin.html.contains("ticket=rst-token&#38;flow=reset"));
    assert!(admin.text.contains("ticket=rst-token&flow=reset"));
}
