//! Maltrail's `trails.csv`: `trail,info,reference` per line.
//!
//! This is the file Maltrail's updater writes after merging every feed, so each line brings
//! its own info and reference. Quoted fields are allowed (`"a, b"`); a line with fewer than
//! three fields keeps what it has and takes the source's defaults for the rest.

use std::path::Path;

use super::{Record, Sink, TrailFormat, parse_trail, too_long};

/// Maltrail's merged `trails.csv`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MaltrailTrailsCsv;

impl TrailFormat for MaltrailTrailsCsv {
    fn parse(&self, text: &str, file: &Path, sink: &mut Sink<'_>) {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        super::csv::for_each_row(text, b',', file, sink, |no, row, sink| {
            let trail = row.get(0).unwrap_or_default().trim();
            if trail.is_empty() && row.iter().all(|f| f.trim().is_empty()) {
                return;
            }
            if too_long(row.as_slice(), file, no, sink) {
                return;
            }
            match parse_trail(trail) {
                Ok(indicator) => {
                    let field = |i: usize| {
                        row.get(i)
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(Into::into)
                    };
                    let mut record = Record::new(indicator);
                    record.info = field(1);
                    record.reference = field(2);
                    sink.push(record);
                }
                Err(reason) => sink.malformed(file, no, reason),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use spoor_core::Indicator;

    use super::*;
    use crate::format::{MAX_LINE_LEN, ParseReport};

    fn run(text: &str) -> (Vec<Record>, ParseReport) {
        crate::format::parse_records(&MaltrailTrailsCsv, text, "trails.csv")
    }

    #[test]
    fn fields_and_quotes() {
        let text = "\u{feff}evil.example,malware (test),(static)\r\n\
                    \"[dead::beef]:443\",\"a, b\",ref\r\n# comment\r\n\r\nonly.example\r\n";
        let (recs, rep) = run(text);
        assert_eq!(rep.malformed_count, 0, "{:?}", rep.malformed);
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].info.as_deref(), Some("malware (test)"));
        assert_eq!(recs[0].reference.as_deref(), Some("(static)"));
        assert_eq!(
            recs[1].indicator,
            Indicator::IpPort("dead::beef".parse().unwrap(), 443)
        );
        assert_eq!(recs[1].info.as_deref(), Some("a, b"));
        assert_eq!(
            (recs[2].info.clone(), recs[2].reference.clone()),
            (None, None)
        );
    }

    #[test]
    fn hostile_rows() {
        let long = "x".repeat(MAX_LINE_LEN + 10);
        let text = format!(
            "<html><body>Bad Gateway</body></html>\nok.example,i,r\n\u{1}\u{2},x\n{long},i\n\"unterminated,i\n"
        );
        let (recs, rep) = run(&text);
        assert_eq!(recs.len(), 1);
        let lines: Vec<_> = rep.malformed.iter().map(|m| m.line).collect();
        assert_eq!(lines, [1, 3, 4, 5]);
    }
}
