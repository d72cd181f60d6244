//! Just enough of Rust's lexical grammar for the shape check: identifiers,
//! `::` and single punctuation, each with its line. Comments, string and
//! character literals are dropped (a path in a doc comment or a message is
//! not a dependency), and test-only items (`#[cfg(test)]`) are cut out.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Ident,
    Punct,
    Literal,
}

#[derive(Debug, Clone)]
pub struct Token {
    pub kind: Kind,
    pub text: String,
    pub line: usize,
}

impl Token {
    pub fn is(&self, text: &str) -> bool {
        self.kind != Kind::Literal && self.text == text
    }
}

fn ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn ident_continue(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The index after a `"…"` string whose opening quote is at `i - 1`.
fn string_end(c: &[char], mut i: usize, line: &mut usize) -> usize {
    while i < c.len() && c[i] != '"' {
        if c[i] == '\\' {
            i += 1;
        }
        if i < c.len() && c[i] == '\n' {
            *line += 1;
        }
        i += 1;
    }
    i + 1
}

/// A prefixed string starting at `i` (`b"…"`, `c"…"`, `r#"…"#`, `br"…"`,
/// `b'…'`): the index after it, or `None` when `i` starts something else.
fn prefixed_literal(c: &[char], i: usize, line: &mut usize) -> Option<usize> {
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    let mut j = i;
    if at(j) == 'b' && at(j + 1) == '\'' {
        return Some(char_end(c, j + 1));
    }
    if at(j) == 'b' || at(j) == 'c' {
        j += 1;
    }
    if at(j) == 'r' {
        let mut k = j + 1;
        while at(k) == '#' {
            k += 1;
        }
        if at(k) != '"' {
            return None;
        }
        let hashes = k - j - 1;
        k += 1;
        while k < c.len() {
            if c[k] == '"' && (1..=hashes).all(|h| at(k + h) == '#') {
                return Some(k + 1 + hashes);
            }
            if c[k] == '\n' {
                *line += 1;
            }
            k += 1;
        }
        return Some(c.len());
    }
    if j > i && at(j) == '"' {
        return Some(string_end(c, j + 1, line));
    }
    None
}

/// The index after a character literal whose quote is at `i`.
fn char_end(c: &[char], i: usize) -> usize {
    let mut j = i + 1;
    if c.get(j) == Some(&'\\') {
        j += 2;
    } else {
        j += 1;
    }
    while j < c.len() && c[j] != '\'' && c[j] != '\n' {
        j += 1;
    }
    j + 1
}

pub fn tokenize(src: &str) -> Vec<Token> {
    let c: Vec<char> = src.chars().collect();
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let push =
        |out: &mut Vec<Token>, kind, text: String, line| out.push(Token { kind, text, line });
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 1;
            i += 2;
            while i < c.len() && depth > 0 {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if let Some(end) = prefixed_literal(&c, i, &mut line) {
            push(&mut out, Kind::Literal, String::new(), line);
            i = end;
        } else if ch == '"' {
            let start = line;
            i = string_end(&c, i + 1, &mut line);
            push(&mut out, Kind::Literal, String::new(), start);
        } else if ch == '\'' {
            if at(i + 1) == '\\' || at(i + 2) == '\'' {
                i = char_end(&c, i);
                push(&mut out, Kind::Literal, String::new(), line);
            } else {
                // A lifetime or a label: `'a`.
                i += 1;
                while i < c.len() && ident_continue(c[i]) {
                    i += 1;
                }
                push(&mut out, Kind::Punct, "'".into(), line);
            }
        } else if ident_start(ch) {
            let mut j = i;
            if ch == 'r' && at(i + 1) == '#' && ident_start(at(i + 2)) {
                j += 2; // a raw identifier, `r#type`
            }
            let start = j;
            while j < c.len() && ident_continue(c[j]) {
                j += 1;
            }
            push(&mut out, Kind::Ident, c[start..j].iter().collect(), line);
            i = j;
        } else if ch.is_ascii_digit() {
            while i < c.len() && ident_continue(c[i]) {
                i += 1;
            }
            push(&mut out, Kind::Literal, String::new(), line);
        } else if ch == ':' && at(i + 1) == ':' {
            push(&mut out, Kind::Punct, "::".into(), line);
            i += 2;
        } else {
            push(&mut out, Kind::Punct, ch.to_string(), line);
            i += 1;
        }
    }
    out
}

/// The index after the bracketed group opening at `open`.
fn group_end(t: &[Token], open: usize) -> usize {
    let mut depth = 0i32;
    for (k, tok) in t.iter().enumerate().skip(open) {
        if tok.is("(") || tok.is("[") || tok.is("{") {
            depth += 1;
        } else if tok.is(")") || tok.is("]") || tok.is("}") {
            depth -= 1;
            if depth == 0 {
                return k + 1;
            }
        }
    }
    t.len()
}

/// The attribute at `k` (`#[…]` or `#![…]`): (index after it, inner,
/// test-only). Test-only is `cfg(test)` or `cfg(all(test, …))`.
fn attribute(t: &[Token], k: usize) -> Option<(usize, bool, bool)> {
    let inner = t.get(k + 1).is_some_and(|x| x.is("!"));
    let open = if inner { k + 2 } else { k + 1 };
    if !t[k].is("#") || !t.get(open).is_some_and(|x| x.is("[")) {
        return None;
    }
    let end = group_end(t, open);
    let body: Vec<&str> = t[open + 1..end.saturating_sub(1)]
        .iter()
        .map(|x| x.text.as_str())
        .collect();
    let test =
        body == ["cfg", "(", "test", ")"] || body.starts_with(&["cfg", "(", "all", "(", "test"]);
    Some((end, inner, test))
}

/// The index after the item starting at `k` (its attributes, then up to a
/// `;` or the end of its first `{…}` block).
fn item_end(t: &[Token], mut k: usize) -> usize {
    while let Some((end, _, _)) = attribute(t, k) {
        k = end;
    }
    while k < t.len() {
        if t[k].is(";") {
            return k + 1;
        }
        if t[k].is("{") {
            return group_end(t, k);
        }
        if t[k].is("(") || t[k].is("[") {
            k = group_end(t, k);
            continue;
        }
        k += 1;
    }
    t.len()
}

/// A file's tokens without its test-only items.
pub struct Stripped {
    pub tokens: Vec<Token>,
    /// Lines taken by test-only items.
    pub test_lines: usize,
    /// `#![cfg(test)]` at the top: the whole file is a test.
    pub test_only: bool,
}

pub fn strip_tests(t: Vec<Token>) -> Stripped {
    let mut out = Vec::with_capacity(t.len());
    let mut test_lines = 0;
    let mut test_only = false;
    let mut k = 0;
    while k < t.len() {
        if let Some((end, inner, test)) = attribute(&t, k) {
            if test && inner {
                test_only = true;
            }
            if test && !inner {
                let end = item_end(&t, end);
                let last = t[end - 1].line;
                // The item's lines, with the test-only comment lines just
                // above it counted as its own.
                test_lines += last + 1 - t[k].line;
                k = end;
                continue;
            }
            out.extend_from_slice(&t[k..end]);
            k = end;
            continue;
        }
        out.push(t[k].clone());
        k += 1;
    }
    Stripped {
        tokens: out,
        test_lines,
        test_only,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idents(src: &str) -> Vec<String> {
        tokenize(src)
            .into_iter()
            .filter(|t| t.kind == Kind::Ident)
            .map(|t| t.text)
            .collect()
    }

    #[test]
    fn comments_strings_and_chars_are_not_code() {
        let src = r###"
            // crate::a
            /* crate::b /* nested */ crate::c */
            let s = "crate::d \" crate::e";
            let r = r#"crate::f " still"#;
            let b = b"crate::g"; let q = '"'; let e = '\'';
            fn f<'a>(x: &'a str) -> &'a str { x }
            crate::h
        "###;
        assert_eq!(
            idents(src),
            [
                "let", "s", "let", "r", "let", "b", "let", "q", "let", "e", "fn", "f", "x", "str",
                "str", "x", "crate", "h"
            ]
        );
    }

    #[test]
    fn lines_are_counted_through_comments_and_strings() {
        let t = tokenize("a\n/* x\n y */ \"p\nq\" b\nr#\"\n\"# c");
        let lines: Vec<_> = t
            .iter()
            .filter(|t| t.kind == Kind::Ident)
            .map(|t| t.line)
            .collect();
        assert_eq!(lines, [1, 4, 6]);
    }

    #[test]
    fn test_only_items_are_cut_out_and_counted() {
        let src = "use crate::a;\n#[cfg(test)]\nmod tests {\n    use crate::b;\n}\n#[cfg(all(test, unix))]\nfn x() {}\n#[cfg(any(test, feature = \"fake\"))]\nuse crate::c;\n";
        let s = strip_tests(tokenize(src));
        let kept: Vec<_> = s
            .tokens
            .iter()
            .filter(|t| t.kind == Kind::Ident)
            .map(|t| t.text.as_str())
            .collect();
        assert_eq!(
            kept,
            [
                "use", "crate", "a", "cfg", "any", "test", "feature", "use", "crate", "c"
            ]
        );
        assert_eq!(s.test_lines, 6);
        assert!(!s.test_only);
        assert!(strip_tests(tokenize("#![cfg(test)]\nfn x() {}")).test_only);
    }
}
