//! The stateless content heuristics as one family: their names, what each reports
//! (Maltrail's wording), default severity and who the offender is, and their
//! `[sensor.heuristics.<name>]` switches.
//!
//! Each heuristic is a pure function of one message (a request, a response, a DNS
//! answer): `http`, `ua`, `response` and `answers` hold them. This file only names them,
//! so the detector, the config and the documentation agree on one list.

use crate::config::{RawCounting, RawDga, RawLongDomain};
use serde::Deserialize;
use spoor_core::Severity;

/// Which end of the conversation an event blames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offender {
    /// The client that sent the request (attacks on servers, scanners, odd clients) or
    /// that asked for a sinkholed name (an infected host).
    Client,
    /// The server that answered or was asked (payload hosts, leaked-data receivers).
    Server,
}

macro_rules! content_heuristics {
    ($( $(#[doc = $doc:literal])* $variant:ident => $name:ident, $info:literal, $sev:ident, $off:ident; )*) => {
        /// One stateless content heuristic.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Heuristic {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl Heuristic {
            /// Every heuristic, in the order of the config tables.
            pub const ALL: &'static [Heuristic] = &[$(Heuristic::$variant),*];

            /// The config table name (`[sensor.heuristics.<name>]`) and
            /// `HeuristicContext::name`.
            pub const fn name(self) -> &'static str {
                match self { $(Heuristic::$variant => stringify!($name),)* }
            }

            /// What Maltrail's info column says, without the category in parentheses.
            pub const fn label(self) -> &'static str {
                match self { $(Heuristic::$variant => $info,)* }
            }

            /// The documented default severity.
            pub const fn default_severity(self) -> Severity {
                match self { $(Heuristic::$variant => Severity::$sev,)* }
            }

            /// Which end the event blames.
            pub const fn offender(self) -> Offender {
                match self { $(Heuristic::$variant => Offender::$off,)* }
            }

            /// The heuristic called `name`, if it is one of these.
            pub fn from_name(name: &str) -> Option<Heuristic> {
                match name { $(stringify!($name) => Some(Heuristic::$variant),)* _ => None }
            }
        }

        /// `[sensor.heuristics.<name>]` as written: one optional table per heuristic. The
        /// counting heuristics take `enabled` and their thresholds (a missing key takes the
        /// heuristic's own default, Maltrail's value; validated in `crate::config`); the
        /// content heuristics take `enabled` and `severity`.
        #[derive(Debug, Clone, Default, PartialEq, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct RawHeuristics {
            /// TCP SYN/NULL/FIN/XMAS probes to many ports of one host. Default: > 10 ports in 30s.
            pub port_scan: RawCounting,
            /// UDP datagrams to many ports of one host. Default: > 10 ports in 30s.
            pub udp_scan: RawCounting,
            /// Probes to many hosts on a worm port (135, 139, 445, 1433, 3389, 6379).
            /// Default: > 32 hosts in 30s.
            pub infection_scan: RawCounting,
            /// HTTP requests for many first path segments of one server. Default: > 10 in 30s.
            pub web_scan: RawCounting,
            /// Queries for many subdomains of one domain. Default: >= 1000 in 60s.
            pub dns_exhaustion: RawCounting,
            /// NXDOMAIN answers to one client. Default: > 20 names in 1h.
            pub nxdomain: RawCounting,
            /// Generated-looking names in NXDOMAIN answers.
            pub dga: RawDga,
            /// Queries with a long leftmost label.
            pub long_domain: RawLongDomain,
            $( $(#[doc = $doc])* pub $name: RawSwitch, )*
        }

        impl RawHeuristics {
            /// The content heuristics' switches, validated (nothing here can be invalid
            /// once parsed).
            pub fn content(&self) -> ContentConfig {
                let mut severity = [None; Heuristic::ALL.len()];
                $(
                    let s = &self.$name;
                    severity[Heuristic::$variant as usize] = s
                        .enabled
                        .then(|| s.severity.unwrap_or(Heuristic::$variant.default_severity()));
                )*
                ContentConfig { severity }
            }
        }
    };
}

content_heuristics! {
    /// SQL in a parameter: `UNION SELECT`, tautologies after a quote, time delays,
    /// stacked statements, catalog tables.
    SqlInjection => sql_injection, "potential sql injection", High, Client;
    /// Script in a parameter: `<script`, event handlers, `javascript:` URLs.
    Xss => xss, "potential xss injection", Medium, Client;
    /// An XML entity declaration reaching outside (`<!ENTITY x SYSTEM "file:...">`).
    Xxe => xxe, "potential xxe injection", High, Client;
    /// LDAP filter metacharacters closing and reopening a filter (`*)(uid=*`).
    LdapInjection => ldap_injection, "potential ldap injection", Medium, Client;
    /// PHP code or PHP stream wrappers (`<?php`, `php://input`, `allow_url_include`).
    PhpInjection => php_injection, "potential php injection", High, Client;
    /// Template expressions (`{{7*7}}`, `${7*7}`, `<%= %>`, `{% import %}`).
    TemplateInjection => template_injection, "potential ssti injection", High, Client;
    /// `../` climbing directories, or operating-system files named in a request.
    PathTraversal => path_traversal, "potential directory traversal", High, Client;
    /// Shell commands after a separator, log4shell lookups (obfuscated too),
    /// shellshock, OGNL and Java runtime calls.
    RemoteCodeExecution => remote_code_execution, "potential remote code execution", High, Client;
    /// A web server's secrets asked for by name: `.env`, `.git/config`, `wp-config.php`.
    ConfigFileAccess => config_file_access, "config file access", Medium, Client;
    /// Device identifiers or lists of e-mail addresses sent out in a URL.
    DataLeakage => data_leakage, "potential data leakage", Medium, Server;
    /// A request setting a router's DNS servers (DNSChanger-style CSRF).
    DnsChanger => dns_changer, "potential dns changer", High, Client;
    /// Marker paths and callback hosts of web vulnerability scanners.
    ScannerProbe => scanner_probe, "potential web scan", Low, Client;
    /// An absolute-form request (`GET http://other/`) to a public address that does not
    /// serve that host: a search for open proxies.
    ProxyProbe => proxy_probe, "potential proxy probe", Low, Client;
    /// An executable or script fetched by a short file name from a public server.
    DirectDownload => direct_download, "direct download", Medium, Server;
    /// A bot binary or dropper script fetched from an IP-literal host (`/bins/`, `mips`).
    IotDownload => iot_download, "potential iot-malware download", High, Server;
    /// A User-Agent naming an attack tool or scanner (sqlmap, nikto, masscan...).
    SuspiciousUserAgent => suspicious_user_agent, "user agent", Low, Client;
    /// A request without a User-Agent header to a public server.
    MissingUserAgent => missing_user_agent, "missing user agent", Low, Client;
    /// A DNS answer pointing into a sinkhole (the name was taken from its criminal owner).
    SinkholedAnswer => sinkholed_answer, "sinkholed by", High, Client;
    /// A DNS answer pointing at a domain-parking service.
    ParkedAnswer => parked_answer, "parked site", Low, Client;
    /// An HTTP response from a sinkhole server.
    SinkholeResponse => sinkhole_response, "sinkhole response", High, Client;
    /// A response serving a script or executable type (`application/x-sh`, HTA).
    SuspiciousContentType => suspicious_content_type, "content type", Medium, Server;
    /// A law-enforcement seizure page.
    SeizedDomain => seized_domain, "seized domain", Medium, Client;
}

impl Heuristic {
    /// Maltrail's TYPE column where it is fixed by the heuristic: `UA` for user agents,
    /// `HTTP` for responses; `None` leaves it to the trail's shape.
    pub const fn maltrail_type(self) -> Option<&'static str> {
        match self {
            Heuristic::SuspiciousUserAgent => Some("UA"),
            Heuristic::SinkholeResponse
            | Heuristic::SuspiciousContentType
            | Heuristic::SeizedDomain => Some("HTTP"),
            _ => None,
        }
    }

    /// Whether the heuristic reads a response (a packet from the server).
    pub const fn reads_response(self) -> bool {
        matches!(
            self,
            Heuristic::SinkholeResponse
                | Heuristic::SuspiciousContentType
                | Heuristic::SeizedDomain
        )
    }
}

/// `[sensor.heuristics.<name>]` of one content heuristic.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSwitch {
    /// Default true.
    pub enabled: bool,
    /// low, medium or high. Default: the heuristic's own (see ARCHITECTURE.md).
    pub severity: Option<Severity>,
}

impl Default for RawSwitch {
    fn default() -> Self {
        RawSwitch {
            enabled: true,
            severity: None,
        }
    }
}

/// The validated switches: the severity of each enabled heuristic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentConfig {
    severity: [Option<Severity>; Heuristic::ALL.len()],
}

impl Default for ContentConfig {
    fn default() -> Self {
        RawHeuristics::default().content()
    }
}

impl ContentConfig {
    /// The severity to report `h` with, or `None` when it is switched off.
    #[inline]
    pub fn severity(&self, h: Heuristic) -> Option<Severity> {
        self.severity[h as usize]
    }

    /// Whether `h` is switched on.
    #[inline]
    pub fn enabled(&self, h: Heuristic) -> bool {
        self.severity(h).is_some()
    }

    /// The same switches with `h` off (tests and embedders).
    pub fn without(mut self, h: Heuristic) -> Self {
        self.severity[h as usize] = None;
        self
    }
}

/// The content heuristics of one worker: the switches, the compiled patterns (shared
/// program, own cache) and reused buffers. The detector asks it about each request,
/// response and listed DNS answer.
#[derive(Debug, Clone)]
pub struct ContentHeuristics {
    pub config: ContentConfig,
    requests: super::http::RequestClassifier,
    agents: super::ua::UaClassifier,
    scratch: super::http::Scratch,
}

impl ContentHeuristics {
    pub fn new(config: ContentConfig) -> Self {
        ContentHeuristics {
            config,
            requests: super::http::RequestClassifier::shared(),
            agents: super::ua::UaClassifier::shared(),
            scratch: super::http::Scratch::default(),
        }
    }

    /// The request's class (at most one) and its User-Agent's verdict (at most one).
    pub fn request(
        &mut self,
        facts: &super::http::RequestFacts<'_>,
    ) -> (Option<Verdict>, Option<Verdict>) {
        let class = self
            .requests
            .classify(facts, &self.config, &mut self.scratch);
        let req = facts.request;
        let host = req
            .host
            .as_ref()
            .map(|h| String::from_utf8_lossy(h.as_bytes()))
            .unwrap_or_default();
        let agent = self
            .agents
            .classify(req.user_agent, &host, req.uri, facts.dst, &self.config)
            // A head cut short (a segment lost, a reassembly stream refused) may hold its
            // User-Agent further on: only a whole head can be missing one.
            .filter(|v| req.complete || v.heuristic != Heuristic::MissingUserAgent);
        (class, agent)
    }

    /// Whether a User-Agent belongs to a security-software updater (never reported).
    pub fn ua_allowlisted(&self, ua: &[u8]) -> bool {
        self.agents.is_allowlisted(ua)
    }

    /// The verdict on a response starting in `payload`.
    pub fn response(
        &self,
        response: &crate::proto::http::HttpResponse<'_>,
        payload: &[u8],
    ) -> Option<Verdict> {
        super::response::classify(response, payload, &self.config)
    }

    /// The verdict on a DNS answer address listed with `infos`, for the queried `name`.
    pub fn answer(&self, name: &str, addr: std::net::IpAddr, infos: &[&str]) -> Option<Verdict> {
        super::answers::classify(name, addr, infos, &self.config)
    }
}

impl Default for ContentHeuristics {
    fn default() -> Self {
        ContentHeuristics::new(ContentConfig::default())
    }
}

/// What a content heuristic found in one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub heuristic: Heuristic,
    /// The event's trail, as Maltrail shows it (`host(/path?query)`, the User-Agent, the
    /// queried name, the response header).
    pub trail: String,
    /// The info column, e.g. `potential sql injection (suspicious)`.
    pub info: String,
    /// The evidence for `HeuristicContext::reason`: what matched, bounded.
    pub reason: String,
}

/// Longest piece of matched text quoted in a reason; the rest is cut with `…`.
pub const MAX_EVIDENCE_LEN: usize = 120;

/// `bytes` as text for a reason: lossy UTF-8, at most [`MAX_EVIDENCE_LEN`] characters.
pub fn evidence(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text.chars().take(MAX_EVIDENCE_LEN).collect();
    if text.chars().nth(MAX_EVIDENCE_LEN).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_all_on_by_default() {
        let mut names: Vec<&str> = Heuristic::ALL.iter().map(|h| h.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Heuristic::ALL.len());
        let config = ContentConfig::default();
        for h in Heuristic::ALL {
            assert_eq!(config.severity(*h), Some(h.default_severity()), "{h:?}");
        }
    }

    #[test]
    fn tables_switch_and_override() {
        let raw: RawHeuristics = serde_json::from_str(
            r#"{"xss": {"enabled": false}, "proxy_probe": {"severity": "high"}}"#,
        )
        .unwrap();
        let config = raw.content();
        assert!(!config.enabled(Heuristic::Xss));
        assert_eq!(config.severity(Heuristic::ProxyProbe), Some(Severity::High));
        assert_eq!(
            config.severity(Heuristic::SqlInjection),
            Some(Severity::High)
        );
        let bad = serde_json::from_str::<RawHeuristics>(r#"{"sqli": {}}"#);
        assert!(bad.is_err());
        let bad = serde_json::from_str::<RawHeuristics>(r#"{"xss": {"on": true}}"#);
        assert!(bad.is_err());
    }

    #[test]
    fn evidence_is_bounded() {
        let long = vec![b'a'; 1000];
        let e = evidence(&long);
        assert_eq!(e.chars().count(), MAX_EVIDENCE_LEN + 1);
        assert_eq!(evidence(b"\xff<x>"), "\u{fffd}<x>");
    }
}
