//! From TOML spans to lines, and from key paths to the place a key is written.
//!
//! Serde errors from the `toml` crate carry a byte span; validation errors carry a
//! [`KeyPath`]. Both are resolved against a spanned parse of the same document
//! ([`DeTable`]) so that every problem can name the line the admin has to edit.

use std::ops::Range;

use spoor_core::KeyPath;
use spoor_core::config::KeySegment;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    // A span may end inside a multi-byte character only if the parser is wrong; be safe.
    let offset = (0..=offset)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = text[line_start..offset].chars().count() + 1;
    (line, col)
}

/// The span where `key` is written: the key itself for tables, the element for arrays.
/// A key that is not in the file (a required key left out) resolves to the deepest part
/// of its path that is, e.g. the `[[trails.source]]` header of the entry missing a `path`.
pub(crate) fn span_of(doc: &DeTable<'_>, key: &KeyPath) -> Option<Range<usize>> {
    let mut best = None;
    let mut table = Some(doc);
    let mut value: Option<&Spanned<DeValue<'_>>> = None;
    for segment in key.segments() {
        match segment {
            KeySegment::Key(k) => {
                let Some((k, v)) = table.and_then(|t| t.get_key_value(k.as_str())) else {
                    break;
                };
                best = Some(k.span());
                value = Some(v);
            }
            KeySegment::Index(i) => {
                let Some(v) = value
                    .and_then(|v| v.get_ref().as_array())
                    .and_then(|a| a.get(*i))
                else {
                    break;
                };
                best = Some(v.span());
                value = Some(v);
            }
        }
        table = value.and_then(|v| v.get_ref().as_table());
    }
    best
}

fn contains(span: &Range<usize>, offset: usize) -> bool {
    span.contains(&offset) || (span.is_empty() && span.start == offset)
}

/// The deepest key whose name or value covers `offset`: the key a serde error is about.
/// Elements of arrays of tables are searched; elements of plain arrays belong to the array.
pub(crate) fn key_at(doc: &DeTable<'_>, offset: usize) -> Option<KeyPath> {
    fn walk(table: &DeTable<'_>, offset: usize, path: &KeyPath) -> Option<KeyPath> {
        for (k, v) in table.iter() {
            let here = path.key(k.get_ref());
            match v.get_ref() {
                DeValue::Table(t) => {
                    if let Some(found) = walk(t, offset, &here) {
                        return Some(found);
                    }
                }
                DeValue::Array(a) => {
                    for (i, e) in a.iter().enumerate() {
                        if let DeValue::Table(t) = e.get_ref()
                            && let Some(found) = walk(t, offset, &here.index(i))
                        {
                            return Some(found);
                        }
                    }
                }
                _ => {}
            }
            if contains(&k.span(), offset) || contains(&v.span(), offset) {
                return Some(here);
            }
        }
        None
    }
    walk(doc, offset, &KeyPath::root())
}

/// Remove the key at `path` (as found by [`key_at`]). Returns false if it is not there.
pub(crate) fn remove(doc: &mut DeTable<'_>, path: &KeyPath) -> bool {
    let Some((KeySegment::Key(last), parents)) = path.segments().split_last() else {
        return false;
    };
    let mut table = doc;
    let mut segments = parents.iter().peekable();
    while let Some(segment) = segments.next() {
        let KeySegment::Key(k) = segment else {
            return false;
        };
        let Some(v) = table.get_mut(k.as_str()) else {
            return false;
        };
        let mut v = v.get_mut();
        if let Some(KeySegment::Index(i)) = segments.peek() {
            segments.next();
            let DeValue::Array(a) = v else { return false };
            let Some(e) = a.get_mut(*i) else { return false };
            v = e.get_mut();
        }
        let DeValue::Table(t) = v else { return false };
        table = t;
    }
    table.remove(last.as_str()).is_some()
}

/// `trails.source[2].foo` → `trails.source`: the table a key lives in, as its header is
/// written (array indices dropped). `None` for a top-level key.
pub(crate) fn table_name(path: &KeyPath) -> Option<String> {
    let parents = path.segments().split_last()?.1;
    let names: Vec<&str> = parents
        .iter()
        .filter_map(|s| match s {
            KeySegment::Key(k) => Some(k.as_str()),
            KeySegment::Index(_) => None,
        })
        .collect();
    (!names.is_empty()).then(|| names.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
[trails]
snapshot = \"x\"

[[trails.source]]
path = \"a\"

[[trails.source]]
path = \"b\"
min_count = 2

[feeds]
enable = [
  \"one\",
  \"two\",
]
[feeds.override.abc]
severity = \"high\"
";

    fn line_of(key: &KeyPath) -> usize {
        let doc = DeTable::parse(DOC).unwrap();
        line_col(DOC, span_of(doc.get_ref(), key).unwrap().start).0
    }

    #[test]
    fn key_paths_resolve_to_lines() {
        let t = KeyPath::root().key("trails");
        assert_eq!(line_of(&t), 1);
        assert_eq!(line_of(&t.key("snapshot")), 2);
        assert_eq!(line_of(&t.key("source").index(0)), 4);
        assert_eq!(line_of(&t.key("source").index(1).key("min_count")), 9);
        // missing key: the entry's header
        assert_eq!(line_of(&t.key("source").index(1).key("format")), 7);
        let f = KeyPath::root().key("feeds");
        assert_eq!(line_of(&f.key("enable").index(1)), 14);
        assert_eq!(line_of(&f.key("override").key("abc")), 16);
        assert_eq!(line_of(&f.key("override").key("abc").key("severity")), 17);
    }

    #[test]
    fn offsets_resolve_to_keys_and_keys_can_be_removed() {
        let mut doc = DeTable::parse(DOC).unwrap().into_inner();
        let at = DOC.find("min_count").unwrap() + 3;
        let key = key_at(&doc, at).unwrap();
        assert_eq!(key.to_string(), "trails.source[1].min_count");
        assert_eq!(table_name(&key).as_deref(), Some("trails.source"));
        assert!(remove(&mut doc, &key));
        assert!(key_at(&doc, at).is_none());
        let at = DOC.find("\"two\"").unwrap();
        assert_eq!(key_at(&doc, at).unwrap().to_string(), "feeds.enable");
    }

    #[test]
    fn columns_count_characters() {
        assert_eq!(line_col("a = \"é\" x", 9), (1, 9));
        assert_eq!(line_col("a\nbc", 3), (2, 2));
        assert_eq!(line_col("", 5), (1, 1));
    }
}
