//! `cargo xtask`: writes every file generated from the operations
//! (`shared/api/src/operations.rs`), and removes binaries no operation
//! names. The tests below fail when a checked-in file differs from what
//! would be written.
//!
//! `cargo xtask shape`: checks the code's shape (no import circles between
//! a crate's modules, no long source files; see `shape/mod.rs`).

mod bins;
mod events;
mod shape;
mod template;

use std::path::{Path, PathBuf};

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ is in the repository")
        .to_owned()
}

/// Every generated file: (path from the root, contents).
fn generated() -> Result<Vec<(String, String)>, String> {
    let root = root();
    let mut out = bins::files()?;
    out.push((
        "shared/api/src/handlers/table.rs".into(),
        bins::handler_table()?,
    ));
    let cargo =
        std::fs::read_to_string(root.join("functions/Cargo.toml")).map_err(|e| e.to_string())?;
    out.push(("functions/Cargo.toml".into(), bins::cargo_toml(&cargo)));
    let template =
        std::fs::read_to_string(root.join("infra/template.yaml")).map_err(|e| e.to_string())?;
    out.push(("infra/template.yaml".into(), template::render(&template)?));
    out.extend(events::files());
    out.push((
        "docs/openapi.json".into(),
        serde_json::to_string_pretty(&peak_api::openapi::document()).map_err(|e| e.to_string())?
            + "\n",
    ));
    Ok(out)
}

/// Binaries in `functions/src/bin` that are neither a worker nor an
/// operation's function.
fn stale_bins() -> Vec<PathBuf> {
    let dir = root().join("functions/src/bin");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut stale: Vec<_> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            !bins::WORKERS.contains(&name)
                && !peak_api::OPERATIONS.iter().any(|o| o.function == name)
        })
        .collect();
    stale.sort();
    stale
}

fn main() -> Result<(), String> {
    let root = root();
    match std::env::args().nth(1).as_deref() {
        None => {}
        Some("shape") => return shape::run(&root),
        Some(other) => {
            return Err(format!(
                "unknown command {other:?}: `cargo xtask` or `cargo xtask shape`"
            ));
        }
    }
    let files = generated()?;
    let mut changed = 0;
    for (path, text) in &files {
        let full = root.join(path);
        if std::fs::read_to_string(&full).ok().as_deref() != Some(text.as_str()) {
            std::fs::write(&full, text).map_err(|e| format!("{path}: {e}"))?;
            println!("wrote {path}");
            changed += 1;
        }
    }
    for path in stale_bins() {
        std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("removed {}", path.display());
        changed += 1;
    }
    println!("{} files generated, {changed} changed", files.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The drift test for every generated file: binaries, `[[bin]]` list,
    /// template, events, OpenAPI document.
    #[test]
    fn generated_files_are_current() {
        let root = root();
        let mut stale: Vec<String> = generated()
            .unwrap()
            .into_iter()
            .filter(|(path, text)| {
                std::fs::read_to_string(root.join(path)).ok().as_deref() != Some(text.as_str())
            })
            .map(|(path, _)| path)
            .collect();
        stale.extend(stale_bins().iter().map(|p| p.display().to_string()));
        assert!(stale.is_empty(), "stale (run `cargo xtask`): {stale:?}");
    }

    #[test]
    fn every_event_file_is_generated() {
        let generated: std::collections::BTreeSet<_> =
            events::files().into_iter().map(|(p, _)| p).collect();
        for entry in std::fs::read_dir(root().join("events")).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".json") {
                assert!(
                    generated.contains(&format!("events/{name}")),
                    "events/{name} names no operation"
                );
            }
        }
    }
}
