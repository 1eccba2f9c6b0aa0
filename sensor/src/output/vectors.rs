//! Test helpers: read Maltrail's generated vector tables and the Python literals in them.

use std::path::PathBuf;

/// The folder of vector tables generated from Maltrail's own code.
fn vectors_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/maltrail/vectors"
    ))
}

/// The rows of a vector table, tab-split, with `\\`, `\n`, `\r` and `\t` unescaped;
/// `#` comment lines are skipped.
pub(crate) fn read_vectors(name: &str) -> Vec<Vec<String>> {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').map(unescape).collect())
        .collect()
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// An item of a Python list literal as the vectors write event tuples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PyValue {
    Int(i64),
    Str(String),
}

/// Parse `[1700000000, 0, '10.0.0.5', "it's", ...]`: integers and quoted strings with
/// Python's backslash escapes.
pub(crate) fn parse_py_list(s: &str) -> Vec<PyValue> {
    let inner = s
        .trim()
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .expect("a list literal");
    let mut items = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        if first == '\'' || first == '"' {
            chars.next();
            let mut value = String::new();
            loop {
                match chars.next().expect("unterminated string") {
                    '\\' => match chars.next().expect("dangling escape") {
                        'n' => value.push('\n'),
                        'r' => value.push('\r'),
                        't' => value.push('\t'),
                        other => value.push(other),
                    },
                    c if c == first => break,
                    c => value.push(c),
                }
            }
            items.push(PyValue::Str(value));
        } else {
            let mut num = String::new();
            while chars
                .peek()
                .is_some_and(|c| *c == '-' || c.is_ascii_digit())
            {
                num.push(chars.next().unwrap_or_default());
            }
            items.push(PyValue::Int(num.parse().expect("an integer")));
        }
    }
    items
}
