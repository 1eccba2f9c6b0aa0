//! Heuristics: alerts that no trail names, inferred from the shape of traffic.
//!
//! One file per family. Counting heuristics: [`scan`] (TCP and UDP port scans, infection
//! sweeps on worm ports, web path sweeps) and [`dns`] (DNS exhaustion, excessive NXDOMAIN
//! per client, DGA-like and long names). Stateless content heuristics, pure functions of
//! one message: [`http`] (suspicious requests), [`ua`] (user agents), [`response`]
//! (suspicious HTTP responses) and [`answers`] (sinkholed and parked DNS answers), named
//! and switched in [`content`], with [`unquote`] decoding URLs before they are matched. The counting heuristics keep their evidence in the bounded tables of
//! [`state`]: fixed arrays allocated once, a cap per table, new keys refused (and
//! counted) at the cap, never evicting live evidence, expired by packet time so a capture
//! replays the same way at any speed. One [`Heuristics`] is shared by every worker of a
//! sensor (the tables lock per shard), so a scan spread over workers is counted whole:
//! the same alerts at 1 and N workers.
//!
//! Only packets that can matter touch state: TCP probes (segments without ACK or RST),
//! UDP from a non-well-known port to a non-ephemeral one, parsed HTTP requests, DNS
//! queries and NXDOMAIN answers. Every finding names its heuristic (the configuration
//! name, e.g. `port_scan`) and its evidence with the counts.

pub mod answers;
pub mod content;
pub mod dns;
pub mod http;
pub mod response;
pub mod scan;
pub mod state;
pub mod ua;
pub mod unquote;

use std::net::IpAddr;

use spoor_core::Severity;

use state::{DistinctTable, SketchTable};

/// A counting heuristic's settings (validated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountingConfig {
    pub enabled: bool,
    /// Alert when a key has more distinct values than this within the window (DNS
    /// exhaustion: at least this many).
    pub threshold: u32,
    pub window_secs: u32,
    /// Keys tracked at most (rounded up to whole 8-key buckets); new keys beyond are
    /// refused and counted as saturations.
    pub max_tracked: usize,
}

/// DGA-like names in NXDOMAIN answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DgaConfig {
    pub enabled: bool,
    /// Shannon entropy (bits per character) of the registrable label above which the
    /// name looks generated.
    pub entropy: f64,
    /// A run of consecutive consonants in the registrable label longer than this makes
    /// the name look generated.
    pub consonant_run: u32,
    /// With the entropy above `entropy`, a run longer than this is enough.
    pub entropy_consonant_run: u32,
}

/// Queries whose leftmost label is unusually long (data smuggled in names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongDomainConfig {
    pub enabled: bool,
    /// Labels longer than this (and without `-`) are reported.
    pub max_label_length: u32,
}

/// Maltrail's `PORT_SCANNING_THRESHOLD`.
pub const DEFAULT_PORT_SCAN_THRESHOLD: u32 = 10;
/// Maltrail's `INFECTION_SCANNING_THRESHOLD`: a worm sweeps a subnet, /27 and up.
pub const DEFAULT_INFECTION_SCAN_THRESHOLD: u32 = 32;
/// Maltrail's `WEB_SCANNING_THRESHOLD`.
pub const DEFAULT_WEB_SCAN_THRESHOLD: u32 = 10;
/// Sliding window of the scan heuristics: slow enough for `nmap -T2`-ish pacing, short
/// enough that an ordinary busy client does not accumulate.
pub const DEFAULT_SCAN_WINDOW_SECS: u32 = 30;
/// Maltrail's `DNS_EXHAUSTION_THRESHOLD` (distinct subdomains of one domain).
pub const DEFAULT_DNS_EXHAUSTION_THRESHOLD: u32 = 1000;
/// Window of DNS exhaustion.
pub const DEFAULT_DNS_EXHAUSTION_WINDOW_SECS: u32 = 60;
/// Maltrail's `NO_SUCH_NAME_PER_HOUR_THRESHOLD`.
pub const DEFAULT_NXDOMAIN_THRESHOLD: u32 = 20;
/// Maltrail counts NXDOMAIN answers per hour.
pub const DEFAULT_NXDOMAIN_WINDOW_SECS: u32 = 3600;
/// Maltrail's `SUSPICIOUS_DOMAIN_ENTROPY_THRESHOLD`.
pub const DEFAULT_DGA_ENTROPY: f64 = 3.5;
/// Longest ordinary run of consonants: words have up to five (`strengths`), names glued
/// from words up to six (`worldscript`); random letters run longer. Maltrail counts all
/// consonants instead (`SUSPICIOUS_DOMAIN_CONSONANT_THRESHOLD` 7).
pub const DEFAULT_DGA_CONSONANT_RUN: u32 = 6;
/// With a high entropy, a run of five consonants is enough: glued words with many
/// distinct letters (`cloudstarnet7`, entropy 3.55) run at most four.
pub const DEFAULT_DGA_ENTROPY_CONSONANT_RUN: u32 = 4;
/// Maltrail's `SUSPICIOUS_DOMAIN_LENGTH_THRESHOLD`.
pub const DEFAULT_LONG_LABEL: u32 = 24;

/// Keys tracked per (source, host) port table: every new pair with a probe takes one
/// for a window (a busy link opens thousands of conversations a second). 16 bytes a key,
/// plus a quarter of the keys with room for 11 values (112 bytes): 2.8 MiB when full.
pub const DEFAULT_MAX_TRACKED_PAIRS: usize = 65_536;
/// Keys of the web scan table ((client, server) pairs making HTTP requests): 0.7 MiB.
pub const DEFAULT_MAX_TRACKED_WEB: usize = 16_384;
/// Keys of the infection table ((source, worm port) pairs): 0.35 MiB.
pub const DEFAULT_MAX_TRACKED_INFECTION: usize = 4_096;
/// Clients tracked for NXDOMAIN floods: 0.25 MiB.
pub const DEFAULT_MAX_TRACKED_NXDOMAIN: usize = 4_096;
/// Domains tracked for DNS exhaustion: every queried domain with a subdomain takes one
/// for a minute (a busy resolver sees tens of thousands); a sixteenth of them with a
/// 2048-bit sketch (280 bytes): 2.1 MiB when full.
pub const DEFAULT_MAX_TRACKED_DOMAINS: usize = 65_536;
/// Largest threshold of a distinct-value table: each key keeps threshold + 1 values.
pub const MAX_DISTINCT_THRESHOLD: u32 = 1024;
/// Largest DNS exhaustion threshold (the sketch is capped at 32 768 bits: 2 per unit).
pub const MAX_SKETCH_THRESHOLD: u32 = 16_384;
/// Largest window: the tables count in seconds of packet time.
pub const MAX_WINDOW_SECS: u32 = 86_400;
/// Largest table: 16 M keys.
pub const MAX_TRACKED: usize = 1 << 24;

impl CountingConfig {
    pub const fn new(threshold: u32, window_secs: u32, max_tracked: usize) -> Self {
        CountingConfig {
            enabled: true,
            threshold,
            window_secs,
            max_tracked,
        }
    }
}

/// Every heuristic's settings (`[sensor.heuristics]`, validated).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeuristicsConfig {
    pub port_scan: CountingConfig,
    pub udp_scan: CountingConfig,
    pub infection_scan: CountingConfig,
    pub web_scan: CountingConfig,
    pub dns_exhaustion: CountingConfig,
    pub nxdomain: CountingConfig,
    pub dga: DgaConfig,
    pub long_domain: LongDomainConfig,
}

impl Default for HeuristicsConfig {
    fn default() -> Self {
        HeuristicsConfig {
            port_scan: CountingConfig::new(
                DEFAULT_PORT_SCAN_THRESHOLD,
                DEFAULT_SCAN_WINDOW_SECS,
                DEFAULT_MAX_TRACKED_PAIRS,
            ),
            udp_scan: CountingConfig::new(
                DEFAULT_PORT_SCAN_THRESHOLD,
                DEFAULT_SCAN_WINDOW_SECS,
                DEFAULT_MAX_TRACKED_PAIRS,
            ),
            infection_scan: CountingConfig::new(
                DEFAULT_INFECTION_SCAN_THRESHOLD,
                DEFAULT_SCAN_WINDOW_SECS,
                DEFAULT_MAX_TRACKED_INFECTION,
            ),
            web_scan: CountingConfig::new(
                DEFAULT_WEB_SCAN_THRESHOLD,
                DEFAULT_SCAN_WINDOW_SECS,
                DEFAULT_MAX_TRACKED_WEB,
            ),
            dns_exhaustion: CountingConfig::new(
                DEFAULT_DNS_EXHAUSTION_THRESHOLD,
                DEFAULT_DNS_EXHAUSTION_WINDOW_SECS,
                DEFAULT_MAX_TRACKED_DOMAINS,
            ),
            nxdomain: CountingConfig::new(
                DEFAULT_NXDOMAIN_THRESHOLD,
                DEFAULT_NXDOMAIN_WINDOW_SECS,
                DEFAULT_MAX_TRACKED_NXDOMAIN,
            ),
            dga: DgaConfig {
                enabled: true,
                entropy: DEFAULT_DGA_ENTROPY,
                consonant_run: DEFAULT_DGA_CONSONANT_RUN,
                entropy_consonant_run: DEFAULT_DGA_ENTROPY_CONSONANT_RUN,
            },
            long_domain: LongDomainConfig {
                enabled: true,
                max_label_length: DEFAULT_LONG_LABEL,
            },
        }
    }
}

/// A heuristic that fired: what the event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The heuristic's configuration name (`port_scan`, `dga`, ...).
    pub name: &'static str,
    /// The event's trail: the scanner's address, the probed port, the name.
    pub trail: String,
    /// Maltrail's wording (`potential port scanning`), which the event line shows.
    pub info: &'static str,
    /// The evidence with the counts.
    pub reason: String,
    pub severity: Severity,
    /// The hostile (or infected) party.
    pub offender: IpAddr,
    /// The DNS name the finding is about, for the event's DNS context.
    pub qname: Option<String>,
    /// The DNS query type and answer code, filled in by the detector.
    pub qtype: Option<String>,
    pub rcode: Option<String>,
}

/// The state of every heuristic, shared by the workers of one sensor.
#[derive(Debug)]
pub struct Heuristics {
    config: HeuristicsConfig,
    port_scan: Option<DistinctTable>,
    udp_scan: Option<DistinctTable>,
    infection_scan: Option<DistinctTable>,
    web_scan: Option<DistinctTable>,
    nxdomain: Option<DistinctTable>,
    dns_exhaustion: Option<SketchTable>,
}

impl Default for Heuristics {
    fn default() -> Self {
        Heuristics::new(HeuristicsConfig::default())
    }
}

impl Heuristics {
    /// Allocate the tables of the enabled heuristics (zeroed pages: resident only as keys
    /// arrive).
    pub fn new(config: HeuristicsConfig) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x5eed, |d| d.as_nanos() as u64)
            ^ (u64::from(std::process::id()) << 40);
        let distinct = |c: &CountingConfig, salt: u64| {
            c.enabled
                .then(|| DistinctTable::new(c.max_tracked, c.threshold, c.window_secs, seed ^ salt))
        };
        let e = &config.dns_exhaustion;
        Heuristics {
            port_scan: distinct(&config.port_scan, 1),
            udp_scan: distinct(&config.udp_scan, 2),
            infection_scan: distinct(&config.infection_scan, 3),
            web_scan: distinct(&config.web_scan, 4),
            nxdomain: distinct(&config.nxdomain, 5),
            dns_exhaustion: e
                .enabled
                .then(|| SketchTable::new(e.max_tracked, e.threshold, e.window_secs, seed ^ 6)),
            config,
        }
    }

    pub fn config(&self) -> &HeuristicsConfig {
        &self.config
    }

    /// New keys refused per table (`heuristic_<name>`), for the pipeline's saturations.
    pub fn saturations(&self) -> Vec<(&'static str, u64)> {
        let mut out = Vec::new();
        for (name, table) in [
            ("heuristic_port_scan", &self.port_scan),
            ("heuristic_udp_scan", &self.udp_scan),
            ("heuristic_infection_scan", &self.infection_scan),
            ("heuristic_web_scan", &self.web_scan),
            ("heuristic_nxdomain", &self.nxdomain),
        ] {
            if let Some(t) = table {
                out.push((name, t.saturated()));
            }
        }
        if let Some(t) = &self.dns_exhaustion {
            out.push(("heuristic_dns_exhaustion", t.saturated()));
        }
        out
    }

    /// Keys held over all tables (idle ones included until their slot is reused).
    pub fn tracked(&self) -> usize {
        let distinct = [
            &self.port_scan,
            &self.udp_scan,
            &self.infection_scan,
            &self.web_scan,
            &self.nxdomain,
        ]
        .into_iter()
        .flatten()
        .map(DistinctTable::occupied)
        .sum::<usize>();
        distinct
            + self
                .dns_exhaustion
                .as_ref()
                .map_or(0, SketchTable::occupied)
    }

    /// Bytes of all tables when every page is touched: the heuristics' memory bound.
    pub fn max_bytes(&self) -> usize {
        let distinct = [
            &self.port_scan,
            &self.udp_scan,
            &self.infection_scan,
            &self.web_scan,
            &self.nxdomain,
        ]
        .into_iter()
        .flatten()
        .map(DistinctTable::bytes)
        .sum::<usize>();
        distinct + self.dns_exhaustion.as_ref().map_or(0, SketchTable::bytes)
    }
}

/// A 64-bit digest of an address and a salt (the tables key on it).
pub(crate) fn addr_key(ip: IpAddr, salt: u64) -> u64 {
    match ip {
        IpAddr::V4(v4) => state::mix64(salt ^ u64::from(v4.to_bits())),
        IpAddr::V6(v6) => {
            let b = v6.to_bits();
            state::mix64(state::mix64(salt ^ (b as u64) ^ (1 << 63)) ^ (b >> 64) as u64)
        }
    }
}

/// A 64-bit digest of an ordered address pair.
pub(crate) fn pair_key(a: IpAddr, b: IpAddr, salt: u64) -> u64 {
    state::mix64(addr_key(a, salt) ^ addr_key(b, salt.rotate_left(32)).rotate_left(17))
}

/// A 32-bit digest of bytes (values counted as distinct: path segments, names).
pub(crate) fn bytes_hash32(bytes: &[u8]) -> u32 {
    // FNV-1a: short inputs, no allocation; the tables' keyed tag mixes it further.
    let mut h: u32 = 0x811c_9dc5;
    for &b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// A 64-bit digest of bytes (keys that are names).
pub(crate) fn bytes_hash64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    state::mix64(h)
}
