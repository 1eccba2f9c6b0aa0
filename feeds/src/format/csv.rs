//! CSV feeds with chosen columns (Blackbook: `Domain,Malware,Date added,Source`).
//!
//! The indicator column is parsed as [`CsvOptions::kind`] (or classified like a Maltrail
//! trail); the optional info column's text becomes the trail's info as written (the
//! source's default info applies where it is empty). Quoting follows RFC 4180; rows may
//! have any number of fields. Blanks between a delimiter and a quoted field are dropped
//! (ThreatFox writes `"a", "b, c", "d"`), so such fields are still read as quoted.

use std::borrow::Cow;
use std::path::Path;

use super::{CsvOptions, Record, Sink, TrailFormat, parse_kind, parse_trail, too_long};

/// A CSV feed read through [`CsvOptions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvColumns {
    pub options: CsvOptions,
}

/// Read `text` as CSV rows (flexible width, `#` comment lines) and hand each readable row
/// with its 1-based line number to `row_fn`; an unreadable row is reported malformed.
pub(crate) fn for_each_row(
    text: &str,
    delimiter: u8,
    file: &Path,
    sink: &mut Sink<'_>,
    mut row_fn: impl FnMut(usize, &::csv::StringRecord, &mut Sink<'_>),
) {
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let mut row = ::csv::StringRecord::new();
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
        row_fn(no, &row, sink);
    }
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
        let text = drop_blanks_before_quotes(text, opts.delimiter);
        let mut header_pending = opts.header;
        for_each_row(&text, opts.delimiter, file, sink, |no, row, sink| {
            if std::mem::take(&mut header_pending) {
                return;
            }
            if row.iter().all(|f| f.trim().is_empty()) {
                return;
            }
            if too_long(row.as_slice(), file, no, sink) {
                return;
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
                return;
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
        });
    }
}

/// `text` with the blanks between a delimiter and an opening quote removed, outside quoted
/// fields and `#` comment lines. RFC 4180 only opens a quoted field at its first byte, so
/// without this `a, "b, c"` would split inside the quotes.
fn drop_blanks_before_quotes(text: &str, delimiter: u8) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let blank = |b: u8| b == b' ' || b == b'\t';
    if blank(delimiter) || !bytes.windows(2).any(|w| w[0] == delimiter && blank(w[1])) {
        return Cow::Borrowed(text);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let mut quoted = false;
    let mut line_start = true;
    let mut field_start = true;
    while i < bytes.len() {
        let b = bytes[i];
        if quoted {
            out.push(b);
            if b == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    out.push(b'"');
                    i += 1;
                } else {
                    quoted = false;
                }
            }
            i += 1;
            continue;
        }
        if line_start && b == b'#' {
            let end = bytes[i..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(bytes.len(), |p| i + p + 1);
            out.extend_from_slice(&bytes[i..end]);
            i = end;
            continue;
        }
        if field_start && blank(b) {
            let blanks = bytes[i..].iter().take_while(|&&c| blank(c)).count();
            if bytes.get(i + blanks) == Some(&b'"') {
                i += blanks;
                continue;
            }
        }
        out.push(b);
        i += 1;
        quoted = field_start && b == b'"';
        line_start = b == b'\n';
        field_start = b == delimiter || b == b'\n' || b == b'\r';
    }
    // Only ASCII blanks were removed from valid UTF-8.
    Cow::Owned(String::from_utf8(out).unwrap_or_else(|_| text.to_string()))
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
        crate::format::parse_records(&CsvColumns::new(opts), text, "feed.csv")
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
    fn blanks_before_quoted_fields() {
        // ThreatFox's CSV export: `", "` between fields, commas inside the alias field.
        let opts = CsvOptions {
            column: 2,
            info_column: Some(7),
            delimiter: b',',
            header: false,
            kind: Some(TrailKind::IpPort),
        };
        let text = "# \"first_seen_utc\", \"ioc_id\", \"ioc_value\"\n\
                    \"2024-07-16 05:25:36\", \"1301610\", \"8.134.12.90:7777\", \"ip:port\", \"botnet_cc\", \"win.cobalt_strike\", \"Agentemis,BEACON\", \"Cobalt Strike\", \"\"\n\
                    \"x\", \"2\",   \"1.2.3.4:80\",\"ip:port\", \"\", \"\", \"say \"\"hi\"\", there\", \"Remcos\"\n";
        let (recs, rep) = run(opts, text);
        assert_eq!(rep.malformed_count, 0, "{:?}", rep.malformed);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].indicator.to_string(), "8.134.12.90:7777");
        assert_eq!(recs[0].info.as_deref(), Some("Cobalt Strike"));
        assert_eq!(recs[1].indicator.to_string(), "1.2.3.4:80");
        assert_eq!(recs[1].info.as_deref(), Some("Remcos"));
        // Unquoted fields keep their blanks (trimmed later); nothing else changes.
        assert_eq!(drop_blanks_before_quotes("a, b,c", b','), "a, b,c");
        assert!(matches!(
            drop_blanks_before_quotes("a,b", b','),
            Cow::Borrowed(_)
        ));
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
