//! Events as ArcSight Common Event Format (CEF) messages, for SIEMs that read CEF over
//! syslog (see [`super::syslog`] for the framing).
//!
//! ```text
//! CEF:0|Spoor|Spoor Sensor|0.1.0|dns|malware (test)|8|rt=1699999999123 src=10.0.0.5 ...
//! ```
//!
//! Header: signature id = the event kind (`dns`, `ip_port`, ...), or `heuristic:<name>` for
//! heuristics so that a SIEM can tell heuristics apart; name = `info`; severity on CEF's
//! 0–10 scale: low 3, medium 6, high 8.
//!
//! Extensions (in this order, empty ones left out): `rt` (packet time, ms since the epoch),
//! `src`/`spt`/`dst`/`dpt` (IPv6 addresses go to `c6a2`/`c6a3` with their labels, as
//! CEF's `src`/`dst` are IPv4 fields), `proto`, `cat` (kind), `cs1` trail, `cs2` reference,
//! `cs3` offender, `cnt` count, `start`/`end` (first/last seen, ms), `dvchost` sensor,
//! `externalId` event id, `cs4` heuristic name and `msg` its evidence (heuristic events),
//! `requestMethod`, `request` (host + URI), `requestClientApplication`
//! (User-Agent), `dhost` (DNS query, HTTP host or SNI).
//!
//! Escaping follows the CEF spec as Maltrail's vectors pin it: in the header `\` and `|` are
//! backslash-escaped, in extension values `\` and `=`; CR and LF become spaces in both, so
//! one event is always one line.

use std::fmt::Write as _;
use std::net::IpAddr;

use spoor_core::{Event, EventKind, Severity};

/// Vendor and product in every CEF header.
pub const VENDOR: &str = "Spoor";
pub const PRODUCT: &str = "Spoor Sensor";
/// The sensor version in the CEF header.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Escape a CEF header field: `\` → `\\`, `|` → `\|`, CR/LF → space.
pub fn escape_header(value: &str) -> String {
    escape(value, '|')
}

/// Escape a CEF extension value: `\` → `\\`, `=` → `\=`, CR/LF → space.
pub fn escape_extension(value: &str) -> String {
    escape(value, '=')
}

fn escape(value: &str, special: char) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\r' | '\n' => out.push(' '),
            c if c == special => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// CEF severity (0–10).
pub fn cef_severity(severity: Severity) -> u8 {
    match severity {
        Severity::Low => 3,
        Severity::Medium => 6,
        Severity::High => 8,
    }
}

fn millis(t: spoor_core::Micros) -> i64 {
    t.0.div_euclid(1000)
}

/// The CEF message for `event` (no syslog header, no newline).
pub fn render(event: &Event) -> String {
    let signature = match event.kind {
        EventKind::Heuristic => match &event.context.heuristic {
            Some(h) => format!("heuristic:{}", h.name),
            None => format!("heuristic:{}", event.trail),
        },
        kind => kind.as_str().to_owned(),
    };
    let mut out = String::with_capacity(256);
    let _ = write!(
        out,
        "CEF:0|{}|{}|{}|{}|{}|{}|",
        escape_header(VENDOR),
        escape_header(PRODUCT),
        escape_header(VERSION),
        escape_header(&signature),
        escape_header(&event.info),
        cef_severity(event.severity),
    );
    let mut ext = Extensions(&mut out, true);
    ext.add("rt", &millis(event.time).to_string());
    match event.src {
        IpAddr::V4(a) => ext.add("src", &a.to_string()),
        IpAddr::V6(a) => {
            ext.add("c6a2", &a.to_string());
            ext.add("c6a2Label", "Source IPv6 Address");
        }
    }
    if let Some(p) = event.src_port {
        ext.add("spt", &p.to_string());
    }
    match event.dst {
        IpAddr::V4(a) => ext.add("dst", &a.to_string()),
        IpAddr::V6(a) => {
            ext.add("c6a3", &a.to_string());
            ext.add("c6a3Label", "Destination IPv6 Address");
        }
    }
    if let Some(p) = event.dst_port {
        ext.add("dpt", &p.to_string());
    }
    ext.add("proto", &event.proto.name());
    ext.add("cat", event.kind.as_str());
    ext.add("cs1Label", "trail");
    ext.add("cs1", &event.trail);
    ext.add("cs2Label", "reference");
    ext.add("cs2", &event.reference);
    if let Some(offender) = event.offender {
        ext.add("cs3Label", "offender");
        ext.add("cs3", &offender.to_string());
    }
    ext.add("cnt", &event.count.to_string());
    ext.add("start", &millis(event.first_seen).to_string());
    ext.add("end", &millis(event.last_seen).to_string());
    ext.add("dvchost", &event.sensor);
    ext.add("externalId", &event.id.to_string());
    let ctx = &event.context;
    if let Some(h) = &ctx.heuristic {
        ext.add("cs4Label", "heuristic");
        ext.add("cs4", &h.name);
        ext.add("msg", &h.reason);
    }
    if let Some(http) = &ctx.http {
        ext.add("requestMethod", &http.method);
        ext.add("request", &format!("{}{}", http.host, http.uri));
        if let Some(ua) = &http.user_agent {
            ext.add("requestClientApplication", ua);
        }
    }
    let dhost = ctx
        .dns
        .as_ref()
        .map(|d| d.qname.as_str())
        .or_else(|| ctx.http.as_ref().map(|h| h.host.as_str()))
        .or_else(|| ctx.tls.as_ref().and_then(|t| t.sni.as_deref()));
    if let Some(dhost) = dhost {
        ext.add("dhost", dhost);
    }
    out
}

/// Appends `key=value` pairs, space-separated, skipping empty values.
struct Extensions<'a>(&'a mut String, bool);

impl Extensions<'_> {
    fn add(&mut self, key: &str, value: &str) {
        if value.is_empty() {
            return;
        }
        if !self.1 {
            self.0.push(' ');
        }
        self.1 = false;
        self.0.push_str(key);
        self.0.push('=');
        self.0.push_str(&escape_extension(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::test_support::dns_event;
    use crate::output::vectors::read_vectors;

    #[test]
    fn cef_escape_vectors() {
        let rows = read_vectors("cef_escape.tsv");
        assert_eq!(rows.len(), 16);
        for row in rows {
            let got = match row[1].as_str() {
                "header" => escape_header(&row[0]),
                "extension" => escape_extension(&row[0]),
                other => panic!("unknown field kind {other}"),
            };
            assert_eq!(got, row[2], "{row:?}");
        }
    }

    #[test]
    fn dns_event_as_cef() {
        let mut e = dns_event();
        e.info = "bad|name\nhere".into();
        e.trail = "a=b\\c".into();
        let line = render(&e);
        let expected_head =
            format!("CEF:0|Spoor|Spoor Sensor|{VERSION}|dns|bad\\|name here|8|rt=1700000000123 ");
        assert!(line.starts_with(&expected_head), "{line}");
        for part in [
            " src=10.0.0.5 spt=50000 dst=8.8.8.8 dpt=53 proto=UDP cat=dns ",
            " cs1Label=trail cs1=a\\=b\\\\c cs2Label=reference cs2=(static) ",
            " cs3Label=offender cs3=10.0.0.5 cnt=3 start=1700000000123 end=1700000060000 ",
            " dvchost=sensor1 externalId=0123456789abcdef0011223344556677 dhost=www.evil.com",
        ] {
            assert!(line.contains(part), "{part:?} in {line}");
        }
        assert!(!line.contains('\n'));
    }

    #[test]
    fn ipv6_goes_to_c6a_fields_and_heuristics_name_themselves() {
        let mut e = dns_event();
        e.src = "2001:db8::5".parse().unwrap();
        e.kind = EventKind::Heuristic;
        e.trail = "(xkqwzlvbnmfghjd).com".into();
        e.context.heuristic = Some(spoor_core::HeuristicContext {
            name: "dga".into(),
            reason: "label `xkqwzlvbnmfghjd` has an entropy of 3.91 bits (threshold 3.5)".into(),
        });
        let line = render(&e);
        assert!(line.contains("|heuristic:dga|"), "{line}");
        assert!(line.contains(" cs4Label=heuristic cs4=dga msg=label `xkqwzlvbnmfghjd` has an entropy of 3.91 bits (threshold 3.5)"), "{line}");
        assert!(line.contains(" c6a2=2001:db8::5 c6a2Label=Source IPv6 Address "));
        assert!(!line.contains(" src="));
    }
}
