//! Link layer to transport layer: one captured frame in, one [`Packet`] out.
//!
//! Promises: the decoder never panics on any input, reads every wire value through a
//! bounds-checked accessor, and allocates nothing on the normal path (only IP fragment
//! reassembly owns buffers, bounded by [`DecodeLimits`]). Every frame that does not yield a
//! packet returns a precise [`DecodeError`] and is counted in [`DecodeCounters`].
//!
//! Shape: `link` turns a pcap link type into the start of an IPv4/IPv6 header (Ethernet,
//! VLAN/QinQ, MPLS, PPPoE, PPP, SLL/SLL2, BSD null/loop, pflog, raw IP), `ip` parses the
//! network header and the IPv6 extension chain, `frag` reassembles fragments, `transport`
//! parses TCP/UDP/ICMP, and `tunnel` parses GRE and VXLAN, whose inner frame goes round the
//! loop again (bounded by [`DecodeLimits::max_tunnel_depth`]). For a tunnel the packet
//! returned is the innermost one, the one an analyst cares about.
//!
//! Not done here: checksums are not verified (offloading makes them wrong on the capturing
//! host and a bad checksum does not change who talked to whom); IPv4 options and TCP options
//! are skipped, not parsed.

mod counters;
mod frag;
mod ip;
mod link;
mod transport;
mod tunnel;
mod wire;

use std::fmt;
use std::net::IpAddr;

use spoor_core::{Micros, Proto};

pub use counters::DecodeCounters;
pub use frag::FragmentMeta;
pub use link::{EtherType, LinkType};
pub use transport::{IcmpInfo, TcpFlags, TcpInfo};

use frag::FragTable;
use link::L3;

/// Deepest 802.1Q/802.1ad tag stack followed. QinQ is 2, QinQinQ (seen in carrier
/// networks) is 3; 8 leaves room for odd gear while a crafted frame of hundreds of tags
/// costs a few steps.
pub const DEFAULT_MAX_VLAN_TAGS: usize = 8;
/// Most MPLS labels walked before the bottom-of-stack bit. Real stacks (transport, service,
/// entropy label, a few for traffic engineering) stay under 8; 16 is generous.
pub const DEFAULT_MAX_MPLS_LABELS: usize = 16;
/// Most IPv6 extension headers walked. RFC 8200's recommended order has 6 kinds with only
/// destination options repeated; past 10 the chain is crafted (or a loop of hop-by-hop).
pub const DEFAULT_MAX_IPV6_EXT_HEADERS: usize = 10;
/// Most tunnels (GRE, VXLAN, IP-in-IP) unwrapped for one frame. Deployments nest two at
/// most (VXLAN over GRE); deeper nesting is evasion, and each level is a full decode.
pub const DEFAULT_MAX_TUNNEL_DEPTH: usize = 4;
/// Datagrams being reassembled at once. Fragmentation is rare on healthy networks; 1024
/// covers a busy tunnel endpoint while bounding the table a fragment flood can grow.
pub const DEFAULT_MAX_FRAG_DATAGRAMS: usize = 1024;
/// Largest reassembled datagram payload: the IPv4 total length and IPv6 payload length
/// fields are 16 bits, so nothing legitimate is larger (bigger is "ping of death").
pub const DEFAULT_MAX_FRAG_DATAGRAM_BYTES: usize = 65_535;
/// Bytes held by all partial datagrams together (16 MiB): 256 full-size datagrams, the
/// memory an operator can spare on a small firewall box.
pub const DEFAULT_MAX_FRAG_TOTAL_BYTES: usize = 16 << 20;
/// Fragments accepted for one datagram. A 64 KiB datagram over a 1280-byte IPv6 MTU needs
/// 52; more means tiny-fragment evasion, and the datagram is dropped.
pub const DEFAULT_MAX_FRAGMENTS_PER_DATAGRAM: usize = 64;
/// How long a partial datagram waits for its missing fragments, by packet time (not wall
/// time, so replaying a capture behaves like the live run). Linux and Suricata use 30 s.
pub const DEFAULT_FRAG_TIMEOUT: Micros = Micros(30_000_000);

/// Bounds on the decoder's work and memory. `Default` gives the named constants above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Deepest VLAN tag stack; more is `Malformed { layer: Vlan, .. }`.
    pub max_vlan_tags: usize,
    /// Most MPLS labels; more is `Malformed { layer: Mpls, .. }`.
    pub max_mpls_labels: usize,
    /// Most IPv6 extension headers; more is `Malformed { layer: Ipv6Ext, .. }`.
    pub max_ipv6_ext_headers: usize,
    /// Most tunnels unwrapped; at the bound the current level's packet is returned.
    pub max_tunnel_depth: usize,
    /// Datagrams in reassembly at once; at the cap new datagrams are refused and counted.
    pub max_frag_datagrams: usize,
    /// Largest reassembled payload in bytes.
    pub max_frag_datagram_bytes: usize,
    /// Bytes held by all partial datagrams.
    pub max_frag_total_bytes: usize,
    /// Fragments accepted for one datagram.
    pub max_fragments_per_datagram: usize,
    /// How long (packet time) a partial datagram is kept.
    pub frag_timeout: Micros,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_vlan_tags: DEFAULT_MAX_VLAN_TAGS,
            max_mpls_labels: DEFAULT_MAX_MPLS_LABELS,
            max_ipv6_ext_headers: DEFAULT_MAX_IPV6_EXT_HEADERS,
            max_tunnel_depth: DEFAULT_MAX_TUNNEL_DEPTH,
            max_frag_datagrams: DEFAULT_MAX_FRAG_DATAGRAMS,
            max_frag_datagram_bytes: DEFAULT_MAX_FRAG_DATAGRAM_BYTES,
            max_frag_total_bytes: DEFAULT_MAX_FRAG_TOTAL_BYTES,
            max_fragments_per_datagram: DEFAULT_MAX_FRAGMENTS_PER_DATAGRAM,
            frag_timeout: DEFAULT_FRAG_TIMEOUT,
        }
    }
}

/// The protocol layer an error was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Layer {
    Ethernet,
    Vlan,
    Mpls,
    Pppoe,
    /// PPP and Cisco HDLC framing.
    Ppp,
    /// BSD null/loopback and OpenBSD loop headers.
    Loopback,
    Sll,
    Sll2,
    Pflog,
    Ipv4,
    Ipv6,
    Ipv6Ext,
    Fragment,
    Gre,
    Vxlan,
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
}

impl Layer {
    /// Every layer, in a fixed order (the index of the per-layer counters).
    pub const ALL: [Layer; 19] = [
        Layer::Ethernet,
        Layer::Vlan,
        Layer::Mpls,
        Layer::Pppoe,
        Layer::Ppp,
        Layer::Loopback,
        Layer::Sll,
        Layer::Sll2,
        Layer::Pflog,
        Layer::Ipv4,
        Layer::Ipv6,
        Layer::Ipv6Ext,
        Layer::Fragment,
        Layer::Gre,
        Layer::Vxlan,
        Layer::Tcp,
        Layer::Udp,
        Layer::Icmp,
        Layer::Icmpv6,
    ];

    /// Lower-case name used in counter names and messages.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Ethernet => "ethernet",
            Layer::Vlan => "vlan",
            Layer::Mpls => "mpls",
            Layer::Pppoe => "pppoe",
            Layer::Ppp => "ppp",
            Layer::Loopback => "loopback",
            Layer::Sll => "sll",
            Layer::Sll2 => "sll2",
            Layer::Pflog => "pflog",
            Layer::Ipv4 => "ipv4",
            Layer::Ipv6 => "ipv6",
            Layer::Ipv6Ext => "ipv6_ext",
            Layer::Fragment => "fragment",
            Layer::Gre => "gre",
            Layer::Vxlan => "vxlan",
            Layer::Tcp => "tcp",
            Layer::Udp => "udp",
            Layer::Icmp => "icmp",
            Layer::Icmpv6 => "icmpv6",
        }
    }

    /// Position in [`Layer::ALL`] (declaration order, pinned by a test).
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Something the decoder recognises but does not decode (nothing is wrong with the frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unsupported {
    /// A pcap link type with no decoder (e.g. 802.11 radiotap).
    LinkType(i32),
    /// An ethertype that carries no IP (ARP, LLDP, PPPoE discovery, 802.3 length...).
    EtherType(u16),
    /// A PPP protocol other than IPv4/IPv6/MPLS (LCP, IPCP...).
    PppProtocol(u16),
    /// A loopback/pflog address family that is neither IPv4 nor IPv6.
    AddressFamily(u32),
    /// A version nibble other than 4 or 6 where the link layer leaves the guess to it
    /// (raw IP, MPLS).
    IpVersion(u8),
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsupported::LinkType(n) => write!(f, "link type {n}"),
            Unsupported::EtherType(t) => write!(f, "ethertype 0x{t:04x}"),
            Unsupported::PppProtocol(p) => write!(f, "PPP protocol 0x{p:04x}"),
            Unsupported::AddressFamily(a) => write!(f, "address family {a}"),
            Unsupported::IpVersion(v) => write!(f, "IP version {v}"),
        }
    }
}

/// Why a frame gave no packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame ends inside a header of this layer.
    #[error("truncated {layer} header")]
    Truncated { layer: Layer },
    /// A header field is impossible; `reason` is a stable snake_case token.
    #[error("malformed {layer} header: {reason}")]
    Malformed { layer: Layer, reason: &'static str },
    /// Recognised but not decoded.
    #[error("unsupported {what}")]
    Unsupported { what: Unsupported },
    /// A fragment was stored; the datagram is not complete yet. Not a fault: counted as
    /// `fragments_pending`. [`Decoder::last_fragment`] tells who sent it.
    #[error("fragment stored, datagram not complete")]
    FragmentPending,
    /// A fragment was dropped to keep reassembly within its bounds (table full, byte
    /// budget, too many fragments, a second reassembly inside one frame).
    #[error("fragment refused: {reason}")]
    FragmentRefused { reason: &'static str },
}

impl DecodeError {
    pub(crate) fn truncated(layer: Layer) -> DecodeError {
        DecodeError::Truncated { layer }
    }
    pub(crate) fn malformed(layer: Layer, reason: &'static str) -> DecodeError {
        DecodeError::Malformed { layer, reason }
    }
}

/// One decoded packet: network and transport facts plus the transport payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Capture timestamp.
    pub ts: Micros,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IP protocol of the payload (after the IPv6 extension chain).
    pub proto: Proto,
    /// 0 when the protocol has no ports.
    pub src_port: u16,
    pub dst_port: u16,
    pub tcp: Option<TcpInfo>,
    pub icmp: Option<IcmpInfo>,
    /// TCP/UDP data; for ICMP/ICMPv6 everything after type, code and checksum (so echo
    /// id/sequence and the quoted datagram of an error message are both reachable); for
    /// other protocols the IP payload. Bounded by the IP length, so Ethernet padding never
    /// shows; shorter than the IP length says when the capture was cut by a snap length.
    pub payload: &'a [u8],
    /// Outermost VLAN id.
    pub vlan: Option<u16>,
    /// IPv4 TTL or IPv6 hop limit.
    pub ip_ttl: u8,
    /// IPv4 total length or IPv6 40 + payload length (of the reassembled datagram).
    pub ip_len: u16,
    /// Came out of IPv4/IPv6 fragment reassembly.
    pub reassembled: bool,
}

/// The decoder: stateless parsers plus fragment reassembly state and counters.
#[derive(Debug)]
pub struct Decoder {
    limits: DecodeLimits,
    counters: DecodeCounters,
    frags: FragTable,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DecodeLimits::default())
    }
}

/// UDP destination port of VXLAN (RFC 7348).
const VXLAN_PORT: u16 = 4789;
const IPPROTO_IPIP: u8 = 4;
const IPPROTO_IPV6: u8 = 41;

impl Decoder {
    pub fn new(limits: DecodeLimits) -> Self {
        Decoder {
            limits,
            counters: DecodeCounters::default(),
            frags: FragTable::default(),
        }
    }

    pub fn limits(&self) -> &DecodeLimits {
        &self.limits
    }

    /// Decode one frame of the given pcap link type. Errors are counted inside and returned.
    pub fn decode<'a>(
        &'a mut self,
        linktype: i32,
        ts: Micros,
        frame: &'a [u8],
    ) -> Result<Packet<'a>, DecodeError> {
        let Decoder {
            limits,
            counters,
            frags,
        } = self;
        counters.frames += 1;
        let result = decode_frame(limits, counters, frags, linktype, ts, frame);
        match &result {
            Ok(_) => counters.packets += 1,
            Err(e) => counters.count_error(e),
        }
        result
    }

    pub fn counters(&self) -> &DecodeCounters {
        &self.counters
    }

    /// The network facts of the last fragment seen (stored or refused), so that a caller
    /// getting [`DecodeError::FragmentPending`] can still match the addresses: a datagram
    /// that never completes must not hide who sent it.
    pub fn last_fragment(&self) -> Option<FragmentMeta> {
        self.frags.last_seen()
    }

    /// Datagrams currently waiting for fragments.
    pub fn fragments_in_flight(&self) -> usize {
        self.frags.len()
    }
}

fn decode_frame<'a>(
    limits: &DecodeLimits,
    counters: &mut DecodeCounters,
    frags: &'a mut FragTable,
    linktype: i32,
    ts: Micros,
    frame: &'a [u8],
) -> Result<Packet<'a>, DecodeError> {
    let mut vlan = None;
    let mut l3 = link::decode(LinkType(linktype), frame, limits, &mut vlan)?;
    // Reassembly hands out a buffer borrowed for 'a, so it can happen once per frame;
    // a fragment inside a reassembled tunnel payload is refused (and counted).
    let mut frags = Some(frags);
    let mut depth = 0usize;
    loop {
        let mut dgram = match l3 {
            L3::V4(b) => ip::ipv4(b)?,
            L3::V6(b) => ip::ipv6(b, limits)?,
        };
        let mut reassembled = false;
        if let Some(frag) = dgram.frag {
            counters.fragments += 1;
            let Some(table) = frags.take() else {
                return Err(DecodeError::FragmentRefused {
                    reason: "nested_reassembly",
                });
            };
            let whole = table.insert(limits, counters, ts, &dgram, frag)?;
            dgram.payload = whole.payload;
            dgram.ttl = whole.ttl;
            dgram.ip_len = whole.ip_len;
            dgram.proto = whole.proto;
            if dgram.dst.is_ipv6() {
                // The fragmentable part may start with more extension headers.
                let (proto, at, nested) = ip::ipv6_chain(dgram.proto, dgram.payload, limits)?;
                if nested.is_some() {
                    return Err(DecodeError::malformed(
                        Layer::Ipv6Ext,
                        "fragment_header_in_fragment",
                    ));
                }
                dgram.proto = proto;
                dgram.payload = dgram.payload.get(at..).unwrap_or_default();
            }
            counters.fragments_reassembled += 1;
            reassembled = true;
        }
        if dgram.snapped {
            counters.ip_payload_snapped += 1;
        }
        let mut pkt = Packet {
            ts,
            src: dgram.src,
            dst: dgram.dst,
            proto: Proto(dgram.proto),
            src_port: 0,
            dst_port: 0,
            tcp: None,
            icmp: None,
            payload: dgram.payload,
            vlan,
            ip_ttl: dgram.ttl,
            ip_len: dgram.ip_len,
            reassembled,
        };
        let inner: Result<L3<'a>, DecodeError> = match dgram.proto {
            6 => {
                let tcp = transport::tcp(dgram.payload)?;
                pkt.src_port = tcp.src_port;
                pkt.dst_port = tcp.dst_port;
                pkt.tcp = Some(tcp.info);
                pkt.payload = tcp.payload;
                return Ok(pkt);
            }
            17 => {
                let udp = transport::udp(dgram.payload)?;
                pkt.src_port = udp.src_port;
                pkt.dst_port = udp.dst_port;
                pkt.payload = udp.payload;
                match tunnel::vxlan(udp.dst_port, udp.payload, VXLAN_PORT) {
                    Some(frame) => link::ethernet(frame, limits, &mut vlan),
                    None => return Ok(pkt),
                }
            }
            1 | 58 => {
                let layer = if dgram.proto == 1 {
                    Layer::Icmp
                } else {
                    Layer::Icmpv6
                };
                let (info, body) = transport::icmp(dgram.payload, layer)?;
                pkt.icmp = Some(info);
                pkt.payload = body;
                return Ok(pkt);
            }
            47 => {
                let gre = tunnel::gre(dgram.payload)?;
                link::ethertype(gre.protocol, gre.payload, limits, &mut vlan)
            }
            IPPROTO_IPIP => Ok(L3::V4(dgram.payload)),
            IPPROTO_IPV6 => Ok(L3::V6(dgram.payload)),
            _ => return Ok(pkt),
        };
        // A tunnel: go round again with the inner frame, or return this level's packet.
        if depth >= limits.max_tunnel_depth {
            counters.tunnel_depth_exceeded += 1;
            return Ok(pkt);
        }
        match inner {
            Ok(next) => {
                counters.tunnels += 1;
                depth += 1;
                l3 = next;
            }
            Err(DecodeError::Unsupported { .. }) => {
                counters.tunnel_inner_unsupported += 1;
                return Ok(pkt);
            }
            Err(e) => return Err(e),
        }
    }
}
