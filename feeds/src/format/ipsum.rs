//! IPsum (`IP<TAB>count`, the count being how many blacklists list the address) and its
//! level files (bare IPs, already filtered by count).
//!
//! A line under `min_count` is valid but not wanted: it is skipped without a complaint.

use std::path::Path;

use spoor_core::TrailKind;

use super::{Record, Sink, TrailFormat, numbered_lines, parse_kind, usable_content};

/// IPsum with a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipsum {
    pub min_count: u32,
}

impl TrailFormat for Ipsum {
    fn parse(&self, text: &str, file: &Path, sink: &mut Sink<'_>) {
        for (no, line) in numbered_lines(text) {
            let Some(value) = usable_content(line, file, no, sink) else {
                continue;
            };
            let mut fields = value.split_whitespace();
            let address = fields.next().unwrap_or_default();
            let count = match (fields.next(), fields.next()) {
                // Level files list addresses that already passed their level's count.
                (None, _) => None,
                (Some(count), None) => match count.parse::<u32>() {
                    Ok(count) => Some(count),
                    Err(_) => {
                        sink.malformed(file, no, format_args!("count `{count}` is not a number"));
                        continue;
                    }
                },
                (Some(_), Some(_)) => {
                    sink.malformed(file, no, "expected `IP<TAB>count`, found more fields");
                    continue;
                }
            };
            let indicator = match parse_kind(TrailKind::Ip, address) {
                Ok(ind) => ind,
                Err(reason) => {
                    sink.malformed(file, no, reason);
                    continue;
                }
            };
            if count.is_some_and(|c| c < self.min_count) {
                continue;
            }
            sink.push(Record::new(indicator));
        }
    }
}

#[cfg(test)]
mod tests {
    use spoor_core::Indicator;

    use super::*;
    use crate::format::ParseReport;

    fn run(min_count: u32, text: &str) -> (Vec<Indicator>, ParseReport) {
        crate::format::parse_indicators(&Ipsum { min_count }, text, "ipsum.txt")
    }

    #[test]
    fn counts_and_levels() {
        let text = "# IPsum Threat Intelligence Feed\r\n# IP\tnumber of (black)lists\r\n\
                    1.1.1.1\t9\r\n2.2.2.2\t2\r\n3.3.3.3\t3\r\n4.4.4.4\r\n";
        let (inds, rep) = run(3, text);
        assert_eq!(rep.malformed_count, 0);
        let got: Vec<_> = inds.iter().map(ToString::to_string).collect();
        assert_eq!(got, ["1.1.1.1", "3.3.3.3", "4.4.4.4"]);
    }

    #[test]
    fn hostile() {
        let text = "1.1.1.1\tmany\n1.1.1.1\t3\textra\n1.1.1\t9\n<html>\n\u{0}\t1\n5.5.5.5\t99999999999\n6.6.6.6\t4";
        let (inds, rep) = run(1, text);
        assert_eq!(inds.len(), 1);
        let lines: Vec<_> = rep.malformed.iter().map(|m| m.line).collect();
        assert_eq!(lines, [1, 2, 3, 4, 5, 6]);
    }
}
