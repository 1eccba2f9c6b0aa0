//! Suricata's list formats: IP reputation files and dataset lists.
//!
//! IP reputation (`iprep`): `ip,category,score` per line; the address may be a CIDR, the
//! score is 0..=127 and lines under `min_score` are skipped without a complaint.
//!
//! Datasets: one value per line. Suricata stores `string` datasets base64-encoded (so any
//! byte can be a value) and appends `,reputation` in datarep files. A line that decodes as
//! base64 to printable text of the dataset's kind is that text; otherwise the line is taken
//! as a plain value. `md5`/`sha256` datasets hold hashes of values, which Spoor cannot
//! match, so their lines are reported.

use std::path::Path;

use spoor_core::{Indicator, TrailKind};

use super::{Record, Sink, TrailFormat, numbered_lines, parse_kind, usable_content};

/// Highest reputation score Suricata accepts.
pub const MAX_IPREP_SCORE: u8 = 127;

/// Suricata IP reputation list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuricataIprep {
    pub min_score: u8,
}

impl TrailFormat for SuricataIprep {
    fn parse(&self, text: &str, file: &Path, sink: &mut Sink<'_>) {
        for (no, line) in numbered_lines(text) {
            let Some(value) = usable_content(line, file, no, sink) else {
                continue;
            };
            let fields: Vec<&str> = value.split(',').map(str::trim).collect();
            let [address, category, score] = fields[..] else {
                sink.malformed(
                    file,
                    no,
                    format_args!(
                        "expected `ip,category,score`, found {} field(s)",
                        fields.len()
                    ),
                );
                continue;
            };
            if category.parse::<u8>().is_err() {
                sink.malformed(
                    file,
                    no,
                    format_args!("category `{category}` is not a number 0..=255"),
                );
                continue;
            }
            let score = match score.parse::<u8>() {
                Ok(score) if score <= MAX_IPREP_SCORE => score,
                _ => {
                    sink.malformed(
                        file,
                        no,
                        format_args!("score `{score}` is not a number 0..={MAX_IPREP_SCORE}"),
                    );
                    continue;
                }
            };
            let indicator = match parse_kind(TrailKind::Cidr, address) {
                Ok(indicator) => indicator,
                Err(reason) => {
                    sink.malformed(file, no, reason);
                    continue;
                }
            };
            if score >= self.min_score {
                sink.push(Record::new(indicator));
            }
        }
    }
}

/// Suricata dataset (or datarep) list of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuricataDataset {
    pub kind: TrailKind,
}

impl TrailFormat for SuricataDataset {
    fn parse(&self, text: &str, file: &Path, sink: &mut Sink<'_>) {
        for (no, line) in numbered_lines(text) {
            let Some(value) = usable_content(line, file, no, sink) else {
                continue;
            };
            match dataset_value(self.kind, value) {
                Ok(indicator) => sink.push(Record::new(indicator)),
                Err(reason) => sink.malformed(file, no, reason),
            }
        }
    }
}

fn dataset_value(kind: TrailKind, line: &str) -> Result<Indicator, String> {
    let value = match line.rsplit_once(',') {
        Some((value, rep)) if is_integer(rep.trim()) => {
            if rep.trim().starts_with('-') {
                return Err(format!("reputation `{}` is negative", rep.trim()));
            }
            value.trim()
        }
        _ => line,
    };
    let is_hex = value.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex && (value.len() == 32 || value.len() == 64) {
        return Err(format!(
            "`{value}` is an MD5/SHA-256 dataset value: Spoor stores no hashed values"
        ));
    }
    if let Some(text) = decode_base64(value).and_then(printable)
        && let Ok(indicator) = typed(kind, &text)
    {
        return Ok(indicator);
    }
    typed(kind, value)
}

/// A dataset value is an exact string; a user-agent trail is a pattern, so the value is
/// escaped and anchored to keep matching exact.
fn typed(kind: TrailKind, value: &str) -> Result<Indicator, String> {
    if kind == TrailKind::UserAgent {
        let pattern = format!("^{}$", regex::escape(value.trim()));
        return parse_kind(kind, &pattern);
    }
    parse_kind(kind, value)
}

fn is_integer(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn printable(bytes: Vec<u8>) -> Option<String> {
    let text = String::from_utf8(bytes).ok()?;
    (!text.is_empty() && !text.chars().any(char::is_control)).then_some(text)
}

/// Standard base64 (RFC 4648 §4) with padding, as Suricata writes datasets. Small enough
/// not to justify a dependency.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    let pad = bytes.iter().rev().take_while(|&&c| c == b'=').count();
    if pad > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in &bytes[..bytes.len() - pad] {
        let sextet = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(sextet);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::ParseReport;

    fn run(format: &dyn TrailFormat, text: &str) -> (Vec<Indicator>, ParseReport) {
        crate::format::parse_indicators(format, text, "list")
    }

    #[test]
    fn base64() {
        assert_eq!(decode_base64("Y3VybC83LjQzLjA=").unwrap(), b"curl/7.43.0");
        assert_eq!(decode_base64("LmV2aWwuY29t").unwrap(), b".evil.com");
        assert_eq!(decode_base64("YQ==").unwrap(), b"a");
        assert_eq!(decode_base64("YWI=").unwrap(), b"ab");
        assert!(decode_base64("Y3VybC83Lj!QzLjA=").is_none());
        assert!(decode_base64("YQ=").is_none());
        assert!(decode_base64("Y===").is_none());
        assert!(decode_base64("").is_none());
    }

    #[test]
    fn iprep_lines_and_scores() {
        // CR-only line ends, as in suricata-verify's reputation-config-cr.
        let text = "#8.8.8.8,10,100\r1.2.3.4,1,101\r192.168.0.13/24,1,0\r5.5.5.5,2,20\r";
        let (inds, rep) = run(&SuricataIprep { min_score: 10 }, text);
        assert_eq!(rep.malformed_count, 0, "{:?}", rep.malformed);
        let got: Vec<_> = inds.iter().map(ToString::to_string).collect();
        assert_eq!(got, ["1.2.3.4", "5.5.5.5"]);
        let (inds, _) = run(&SuricataIprep { min_score: 0 }, text);
        assert_eq!(inds[1], Indicator::Cidr("192.168.0.0/24".parse().unwrap()));
    }

    #[test]
    fn iprep_hostile() {
        let text = "1.2.3.4,1,128\n1.2.3.4,x,1\n1.2.3.4,1\n1.2.3,1,1\n<html>\n\u{0},\u{0},\u{0}\n1.1.1.1,1,1,1\n9.9.9.9,1,1";
        let (inds, rep) = run(&SuricataIprep { min_score: 0 }, text);
        assert_eq!(inds.len(), 1);
        let lines: Vec<_> = rep.malformed.iter().map(|m| m.line).collect();
        assert_eq!(lines, [1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn datasets_plain_and_base64() {
        let ua = SuricataDataset {
            kind: TrailKind::UserAgent,
        };
        let (inds, rep) = run(
            &ua,
            "Y3VybC83LjQzLjA=\nYmxhaA==,1\nMozilla/5.0 (KHTML, like Gecko)\n",
        );
        assert_eq!(rep.malformed_count, 0, "{:?}", rep.malformed);
        assert_eq!(inds[0], Indicator::UserAgent(r"^curl/7\.43\.0$".into()));
        assert_eq!(inds[1], Indicator::UserAgent("^blah$".into()));
        assert_eq!(
            inds[2],
            Indicator::UserAgent(r"^Mozilla/5\.0 \(KHTML, like Gecko\)$".into())
        );

        let dom = SuricataDataset {
            kind: TrailKind::Domain,
        };
        let (inds, rep) = run(&dom, "LmV2aWwuY29t\nZ29vZ2xlLmNvbQ==,255\nplain.example\n");
        assert_eq!(rep.malformed_count, 0);
        let got: Vec<_> = inds.iter().map(ToString::to_string).collect();
        assert_eq!(got, ["evil.com", "google.com", "plain.example"]);

        let ip = SuricataDataset {
            kind: TrailKind::Ip,
        };
        let (inds, _) = run(&ip, "::ffff:82.165.177.154\n");
        assert_eq!(inds[0].to_string(), "82.165.177.154");
    }

    #[test]
    fn datasets_hostile() {
        let dom = SuricataDataset {
            kind: TrailKind::Domain,
        };
        let text = "1d5920f4b44b27a802bd77c4f0536f5a,255\n\
                    d4c9d9027326271a89ce51fcaf328ed673f17be33469ff979e8ab8dd501e664f\n\
                    Z29vZ2xlLmNvbQ==,-1\nZ29vZ2xlLm;NvbQ==,1\n<html>\n\u{0}\u{1}\nAAAA\nok.example";
        let (inds, rep) = run(&dom, text);
        // `AAAA` decodes to NUL bytes (not printable), so it is the plain label `aaaa`.
        let got: Vec<_> = inds.iter().map(ToString::to_string).collect();
        assert_eq!(got, ["aaaa", "ok.example"]);
        let lines: Vec<_> = rep.malformed.iter().map(|m| m.line).collect();
        assert_eq!(lines, [1, 2, 3, 4, 5, 6]);
        assert!(rep.malformed[0].reason.contains("MD5/SHA-256"));
    }
}
