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
mod flow_hash;
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
pub use flow_hash::flow_hash;
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
        if dgram.zero_total {
            counters.ipv4_zero_total_length += 1;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const A: [u8; 4] = [10, 0, 0, 1];
    const B: [u8; 4] = [66, 66, 66, 66];
    const A6: [u8; 16] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const B6: [u8; 16] = [0xde, 0xad, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xef];
    const T0: Micros = Micros(1_700_000_000_000_000);

    fn eth(ty: u16, rest: &[u8]) -> Vec<u8> {
        let mut f = vec![0xaa; 12];
        f.extend_from_slice(&ty.to_be_bytes());
        f.extend_from_slice(rest);
        f
    }

    fn vlan(id: u16, ty: u16, rest: &[u8]) -> Vec<u8> {
        let mut f = id.to_be_bytes().to_vec();
        f.extend_from_slice(&ty.to_be_bytes());
        f.extend_from_slice(rest);
        f
    }

    /// IPv4 header (+ options) with `frag` as the flags/offset field.
    fn ip4(proto: u8, id: u16, frag: u16, options: &[u8], payload: &[u8]) -> Vec<u8> {
        let hl = 20 + options.len();
        let total = (hl + payload.len()) as u16;
        let mut h = vec![0x40 | (hl / 4) as u8, 0];
        h.extend_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&id.to_be_bytes());
        h.extend_from_slice(&frag.to_be_bytes());
        h.extend_from_slice(&[64, proto, 0, 0]);
        h.extend_from_slice(&A);
        h.extend_from_slice(&B);
        h.extend_from_slice(options);
        h.extend_from_slice(payload);
        h
    }

    fn ip6(next: u8, payload: &[u8]) -> Vec<u8> {
        let mut h = vec![0x60, 0, 0, 0];
        h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        h.extend_from_slice(&[next, 55]);
        h.extend_from_slice(&A6);
        h.extend_from_slice(&B6);
        h.extend_from_slice(payload);
        h
    }

    fn tcp(flags: u8, data: &[u8]) -> Vec<u8> {
        let mut t = vec![
            0xc3, 0x50, 0x01, 0xbb, 0, 0, 0, 7, 0, 0, 0, 9, 0x60, flags, 0x72, 0x10,
        ];
        t.extend_from_slice(&[0, 0, 0, 0, 2, 4, 5, 0xb4]);
        t.extend_from_slice(data);
        t
    }

    fn udp(dport: u16, data: &[u8]) -> Vec<u8> {
        let mut u = vec![0x30, 0x39];
        u.extend_from_slice(&dport.to_be_bytes());
        u.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(data);
        u
    }

    fn decode_ok(lt: LinkType, frame: &[u8]) -> Packet<'static> {
        let mut d = Decoder::default();
        let p = d.decode(lt.0, T0, frame).expect("decodes");
        // Re-own the payload so the packet can outlive the decoder in a test.
        let payload: &'static [u8] = Box::leak(p.payload.to_vec().into_boxed_slice());
        Packet { payload, ..p }
    }

    #[test]
    fn ethernet_vlan_ipv4_options_tcp() {
        let ip = ip4(6, 1, 0, &[1, 1, 1, 0], &tcp(0x02, b"hi"));
        let mut frame = eth(0x8100, &vlan(42, 0x0800, &ip));
        frame.extend_from_slice(&[0; 6]); // Ethernet padding must not reach the payload
        let p = decode_ok(LinkType::ETHERNET, &frame);
        assert_eq!(p.src, IpAddr::V4(Ipv4Addr::from(A)));
        assert_eq!(p.dst, IpAddr::V4(Ipv4Addr::from(B)));
        assert_eq!(p.proto, Proto::TCP);
        assert_eq!((p.src_port, p.dst_port), (50000, 443));
        let t = p.tcp.unwrap();
        assert_eq!(
            (t.flags, t.seq, t.ack, t.window),
            (TcpFlags::SYN, 7, 9, 0x7210)
        );
        assert_eq!(p.payload, b"hi");
        assert_eq!(p.vlan, Some(42));
        assert_eq!((p.ip_ttl, p.ip_len), (64, ip.len() as u16));
        assert!(!p.reassembled);
    }

    /// Every prefix of a frame: an error until the transport header is complete, then a
    /// packet whose payload is exactly what was captured.
    fn check_prefixes(lt: LinkType, frame: &[u8], headers: usize) {
        let mut d = Decoder::default();
        for n in 0..=frame.len() {
            match d.decode(lt.0, T0, &frame[..n]) {
                Ok(p) => {
                    assert!(n >= headers, "prefix {n} of {headers} header bytes decoded");
                    assert_eq!(p.payload, &frame[headers..n], "prefix {n}");
                }
                Err(DecodeError::Truncated { .. } | DecodeError::Malformed { .. }) => {
                    assert!(n < headers, "prefix {n} failed after the headers");
                }
                Err(e) => panic!("prefix {n}: unexpected {e}"),
            }
        }
        let c = d.counters();
        assert_eq!(c.truncated_total() + c.malformed_total(), headers as u64);
    }

    #[test]
    fn truncated_at_every_layer() {
        let ip = ip4(6, 1, 0, &[1, 1, 1, 0], &tcp(0x18, b"payload"));
        let frame = eth(0x8100, &vlan(42, 0x0800, &ip));
        check_prefixes(LinkType::ETHERNET, &frame, frame.len() - 7);

        let frame = eth(0x86dd, &ip6(17, &udp(53, b"query")));
        check_prefixes(LinkType::ETHERNET, &frame, frame.len() - 5);

        let pppoe = [0x11, 0, 0, 1, 0, 0x2a, 0, 0x21];
        let mut body = pppoe.to_vec();
        body.extend_from_slice(&ip4(1, 1, 0, &[], &[8, 0, 0, 0, 1, 2]));
        let frame = eth(0x8864, &body);
        check_prefixes(LinkType::ETHERNET, &frame, frame.len() - 2);

        let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(&ip4(17, 1, 0, &[], &udp(53, b"x")));
        check_prefixes(LinkType::LINUX_SLL, &sll, sll.len() - 1);
    }

    #[test]
    fn bad_ipv4_header_lengths() {
        let mut ip = ip4(6, 1, 0, &[], &tcp(0x02, b""));
        ip[0] = 0x44;
        let mut d = Decoder::default();
        assert_eq!(
            d.decode(228, T0, &ip),
            Err(DecodeError::malformed(Layer::Ipv4, "ihl_below_5"))
        );
        ip[0] = 0x4f; // 60-byte header, 40 bytes captured
        let short = ip[..40].to_vec();
        assert_eq!(
            d.decode(228, T0, &short),
            Err(DecodeError::truncated(Layer::Ipv4))
        );
        let mut ip = ip4(6, 1, 0, &[], &tcp(0x02, b""));
        ip[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(
            d.decode(228, T0, &ip),
            Err(DecodeError::malformed(
                Layer::Ipv4,
                "total_length_below_header"
            ))
        );
        let ip = ip6(17, &udp(53, b""));
        assert_eq!(
            d.decode(228, T0, &ip),
            Err(DecodeError::malformed(Layer::Ipv4, "version_not_4"))
        );
        assert_eq!(d.counters().malformed(Layer::Ipv4, "ihl_below_5"), 1);
        assert_eq!(d.counters().truncated(Layer::Ipv4), 1);
    }

    #[test]
    fn ipv6_extension_chains() {
        // hop-by-hop, destination options, routing, AH, then UDP.
        let mut ext = vec![60, 0, 1, 4, 0, 0, 0, 0];
        ext.extend_from_slice(&[43, 0, 1, 4, 0, 0, 0, 0]);
        ext.extend_from_slice(&[51, 0, 0, 0, 0, 0, 0, 0]);
        ext.extend_from_slice(&[17, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        ext.extend_from_slice(&udp(53, b"q"));
        let frame = ip6(0, &ext);
        let p = decode_ok(LinkType::IPV6, &frame);
        assert_eq!(
            (p.proto, p.dst_port, p.payload),
            (Proto::UDP, 53, &b"q"[..])
        );
        assert_eq!(p.dst, IpAddr::V6(Ipv6Addr::from(B6)));
        check_prefixes(LinkType::IPV6, &frame, frame.len() - 1);

        // A loop of hop-by-hop headers, each pointing at the next.
        let lp: Vec<u8> = std::iter::repeat_n([0u8, 0, 0, 0, 0, 0, 0, 0], 50)
            .flatten()
            .collect();
        let mut d = Decoder::default();
        assert_eq!(
            d.decode(229, T0, &ip6(0, &lp)),
            Err(DecodeError::malformed(
                Layer::Ipv6Ext,
                "too_many_extension_headers"
            ))
        );
        // An extension header longer than the datagram.
        assert_eq!(
            d.decode(229, T0, &ip6(60, &[17, 200, 0, 0, 0, 0, 0, 0])),
            Err(DecodeError::truncated(Layer::Ipv6Ext))
        );
        // ESP and no-next-header end the chain: a packet with no ports.
        let esp = ip6(50, &[1, 2, 3, 4]);
        let p = d.decode(229, T0, &esp).unwrap();
        assert_eq!(
            (p.proto, p.src_port, p.payload),
            (Proto(50), 0, &[1, 2, 3, 4][..])
        );
        let none = ip6(59, &[]);
        let p = d.decode(229, T0, &none).unwrap();
        assert_eq!(p.proto, Proto(59));
        // Jumbogram marker.
        assert!(matches!(
            d.decode(229, T0, &ip6(0, &[])),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn gre_with_all_flags_returns_the_inner_packet() {
        let inner = ip4(17, 2, 0, &[], &udp(514, b"EVIL"));
        // C, K, S set: checksum+offset, key, sequence.
        let mut gre = vec![0xb0, 0x00, 0x08, 0x00];
        gre.extend_from_slice(&[0; 12]);
        gre.extend_from_slice(&inner);
        let frame = eth(0x0800, &ip4(47, 1, 0, &[], &gre));
        let p = decode_ok(LinkType::ETHERNET, &frame);
        assert_eq!(
            (p.proto, p.dst_port, p.payload),
            (Proto::UDP, 514, &b"EVIL"[..])
        );

        // Transparent Ethernet bridging with a VLAN tag inside.
        let mut gre = vec![0x00, 0x00, 0x65, 0x58];
        gre.extend_from_slice(&eth(0x8100, &vlan(7, 0x86dd, &ip6(6, &tcp(0x02, b"")))));
        let frame = eth(0x0800, &ip4(47, 1, 0, &[], &gre));
        let p = decode_ok(LinkType::ETHERNET, &frame);
        assert_eq!((p.proto, p.vlan), (Proto::TCP, Some(7)));
        assert!(p.src.is_ipv6());

        // Unknown inner protocol: the GRE packet itself.
        let frame = ip4(47, 1, 0, &[], &[0, 0, 0x12, 0x34, 9, 9]);
        let mut d = Decoder::default();
        let p = d.decode(228, T0, &frame).unwrap();
        assert_eq!(
            (p.proto, p.payload),
            (Proto::GRE, &[0, 0, 0x12, 0x34, 9, 9][..])
        );
        assert_eq!(d.counters().tunnel_inner_unsupported, 1);
    }

    #[test]
    fn vxlan_inner_frame_and_inner_arp() {
        let mut vx = vec![0x08, 0, 0, 0, 0, 0, 5, 0];
        vx.extend_from_slice(&eth(0x0800, &ip4(6, 3, 0, &[], &tcp(0x10, b"data"))));
        let frame = eth(0x0800, &ip4(17, 1, 0, &[], &udp(4789, &vx)));
        let mut d = Decoder::default();
        let p = d.decode(1, T0, &frame).unwrap();
        assert_eq!(
            (p.proto, p.dst_port, p.payload),
            (Proto::TCP, 443, &b"data"[..])
        );
        assert_eq!(d.counters().tunnels, 1);

        let mut vx = vec![0x08, 0, 0, 0, 0, 0, 5, 0];
        vx.extend_from_slice(&eth(0x0806, &[0; 28]));
        let frame = eth(0x0800, &ip4(17, 1, 0, &[], &udp(4789, &vx)));
        let p = d.decode(1, T0, &frame).unwrap();
        assert_eq!((p.proto, p.dst_port), (Proto::UDP, 4789));
        assert_eq!(d.counters().tunnel_inner_unsupported, 1);
    }

    #[test]
    fn tunnel_depth_is_bounded() {
        let mut pkt = ip4(6, 9, 0, &[], &tcp(0x02, b""));
        for _ in 0..10 {
            pkt = ip4(4, 9, 0, &[], &pkt);
        }
        let mut d = Decoder::default();
        let p = d.decode(228, T0, &pkt).unwrap();
        assert_eq!(p.proto, Proto(4));
        assert_eq!(d.counters().tunnels, DEFAULT_MAX_TUNNEL_DEPTH as u64);
        assert_eq!(d.counters().tunnel_depth_exceeded, 1);
    }

    /// A UDP datagram of 8 + 40 bytes cut into IPv4 fragments of 16 bytes.
    fn v4_fragments(id: u16, data: &[u8]) -> Vec<Vec<u8>> {
        let dgram = udp(53, data);
        dgram
            .chunks(16)
            .enumerate()
            .map(|(i, c)| {
                let more = (i + 1) * 16 < dgram.len();
                let field = (i as u16 * 2) | if more { 0x2000 } else { 0 };
                ip4(17, id, field, &[], c)
            })
            .collect()
    }

    fn feed(d: &mut Decoder, frags: &[Vec<u8>], order: &[usize]) -> Option<(Vec<u8>, bool)> {
        let mut out = None;
        for &i in order {
            match d.decode(228, T0, &frags[i]) {
                Ok(p) => {
                    assert!(out.is_none(), "two datagrams out");
                    out = Some((p.payload.to_vec(), p.reassembled));
                }
                Err(DecodeError::FragmentPending) => {}
                Err(e) => panic!("fragment {i}: {e}"),
            }
        }
        out
    }

    const DATA40: &[u8; 40] = b"0123456789abcdefghijklmnopqrstuvwxyzABCD";

    #[test]
    fn fragments_in_order_reversed_and_shuffled() {
        let frags = v4_fragments(7, DATA40);
        assert_eq!(frags.len(), 3);
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]] {
            let mut d = Decoder::default();
            let (payload, reassembled) = feed(&mut d, &frags, &order).expect("complete");
            assert_eq!(payload, DATA40);
            assert!(reassembled);
            let c = d.counters();
            assert_eq!(
                (c.fragments, c.fragments_pending, c.fragments_reassembled),
                (3, 2, 1)
            );
            assert_eq!(d.fragments_in_flight(), 0);
        }
    }

    #[test]
    fn duplicate_and_overlapping_fragments_first_wins() {
        let frags = v4_fragments(7, DATA40);
        let mut d = Decoder::default();
        let mut evil = frags[1].clone();
        let n = evil.len();
        evil[n - 16..].copy_from_slice(b"XXXXXXXXXXXXXXXX");
        let mut all = frags.clone();
        all.push(evil);
        // Original middle, then the rewrite, then a duplicate, then the rest.
        let (payload, _) = feed(&mut d, &all, &[1, 3, 1, 0, 2]).expect("complete");
        assert_eq!(payload, DATA40);
        assert_eq!(d.counters().fragments_duplicate, 2);

        // Partial overlap: [8, 24) over a held [0, 16).
        let dgram = udp(53, DATA40);
        let mut d = Decoder::default();
        let first = ip4(17, 8, 0x2000, &[], &dgram[..16]);
        let mut shifted = dgram[8..24].to_vec();
        shifted[..8].copy_from_slice(b"ZZZZZZZZ");
        let overlap = ip4(17, 8, 0x2001, &[], &shifted);
        let last = ip4(17, 8, 3, &[], &dgram[24..]);
        let (payload, _) = feed(&mut d, &[first, overlap, last], &[0, 1, 2]).expect("complete");
        assert_eq!(payload, DATA40);
        assert_eq!(d.counters().fragments_overlap, 1);
    }

    #[test]
    fn inconsistent_fragments_are_malformed() {
        let dgram = udp(53, DATA40);
        let mut d = Decoder::default();
        // Non-final fragment shorter than the 8-byte offset unit.
        let tiny = ip4(17, 9, 0x2000, &[], &dgram[..7]);
        assert_eq!(
            d.decode(228, T0, &tiny),
            Err(DecodeError::malformed(
                Layer::Fragment,
                "non_final_fragment_below_8_bytes"
            ))
        );
        // Two final fragments that disagree.
        let last = ip4(17, 9, 0x0004, &[], &dgram[32..]);
        let other = ip4(17, 9, 0x0005, &[], &dgram[32..]);
        assert_eq!(d.decode(228, T0, &last), Err(DecodeError::FragmentPending));
        assert_eq!(
            d.decode(228, T0, &other),
            Err(DecodeError::malformed(
                Layer::Fragment,
                "conflicting_final_fragment"
            ))
        );
        // Ping of death: ends past 65535.
        let pod = ip4(17, 10, 0x1fff, &[], &[0; 16]);
        assert_eq!(
            d.decode(228, T0, &pod),
            Err(DecodeError::malformed(Layer::Fragment, "datagram_too_big"))
        );
        let last = d.last_fragment().unwrap();
        assert_eq!((last.id, last.offset, last.more), (10, 0x1fff * 8, false));
        assert_eq!(last.dst, IpAddr::V4(Ipv4Addr::from(B)));
    }

    #[test]
    fn odd_non_final_fragments_are_cut_to_a_multiple_of_8() {
        let dgram = udp(53, DATA40);
        let mut d = Decoder::default();
        // 20 bytes with MF: the last 4 are dropped (Linux does the same); the next
        // fragment supplies them.
        let first = ip4(17, 12, 0x2000, &[], &dgram[..20]);
        let rest = ip4(17, 12, 0x0002, &[], &dgram[16..]);
        let (payload, _) = feed(&mut d, &[first, rest], &[0, 1]).expect("complete");
        assert_eq!(payload, DATA40);
        assert_eq!(d.counters().fragments_trimmed, 1);
    }

    #[test]
    fn too_many_fragments_drop_the_datagram() {
        let limits = DecodeLimits::default();
        let mut d = Decoder::new(limits.clone());
        let mut refused = 0;
        for i in 0..(limits.max_fragments_per_datagram as u16 + 1) {
            let f = ip4(17, 11, 0x2000 | i, &[], &[0; 8]);
            match d.decode(228, T0, &f) {
                Err(DecodeError::FragmentPending) => {}
                Err(DecodeError::FragmentRefused { reason }) => {
                    assert_eq!(reason, "too_many_fragments");
                    refused += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(refused, 1);
        assert_eq!(d.counters().fragments_too_many, 1);
        assert_eq!(d.fragments_in_flight(), 0);
    }

    #[test]
    fn table_cap_budget_and_timeout() {
        let limits = DecodeLimits {
            max_frag_datagrams: 2,
            ..DecodeLimits::default()
        };
        let mut d = Decoder::new(limits);
        for id in 0..2 {
            let f = ip4(17, id, 0x2000, &[], &[0; 8]);
            assert_eq!(d.decode(228, T0, &f), Err(DecodeError::FragmentPending));
        }
        let f = ip4(17, 2, 0x2000, &[], &[0; 8]);
        assert_eq!(
            d.decode(228, T0, &f),
            Err(DecodeError::FragmentRefused {
                reason: "table_full"
            })
        );
        assert_eq!(d.counters().fragments_refused_table_full, 1);
        // Held datagrams are not evicted before their time...
        assert_eq!(d.fragments_in_flight(), 2);
        // ...but are after it, by packet time.
        let later = Micros(T0.0 + DEFAULT_FRAG_TIMEOUT.0 + 1);
        assert_eq!(d.decode(228, later, &f), Err(DecodeError::FragmentPending));
        assert_eq!(d.counters().fragments_expired, 2);
        assert_eq!(d.fragments_in_flight(), 1);

        let limits = DecodeLimits {
            max_frag_total_bytes: 1000,
            ..DecodeLimits::default()
        };
        let mut d = Decoder::new(limits);
        let f = ip4(17, 1, 0x2000 | 200, &[], &[0; 8]);
        assert_eq!(
            d.decode(228, T0, &f),
            Err(DecodeError::FragmentRefused {
                reason: "byte_budget"
            })
        );
        assert_eq!(d.counters().fragments_refused_budget, 1);
    }

    #[test]
    fn ipv6_fragments_reassemble_through_the_fragmentable_chain() {
        // Fragmentable part: destination options, then UDP.
        let mut part = vec![17, 0, 1, 4, 0, 0, 0, 0];
        part.extend_from_slice(&udp(53, DATA40));
        let (a, b) = part.split_at(24);
        let frag = |off: u16, more: bool, data: &[u8]| {
            let mut h = vec![60, 0];
            h.extend_from_slice(&((off << 3) | u16::from(more)).to_be_bytes());
            h.extend_from_slice(&0xdead_beefu32.to_be_bytes());
            h.extend_from_slice(data);
            ip6(44, &h)
        };
        let mut d = Decoder::default();
        assert_eq!(
            d.decode(229, T0, &frag(3, false, b)),
            Err(DecodeError::FragmentPending)
        );
        let first = frag(0, true, a);
        let p = d.decode(229, T0, &first).unwrap();
        assert!(p.reassembled);
        assert_eq!(
            (p.proto, p.dst_port, p.payload),
            (Proto::UDP, 53, &DATA40[..])
        );
        assert_eq!(p.ip_len as usize, 40 + part.len());

        // An atomic fragment (offset 0, M clear) is a whole packet.
        let mut h = vec![17, 0, 0, 0, 0, 0, 0, 1];
        h.extend_from_slice(&udp(53, b"x"));
        let atomic = ip6(44, &h);
        let p = d.decode(229, T0, &atomic).unwrap();
        assert!(!p.reassembled);
        assert_eq!(p.payload, b"x");
    }

    #[test]
    fn a_fragment_inside_a_reassembled_tunnel_is_refused() {
        let inner = ip4(17, 5, 0x2000, &[], &[0; 8]);
        let outer = |field: u16, data: &[u8]| ip4(4, 6, field, &[], data);
        let (a, b) = inner.split_at(16);
        let mut d = Decoder::default();
        assert_eq!(
            d.decode(228, T0, &outer(0x2000, a)),
            Err(DecodeError::FragmentPending)
        );
        assert_eq!(
            d.decode(228, T0, &outer(0x0002, b)),
            Err(DecodeError::FragmentRefused {
                reason: "nested_reassembly"
            })
        );
        assert_eq!(d.counters().fragments_nested, 1);
    }

    #[test]
    fn errors_display_precisely() {
        assert_eq!(
            DecodeError::malformed(Layer::Ipv4, "ihl_below_5").to_string(),
            "malformed ipv4 header: ihl_below_5"
        );
        assert_eq!(
            DecodeError::Unsupported {
                what: Unsupported::EtherType(0x806)
            }
            .to_string(),
            "unsupported ethertype 0x0806"
        );
        assert_eq!(
            DecodeError::truncated(Layer::Tcp).to_string(),
            "truncated tcp header"
        );
    }
}
