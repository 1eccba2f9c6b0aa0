//! Hosts files used as block lists: `0.0.0.0 evil.example [more names]`, `127.0.0.1 ...`.
//!
//! Every name after the address is a domain trail; the address itself is the sink hole
//! and is ignored. The entries every hosts file carries for the machine itself
//! (`localhost`, `broadcasthost`, `::1 ...`, `ff02::1 ip6-allnodes`) are skipped silently.
//! A line with only a name (some lists drop the address) is accepted.

use std::net::IpAddr;
use std::path::Path;

use spoor_core::TrailKind;

use super::{Record, Sink, TrailFormat, numbered_lines, parse_kind, usable_content};

/// Names a hosts file maps for the machine itself, never trails. `0.0.0.0` appears as a
/// name in popular block lists (`0.0.0.0 0.0.0.0`).
const LOCAL_NAMES: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "local",
    "broadcasthost",
    "0.0.0.0",
];

/// A hosts file.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostsFile;

impl TrailFormat for HostsFile {
    fn parse(&self, text: &str, file: &Path, sink: &mut Sink<'_>) {
        for (no, line) in numbered_lines(text) {
            let Some(value) = usable_content(line, file, no, sink) else {
                continue;
            };
            let mut fields = value.split_whitespace().peekable();
            let first = fields.peek().copied().unwrap_or_default();
            let address = first.parse::<IpAddr>().ok();
            if address.is_some() {
                fields.next();
                if fields.peek().is_none() {
                    sink.malformed(
                        file,
                        no,
                        format_args!("`{first}` has no host name after it"),
                    );
                    continue;
                }
            }
            if address.is_some_and(|a| (a.is_ipv6() && a.is_loopback()) || a.is_multicast()) {
                continue;
            }
            for name in fields {
                if is_local_name(name) {
                    continue;
                }
                match parse_kind(TrailKind::Domain, name) {
                    Ok(indicator) => sink.push(Record::new(indicator)),
                    Err(reason) => sink.malformed(file, no, reason),
                }
            }
        }
    }
}

fn is_local_name(name: &str) -> bool {
    LOCAL_NAMES.iter().any(|n| n.eq_ignore_ascii_case(name))
        || name
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("ip6-"))
}

#[cfg(test)]
mod tests {
    use spoor_core::Indicator;

    use super::*;
    use crate::format::ParseReport;

    fn run(text: &str) -> (Vec<Indicator>, ParseReport) {
        crate::format::parse_indicators(&HostsFile, text, "hosts")
    }

    #[test]
    fn names_after_the_address() {
        let text = "\u{feff}# hosts\r\n127.0.0.1 localhost\r\n127.0.0.1\tlocalhost.localdomain local\r\n\
                    255.255.255.255 broadcasthost\r\n::1 localhost ip6-localhost\r\nff02::1 ip6-allnodes\r\n\
                    0.0.0.0 0.0.0.0\r\n0.0.0.0 Evil.example alias2.example # ads\r\n\
                    127.0.0.1 tracker.example\r\nonly-name.example\r\n";
        let (inds, rep) = run(text);
        assert_eq!(rep.malformed_count, 0, "{:?}", rep.malformed);
        let got: Vec<_> = inds.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "evil.example",
                "alias2.example",
                "tracker.example",
                "only-name.example"
            ]
        );
    }

    #[test]
    fn hostile_lines() {
        let text =
            "0.0.0.0\n0.0.0.0 1.2.3.4\n<html><body>\n0.0.0.0 ok.example bad..name\n\u{0}\u{1}\n";
        let (inds, rep) = run(text);
        assert_eq!(inds, [Indicator::Domain("ok.example".into())]);
        let lines: Vec<_> = rep.malformed.iter().map(|m| m.line).collect();
        assert_eq!(lines, [1, 2, 3, 4, 5]);
    }
}
