//! A crate's module tree, read from its root file through its `mod`
//! declarations, and the references of each module's non-test code to
//! other modules of the same crate.

use super::lexer::{Kind, Token, strip_tests, tokenize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module's path from the crate root (`[]` is the root).
pub type ModPath = Vec<String>;

/// A path written in a module's code: `crate::a::B` as `["crate", "a", "B"]`.
#[derive(Debug, Clone)]
pub struct Ref {
    pub segments: Vec<String>,
    pub line: usize,
}

#[derive(Debug, Default)]
pub struct Module {
    /// The file it is written in (an inline module: its enclosing file).
    pub file: PathBuf,
    pub children: BTreeSet<String>,
    /// `pub use` names: the name this module exports → the path it names
    /// (as written, relative to this module).
    pub reexports: BTreeMap<String, Vec<String>>,
    pub refs: Vec<Ref>,
}

/// A source file of the crate, with its size.
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub lines: usize,
    /// Lines inside `#[cfg(test)]` items.
    pub test_lines: usize,
}

#[derive(Debug, Default)]
pub struct Crate {
    pub modules: BTreeMap<ModPath, Module>,
    pub files: Vec<SourceFile>,
    /// `mod x;` declarations whose file was not found.
    pub missing: Vec<String>,
}

/// Reads a file's text; the check reads the disk, its tests a map.
pub type Read<'a> = &'a dyn Fn(&Path) -> Option<String>;

impl Crate {
    /// The crate whose root file is `root`.
    pub fn load(root: &Path, read: Read) -> Crate {
        let mut krate = Crate::default();
        let dir = root.parent().unwrap_or(Path::new("")).to_owned();
        krate.load_file(root, Vec::new(), dir, read);
        krate
    }

    /// `file` holds module `path`; its `mod x;` children are files in `dir`.
    fn load_file(&mut self, file: &Path, path: ModPath, dir: PathBuf, read: Read) {
        let Some(src) = read(file) else {
            self.missing.push(file.display().to_string());
            return;
        };
        let stripped = strip_tests(tokenize(&src));
        if stripped.test_only {
            return;
        }
        self.files.push(SourceFile {
            path: file.to_owned(),
            lines: src.lines().count(),
            test_lines: stripped.test_lines,
        });
        self.modules.entry(path.clone()).or_default().file = file.to_owned();
        let t = stripped.tokens;
        // Inline modules open here: (name, brace depth inside them).
        let mut inline: Vec<(String, usize)> = Vec::new();
        let mut depth = 0;
        let mut k = 0;
        while k < t.len() {
            let here: ModPath = path
                .iter()
                .cloned()
                .chain(inline.iter().map(|(n, _)| n.clone()))
                .collect();
            let tok = &t[k];
            if tok.is("{") {
                depth += 1;
            } else if tok.is("}") {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            } else if tok.is("mod") && t.get(k + 1).is_some_and(|n| n.kind == Kind::Ident) {
                let name = t[k + 1].text.clone();
                self.modules
                    .entry(here.clone())
                    .or_default()
                    .children
                    .insert(name.clone());
                let mut child = here.clone();
                child.push(name.clone());
                if t.get(k + 2).is_some_and(|x| x.is(";")) {
                    let mut d = dir.clone();
                    d.extend(inline.iter().map(|(n, _)| n.as_str()));
                    let flat = d.join(format!("{name}.rs"));
                    let nested = d.join(&name).join("mod.rs");
                    let (file, child_dir) = if read(&flat).is_some() {
                        (flat, d.join(&name))
                    } else {
                        (nested, d.join(&name))
                    };
                    if read(&file).is_some() {
                        self.load_file(&file, child, child_dir, read);
                    } else {
                        self.missing.push(format!("{}: mod {name}", file.display()));
                    }
                    k += 3;
                    continue;
                }
                if t.get(k + 2).is_some_and(|x| x.is("{")) {
                    depth += 1;
                    inline.push((name, depth));
                    self.modules.entry(child).or_default().file = file.to_owned();
                    k += 3;
                    continue;
                }
            } else if tok.is("use")
                && t.get(k + 1)
                    .is_some_and(|x| x.kind == Kind::Ident || x.is("::") || x.is("{"))
            {
                let public = k >= 1 && t[k - 1].is("pub")
                    || k >= 4 && t[k - 1].is(")") && t[k - 4].is("pub");
                let mut paths = Vec::new();
                let mut end = use_tree(&t, k + 1, Vec::new(), &mut paths);
                while end < t.len() && !t[end].is(";") {
                    end += 1;
                }
                let module = self.modules.entry(here).or_default();
                for (segments, alias) in paths {
                    if public {
                        let name = match (alias, segments.last().map(String::as_str)) {
                            (Some(a), _) => Some(a),
                            (None, Some("*")) | (None, None) => None,
                            (None, Some("self")) => segments.iter().rev().nth(1).cloned(),
                            (None, Some(last)) => Some(last.to_owned()),
                        };
                        if let Some(name) = name {
                            module.reexports.insert(name, segments.clone());
                        }
                    }
                    module.refs.push(Ref {
                        segments,
                        line: tok.line,
                    });
                }
                k = end + 1;
                continue;
            } else if (tok.is("crate") || tok.is("super") || tok.is("self"))
                && t.get(k + 1).is_some_and(|x| x.is("::"))
                && !(k >= 1 && (t[k - 1].is("in") || t[k - 1].is("::")))
            {
                // A path in code: `crate::a::f()`, `super::B`.
                let mut segments = vec![tok.text.clone()];
                let mut j = k + 1;
                while t.get(j).is_some_and(|x| x.is("::"))
                    && t.get(j + 1).is_some_and(|x| x.kind == Kind::Ident)
                {
                    segments.push(t[j + 1].text.clone());
                    j += 2;
                }
                self.modules.entry(here).or_default().refs.push(Ref {
                    segments,
                    line: tok.line,
                });
                k = j;
                continue;
            }
            k += 1;
        }
    }

    /// The module a path written in module `from` names (the module holding
    /// the item, through `pub use` re-exports); `None` for paths outside
    /// the crate.
    pub fn resolve(&self, from: &[String], segments: &[String]) -> Option<ModPath> {
        self.resolve_at(from, segments, 0)
    }

    fn resolve_at(&self, from: &[String], segments: &[String], hops: usize) -> Option<ModPath> {
        let children = |m: &[String]| self.modules.get(m).map(|m| &m.children);
        let (first, rest) = segments.split_first()?;
        let mut cur: ModPath = match first.as_str() {
            "crate" => Vec::new(),
            "self" => from.to_vec(),
            "super" => from[..from.len().checked_sub(1)?].to_vec(),
            name if children(from).is_some_and(|c| c.contains(name)) => {
                let mut p = from.to_vec();
                p.push(name.to_owned());
                p
            }
            _ => return None,
        };
        for s in rest {
            match s.as_str() {
                "self" => {}
                "super" => {
                    cur.pop()?;
                }
                name if children(&cur).is_some_and(|c| c.contains(name)) => {
                    cur.push(name.to_owned())
                }
                name => {
                    let target = self.modules.get(&cur).and_then(|m| m.reexports.get(name));
                    if let Some(target) = target
                        && hops < 8
                        && let Some(found) = self.resolve_at(&cur, target, hops + 1)
                    {
                        return Some(found);
                    }
                    break;
                }
            }
        }
        Some(cur)
    }

    /// Every reference between two modules neither of which contains the
    /// other, lifted to the two siblings under their closest common
    /// ancestor: `handlers::users` using `crate::app` is `handlers` → `app`
    /// among the root's children. Keyed by that ancestor.
    pub fn sibling_edges(&self) -> BTreeMap<ModPath, BTreeMap<(String, String), Vec<Evidence>>> {
        let mut out: BTreeMap<ModPath, BTreeMap<(String, String), Vec<Evidence>>> = BTreeMap::new();
        for (from, module) in &self.modules {
            for r in &module.refs {
                let Some(to) = self.resolve(from, &r.segments) else {
                    continue;
                };
                let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
                if common == from.len() || common == to.len() {
                    continue; // the same module, or one inside the other
                }
                out.entry(from[..common].to_vec())
                    .or_default()
                    .entry((from[common].clone(), to[common].clone()))
                    .or_default()
                    .push(Evidence {
                        file: module.file.clone(),
                        line: r.line,
                        path: shown(&r.segments),
                    });
            }
        }
        out
    }
}

/// A path as written, without the `self` of `use a::{self, …}`.
fn shown(segments: &[String]) -> String {
    let end = if segments.len() > 1 && segments.last().is_some_and(|s| s == "self") {
        segments.len() - 1
    } else {
        segments.len()
    };
    segments[..end].join("::")
}

/// Where a reference was written.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub file: PathBuf,
    pub line: usize,
    pub path: String,
}

/// Parses a use tree at `k` (after `use` or inside braces) with `prefix`
/// already read; pushes each leaf's (path, alias); returns the index after it.
fn use_tree(
    t: &[Token],
    mut k: usize,
    mut path: Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>)>,
) -> usize {
    if path.is_empty() && t.get(k).is_some_and(|x| x.is("::")) {
        return k + 1; // `use ::external::…`: outside the crate
    }
    while let Some(tok) = t.get(k) {
        if tok.kind == Kind::Ident {
            path.push(tok.text.clone());
            k += 1;
            if t.get(k).is_some_and(|x| x.is("::")) {
                k += 1;
                continue;
            }
            let alias = if t.get(k).is_some_and(|x| x.is("as")) {
                k += 2;
                t.get(k - 1).map(|x| x.text.clone())
            } else {
                None
            };
            out.push((path, alias));
            return k;
        } else if tok.is("*") {
            path.push("*".into());
            out.push((path, None));
            return k + 1;
        } else if tok.is("{") {
            k += 1;
            while let Some(x) = t.get(k) {
                if x.is("}") {
                    return k + 1;
                }
                if x.is(",") {
                    k += 1;
                    continue;
                }
                let next = use_tree(t, k, path.clone(), out);
                if next == k {
                    return k + 1;
                }
                k = next;
            }
            return k;
        } else {
            return k + 1;
        }
    }
    k
}
