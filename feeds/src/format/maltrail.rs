//! Maltrail static/custom trail files.
//!
//! A `.txt` trail file lists one trail per line; its info comes from where the file sits:
//! `mass_scanner.txt` in the trail root is `mass scanner`, `malware/emotet.txt` is
//! `emotet (malware)`. A `.csv` file in the same folders lists `value,info` (the folder
//! still adds its category). Trails are classified by `Indicator::parse`, which already
//! strips schemes and understands IP:port, CIDRs, URLs, paths and wildcard rules.
//!
//! Kept from Maltrail: the `_` → space in file stems, no category for a folder named
//! `static`, reference `(static)` for `.txt` and `<stem> (static)` for `.csv` files.
//! Changed: a trail under a folder named `custom` gets reference `(custom)` (Maltrail gives
//! custom trails that reference from its separate custom-trail loader), a CSV line without
//! a comma is reported instead of aborting the whole load, and deeper folders take the
//! name of the folder the file is in as category (Maltrail reads one level only).

use std::path::Path;
use std::sync::Arc;

use super::{Record, Sink, TrailFormat, numbered_lines, parse_trail, too_long, usable_content};

/// Reference of trails shipped with Maltrail.
pub const STATIC_REFERENCE: &str = "(static)";
/// Reference of trails from a folder named `custom`.
pub const CUSTOM_REFERENCE: &str = "(custom)";

/// What a file's place in a trail folder says about its trails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaltrailOrigin {
    /// File name without extension, as written (`mass_scanner`).
    pub stem: String,
    /// Folder the file is in, unless that is the root or a folder named `static`.
    pub category: Option<String>,
    /// The root or the file's folder is named `custom`.
    pub custom: bool,
}

impl MaltrailOrigin {
    /// Where `file` sits below `root` (a file outside `root` is treated as directly in it).
    pub fn of(root: &Path, file: &Path) -> Self {
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let folder = file.parent().unwrap_or(Path::new(""));
        let in_root = folder == root || !file.starts_with(root);
        let folder_name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
        let category = if in_root {
            None
        } else {
            folder_name(folder).filter(|name| name != "static")
        };
        let custom = folder_name(root).as_deref() == Some("custom")
            || (!in_root && folder_name(folder).as_deref() == Some("custom"));
        MaltrailOrigin {
            stem,
            category,
            custom,
        }
    }

    /// Info of a `.txt` file's trails: `emotet (malware)`, `mass scanner`.
    pub fn info(&self) -> String {
        with_category(&self.stem.replace('_', " "), self.category.as_deref())
    }

    /// Reference of a `.txt` file's trails.
    pub fn reference(&self) -> &'static str {
        if self.custom {
            CUSTOM_REFERENCE
        } else {
            STATIC_REFERENCE
        }
    }

    /// Reference of a `.csv` file's trails: `<stem> (static)`.
    pub fn csv_reference(&self) -> String {
        format!("{} {}", self.stem, self.reference())
    }
}

fn with_category(info: &str, category: Option<&str>) -> String {
    match category {
        Some(category) => format!("{info} ({category})"),
        None => info.to_string(),
    }
}

/// Parse one file of a Maltrail trail folder rooted at `root`: `.csv` files as
/// `value,info`, everything else as a `.txt` trail list.
pub fn parse_file(root: &Path, text: &str, file: &Path, sink: &mut Sink<'_>) {
    let origin = MaltrailOrigin::of(root, file);
    let is_csv = file
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("csv"));
    if is_csv {
        MaltrailCsvFile {
            category: origin.category.clone(),
            reference: origin.csv_reference().into(),
        }
        .parse(text, file, sink);
    } else {
        MaltrailTrailFile {
            info: origin.info().into(),
            reference: origin.reference().into(),
        }
        .parse(text, file, sink);
    }
}

/// A `.txt` trail file: every trail gets the same info and reference.
#[derive(Debug, Clone)]
pub struct MaltrailTrailFile {
    pub info: Arc<str>,
    pub reference: Arc<str>,
}

impl TrailFormat for MaltrailTrailFile {
    fn parse(&self, text: &str, file: &Path, sink: &mut Sink<'_>) {
        for (no, line) in numbered_lines(text) {
            let Some(value) = usable_content(line, file, no, sink) else {
                continue;
            };
            match parse_trail(value) {
                Ok(indicator) => {
                    let mut record = Record::new(indicator).with_info(self.info.clone());
                    record.reference = Some(self.reference.clone());
                    sink.push(record);
                }
                Err(reason) => sink.malformed(file, no, reason),
            }
        }
    }
}

/// A `.csv` file inside a trail folder: `value,info` per line.
#[derive(Debug, Clone)]
pub struct MaltrailCsvFile {
    /// Appended to each line's info as ` (category)`.
    pub category: Option<String>,
    pub reference: Arc<str>,
}

impl TrailFormat for MaltrailCsvFile {
    fn parse(&self, text: &str, file: &Path, sink: &mut Sink<'_>) {
        for (no, line) in numbered_lines(text) {
            // Maltrail skips only whole-line comments here: `#` may be part of the info.
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if too_long(line, file, no, sink) {
                continue;
            }
            let Some((value, info)) = line.split_once(',') else {
                sink.malformed(file, no, "expected `value,info` (no comma)");
                continue;
            };
            let info = info.trim().trim_matches('"');
            // Maltrail drops every trailing slash of CSV values (unlike .txt files).
            let value = value.trim();
            let value = match value.split_once("://") {
                Some((_, rest)) => rest,
                None => value,
            };
            let value = value.trim_end_matches('/');
            match parse_trail(value) {
                Ok(indicator) => {
                    let mut record = Record::new(indicator);
                    if !info.is_empty() {
                        record.info = Some(with_category(info, self.category.as_deref()).into());
                    }
                    record.reference = Some(self.reference.clone());
                    sink.push(record);
                }
                Err(reason) => sink.malformed(file, no, reason),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use spoor_core::Indicator;

    use super::*;
    use crate::format::{MAX_LINE_LEN, ParseReport};

    fn run(root: &str, file: &str, text: &str) -> (Vec<Record>, ParseReport) {
        let mut report = ParseReport::default();
        let mut out = Vec::new();
        let mut push = |r| out.push(r);
        let mut sink = Sink::new(&mut report, &mut push);
        parse_file(Path::new(root), text, Path::new(file), &mut sink);
        (out, report)
    }

    #[test]
    fn info_from_file_and_folder() {
        let root = Path::new("/t/static");
        let o = MaltrailOrigin::of(root, Path::new("/t/static/mass_scanner.txt"));
        assert_eq!(o.info(), "mass scanner");
        assert_eq!(o.reference(), "(static)");
        let o = MaltrailOrigin::of(root, Path::new("/t/static/malware/emotet.txt"));
        assert_eq!(o.info(), "emotet (malware)");
        let o = MaltrailOrigin::of(root, Path::new("/t/static/malware/bad_rat.txt"));
        assert_eq!(o.info(), "bad rat (malware)");
        let o = MaltrailOrigin::of(Path::new("/etc/custom"), Path::new("/etc/custom/mine.txt"));
        assert_eq!((o.info().as_str(), o.reference()), ("mine", "(custom)"));
        // A folder named `static` below the root adds no category either.
        let o = MaltrailOrigin::of(Path::new("/t"), Path::new("/t/static/x.txt"));
        assert_eq!(o.info(), "x");
    }

    #[test]
    fn trails_comments_and_records() {
        let text =
            "\u{feff}# header\r\nevil.example # note\r\n\r\n1.2.3.4\r\nhttp://bad.example\r\n";
        let (recs, rep) = run("/t", "/t/malware/emotet.txt", text);
        assert_eq!(rep.malformed_count, 0, "{:?}", rep.malformed);
        let inds: Vec<_> = recs.iter().map(|r| r.indicator.to_string()).collect();
        assert_eq!(inds, ["evil.example", "1.2.3.4", "bad.example/"]);
        assert!(
            recs.iter()
                .all(|r| r.info.as_deref() == Some("emotet (malware)"))
        );
        assert!(
            recs.iter()
                .all(|r| r.reference.as_deref() == Some("(static)"))
        );
    }

    #[test]
    fn hostile_lines_are_counted_with_their_line() {
        let long = "a".repeat(MAX_LINE_LEN + 1);
        let text = format!(
            "<html>\n<head><title>404 Not Found</title></head>\n</html>\nok.example\n\
             \u{0}\u{1}\u{fffd}\u{fffd}\n{long}\nbad..name\n1.2.3.999\nq(l|r[0-9]\n<center>nginx</center>\n"
        );
        let (recs, rep) = run("/t", "/t/x.txt", &text);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].indicator, Indicator::Domain("ok.example".into()));
        assert_eq!(rep.malformed_count, 9);
        let lines: Vec<_> = rep.malformed.iter().map(|m| m.line).collect();
        assert_eq!(lines, [1, 2, 3, 5, 6, 7, 8, 9, 10]);
        assert!(rep.malformed[0].to_string().starts_with("/t/x.txt:1: "));
    }

    #[test]
    fn truncated_last_line_still_reads() {
        let (recs, rep) = run("/t", "/t/x.txt", "a.example\nb.exam");
        assert_eq!(recs.len(), 2);
        assert_eq!(rep.malformed_count, 0);
    }

    #[test]
    fn csv_files_in_trail_folders() {
        let text =
            "# c\nhttp://evil.example/a/,\"Evil RAT\"\nnocomma.example\nbad..x,info\n5.6.7.8,\n";
        let (recs, rep) = run("/t/static", "/t/static/malware/extra.csv", text);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].indicator, Indicator::Url("evil.example/a".into()));
        assert_eq!(recs[0].info.as_deref(), Some("Evil RAT (malware)"));
        assert_eq!(recs[0].reference.as_deref(), Some("extra (static)"));
        assert_eq!(recs[1].info, None);
        let lines: Vec<_> = rep.malformed.iter().map(|m| m.line).collect();
        assert_eq!(lines, [3, 4]);
    }

    #[test]
    fn long_csv_line_with_hash_is_reported() {
        let text = format!("x.example,#{}\n", "i".repeat(MAX_LINE_LEN));
        let (recs, rep) = run("/t", "/t/a.csv", &text);
        assert!(recs.is_empty());
        assert_eq!(rep.malformed_count, 1);
    }
}
