//! Indicators ("trails"): what a feed lists and what traffic is matched against.
//!
//! [`Indicator::parse`] classifies a trail string the way Maltrail's trail files are
//! written (an IP, `IP:port`, `[IPv6]:port`, a CIDR, a domain, `host/path`, `/path`, or a
//! regular expression over domain names). Formats that know their kind (user-agent
//! patterns, certificate fingerprints, JA4) use [`Indicator::parse_as`].
//!
//! Normalisation happens here once, so that compile-time keys and run-time queries agree:
//! domains are lower-cased ASCII without leading/trailing dots, CIDRs are truncated to their
//! network address, URL hosts are lower-cased.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// RFC 1035: a name is at most 253 characters in text form, a label at most 63.
pub const MAX_DOMAIN_LEN: usize = 253;
pub const MAX_LABEL_LEN: usize = 63;
/// Longest URL/path trail accepted; longer lines in feeds are garbage, not trails.
pub const MAX_URL_LEN: usize = 2048;

/// What kind of thing a trail is. The names are the `kind` values of events and of
/// `spoor trails lookup --format json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrailKind {
    Ip,
    Cidr,
    IpPort,
    Domain,
    Url,
    Path,
    /// A regular expression over domain names (Maltrail's wildcard trails).
    Wildcard,
    /// A regular expression over User-Agent values.
    UserAgent,
    /// SHA-1 of a TLS server certificate (lower-case hex in text form).
    CertSha1,
    /// JA4 TLS client fingerprint.
    Ja4,
}

impl TrailKind {
    pub const ALL: [TrailKind; 10] = [
        TrailKind::Ip,
        TrailKind::Cidr,
        TrailKind::IpPort,
        TrailKind::Domain,
        TrailKind::Url,
        TrailKind::Path,
        TrailKind::Wildcard,
        TrailKind::UserAgent,
        TrailKind::CertSha1,
        TrailKind::Ja4,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TrailKind::Ip => "ip",
            TrailKind::Cidr => "cidr",
            TrailKind::IpPort => "ip_port",
            TrailKind::Domain => "domain",
            TrailKind::Url => "url",
            TrailKind::Path => "path",
            TrailKind::Wildcard => "wildcard",
            TrailKind::UserAgent => "ua",
            TrailKind::CertSha1 => "cert",
            TrailKind::Ja4 => "ja4",
        }
    }
}

impl fmt::Display for TrailKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TrailKind {
    type Err = IndicatorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TrailKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| IndicatorError::UnknownKind(s.to_string()))
    }
}

/// One normalised indicator.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Indicator {
    Ip(IpAddr),
    Cidr(IpNet),
    IpPort(IpAddr, u16),
    Domain(String),
    /// `host/path[?query]`, scheme removed, host lower-cased.
    Url(String),
    /// `/path[?query]` on any host.
    Path(String),
    Wildcard(String),
    UserAgent(String),
    CertSha1([u8; 20]),
    Ja4(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IndicatorError {
    #[error("empty indicator")]
    Empty,
    #[error("`{0}` is not a valid domain name")]
    BadDomain(String),
    #[error("`{0}` is not a valid IP address, CIDR or IP:port")]
    BadAddress(String),
    #[error("`{0}` is longer than {MAX_URL_LEN} characters")]
    TooLong(String),
    #[error("`{0}` is not a 40-digit hex SHA-1 fingerprint")]
    BadFingerprint(String),
    #[error("`{0}` is not a JA4 fingerprint (a_b_c, e.g. t13d1516h2_8daaf6152771_02713d6af862)")]
    BadJa4(String),
    #[error("invalid regular expression `{0}`")]
    BadPattern(String),
    #[error("unknown trail kind `{0}`")]
    UnknownKind(String),
}

/// Characters that make a slash-free trail a regular expression rather than a domain.
const REGEX_CHARS: &[char] = &[
    '\\', '[', ']', '(', ')', '|', '*', '+', '?', '^', '$', '{', '}',
];

impl Indicator {
    /// Classify and normalise a trail written the way Maltrail's trail files write them.
    pub fn parse(raw: &str) -> Result<Indicator, IndicatorError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(IndicatorError::Empty);
        }
        if let Some((_, rest)) = s.split_once("://") {
            // A scheme means a URL even without a path: "http://evil.example" → "evil.example/".
            let rest = if rest.contains('/') {
                rest.to_string()
            } else {
                format!("{rest}/")
            };
            return parse_url(&rest);
        }
        if let Some(ind) = parse_address(s) {
            return Ok(ind);
        }
        if s.starts_with('/') {
            return parse_path(s);
        }
        if s.contains('/') {
            if let Some((addr, len)) = s.split_once('/')
                && looks_like_ip(addr)
                && !len.is_empty()
                && len.bytes().all(|b| b.is_ascii_digit())
            {
                return parse_cidr(s);
            }
            return parse_url(s);
        }
        if s.contains(REGEX_CHARS) {
            return Ok(Indicator::Wildcard(s.to_string()));
        }
        if looks_like_ip(s) {
            return Err(IndicatorError::BadAddress(s.to_string()));
        }
        normalize_domain(s)
            .map(Indicator::Domain)
            .ok_or_else(|| IndicatorError::BadDomain(s.to_string()))
    }

    /// Parse a trail whose kind is known from its feed's format.
    pub fn parse_as(kind: TrailKind, raw: &str) -> Result<Indicator, IndicatorError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(IndicatorError::Empty);
        }
        match kind {
            TrailKind::Ip => match s.parse::<IpAddr>() {
                Ok(ip) => Ok(Indicator::Ip(canonical_ip(ip))),
                Err(_) => Err(IndicatorError::BadAddress(s.to_string())),
            },
            TrailKind::Cidr => {
                if s.contains('/') {
                    parse_cidr(s)
                } else {
                    // A bare address in a CIDR list is a host route.
                    Indicator::parse_as(TrailKind::Ip, s)
                }
            }
            TrailKind::IpPort => match parse_address(s) {
                Some(ind @ Indicator::IpPort(..)) => Ok(ind),
                _ => Err(IndicatorError::BadAddress(s.to_string())),
            },
            TrailKind::Domain => normalize_domain(s)
                .map(Indicator::Domain)
                .ok_or_else(|| IndicatorError::BadDomain(s.to_string())),
            TrailKind::Url => match Indicator::parse(s)? {
                ind @ (Indicator::Url(_) | Indicator::Path(_)) => Ok(ind),
                // A bare host in a URL list: the whole site.
                Indicator::Domain(d) => Ok(Indicator::Url(format!("{d}/"))),
                Indicator::Ip(ip) => Ok(Indicator::Url(format!("{ip}/"))),
                _ => Err(IndicatorError::BadAddress(s.to_string())),
            },
            TrailKind::Path => parse_path(s),
            TrailKind::Wildcard => Ok(Indicator::Wildcard(s.to_string())),
            TrailKind::UserAgent => Ok(Indicator::UserAgent(s.to_string())),
            TrailKind::CertSha1 => parse_sha1(s),
            TrailKind::Ja4 => parse_ja4(s),
        }
    }

    pub fn kind(&self) -> TrailKind {
        match self {
            Indicator::Ip(_) => TrailKind::Ip,
            Indicator::Cidr(_) => TrailKind::Cidr,
            Indicator::IpPort(..) => TrailKind::IpPort,
            Indicator::Domain(_) => TrailKind::Domain,
            Indicator::Url(_) => TrailKind::Url,
            Indicator::Path(_) => TrailKind::Path,
            Indicator::Wildcard(_) => TrailKind::Wildcard,
            Indicator::UserAgent(_) => TrailKind::UserAgent,
            Indicator::CertSha1(_) => TrailKind::CertSha1,
            Indicator::Ja4(_) => TrailKind::Ja4,
        }
    }
}

impl fmt::Display for Indicator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Indicator::Ip(ip) => write!(f, "{ip}"),
            Indicator::Cidr(net) => write!(f, "{net}"),
            Indicator::IpPort(IpAddr::V6(ip), port) => write!(f, "[{ip}]:{port}"),
            Indicator::IpPort(ip, port) => write!(f, "{ip}:{port}"),
            Indicator::Domain(s)
            | Indicator::Url(s)
            | Indicator::Path(s)
            | Indicator::Wildcard(s)
            | Indicator::UserAgent(s)
            | Indicator::Ja4(s) => f.write_str(s),
            Indicator::CertSha1(bytes) => {
                for b in bytes {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) are the IPv4 address they carry.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn looks_like_ip(s: &str) -> bool {
    let b = s.as_bytes();
    (b.iter().all(|c| c.is_ascii_digit() || *c == b'.') && b.contains(&b'.')) || s.contains(':')
}

/// `1.2.3.4`, `dead::beef`, `1.2.3.4:80`, `[dead::beef]:443`.
fn parse_address(s: &str) -> Option<Indicator> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(Indicator::Ip(canonical_ip(ip)));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        (host.parse::<Ipv6Addr>().ok().map(IpAddr::V6)?, port)
    } else {
        let (host, port) = s.rsplit_once(':')?;
        (host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)?, port)
    };
    let port = port.parse::<u16>().ok()?;
    Some(Indicator::IpPort(canonical_ip(host), port))
}

fn parse_cidr(s: &str) -> Result<Indicator, IndicatorError> {
    let bad = || IndicatorError::BadAddress(s.to_string());
    let (addr, len) = s.split_once('/').ok_or_else(bad)?;
    let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
    let len: u8 = len.trim().parse().map_err(|_| bad())?;
    let net = IpNet::new(addr, len).map_err(|_| bad())?.trunc();
    Ok(match net {
        IpNet::V4(n) if n.prefix_len() == 32 => Indicator::Ip(IpAddr::V4(n.addr())),
        IpNet::V6(n) if n.prefix_len() == 128 => Indicator::Ip(IpAddr::V6(n.addr())),
        net => Indicator::Cidr(net),
    })
}

/// `host/path`: Maltrail keeps the host as written and drops one trailing slash when the
/// path has more than one segment (`evil.example/a/` → `evil.example/a`, `evil.example/`
/// stays).
fn parse_url(s: &str) -> Result<Indicator, IndicatorError> {
    if s.len() > MAX_URL_LEN {
        return Err(IndicatorError::TooLong(s.to_string()));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(IndicatorError::BadDomain(s.to_string()));
    }
    let mut s = s;
    if s.matches('/').count() > 1 {
        s = s.trim_end_matches('/');
    }
    let (host, path) = s.split_at(s.find('/').unwrap_or(s.len()));
    if host.is_empty() {
        return parse_path(path);
    }
    let host = host.to_ascii_lowercase();
    Ok(Indicator::Url(format!("{host}{path}")))
}

fn parse_path(s: &str) -> Result<Indicator, IndicatorError> {
    if s.len() > MAX_URL_LEN {
        return Err(IndicatorError::TooLong(s.to_string()));
    }
    if s.len() < 2 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(IndicatorError::BadDomain(s.to_string()));
    }
    Ok(Indicator::Path(s.to_string()))
}

fn parse_sha1(s: &str) -> Result<Indicator, IndicatorError> {
    let hex: String = s.chars().filter(|c| *c != ':').collect();
    let bad = || IndicatorError::BadFingerprint(s.to_string());
    if hex.len() != 40 {
        return Err(bad());
    }
    let mut out = [0u8; 20];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(Indicator::CertSha1(out))
}

fn parse_ja4(s: &str) -> Result<Indicator, IndicatorError> {
    let parts: Vec<&str> = s.split('_').collect();
    let ok = parts.len() == 3
        && parts[0].len() == 10
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    if ok {
        Ok(Indicator::Ja4(s.to_ascii_lowercase()))
    } else {
        Err(IndicatorError::BadJa4(s.to_string()))
    }
}

/// Lower-case, strip surrounding dots, check lengths and characters. Returns `None` for
/// something that cannot be a DNS name (spaces, control characters, empty labels...).
///
/// Underscores are allowed (they occur in real names: `_dmarc`, SRV records, malware DGAs).
pub fn normalize_domain(s: &str) -> Option<String> {
    let s = s.trim().trim_matches('.');
    if s.is_empty() || s.len() > MAX_DOMAIN_LEN {
        return None;
    }
    let mut out = String::with_capacity(s.len());
    for label in s.split('.') {
        if label.is_empty() || label.len() > MAX_LABEL_LEN {
            return None;
        }
        if !out.is_empty() {
            out.push('.');
        }
        for c in label.chars() {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                out.push(c.to_ascii_lowercase());
            } else if !c.is_ascii() && !c.is_whitespace() && !c.is_control() {
                // Unicode names appear in feeds in their native form; keep them comparable.
                out.extend(c.to_lowercase());
            } else {
                return None;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Indicator {
        Indicator::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn classifies_maltrail_trails() {
        assert_eq!(
            p("66.66.66.66"),
            Indicator::Ip("66.66.66.66".parse().unwrap())
        );
        assert_eq!(
            p("6.6.6.6:8443"),
            Indicator::IpPort("6.6.6.6".parse().unwrap(), 8443)
        );
        assert_eq!(
            p("[dead::beef]:443"),
            Indicator::IpPort("dead::beef".parse().unwrap(), 443)
        );
        assert_eq!(
            p("dead::beef"),
            Indicator::Ip("dead::beef".parse().unwrap())
        );
        assert_eq!(
            p("5.63.151.7/24"),
            Indicator::Cidr("5.63.151.0/24".parse().unwrap())
        );
        assert_eq!(p("Evil.Example."), Indicator::Domain("evil.example".into()));
        assert_eq!(
            p("/malicious-login.php"),
            Indicator::Path("/malicious-login.php".into())
        );
        assert_eq!(
            p("evil-url.example/bad/path/"),
            Indicator::Url("evil-url.example/bad/path".into())
        );
        assert_eq!(
            p("http://Evil.example"),
            Indicator::Url("evil.example/".into())
        );
        assert_eq!(
            p(r"dga[0-9]+\.wildcard-test\.com"),
            Indicator::Wildcard(r"dga[0-9]+\.wildcard-test\.com".into())
        );
        assert_eq!(
            p("[0:0:0:0:0:ffff:2d3e:c649]:53"),
            Indicator::IpPort("45.62.198.73".parse().unwrap(), 53)
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(Indicator::parse("").is_err());
        assert!(Indicator::parse("1.2.3.999").is_err());
        assert!(Indicator::parse("a..b").is_err());
        assert!(Indicator::parse("<html>").is_err());
        assert!(Indicator::parse("has space.com").is_err());
        assert!(Indicator::parse(&"a".repeat(64)).is_err());
    }

    #[test]
    fn typed_kinds() {
        let sha = "A1:B2:c3d4e5f60718293a4b5c6d7e8f9001122334";
        let ind = Indicator::parse_as(TrailKind::CertSha1, &sha.replace("A1:B2:", "a1b2")).unwrap();
        assert_eq!(ind.to_string(), "a1b2c3d4e5f60718293a4b5c6d7e8f9001122334");
        assert!(
            Indicator::parse_as(TrailKind::Ja4, "t13d1516h2_8daaf6152771_02713d6af862").is_ok()
        );
        assert!(Indicator::parse_as(TrailKind::Ja4, "nope").is_err());
        assert_eq!(
            Indicator::parse_as(TrailKind::Url, "evil.example").unwrap(),
            Indicator::Url("evil.example/".into())
        );
    }
}
