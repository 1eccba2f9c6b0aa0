//! Deterministic traffic for benchmark captures.
//!
//! [`Generator`] turns a [`GeneratorConfig`] (seed, packet count, traffic mix, lists of listed
//! indicators) into Ethernet frames with correct IPv4/IPv6, UDP, TCP and ICMP lengths and
//! checksums, stamped by a packet clock that starts at a fixed epoch and only moves forward.
//! [`write_capture`] writes them to a classic pcap file and returns a [`GeneratedSummary`]
//! whose listed-indicator counts let a benchmark or test check what a sensor detected.
//!
//! The same config always yields the same bytes, on every platform: the generator owns its
//! PRNG ([`rng`]) and never reads the wall clock or iterates a hash map.
//!
//! # Traffic
//! A bounded set of concurrent conversations ([`GeneratorConfig::max_concurrent_flows`]) is kept
//! open and their packets interleave, so a flow table sees each flow several times. A new
//! conversation's kind is drawn from [`TrafficMix`] (weights per conversation; default
//! DNS 30, HTTP 15, TLS 30, UDP 20, ICMP 5; since TCP conversations are longer this comes to
//! about 8 % DNS, 22 % HTTP, 59 % TLS, 7 % UDP and 3 % ICMP of the packets, 7.4 packets per
//! conversation and 470 bytes per frame on average):
//!
//! - DNS: an A or AAAA query to a public or local resolver on UDP 53 and its answer (some
//!   NXDOMAIN, some with a CNAME), names compressed in the answer.
//! - HTTP: TCP handshake, a `GET` (or `POST`) with `Host` and `User-Agent` on port 80 or, for
//!   [`GeneratorConfig::http_odd_port_share`] of them, on 8080/8000/8888/…; a `200 OK` over one
//!   or more segments; the client ACKs and closes with FIN.
//! - TLS: TCP handshake, a TLS 1.3 or 1.2 ClientHello with SNI on 443, ServerHello +
//!   ChangeCipherSpec + encrypted records, application data, FIN.
//! - UDP: one to four datagrams of random bytes between a client and a service port.
//! - ICMP: one to four echo request/reply pairs (ICMPv6 echo over IPv6).
//!
//! [`GeneratorConfig::ipv6_share`] of the conversations run over IPv6. Clients sit in
//! 10.0.0.0/16 (and 2001:db8:0:1::/64) behind one gateway MAC; servers and names come from
//! pools drawn at start with a skew towards popular entries.
//!
//! # Listed indicators
//! [`GeneratorConfig::listed_share`] of the conversations carry one listed indicator: a listed
//! IPv4 address as the server (HTTP, TLS, UDP or ICMP), a listed domain as a DNS query name or
//! TLS SNI, or a listed URL as HTTP `Host` + path. The indicator kind is drawn uniformly from the
//! non-empty lists. Benign names and addresses are drawn so that they never equal a listed
//! one (nor, for names, sit below a listed domain); traffic can still hit trails that were not
//! passed in, which a benchmark with a full trail store should expect.
//!
//! Limits: no IP fragments, VLANs, TCP retransmissions or reordering; server payloads are
//! filler; the last conversations are cut off when the packet budget is reached.

mod dns;
mod frame;
mod http;
mod listed;
mod names;
pub mod pcap_writer;
mod rng;
mod tls;
mod traffic;

use std::io;
use std::net::Ipv4Addr;
use std::path::Path;

use serde::Serialize;
use spoor_core::Micros;

pub use listed::ListedIndicators;
pub use pcap_writer::PcapWriter;
pub use traffic::{GeneratedFrame, Generator};

/// 2024-01-01T00:00:00Z: the default time of the first packet.
pub const DEFAULT_START: Micros = Micros(1_704_067_200_000_000);
/// Default share of conversations that carry a listed indicator.
pub const DEFAULT_LISTED_SHARE: f64 = 0.01;
/// Default share of conversations over IPv6.
pub const DEFAULT_IPV6_SHARE: f64 = 0.1;
/// Default share of HTTP conversations on a port other than 80.
pub const DEFAULT_HTTP_ODD_PORT_SHARE: f64 = 0.1;
/// Default bound on open conversations: enough that flows interleave the way they do on a
/// busy link, few enough that every flow gets several packets within a short window.
pub const DEFAULT_MAX_CONCURRENT_FLOWS: usize = 256;
/// Default largest gap between packets; gaps are uniform in `1..=max`, so about 20,000
/// packets per second of capture time.
pub const DEFAULT_MAX_GAP_MICROS: u32 = 100;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    /// Seed of the PRNG: the same config gives a byte-identical capture.
    pub seed: u64,
    /// Number of packets to produce.
    pub packets: u64,
    /// Listed IPv4 addresses, used as server addresses.
    pub listed_ips: Vec<Ipv4Addr>,
    /// Listed domains, used as DNS query names and TLS SNI; names that cannot be sent in a DNS
    /// query are skipped.
    pub listed_domains: Vec<String>,
    /// Listed URLs (`host[:port]/path`, optionally with `http://`), used as HTTP `Host` + path;
    /// entries without a host are skipped.
    pub listed_urls: Vec<String>,
    /// Share of conversations carrying a listed indicator, `0.0..=1.0` (default
    /// [`DEFAULT_LISTED_SHARE`]); no effect while all three lists are empty.
    pub listed_share: f64,
    /// Relative weights of the conversation kinds.
    pub mix: TrafficMix,
    /// Share of conversations over IPv6, `0.0..=1.0` (default [`DEFAULT_IPV6_SHARE`]);
    /// conversations with a listed IPv4 address are always IPv4.
    pub ipv6_share: f64,
    /// Share of HTTP conversations on an alternative port such as 8080 (default
    /// [`DEFAULT_HTTP_ODD_PORT_SHARE`]).
    pub http_odd_port_share: f64,
    /// Most conversations open at once (default [`DEFAULT_MAX_CONCURRENT_FLOWS`], at least 1).
    pub max_concurrent_flows: usize,
    /// Timestamp of the first packet (default [`DEFAULT_START`]).
    pub start: Micros,
    /// Largest gap between consecutive packets in microseconds (default
    /// [`DEFAULT_MAX_GAP_MICROS`], at least 1).
    pub max_gap_micros: u32,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            seed: 0,
            packets: 10_000,
            listed_ips: Vec::new(),
            listed_domains: Vec::new(),
            listed_urls: Vec::new(),
            listed_share: DEFAULT_LISTED_SHARE,
            mix: TrafficMix::default(),
            ipv6_share: DEFAULT_IPV6_SHARE,
            http_odd_port_share: DEFAULT_HTTP_ODD_PORT_SHARE,
            max_concurrent_flows: DEFAULT_MAX_CONCURRENT_FLOWS,
            start: DEFAULT_START,
            max_gap_micros: DEFAULT_MAX_GAP_MICROS,
        }
    }
}

impl GeneratorConfig {
    /// The default config with `seed` and `packets`.
    pub fn new(seed: u64, packets: u64) -> Self {
        GeneratorConfig {
            seed,
            packets,
            ..GeneratorConfig::default()
        }
    }

    /// Uses `listed` as the listed indicator lists.
    pub fn with_listed(mut self, listed: ListedIndicators) -> Self {
        self.listed_ips = listed.ips;
        self.listed_domains = listed.domains;
        self.listed_urls = listed.urls;
        self
    }
}

/// Relative weights of conversation kinds (not packets: a TLS conversation has about a dozen
/// packets, a DNS one two). All zero means the default mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TrafficMix {
    /// DNS query + answer (default 30).
    pub dns: u32,
    /// HTTP/1.1 over TCP (default 15).
    pub http: u32,
    /// TLS over TCP 443 (default 30).
    pub tls: u32,
    /// Other UDP datagrams (default 20).
    pub udp: u32,
    /// ICMP echo (default 5).
    pub icmp: u32,
}

impl Default for TrafficMix {
    fn default() -> Self {
        TrafficMix {
            dns: 30,
            http: 15,
            tls: 30,
            udp: 20,
            icmp: 5,
        }
    }
}

impl TrafficMix {
    fn weight(&self, kind: TrafficKind) -> u32 {
        match kind {
            TrafficKind::Dns => self.dns,
            TrafficKind::Http => self.http,
            TrafficKind::Tls => self.tls,
            TrafficKind::Udp => self.udp,
            TrafficKind::Icmp => self.icmp,
        }
    }
}

/// The kinds of conversation the generator produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrafficKind {
    Dns,
    Http,
    Tls,
    Udp,
    Icmp,
}

impl TrafficKind {
    /// All kinds, in a fixed order.
    pub const ALL: [TrafficKind; 5] = [
        TrafficKind::Dns,
        TrafficKind::Http,
        TrafficKind::Tls,
        TrafficKind::Udp,
        TrafficKind::Icmp,
    ];
}

/// A count per [`TrafficKind`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KindCounts {
    pub dns: u64,
    pub http: u64,
    pub tls: u64,
    pub udp: u64,
    pub icmp: u64,
}

impl KindCounts {
    pub fn get(&self, kind: TrafficKind) -> u64 {
        match kind {
            TrafficKind::Dns => self.dns,
            TrafficKind::Http => self.http,
            TrafficKind::Tls => self.tls,
            TrafficKind::Udp => self.udp,
            TrafficKind::Icmp => self.icmp,
        }
    }

    fn bump(&mut self, kind: TrafficKind) {
        match kind {
            TrafficKind::Dns => self.dns += 1,
            TrafficKind::Http => self.http += 1,
            TrafficKind::Tls => self.tls += 1,
            TrafficKind::Udp => self.udp += 1,
            TrafficKind::Icmp => self.icmp += 1,
        }
    }

    pub fn total(&self) -> u64 {
        TrafficKind::ALL.iter().map(|&k| self.get(k)).sum()
    }
}

/// How often one kind of listed indicator was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ListedCount {
    /// Conversations that carried it (at least one of their packets was written).
    pub flows: u64,
    /// Packets that carry it in the place a sensor looks: every packet to or from a listed
    /// address, DNS queries and answers for a listed name, the ClientHello with a listed SNI,
    /// the request with a listed URL.
    pub packets: u64,
}

/// Listed indicators written, by where they were placed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ListedCounts {
    /// Listed IPv4 address as the server of a conversation.
    pub ip: ListedCount,
    /// Listed domain as a DNS query name.
    pub dns: ListedCount,
    /// Listed domain as a TLS SNI.
    pub sni: ListedCount,
    /// Listed URL as HTTP `Host` + path.
    pub url: ListedCount,
}

impl ListedCounts {
    /// Conversations with any listed indicator.
    pub fn flows(&self) -> u64 {
        self.ip.flows + self.dns.flows + self.sni.flows + self.url.flows
    }

    /// Packets with any listed indicator.
    pub fn packets(&self) -> u64 {
        self.ip.packets + self.dns.packets + self.sni.packets + self.url.packets
    }
}

/// What a generator produced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GeneratedSummary {
    /// Frames produced.
    pub packets: u64,
    /// Sum of the frame lengths (without pcap record headers).
    pub bytes: u64,
    /// Frames carrying IPv6.
    pub ipv6_packets: u64,
    /// Conversations started.
    pub flows: u64,
    /// Frames per conversation kind.
    pub packets_by_kind: KindCounts,
    /// Conversations per kind.
    pub flows_by_kind: KindCounts,
    /// Listed indicators written.
    pub listed: ListedCounts,
}

/// Writes the capture `config` describes to `path` (created or truncated) as a classic pcap
/// file, link type Ethernet, and returns what it holds.
pub fn write_capture(path: &Path, config: &GeneratorConfig) -> io::Result<GeneratedSummary> {
    let mut writer = PcapWriter::create(path)?;
    let mut generator = Generator::new(config);
    while let Some(frame) = generator.next_frame() {
        writer.write_packet(frame.time, frame.data)?;
    }
    writer.finish()?;
    Ok(generator.into_summary())
}

#[cfg(test)]
mod tests;
