//! Tor exit lists: the bulk list (one IP per line) and the exit-addresses document, whose
//! `ExitAddress 1.2.3.4 2024-01-01 12:00:00` lines carry the addresses while `ExitNode`,
//! `Published` and `LastStatus` lines describe the relay and are skipped.

use std::path::Path;

use spoor_core::TrailKind;

use super::{Record, Sink, TrailFormat, numbered_lines, parse_kind, usable_content};

/// Keywords of the exit-addresses document that carry no address.
const RELAY_KEYWORDS: &[&str] = &["ExitNode", "Published", "LastStatus"];

/// Tor exit list, either form.
#[derive(Debug, Clone, Copy, Default)]
pub struct TorExits;

impl TrailFormat for TorExits {
    fn parse(&self, text: &str, file: &Path, sink: &mut Sink<'_>) {
        for (no, line) in numbered_lines(text) {
            let Some(value) = usable_content(line, file, no, sink) else {
                continue;
            };
            let mut fields = value.split_whitespace();
            let first = fields.next().unwrap_or_default();
            let address = match first {
                "ExitAddress" => match fields.next() {
                    Some(address) => address,
                    None => {
                        sink.malformed(file, no, "`ExitAddress` without an address");
                        continue;
                    }
                },
                keyword if RELAY_KEYWORDS.contains(&keyword) => continue,
                address if fields.next().is_none() => address,
                _ => {
                    sink.malformed(
                        file,
                        no,
                        "expected an IP address or an `ExitAddress IP date time` line",
                    );
                    continue;
                }
            };
            match parse_kind(TrailKind::Ip, address) {
                Ok(indicator) => sink.push(Record::new(indicator)),
                Err(reason) => sink.malformed(file, no, reason),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use spoor_core::Indicator;

    use super::*;
    use crate::format::ParseReport;

    fn run(text: &str) -> (Vec<Indicator>, ParseReport) {
        crate::format::parse_indicators(&TorExits, text, "exits")
    }

    #[test]
    fn both_forms() {
        let text = "ExitNode 0011BD2485AD45D984EC4159C88FC066E5E3300E\r\n\
                    Published 2024-01-01 10:00:00\r\nLastStatus 2024-01-01 11:00:00\r\n\
                    ExitAddress 162.247.74.201 2024-01-01 12:00:00\r\n\
                    ExitAddress 2001:db8::1 2024-01-01 12:00:00\r\n185.220.101.1\r\n";
        let (inds, rep) = run(text);
        assert_eq!(rep.malformed_count, 0, "{:?}", rep.malformed);
        let got: Vec<_> = inds.iter().map(ToString::to_string).collect();
        assert_eq!(got, ["162.247.74.201", "2001:db8::1", "185.220.101.1"]);
    }

    #[test]
    fn hostile() {
        let text = "ExitAddress\nExitAddress 1.2.3 x\n<html><body>Too many requests</body></html>\n\u{0}\n1.1.1.1 2.2.2.2\n8.8.8.8";
        let (inds, rep) = run(text);
        assert_eq!(inds.len(), 1);
        let lines: Vec<_> = rep.malformed.iter().map(|m| m.line).collect();
        assert_eq!(lines, [1, 2, 3, 4, 5]);
    }
}
