//! CSV feeds with chosen columns (Blackbook: `Domain,Malware,Date added,Source`).
//!
//! The indicator column is parsed as [`CsvOptions::kind`] (or classified like a Maltrail
//! trail); the optional info column's text becomes the trail's info as written (the
//! source's default info applies where it is empty). Quoting follows RFC 4180; rows may
//! have any number of fields.

use std::path::Path;

use super::{CsvOptions, Record, Sink, TrailFormat, parse_kind, parse_trail, too_long};

/// A CSV feed read through [`CsvOptions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvColumns {
    pub options: CsvOptions,
}

impl CsvColumns {
    pub fn new(options: CsvOptions) -> Self {
        CsvColumns { options }
    }
}

impl TrailFormat for CsvColumns {
    fn parse(&self, text: &str, file: &Path, sink: &mut Sink<'_>) {
        let opts = &self.options;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut reader = ::csv::ReaderBuilder::new()
            .delimiter(opts.delimiter)
            .has_headers(false)
            .flexible(true)
            .comment(Some(b'#'))
            .from_reader(text.as_bytes());
        let mut row = ::csv::StringRecord::new();
        let mut header_pending = opts.header;
        loop {
            let no = reader.position().line() as usize;
            match reader.read_record(&mut row) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    sink.malformed(file, no, format_args!("unreadable CSV row: {e}"));
                    continue;
                }
            }
            let no = row.position().map_or(no, |p| p.line() as usize);
            if std::mem::take(&mut header_pending) {
                continue;
            }
            if row.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            if too_long(row.as_slice(), file, no, sink) {
                continue;
            }
            let Some(value) = row.get(opts.column).map(str::trim) else {
                sink.malformed(
                    file,
                    no,
                    format_args!(
                        "row has {} field(s); the indicator is in column {} (0-based)",
                        row.len(),
                        opts.column
                    ),
                );
                continue;
            };
            let parsed = match opts.kind {
                Some(kind) => parse_kind(kind, value),
                None => parse_trail(value),
            };
            match parsed {
                Ok(indicator) => {
                    let mut record = Record::new(indicator);
                    record.info = opts
                        .info_column
                        .and_then(|c| row.get(c))
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(Into::into);
                    sink.push(record);
                }
                Err(reason) => sink.malformed(file, no, reason),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use spoor_core::{Indicator, TrailKind};

    use super::*;
    use crate::format::{MAX_LINE_LEN, ParseReport};

    fn blackbook() -> CsvOptions {
        CsvOptions {
            column: 0,
            info_column: Some(1),
            delimiter: b',',
            header: true,
            kind: Some(TrailKind::Domain),
        }
    }

    fn run(opts: CsvOptions, text: &str) -> (Vec<Record>, ParseReport) {
        let mut report = ParseReport::default();
        let mut out = Vec::new();
        let mut push = |r| out.push(r);
        let mut sink = Sink::new(&mut report, &mut push);
        CsvColumns::new(opts).parse(text, Path::new("feed.csv"), &mut sink);
        (out, report)
    }

    #[test]
    fn blackbook_rows() {
        let text = "\u{feff}Domain,Malware,Date added,Source\r\n\
                    gracebytry.tk,lokibot,2018-12-13,CyberCrime\r\n\
                    \"quoted.example\",\"emotet, epoch 1\",2018-12-13,URLhaus\r\n\
                    noinfo.example,,x,y\r\n";
        let (recs, rep) = run(blackbook(), text);
        assert_eq!(rep.malformed_count, 0, "{:?}", rep.malformed);
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].indicator, Indicator::Domain("gracebytry.tk".into()));
        assert_eq!(recs[0].info.as_deref(), Some("lokibot"));
        assert_eq!(recs[1].info.as_deref(), Some("emotet, epoch 1"));
        assert_eq!(recs[2].info, None);
    }

    #[test]
    fn other_delimiter_and_kind() {
        let opts = CsvOptions {
            column: 1,
            info_column: None,
            delimiter: b';',
            header: false,
            kind: None,
        };
        let (recs, rep) = run(opts, "a;1.2.3.4:80\nb;evil.example/x\n");
        assert_eq!(rep.malformed_count, 0);
        assert_eq!(
            recs[0].indicator,
            Indicator::IpPort("1.2.3.4".parse().unwrap(), 80)
        );
    }

    #[test]
    fn hostile_rows() {
        let long = "y".repeat(MAX_LINE_LEN);
        let text = format!(
            "h,h\n<html><head><title>503</title></head>\nonly\u{0}\n1.2.3.4,ip\n{long}.example,x\nok.example,fine\n\"unterminated,x\n"
        );
        let (recs, rep) = run(blackbook(), &text);
        assert_eq!(recs.len(), 1);
        let lines: Vec<_> = rep.malformed.iter().map(|m| m.line).collect();
        assert_eq!(lines, [2, 3, 4, 5, 7]);
    }
}
