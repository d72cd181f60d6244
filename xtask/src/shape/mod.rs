//! `cargo xtask shape`: the code's shape, checked.
//!
//! 1. **No import circles between a crate's modules.** What a circle is,
//!    decided here: the modules form a tree, and at every level of it the
//!    siblings must not depend on each other in a circle. A module counts
//!    with everything inside it: `handlers::users` using `crate::app` is
//!    `handlers` depending on `app`, so `app` using anything in `handlers`
//!    closes a circle. A module and its own descendants (a child using
//!    `super::…`, a parent calling into its child) never form one: that is
//!    how a module is built from parts. A dependency is any path to another
//!    module in non-test code — `use crate::…`, `use super::…`, `use
//!    child::…`, `crate::x::f()` in code — followed through `pub use`
//!    re-exports to the module that defines the item (`crate::Auth0Client`
//!    is `client`). `#[cfg(test)]` items and files, comments and strings
//!    are not code. Each crate root (library, every binary) is a crate.
//! 2. **No non-test source file over [`MAX_LINES`] lines**, counted
//!    without its `#[cfg(test)]` items (tests may be longer, split by
//!    concern). Not counted: test-only files, and everything under a
//!    `tests/`, `benches/` or `examples/` directory (so the `peak-tests`
//!    crate and integration tests too).
//!
//! The third rule of the shape, one name per operation from route to
//! binary (`Route::UserUpdate` is the function `user-update`), is already
//! a test of peak-api (`routes::tests::every_function_is_named_after_its_route`)
//! and the generators here only write what that name gives, so it is not
//! repeated.
//!
//! It prints what it finds and fails when it finds anything.

mod cycles;
mod lexer;
mod modules;

use modules::{Crate, Evidence, ModPath};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub const MAX_LINES: usize = 800;

/// One circle among the children of `parent` in crate `krate`.
#[derive(Debug)]
pub struct Circle {
    pub krate: String,
    pub parent: ModPath,
    /// The shortest circle through the first module: `[a, b, a]`.
    pub circle: Vec<String>,
    /// Every module of the knot the circle is in (the modules that all
    /// reach each other), sorted.
    pub knot: Vec<String>,
    /// Every dependency between the circle's modules, with where one of
    /// them is written and how many there are.
    pub edges: Vec<(String, String, Evidence, usize)>,
}

impl Circle {
    fn name(&self, m: &str) -> String {
        self.parent
            .iter()
            .map(String::as_str)
            .chain([m])
            .collect::<Vec<_>>()
            .join("::")
    }
}

/// The circles of one crate.
pub fn crate_circles(krate: &str, c: &Crate) -> Vec<Circle> {
    let mut out = Vec::new();
    for (parent, edges) in c.sibling_edges() {
        let pairs: BTreeSet<(String, String)> = edges.keys().cloned().collect();
        for group in cycles::circles(&pairs) {
            let circle = cycles::shortest_circle(&group, &pairs);
            let inside = edges
                .iter()
                .filter(|((a, b), _)| group.contains(a) && group.contains(b))
                .map(|((a, b), ev)| (a.clone(), b.clone(), ev[0].clone(), ev.len()))
                .collect();
            out.push(Circle {
                krate: krate.to_owned(),
                parent: parent.clone(),
                circle,
                knot: group,
                edges: inside,
            });
        }
    }
    out
}

/// A crate root of the workspace: (package name, root file).
fn crate_roots(root: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let mut roots = Vec::new();
    for package in meta["packages"]
        .as_array()
        .ok_or("cargo metadata: no packages")?
    {
        let name = package["name"].as_str().unwrap_or("?");
        for target in package["targets"].as_array().into_iter().flatten() {
            let kinds: Vec<&str> = target["kind"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| k.as_str())
                .collect();
            let code = kinds.iter().any(|k| {
                matches!(
                    *k,
                    "lib" | "rlib" | "dylib" | "cdylib" | "staticlib" | "proc-macro" | "bin"
                )
            });
            let Some(src) = target["src_path"].as_str() else {
                continue;
            };
            let src = PathBuf::from(src);
            if code && !is_test_path(src.strip_prefix(root).unwrap_or(&src)) {
                let label = if kinds.contains(&"bin") {
                    format!("{name} (bin {})", target["name"].as_str().unwrap_or("?"))
                } else {
                    name.to_owned()
                };
                roots.push((label, src));
            }
        }
    }
    Ok(roots)
}

/// Under a `tests/`, `benches/` or `examples/` directory.
fn is_test_path(p: &Path) -> bool {
    p.parent()
        .into_iter()
        .flat_map(|d| d.components())
        .any(|c| {
            matches!(
                c.as_os_str().to_str(),
                Some("tests" | "benches" | "examples")
            )
        })
}

/// A file over the limit: (path, non-test lines, all lines).
pub type LongFile = (PathBuf, usize, usize);

/// Files over [`MAX_LINES`] non-test lines, longest first; and the ones
/// over it only with their unit tests counted.
pub fn long_files(crates: &[Crate], root: &Path) -> (Vec<LongFile>, Vec<LongFile>) {
    let mut seen = BTreeSet::new();
    let (mut long, mut with_tests) = (Vec::new(), Vec::new());
    for c in crates {
        for f in &c.files {
            let rel = f.path.strip_prefix(root).unwrap_or(&f.path).to_owned();
            if is_test_path(&rel) || !seen.insert(rel.clone()) {
                continue;
            }
            let code = f.lines - f.test_lines.min(f.lines);
            if code > MAX_LINES {
                long.push((rel, code, f.lines));
            } else if f.lines > MAX_LINES {
                with_tests.push((rel, code, f.lines));
            }
        }
    }
    long.sort_by_key(|f| std::cmp::Reverse(f.1));
    with_tests.sort_by_key(|f| std::cmp::Reverse(f.2));
    (long, with_tests)
}

pub fn run(root: &Path) -> Result<(), String> {
    let read = |p: &Path| std::fs::read_to_string(p).ok();
    let mut crates = Vec::new();
    let mut circles = Vec::new();
    for (name, src) in crate_roots(root)? {
        let c = Crate::load(&src, &read);
        for m in &c.missing {
            println!("warning: {name}: no file for {m}");
        }
        circles.extend(crate_circles(&name, &c));
        crates.push(c);
    }
    let rel = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
    for c in &circles {
        let names: Vec<String> = c.circle.iter().map(|m| c.name(m)).collect();
        println!("circle in {}: {}", c.krate, names.join(" -> "));
        if c.knot.len() + 1 > c.circle.len() {
            let knot: Vec<String> = c.knot.iter().map(|m| c.name(m)).collect();
            println!(
                "    (one knot of {} modules: {})",
                knot.len(),
                knot.join(", ")
            );
        }
        for (a, b, ev, n) in &c.edges {
            let more = if *n > 1 {
                format!(" (and {} more)", n - 1)
            } else {
                String::new()
            };
            println!(
                "    {} -> {}: {}:{} {}{more}",
                c.name(a),
                c.name(b),
                rel(&ev.file),
                ev.line,
                ev.path
            );
        }
    }
    let (long, with_tests) = long_files(&crates, root);
    for (path, code, all) in &long {
        println!(
            "over {MAX_LINES} lines: {} ({code} lines of code, {all} with its tests)",
            path.display()
        );
    }
    for (path, code, all) in &with_tests {
        println!(
            "note: {} is {all} lines with its unit tests ({code} without)",
            path.display()
        );
    }
    let by_crate: BTreeMap<&str, usize> = circles.iter().fold(BTreeMap::new(), |mut m, c| {
        *m.entry(c.krate.as_str()).or_default() += 1;
        m
    });
    println!(
        "shape: {} crate roots, {} files; {} circles ({}), {} files over {MAX_LINES} lines",
        crates.len(),
        crates.iter().map(|c| c.files.len()).sum::<usize>(),
        circles.len(),
        by_crate
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        long.len()
    );
    if circles.is_empty() && long.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "shape: {} import circles, {} long files",
            circles.len(),
            long.len()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A crate from `(path, source)` pairs; its root is `src/lib.rs`.
    fn krate(files: &[(&str, &str)]) -> Crate {
        let map: HashMap<PathBuf, String> = files
            .iter()
            .map(|(p, s)| (PathBuf::from(p), s.to_string()))
            .collect();
        Crate::load(Path::new("src/lib.rs"), &|p: &Path| map.get(p).cloned())
    }

    /// Each circle as `a -> b -> a`, full module names.
    fn found(files: &[(&str, &str)]) -> Vec<String> {
        crate_circles("t", &krate(files))
            .iter()
            .map(|c| {
                c.circle
                    .iter()
                    .map(|m| c.name(m))
                    .collect::<Vec<_>>()
                    .join(" -> ")
            })
            .collect()
    }

    #[test]
    fn two_files_using_each_other_are_a_circle() {
        let files = [
            ("src/lib.rs", "mod a;\nmod b;\n"),
            ("src/a.rs", "use crate::b::Thing;\n"),
            ("src/b.rs", "pub fn f() { crate::a::g(); }\n"),
        ];
        assert_eq!(found(&files), ["a -> b -> a"]);
        let c = &crate_circles("t", &krate(&files))[0];
        let where_: Vec<String> = c
            .edges
            .iter()
            .map(|(a, b, ev, _)| format!("{a}>{b} {}:{} {}", ev.file.display(), ev.line, ev.path))
            .collect();
        assert_eq!(
            where_,
            [
                "a>b src/a.rs:1 crate::b::Thing",
                "b>a src/b.rs:1 crate::a::g"
            ]
        );
    }

    #[test]
    fn one_way_use_is_no_circle() {
        let files = [
            ("src/lib.rs", "mod a;\nmod b;\nmod c;\n"),
            ("src/a.rs", "use crate::{b::X, c};\n"),
            ("src/b.rs", "use super::c::Y;\n"),
            ("src/c.rs", "pub struct Y;\n"),
        ];
        assert!(found(&files).is_empty());
    }

    #[test]
    fn a_module_and_its_own_children_are_no_circle() {
        let files = [
            ("src/lib.rs", "pub mod fake;\npub use fake::Fake;\n"),
            (
                "src/fake/mod.rs",
                "mod routes;\nuse routes::router;\npub struct Fake;\n",
            ),
            (
                "src/fake/routes.rs",
                "use super::Fake;\nuse crate::fake::Fake as F;\nfn f() { super::super::fake::x(); }\n",
            ),
        ];
        assert!(found(&files).is_empty());
    }

    #[test]
    fn a_submodule_counts_as_its_parent() {
        // app → handlers::table, handlers::users → app: app ↔ handlers.
        let files = [
            ("src/lib.rs", "mod app;\nmod handlers;\n"),
            ("src/app.rs", "use crate::handlers::table::handler;\n"),
            ("src/handlers.rs", "pub mod table;\nmod users;\n"),
            ("src/handlers/table.rs", "pub fn handler() {}\n"),
            ("src/handlers/users.rs", "use crate::app::AppState;\n"),
        ];
        assert_eq!(found(&files), ["app -> handlers -> app"]);
    }

    #[test]
    fn circles_below_the_root_are_named_with_their_parent() {
        let files = [
            ("src/lib.rs", "mod store;\n"),
            ("src/store/mod.rs", "mod users;\nmod work;\n"),
            ("src/store/users.rs", "use super::work::due;\n"),
            (
                "src/store/work.rs",
                "use super::users::is_condition_failed;\n",
            ),
        ];
        assert_eq!(
            found(&files),
            ["store::users -> store::work -> store::users"]
        );
    }

    #[test]
    fn a_re_export_is_followed_to_its_module() {
        // retry uses `crate::Client`, which is client's.
        let files = [
            (
                "src/lib.rs",
                "mod client;\nmod retry;\npub use client::Client;\n",
            ),
            (
                "src/client.rs",
                "use crate::retry::{self, Attempt};\npub struct Client;\n",
            ),
            ("src/retry.rs", "use crate::Client;\n"),
        ];
        assert_eq!(found(&files), ["client -> retry -> client"]);
    }

    #[test]
    fn three_modules_in_a_ring_and_inline_modules() {
        let files = [
            (
                "src/lib.rs",
                "mod a;\nmod b;\nmod c {\n    use super::a::X;\n}\n",
            ),
            ("src/a.rs", "use crate::b;\n"),
            ("src/b.rs", "fn f() { crate::c::g() }\n"),
        ];
        assert_eq!(found(&files), ["a -> b -> c -> a"]);
    }

    #[test]
    fn tests_comments_and_strings_make_no_circle() {
        let files = [
            (
                "src/lib.rs",
                "mod a;\nmod b;\n#[cfg(test)]\nmod test_support;\n",
            ),
            ("src/a.rs", "use crate::b::Thing;\n"),
            (
                "src/b.rs",
                "//! See [`crate::a::X`].\n// crate::a::Y\nconst S: &str = \"crate::a::Z\";\n#[cfg(test)]\nuse crate::a::W;\n#[cfg(test)]\nmod tests {\n    use crate::a::V;\n}\n",
            ),
            (
                "src/test_support.rs",
                "use crate::a::T;\nuse crate::b::U;\n",
            ),
        ];
        assert!(found(&files).is_empty());
        let c = krate(&files);
        assert_eq!(c.files.len(), 3, "the test-only file is not read");
        assert!(c.missing.is_empty());
    }

    #[test]
    fn paths_outside_the_crate_are_ignored() {
        let files = [
            ("src/lib.rs", "mod a;\nmod b;\n"),
            ("src/a.rs", "use crate::b::X;\nuse std::fmt;\n"),
            (
                "src/b.rs",
                "use ::a::Y;\nuse peak_domain::a::Z;\nuse Route::*;\n",
            ),
        ];
        assert!(found(&files).is_empty());
    }

    #[test]
    fn long_files_count_code_without_unit_tests() {
        let code = "fn f() {}\n".repeat(MAX_LINES + 1);
        let tests = format!(
            "#[cfg(test)]\nmod tests {{\n{}}}\n",
            "fn t() {}\n".repeat(MAX_LINES)
        );
        let half = "fn f() {}\n".repeat(MAX_LINES / 2);
        let files = [
            ("src/lib.rs", "mod long;\nmod tested;\n".to_owned()),
            ("src/long.rs", code),
            ("src/tested.rs", half + &tests),
        ];
        let files: Vec<(&str, &str)> = files.iter().map(|(p, s)| (*p, s.as_str())).collect();
        let (long, with_tests) = long_files(&[krate(&files)], Path::new(""));
        assert_eq!(
            long,
            [(PathBuf::from("src/long.rs"), MAX_LINES + 1, MAX_LINES + 1)]
        );
        assert_eq!(
            with_tests,
            [(
                PathBuf::from("src/tested.rs"),
                MAX_LINES / 2,
                MAX_LINES / 2 + MAX_LINES + 3
            )]
        );
    }

    #[test]
    fn test_directories_are_not_source() {
        assert!(is_test_path(Path::new("tests/src/lib.rs")));
        assert!(is_test_path(Path::new("shared/auth0/tests/client.rs")));
        assert!(is_test_path(Path::new("benches/src/lib.rs")));
        assert!(!is_test_path(Path::new("shared/api/src/tests.rs")));
    }
}
