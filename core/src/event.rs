//! One alert, as the sensor makes it and every later stage (outputs, server, responders)
//! reads it.
//!
//! The sensor fills an [`Event`] from packet timestamps (never the wall clock when reading
//! a capture), condenses repeats of the same (offender, trail) into one event with a
//! `count` and first/last times, and gives it a random 128-bit [`EventId`] so that the
//! server can ingest batches idempotently. Serde names are the sensor→server wire format;
//! the outputs render Maltrail's event line, EVE-style JSON and CEF from the same struct.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Severity;

/// Microseconds since the Unix epoch, UTC.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Micros(pub i64);

impl Micros {
    pub fn from_secs_micros(secs: i64, micros: i64) -> Micros {
        Micros(secs.saturating_mul(1_000_000).saturating_add(micros))
    }
    pub fn secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }
    pub fn subsec_micros(self) -> u32 {
        self.0.rem_euclid(1_000_000) as u32
    }
}

/// A 128-bit event identifier, written as 32 lower-case hex digits. Sensors make them
/// time-ordered (UUIDv7 layout: milliseconds, then random bits); the server only needs
/// them unique.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventId(pub u128);

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl FromStr for EventId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 32 {
            return Err(format!("event id `{s}` is not 32 hex digits"));
        }
        u128::from_str_radix(s, 16)
            .map(EventId)
            .map_err(|_| format!("event id `{s}` is not 32 hex digits"))
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// IP protocol number, named the way logs name it (`TCP`, `UDP`, `ICMP`, `IPV6-ICMP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Proto(pub u8);

impl Proto {
    pub const ICMP: Proto = Proto(1);
    pub const TCP: Proto = Proto(6);
    pub const UDP: Proto = Proto(17);
    pub const GRE: Proto = Proto(47);
    pub const ICMPV6: Proto = Proto(58);
    pub const SCTP: Proto = Proto(132);

    pub fn name(self) -> std::borrow::Cow<'static, str> {
        match self.0 {
            1 => "ICMP".into(),
            6 => "TCP".into(),
            17 => "UDP".into(),
            47 => "GRE".into(),
            58 => "IPV6-ICMP".into(),
            132 => "SCTP".into(),
            n => format!("IP-{n}").into(),
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for Proto {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "ICMP" => Proto::ICMP,
            "TCP" => Proto::TCP,
            "UDP" => Proto::UDP,
            "GRE" => Proto::GRE,
            "IPV6-ICMP" | "ICMPV6" => Proto::ICMPV6,
            "SCTP" => Proto::SCTP,
            other => other
                .strip_prefix("IP-")
                .and_then(|n| n.parse().ok())
                .map(Proto)
                .ok_or_else(|| format!("unknown protocol `{s}`"))?,
        })
    }
}

impl Serialize for Proto {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for Proto {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What kind of thing matched. Trail kinds name the indicator that matched; `Heuristic`
/// events name their heuristic in `trail` and explain themselves in `context.heuristic`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Ip,
    IpPort,
    Cidr,
    Dns,
    Url,
    Host,
    Path,
    Ua,
    Sni,
    Ja4,
    Cert,
    Heuristic,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Ip => "ip",
            EventKind::IpPort => "ip_port",
            EventKind::Cidr => "cidr",
            EventKind::Dns => "dns",
            EventKind::Url => "url",
            EventKind::Host => "host",
            EventKind::Path => "path",
            EventKind::Ua => "ua",
            EventKind::Sni => "sni",
            EventKind::Ja4 => "ja4",
            EventKind::Cert => "cert",
            EventKind::Heuristic => "heuristic",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// HTTP request facts behind an event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpContext {
    pub method: String,
    pub host: String,
    pub uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xff: Option<String>,
}

/// DNS facts behind an event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsContext {
    pub qname: String,
    /// Query type name (`A`, `AAAA`, `TXT`, ...) or number.
    pub qtype: String,
    /// Response code name (`NOERROR`, `NXDOMAIN`, ...), for responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcode: Option<String>,
}

/// TLS/QUIC facts behind an event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ja4: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ja3: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_sha1: Option<String>,
}

/// Why a heuristic fired: its name and the evidence, counts included.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeuristicContext {
    /// The heuristic's configuration name: `port_scan`, `sql_injection`, `dga`...
    pub name: String,
    /// The evidence in words, with the counts: `12 distinct ports within 30 s (threshold 10)`.
    pub reason: String,
}

/// Protocol context of an event; every part optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heuristic: Option<HeuristicContext>,
}

impl Context {
    pub fn is_empty(&self) -> bool {
        self.http.is_none() && self.dns.is_none() && self.tls.is_none() && self.heuristic.is_none()
    }
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub id: EventId,
    /// Packet time of the first occurrence.
    pub time: Micros,
    pub sensor: String,
    pub src: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    pub dst: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<u16>,
    pub proto: Proto,
    pub kind: EventKind,
    /// What matched: the trail (`evil.example`, `6.6.6.6:8443`) or the heuristic's name.
    pub trail: String,
    /// `emotet (malware)`
    pub info: String,
    /// The feed, `(static)`, or `(heuristic)`.
    pub reference: String,
    pub severity: Severity,
    /// The hostile party, when it is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offender: Option<IpAddr>,
    /// Addresses a DNS hit resolved to: what a responder can block.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<IpAddr>,
    /// Occurrences condensed into this event (at least 1).
    pub count: u64,
    pub first_seen: Micros,
    pub last_seen: Micros,
    #[serde(default, skip_serializing_if = "Context::is_empty")]
    pub context: Context,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_round_trips() {
        let e = Event {
            id: EventId(0x0123_4567_89ab_cdef_0011_2233_4455_6677),
            time: Micros::from_secs_micros(1_700_000_000, 123_456),
            sensor: "sensor1".into(),
            src: "10.0.0.5".parse().unwrap(),
            src_port: Some(50000),
            dst: "8.8.8.8".parse().unwrap(),
            dst_port: Some(53),
            proto: Proto::UDP,
            kind: EventKind::Dns,
            trail: "evil.example".into(),
            info: "emotet (malware)".into(),
            reference: "(static)".into(),
            severity: Severity::High,
            offender: Some("10.0.0.5".parse().unwrap()),
            answers: vec!["203.0.113.9".parse().unwrap()],
            count: 3,
            first_seen: Micros(1),
            last_seen: Micros(2),
            context: Context {
                dns: Some(DnsContext {
                    qname: "x.evil.example".into(),
                    qtype: "A".into(),
                    rcode: None,
                }),
                ..Context::default()
            },
        };
        let json = serde_json::to_string(&e).unwrap();
        assert!(
            json.contains(r#""id":"0123456789abcdef0011223344556677""#),
            "{json}"
        );
        assert!(json.contains(r#""proto":"UDP""#));
        assert!(json.contains(r#""kind":"dns""#));
        let back: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        assert_eq!(e.time.secs(), 1_700_000_000);
        assert_eq!(e.time.subsec_micros(), 123_456);
        assert_eq!("IP-99".parse::<Proto>().unwrap(), Proto(99));
    }
}
