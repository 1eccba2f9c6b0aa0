//! Maltrail's event log line, byte-compatible, so existing Maltrail log readers, dashboards
//! and grep habits keep working:
//!
//! ```text
//! "2023-11-14 22:13:20.123456" sensor1 10.0.0.5 50000 8.8.8.8 53 UDP DNS (www).evil.com "malware (test)" (static)
//! <time> <sensor> <src> <src_port> <dst> <dst_port> <PROTO> <TYPE> <trail> <info> <reference>
//! ```
//!
//! Every field goes through [`safe_value`]: CR and LF become spaces, an empty value becomes
//! `-`, and a value containing a space or a double quote is wrapped in double quotes with
//! inner quotes doubled. The time contains a space, so it is always quoted. Missing or zero
//! ports are `-` (Maltrail's `safe_value(0)` is `-`). IPv6 addresses are written the way
//! Maltrail writes them ([`compress_ipv6`], not RFC 5952), IP:port trails with
//! [`addr_port`].
//!
//! Time: Maltrail writes the event's second in the sensor's *local* time. Spoor writes UTC
//! (the standard library has no time-zone database; UTC is also what every other Spoor
//! output uses and what the server stores). The format is the same, so readers parse it.
//!
//! # Event kind → Maltrail TYPE
//!
//! | `EventKind` | TYPE | trail as written |
//! |---|---|---|
//! | `Ip`, `Cidr` | `IP` | the matched address |
//! | `IpPort` | `IPORT` | `addr:port`, `[v6]:port` |
//! | `Dns` | `DNS` | the query with the part outside the trail in parentheses: `(www).evil.com` |
//! | `Host` (HTTP Host header) | `DNS` | as `Dns`, from the Host header (Maltrail checks hosts as domains) |
//! | `Sni` (TLS/QUIC SNI) | `DNS` | as `Dns`, from the SNI |
//! | `Url` | `URL` | the trail with the rest of the request in parentheses: `host/a(?b=c)` |
//! | `Path` | `URL` | `host(/path?query)` |
//! | `Ua` | `UA` | the trail (the User-Agent) |
//! | `Ja4` | `JA4` | the fingerprint (Spoor extension: Maltrail has no JA4 trails) |
//! | `Cert` | `CERT` | the certificate SHA-1 (Spoor extension) |
//! | `Heuristic` | see below | the heuristic's trail |
//!
//! A heuristic's TYPE follows what its trail is, the way Maltrail's own heuristics log
//! (suspicious user agents are always `UA`, suspicious responses `HTTP`):
//! a port number → `PORT` ("potential infection"), an IP address → `IP` (scans), the
//! request's User-Agent → `UA`, anything else with HTTP context → `URL`, with DNS or TLS
//! context → `DNS`; with no context, `DNS` when the trail looks like a domain, else `IP`.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use spoor_core::{Event, EventKind, Micros};

use super::time::UtcTime;
use crate::heuristics::content::Heuristic;

/// One event line's fields as Maltrail holds them before rendering (its event tuple).
/// Fields are raw text; [`LogRecord::render`] applies [`safe_value`] to each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub time: Micros,
    pub sensor: String,
    pub src: String,
    pub src_port: String,
    pub dst: String,
    pub dst_port: String,
    pub proto: String,
    pub kind: String,
    pub trail: String,
    pub info: String,
    pub reference: String,
}

impl LogRecord {
    pub fn from_event(event: &Event) -> LogRecord {
        LogRecord {
            time: event.time,
            sensor: event.sensor.clone(),
            src: format_addr(event.src),
            src_port: format_port(event.src_port),
            dst: format_addr(event.dst),
            dst_port: format_port(event.dst_port),
            proto: event.proto.name().into_owned(),
            kind: maltrail_type(event).to_owned(),
            trail: trail_text(event),
            info: event.info.clone(),
            reference: event.reference.clone(),
        }
    }

    /// The line without its trailing newline.
    pub fn render(&self) -> String {
        let time = UtcTime::from_micros(self.time).maltrail();
        let fields = [
            time.as_str(),
            &self.sensor,
            &self.src,
            &self.src_port,
            &self.dst,
            &self.dst_port,
            &self.proto,
            &self.kind,
            &self.trail,
            &self.info,
            &self.reference,
        ];
        let mut line = String::with_capacity(128);
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                line.push(' ');
            }
            line.push_str(&safe_value(field));
        }
        line
    }
}

/// The Maltrail event line for `event`, without the trailing newline.
pub fn render_line(event: &Event) -> String {
    LogRecord::from_event(event).render()
}

/// Maltrail's `safe_value`: CR/LF → space, empty → `-`, quote when a space or `"` is in it.
pub fn safe_value(value: &str) -> Cow<'_, str> {
    if value.is_empty() {
        return Cow::Borrowed("-");
    }
    let needs_quotes = value.contains([' ', '"', '\r', '\n']);
    if !needs_quotes {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\r' | '\n' => out.push(' '),
            '"' => out.push_str("\"\""),
            c => out.push(c),
        }
    }
    out.push('"');
    Cow::Owned(out)
}

/// An address as Maltrail writes it: dotted IPv4, [`compress_ipv6`] for IPv6.
pub fn format_addr(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => compress_ipv6(&v6),
    }
}

fn format_port(port: Option<u16>) -> String {
    match port {
        None | Some(0) => String::new(),
        Some(p) => p.to_string(),
    }
}

/// Maltrail's IPv6 text form. It differs from RFC 5952 and from Rust's `Display`: the
/// first longest run of zero groups (even a single one) is compressed, but never the last
/// group (`1::0`, `::0`); leading zeros are kept when nothing was compressed
/// (`0001:0002:...:0008`); and IPv4-mapped addresses stay hex (`::ffff:102:304`).
pub fn compress_ipv6(addr: &Ipv6Addr) -> String {
    let groups = addr.segments();
    // The first longest run of zero groups among groups 0..=6.
    let mut best: Option<(usize, usize)> = None; // (start, len)
    let mut i = 0;
    while i < 7 {
        if groups[i] == 0 {
            let start = i;
            while i < 7 && groups[i] == 0 {
                i += 1;
            }
            let len = i - start;
            if best.is_none_or(|(_, l)| len > l) {
                best = Some((start, len));
            }
        } else {
            i += 1;
        }
    }
    let mut out = String::with_capacity(39);
    let Some((start, len)) = best else {
        for (i, g) in groups.iter().enumerate() {
            if i > 0 {
                out.push(':');
            }
            let _ = write!(out, "{g:04x}");
        }
        return out;
    };
    let write_groups = |out: &mut String, range: &[u16]| {
        for (i, g) in range.iter().enumerate() {
            if i > 0 {
                out.push(':');
            }
            let _ = write!(out, "{g:x}");
        }
    };
    write_groups(&mut out, &groups[..start]);
    out.push_str("::");
    write_groups(&mut out, &groups[start + len..]);
    out
}

/// Maltrail's `addr_port`: `1.2.3.4:80`, `[dead::beef]:53`; an address already in brackets
/// (or a host name) is kept as it is.
pub fn addr_port(addr: &str, port: u16) -> String {
    if addr.contains(':') && !addr.starts_with('[') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

/// Maltrail's TYPE field for an event (see the table in the module doc).
pub fn maltrail_type(event: &Event) -> &'static str {
    match event.kind {
        EventKind::Ip | EventKind::Cidr => "IP",
        EventKind::IpPort => "IPORT",
        EventKind::Dns | EventKind::Host | EventKind::Sni => "DNS",
        EventKind::Url | EventKind::Path => "URL",
        EventKind::Ua => "UA",
        EventKind::Ja4 => "JA4",
        EventKind::Cert => "CERT",
        EventKind::Heuristic => heuristic_type(event),
    }
}

fn heuristic_type(event: &Event) -> &'static str {
    // Content heuristics whose TYPE is fixed (user agents, responses).
    if let Some(fixed) = event
        .context
        .heuristic
        .as_ref()
        .and_then(|h| Heuristic::from_name(&h.name))
        .and_then(Heuristic::maltrail_type)
    {
        return fixed;
    }
    let trail = event.trail.as_str();
    if !trail.is_empty() && trail.bytes().all(|b| b.is_ascii_digit()) {
        return "PORT";
    }
    if trail.parse::<IpAddr>().is_ok() {
        return "IP";
    }
    let ctx = &event.context;
    if let Some(http) = &ctx.http {
        if http.user_agent.as_deref() == Some(trail) {
            return "UA";
        }
        return "URL";
    }
    if ctx.dns.is_some() || ctx.tls.is_some() || looks_like_domain(trail) {
        "DNS"
    } else {
        "IP"
    }
}

fn looks_like_domain(s: &str) -> bool {
    s.contains('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// The trail as Maltrail shows it: the observed value, with the part outside the matched
/// trail in parentheses.
fn trail_text(event: &Event) -> String {
    let ctx = &event.context;
    let trail = event.trail.as_str();
    match event.kind {
        EventKind::Dns | EventKind::Host | EventKind::Sni => {
            let observed = match event.kind {
                EventKind::Dns => ctx.dns.as_ref().map(|d| d.qname.as_str()),
                EventKind::Host => ctx.http.as_ref().map(|h| h.host.as_str()),
                _ => ctx.tls.as_ref().and_then(|t| t.sni.as_deref()),
            };
            let Some(observed) = observed.filter(|o| !o.is_empty()) else {
                return trail.to_owned();
            };
            if trail.is_empty() || observed == trail {
                return trail.to_owned();
            }
            // A parent matched: `(www).evil.example`.
            if let Some(prefix) = observed
                .strip_suffix(trail)
                .and_then(|p| p.strip_suffix('.'))
                .filter(|p| !p.is_empty())
            {
                return format!("({prefix}).{trail}");
            }
            // A name wrapped by a gateway matched: `badsite.onion(.to)`.
            if let Some(rest) = observed.strip_prefix(trail).filter(|r| r.starts_with('.')) {
                return format!("{trail}({rest})");
            }
            // A pattern (wildcard trail) matched: Maltrail shows the name itself.
            observed.to_owned()
        }
        EventKind::Url => {
            let Some(http) = &ctx.http else {
                return trail.to_owned();
            };
            let observed = format!("{}{}", http.host, http.uri);
            match observed.strip_prefix(trail) {
                Some(rest) if !rest.is_empty() && !trail.is_empty() => format!("{trail}({rest})"),
                _ => trail.to_owned(),
            }
        }
        EventKind::Path => match &ctx.http {
            Some(http) if !http.host.is_empty() => format!("{}({})", http.host, http.uri),
            _ => trail.to_owned(),
        },
        EventKind::IpPort => match trail.parse::<SocketAddr>() {
            Ok(sa) => addr_port(&format_addr(sa.ip()), sa.port()),
            Err(_) => trail.to_owned(),
        },
        EventKind::Ip | EventKind::Cidr => {
            let addr = match trail.parse::<Ipv6Addr>() {
                Ok(v6) => compress_ipv6(&v6),
                Err(_) => trail.to_owned(),
            };
            // The name the traffic was about, when there is one: `203.0.113.44 (host)`.
            let name = ctx
                .http
                .as_ref()
                .map(|h| h.host.as_str())
                .or_else(|| ctx.dns.as_ref().map(|d| d.qname.as_str()))
                .or_else(|| ctx.tls.as_ref().and_then(|t| t.sni.as_deref()))
                .filter(|n| !n.is_empty() && *n != addr);
            match name {
                Some(name) => format!("{addr} ({name})"),
                None => addr,
            }
        }
        _ => trail.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::test_support::dns_event;
    use crate::output::vectors::{PyValue, parse_py_list, read_vectors};
    use spoor_core::{Context, HttpContext};

    #[test]
    fn safe_value_vectors() {
        let rows = read_vectors("safe_value.tsv");
        assert!(rows.len() >= 20, "{} rows", rows.len());
        for row in rows {
            assert_eq!(safe_value(&row[0]), row[1], "safe_value({:?})", row[0]);
        }
    }

    #[test]
    fn addr_port_vectors() {
        let rows = read_vectors("addr_port.tsv");
        assert_eq!(rows.len(), 5);
        for row in rows {
            let port: u16 = row[1].parse().unwrap();
            assert_eq!(addr_port(&row[0], port), row[2], "{row:?}");
        }
    }

    #[test]
    fn compress_ipv6_vectors() {
        let rows = read_vectors("compress_ipv6.tsv");
        assert_eq!(rows.len(), 17);
        for row in rows {
            let addr: Ipv6Addr = match row[0].strip_prefix("expanded:") {
                Some(text) => text.parse().unwrap(),
                None => Ipv6Addr::from(u128::from_str_radix(&row[0], 16).unwrap()),
            };
            assert_eq!(compress_ipv6(&addr), row[1], "{}", row[0]);
        }
    }

    /// `py_repr.tsv` pins Python's `repr()` of the event tuple, which Maltrail uses only
    /// to pass events between its own Python processes. Spoor passes events as JSON and
    /// never renders a Python repr, so those rows are deliberately not tested.
    #[test]
    fn py_repr_vectors_are_python_only() {
        assert!(!read_vectors("py_repr.tsv").is_empty());
    }

    /// `colorized.tsv` pins Maltrail's ANSI colouring of its console output (`[i]` markers,
    /// banners, event lines on a terminal). Spoor's console output is its structured log
    /// and no sink writes colours, so those rows are deliberately not tested.
    #[test]
    fn colorized_vectors_are_console_only() {
        assert!(!read_vectors("colorized.tsv").is_empty());
    }

    fn field(v: &PyValue) -> String {
        match v {
            // Maltrail's `safe_value(0)` is `-`: zero is falsy in Python.
            PyValue::Int(0) => String::new(),
            PyValue::Int(n) => n.to_string(),
            PyValue::Str(s) => s.clone(),
        }
    }

    /// The vectors replace the (local, machine-dependent) quoted date and time with
    /// `FIXED-TIME`, keeping the microseconds.
    fn fix_time(line: &str) -> String {
        let rest = line.strip_prefix('"').expect("time is quoted");
        let (time, rest) = rest.split_once('"').expect("closing quote");
        let (_, micros) = time.rsplit_once('.').expect("microseconds");
        format!("FIXED-TIME.{micros}{rest}")
    }

    #[test]
    fn event_line_vectors() {
        let rows = read_vectors("event_line.tsv");
        assert_eq!(rows.len(), 7);
        for row in rows {
            let t = parse_py_list(&row[0]);
            let (PyValue::Int(sec), PyValue::Int(usec)) = (&t[0], &t[1]) else {
                panic!("bad tuple {}", row[0]);
            };
            let record = LogRecord {
                time: Micros::from_secs_micros(*sec, *usec),
                sensor: "sensor1".into(),
                src: field(&t[2]),
                src_port: field(&t[3]),
                dst: field(&t[4]),
                dst_port: field(&t[5]),
                proto: field(&t[6]),
                kind: field(&t[7]),
                trail: field(&t[8]),
                info: field(&t[9]),
                reference: field(&t[10]),
            };
            let line = record.render();
            assert!(
                line.starts_with("\"2023-11-14 22:13:20."),
                "UTC time: {line}"
            );
            assert_eq!(fix_time(&line), row[1], "{}", row[0]);
        }
    }

    #[test]
    fn dns_event_renders_like_maltrail() {
        let line = render_line(&dns_event());
        assert_eq!(
            line,
            "\"2023-11-14 22:13:20.123456\" sensor1 10.0.0.5 50000 8.8.8.8 53 UDP DNS \
             (www).evil.com \"malware (test)\" (static)"
        );
    }

    #[test]
    fn kinds_map_to_maltrail_types_and_trails() {
        let mut e = dns_event();
        e.kind = EventKind::IpPort;
        e.trail = "[dead:0::beef]:443".into();
        assert_eq!(maltrail_type(&e), "IPORT");
        assert_eq!(trail_text(&e), "[dead::beef]:443");

        e.kind = EventKind::Url;
        e.trail = "host.example/a".into();
        e.context = Context {
            http: Some(HttpContext {
                method: "GET".into(),
                host: "host.example".into(),
                uri: "/a?b=c".into(),
                user_agent: Some("curl/8".into()),
                xff: None,
            }),
            ..Context::default()
        };
        assert_eq!(maltrail_type(&e), "URL");
        assert_eq!(trail_text(&e), "host.example/a(?b=c)");

        e.kind = EventKind::Heuristic;
        e.trail = "curl/8".into();
        assert_eq!(maltrail_type(&e), "UA");
        e.trail = "445".into();
        assert_eq!(maltrail_type(&e), "PORT");
        e.trail = "10.0.0.9".into();
        assert_eq!(maltrail_type(&e), "IP");
        e.trail = "potential sql injection".into();
        assert_eq!(maltrail_type(&e), "URL");
        // Content heuristics with a fixed TYPE: user agents and responses.
        e.trail = "masscan(/1.0)".into();
        e.context.heuristic = Some(spoor_core::HeuristicContext {
            name: "suspicious_user_agent".into(),
            reason: String::new(),
        });
        assert_eq!(maltrail_type(&e), "UA");
        e.trail = "Server: sinkhole".into();
        e.context.heuristic = Some(spoor_core::HeuristicContext {
            name: "sinkhole_response".into(),
            reason: String::new(),
        });
        assert_eq!(maltrail_type(&e), "HTTP");
        e.context.heuristic = None;

        // An IP trail names the host the traffic was for, when known.
        e.kind = EventKind::Ip;
        e.trail = "203.0.113.44".into();
        assert_eq!(trail_text(&e), "203.0.113.44 (host.example)");

        e.context = Context::default();
        e.src = "2001:db8::1".parse().unwrap();
        e.src_port = None;
        e.trail = "2001:0db8:0000:0000:0000:0000:0000:0001".into();
        let line = render_line(&e);
        assert!(
            line.contains(" 2001:db8::1 - 8.8.8.8 53 UDP IP 2001:db8::1 "),
            "{line}"
        );
    }
}
