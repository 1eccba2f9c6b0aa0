//! Maltrail's whitelist: domains (each with all its subdomains), IP addresses and CIDRs
//! that must never become trails. Records from here are exemptions for the compiler.
//!
//! Maltrail's file is plain values only; a line that looks like a regular expression or a
//! URL is reported, because silently ignoring a whitelist entry would alert on what the
//! admin meant to exempt.

use std::path::Path;

use spoor_core::{Indicator, TrailKind};

use super::{Record, Sink, TrailFormat, numbered_lines, parse_kind, usable_content};

/// Characters that make a whitelist line a pattern rather than a name.
const PATTERN_CHARS: &[char] = &[
    '\\', '[', ']', '(', ')', '|', '*', '+', '?', '^', '$', '{', '}',
];

/// Domains, IPs and CIDRs never to alert on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Whitelist;

impl TrailFormat for Whitelist {
    fn parse(&self, text: &str, file: &Path, sink: &mut Sink<'_>) {
        for (no, line) in numbered_lines(text) {
            let Some(value) = usable_content(line, file, no, sink) else {
                continue;
            };
            match whitelist_entry(value) {
                Ok(indicator) => sink.push(Record::new(indicator)),
                Err(reason) => sink.malformed(file, no, reason),
            }
        }
    }
}

fn whitelist_entry(value: &str) -> Result<Indicator, String> {
    if value.contains(PATTERN_CHARS) {
        return Err(format!(
            "`{value}` looks like a regular expression; the whitelist takes only domains, IPs and CIDRs"
        ));
    }
    if value.contains('/') {
        // Only a CIDR may contain a slash here.
        return parse_kind(TrailKind::Cidr, value).map_err(|_| {
            format!("`{value}` is not a CIDR; the whitelist takes only domains, IPs and CIDRs")
        });
    }
    if value.contains(':') || value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return parse_kind(TrailKind::Ip, value);
    }
    parse_kind(TrailKind::Domain, value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::ParseReport;

    fn run(text: &str) -> (Vec<Indicator>, ParseReport) {
        crate::format::parse_indicators(&Whitelist, text, "whitelist.txt")
    }

    #[test]
    fn entries() {
        let (inds, rep) =
            run("# c\r\nlocalhost\r\n127.0.0.1\r\n::1\r\nGoogle.COM.\r\n10.0.0.0/8\r\n");
        assert_eq!(rep.malformed_count, 0, "{:?}", rep.malformed);
        let got: Vec<_> = inds.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            ["localhost", "127.0.0.1", "::1", "google.com", "10.0.0.0/8"]
        );
    }

    #[test]
    fn hostile() {
        let text = ".*\\.example\\.com\nhttp://x.example/a\n1.2.3.4/99\n300.1.1.1\n<html>\n\u{0}\u{7f}\nok.example";
        let (inds, rep) = run(text);
        assert_eq!(inds, [Indicator::Domain("ok.example".into())]);
        assert_eq!(rep.malformed_count, 6);
        assert!(rep.malformed[0].reason.contains("regular expression"));
        assert_eq!(rep.malformed[5].line, 6);
    }
}
