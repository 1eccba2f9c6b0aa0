//! Link layers: from a pcap link type to the first byte of an IPv4 or IPv6 header.
//!
//! Pure functions, no state. Everything between the link header and IP is walked here in
//! one bounded loop: 802.1Q/802.1ad tags (any depth up to the limit), MPLS label stacks,
//! PPPoE sessions, PPP, and transparent Ethernet bridging (for GRE). The outermost VLAN id
//! is reported through `vlan`.

use super::wire::{be16, be32, le32, u8_at};
use super::{DecodeError, DecodeLimits, Layer, Unsupported};

/// A pcap link type (`LINKTYPE_*` from the tcpdump.org registry); open so that unknown
/// values stay representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkType(pub i32);

impl LinkType {
    /// BSD loopback: 4-byte address family in the capturing host's byte order.
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    /// PPP, with or without the HDLC address/control bytes.
    pub const PPP: LinkType = LinkType(9);
    /// Raw IP (DLT_RAW as most systems number it).
    pub const RAW: LinkType = LinkType(12);
    /// Raw IP (DLT_RAW as OpenBSD numbers it).
    pub const RAW_OPENBSD: LinkType = LinkType(14);
    /// PPP in HDLC-like framing (RFC 1662), or Cisco HDLC on some systems.
    pub const PPP_HDLC: LinkType = LinkType(50);
    /// LINKTYPE_RAW, the portable number for raw IP.
    pub const RAW_LINKTYPE: LinkType = LinkType(101);
    /// Cisco HDLC.
    pub const C_HDLC: LinkType = LinkType(104);
    /// OpenBSD loopback: 4-byte address family in network byte order.
    pub const LOOP: LinkType = LinkType(108);
    /// Linux "cooked" capture (the `any` interface).
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// OpenBSD/FreeBSD pf log.
    pub const PFLOG: LinkType = LinkType(117);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    /// Linux "cooked" capture, version 2.
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// Every link type the decoder handles.
    pub const SUPPORTED: [LinkType; 14] = [
        LinkType::NULL,
        LinkType::ETHERNET,
        LinkType::PPP,
        LinkType::RAW,
        LinkType::RAW_OPENBSD,
        LinkType::PPP_HDLC,
        LinkType::RAW_LINKTYPE,
        LinkType::C_HDLC,
        LinkType::LOOP,
        LinkType::LINUX_SLL,
        LinkType::PFLOG,
        LinkType::IPV4,
        LinkType::IPV6,
        LinkType::LINUX_SLL2,
    ];
}

/// An Ethernet II type; open so that unknown values stay representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EtherType(pub u16);

impl EtherType {
    pub const IPV4: EtherType = EtherType(0x0800);
    pub const ARP: EtherType = EtherType(0x0806);
    /// Transparent Ethernet bridging (an Ethernet frame inside GRE).
    pub const TEB: EtherType = EtherType(0x6558);
    /// 802.1Q customer VLAN tag.
    pub const VLAN: EtherType = EtherType(0x8100);
    /// PPP inside GRE version 1 (PPTP).
    pub const PPP: EtherType = EtherType(0x880b);
    pub const IPV6: EtherType = EtherType(0x86dd);
    pub const MPLS_UNICAST: EtherType = EtherType(0x8847);
    pub const MPLS_MULTICAST: EtherType = EtherType(0x8848);
    pub const PPPOE_DISCOVERY: EtherType = EtherType(0x8863);
    pub const PPPOE_SESSION: EtherType = EtherType(0x8864);
    /// 802.1ad service VLAN tag (QinQ outer tag).
    pub const QINQ: EtherType = EtherType(0x88a8);
    /// Pre-standard QinQ outer tag.
    pub const QINQ_LEGACY: EtherType = EtherType(0x9100);
}

/// PPP protocol numbers that lead to IP.
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
const PPP_MPLS_UNICAST: u16 = 0x0281;
const PPP_MPLS_MULTICAST: u16 = 0x0283;

/// Address families for IPv4 and IPv6 in loopback and pflog headers. AF_INET is 2
/// everywhere; AF_INET6 is 10 on Linux, 24 on OpenBSD/NetBSD, 28 on FreeBSD/DragonFly and
/// 30 on macOS — a capture may come from any of them.
const AF_INET: u32 = 2;
const AF_INET6: [u32; 4] = [10, 24, 28, 30];

/// Headers walked between the link header and IP before giving up: VLAN tags, MPLS
/// stacks, PPPoE, bridged Ethernet. The per-kind limits bind first; this stops a crafted
/// alternation of kinds (tag, MPLS pseudowire Ethernet, tag...).
const MAX_LINK_HEADERS: usize = 32;

/// Oldest pf log header length: fields up to `dir` without the uid/pid fields (tcpdump's
/// MIN_PFLOG_HDRLEN); a length byte below it cannot be a pfloghdr.
const MIN_PFLOG_HDRLEN: usize = 45;

/// Where the network layer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum L3<'a> {
    V4(&'a [u8]),
    V6(&'a [u8]),
}

/// Dispatch on the pcap link type.
pub(super) fn decode<'a>(
    linktype: LinkType,
    frame: &'a [u8],
    limits: &DecodeLimits,
    vlan: &mut Option<u16>,
) -> Result<L3<'a>, DecodeError> {
    match linktype {
        LinkType::ETHERNET => ethernet(frame, limits, vlan),
        LinkType::NULL => loopback(frame, false),
        LinkType::LOOP => loopback(frame, true),
        LinkType::RAW | LinkType::RAW_OPENBSD | LinkType::RAW_LINKTYPE => {
            by_version(frame, Layer::Ipv4)
        }
        LinkType::IPV4 => Ok(L3::V4(frame)),
        LinkType::IPV6 => Ok(L3::V6(frame)),
        LinkType::LINUX_SLL => sll(frame, limits, vlan),
        LinkType::LINUX_SLL2 => sll2(frame, limits, vlan),
        LinkType::PFLOG => pflog(frame),
        LinkType::PPP | LinkType::PPP_HDLC | LinkType::C_HDLC => ppp(frame, limits, vlan),
        LinkType(other) => Err(DecodeError::Unsupported {
            what: Unsupported::LinkType(other),
        }),
    }
}

/// Pick IPv4 or IPv6 by the version nibble (raw IP, after MPLS).
fn by_version(b: &[u8], layer: Layer) -> Result<L3<'_>, DecodeError> {
    match u8_at(b, 0).map(|v| v >> 4) {
        Some(4) => Ok(L3::V4(b)),
        Some(6) => Ok(L3::V6(b)),
        Some(v) => Err(DecodeError::Unsupported {
            what: Unsupported::IpVersion(v),
        }),
        None => Err(DecodeError::truncated(layer)),
    }
}

fn family(af: u32) -> Option<bool> {
    if af == AF_INET {
        Some(false)
    } else if AF_INET6.contains(&af) {
        Some(true)
    } else {
        None
    }
}

/// ```text
/// | address family (4 bytes; host order for NULL, network order for LOOP) | IP... |
/// ```
fn loopback(b: &[u8], network_order: bool) -> Result<L3<'_>, DecodeError> {
    let be = be32(b, 0).ok_or(DecodeError::truncated(Layer::Loopback))?;
    let le = le32(b, 0).unwrap_or(be);
    let rest = b.get(4..).unwrap_or_default();
    // The capturing host's byte order is unknown: accept either for NULL. The families
    // cannot collide (2 little-endian is 0x02000000 big-endian).
    let v6 = if network_order {
        family(be)
    } else {
        family(be).or_else(|| family(le))
    };
    match v6 {
        Some(false) => Ok(L3::V4(rest)),
        Some(true) => Ok(L3::V6(rest)),
        None => Err(DecodeError::Unsupported {
            what: Unsupported::AddressFamily(if network_order || le > be { be } else { le }),
        }),
    }
}

/// ```text
/// | destination (6) | source (6) | ethertype (2) | payload... |
/// ```
pub(super) fn ethernet<'a>(
    b: &'a [u8],
    limits: &DecodeLimits,
    vlan: &mut Option<u16>,
) -> Result<L3<'a>, DecodeError> {
    let (ty, rest) = ethernet_header(b)?;
    ethertype(ty, rest, limits, vlan)
}

fn ethernet_header(b: &[u8]) -> Result<(u16, &[u8]), DecodeError> {
    let ty = be16(b, 12).ok_or(DecodeError::truncated(Layer::Ethernet))?;
    Ok((ty, b.get(14..).unwrap_or_default()))
}

/// Walk from an ethertype to IP through tags, label stacks, PPPoE and bridged Ethernet.
pub(super) fn ethertype<'a>(
    mut ty: u16,
    mut rest: &'a [u8],
    limits: &DecodeLimits,
    vlan: &mut Option<u16>,
) -> Result<L3<'a>, DecodeError> {
    let mut tags = 0usize;
    for _ in 0..MAX_LINK_HEADERS {
        match EtherType(ty) {
            EtherType::IPV4 => return Ok(L3::V4(rest)),
            EtherType::IPV6 => return Ok(L3::V6(rest)),
            // | PCP (3) | DEI (1) | VLAN id (12) | next ethertype (2) |
            EtherType::VLAN | EtherType::QINQ | EtherType::QINQ_LEGACY => {
                tags += 1;
                if tags > limits.max_vlan_tags {
                    return Err(DecodeError::malformed(Layer::Vlan, "too_many_tags"));
                }
                let tci = be16(rest, 0).ok_or(DecodeError::truncated(Layer::Vlan))?;
                ty = be16(rest, 2).ok_or(DecodeError::truncated(Layer::Vlan))?;
                vlan.get_or_insert(tci & 0x0fff);
                rest = rest.get(4..).unwrap_or_default();
            }
            EtherType::MPLS_UNICAST | EtherType::MPLS_MULTICAST => {
                rest = mpls(rest, limits)?;
                match u8_at(rest, 0).map(|v| v >> 4) {
                    // Pseudowire control word (RFC 4385: first nibble 0), then Ethernet.
                    Some(0) => {
                        let frame = rest.get(4..).ok_or(DecodeError::truncated(Layer::Mpls))?;
                        (ty, rest) = ethernet_header(frame)?;
                    }
                    _ => return by_version(rest, Layer::Mpls),
                }
            }
            EtherType::PPPOE_SESSION => {
                let ppp = pppoe(rest)?;
                (ty, rest) = match ppp_protocol(ppp)? {
                    Next::Ip(l3) => return Ok(l3),
                    Next::EtherType(ty, rest) => (ty, rest),
                };
            }
            EtherType::TEB => (ty, rest) = ethernet_header(rest)?,
            EtherType::PPP => {
                (ty, rest) = match ppp_frame(rest)? {
                    Next::Ip(l3) => return Ok(l3),
                    Next::EtherType(ty, rest) => (ty, rest),
                }
            }
            EtherType(other) => {
                return Err(DecodeError::Unsupported {
                    what: Unsupported::EtherType(other),
                });
            }
        }
    }
    Err(DecodeError::malformed(
        Layer::Ethernet,
        "too_many_link_headers",
    ))
}

/// ```text
/// | label (20) | traffic class (3) | bottom of stack (1) | TTL (8) |  ... until S=1
/// ```
/// Returns what follows the bottom-of-stack entry.
fn mpls<'a>(b: &'a [u8], limits: &DecodeLimits) -> Result<&'a [u8], DecodeError> {
    for i in 0..limits.max_mpls_labels {
        let at = i * 4;
        let entry = be32(b, at).ok_or(DecodeError::truncated(Layer::Mpls))?;
        if entry & 0x100 != 0 {
            return Ok(b.get(at + 4..).unwrap_or_default());
        }
    }
    Err(DecodeError::malformed(Layer::Mpls, "too_many_labels"))
}

/// ```text
/// | ver (4) = 1 | type (4) = 1 | code (8) = 0 | session id (16) | length (16) | PPP... |
/// ```
/// Returns the PPP frame, bounded by the PPPoE length (Ethernet padding dropped).
fn pppoe(b: &[u8]) -> Result<&[u8], DecodeError> {
    let len = be16(b, 4).ok_or(DecodeError::truncated(Layer::Pppoe))? as usize;
    let ver_type = u8_at(b, 0).unwrap_or_default();
    if ver_type != 0x11 {
        return Err(DecodeError::malformed(Layer::Pppoe, "version_not_1"));
    }
    if u8_at(b, 1) != Some(0) {
        return Err(DecodeError::malformed(Layer::Pppoe, "session_code_not_0"));
    }
    let body = b.get(6..).unwrap_or_default();
    // A length beyond the capture is a snap length at work; IP bounds the payload anyway.
    Ok(body.get(..len).unwrap_or(body))
}

enum Next<'a> {
    Ip(L3<'a>),
    EtherType(u16, &'a [u8]),
}

/// A PPP protocol field (1 byte when protocol-field-compressed, i.e. odd) and its payload.
fn ppp_protocol(b: &[u8]) -> Result<Next<'_>, DecodeError> {
    let first = u8_at(b, 0).ok_or(DecodeError::truncated(Layer::Ppp))?;
    let (proto, rest) = if first & 1 == 1 {
        (u16::from(first), b.get(1..).unwrap_or_default())
    } else {
        let p = be16(b, 0).ok_or(DecodeError::truncated(Layer::Ppp))?;
        (p, b.get(2..).unwrap_or_default())
    };
    match proto {
        PPP_IPV4 => Ok(Next::Ip(L3::V4(rest))),
        PPP_IPV6 => Ok(Next::Ip(L3::V6(rest))),
        PPP_MPLS_UNICAST => Ok(Next::EtherType(EtherType::MPLS_UNICAST.0, rest)),
        PPP_MPLS_MULTICAST => Ok(Next::EtherType(EtherType::MPLS_MULTICAST.0, rest)),
        other => Err(DecodeError::Unsupported {
            what: Unsupported::PppProtocol(other),
        }),
    }
}

/// ```text
/// PPP in HDLC framing: | 0xff | 0x03 | protocol (1-2) | ... |  (address/control optional)
/// Cisco HDLC:          | 0x0f or 0x8f | 0x00 | ethertype (2) | ... |
/// ```
fn ppp_frame(b: &[u8]) -> Result<Next<'_>, DecodeError> {
    match (u8_at(b, 0), u8_at(b, 1)) {
        (Some(0xff), Some(0x03)) => ppp_protocol(b.get(2..).unwrap_or_default()),
        (Some(0x0f | 0x8f), Some(0x00)) => {
            let ty = be16(b, 2).ok_or(DecodeError::truncated(Layer::Ppp))?;
            Ok(Next::EtherType(ty, b.get(4..).unwrap_or_default()))
        }
        (Some(_), _) => ppp_protocol(b),
        (None, _) => Err(DecodeError::truncated(Layer::Ppp)),
    }
}

fn ppp<'a>(
    b: &'a [u8],
    limits: &DecodeLimits,
    vlan: &mut Option<u16>,
) -> Result<L3<'a>, DecodeError> {
    match ppp_frame(b)? {
        Next::Ip(l3) => Ok(l3),
        Next::EtherType(ty, rest) => ethertype(ty, rest, limits, vlan),
    }
}

/// ```text
/// | packet type (2) | ARPHRD type (2) | address length (2) | address (8) | protocol (2) |
/// ```
fn sll<'a>(
    b: &'a [u8],
    limits: &DecodeLimits,
    vlan: &mut Option<u16>,
) -> Result<L3<'a>, DecodeError> {
    let proto = be16(b, 14).ok_or(DecodeError::truncated(Layer::Sll))?;
    ethertype(proto, b.get(16..).unwrap_or_default(), limits, vlan)
}

/// ```text
/// | protocol (2) | reserved (2) | interface index (4) | ARPHRD type (2) |
/// | packet type (1) | address length (1) | address (8) |
/// ```
fn sll2<'a>(
    b: &'a [u8],
    limits: &DecodeLimits,
    vlan: &mut Option<u16>,
) -> Result<L3<'a>, DecodeError> {
    let proto = be16(b, 0).ok_or(DecodeError::truncated(Layer::Sll2))?;
    if b.len() < 20 {
        return Err(DecodeError::truncated(Layer::Sll2));
    }
    ethertype(proto, b.get(20..).unwrap_or_default(), limits, vlan)
}

/// ```text
/// | length (1) | address family (1) | action (1) | reason (1) | ifname (16) | ruleset (16) |
/// | rule number (4) | subrule number (4) | ... | direction (1) | pad ... |  (length bytes,
/// padded to a multiple of 4)
/// ```
fn pflog(b: &[u8]) -> Result<L3<'_>, DecodeError> {
    let len = u8_at(b, 0).ok_or(DecodeError::truncated(Layer::Pflog))? as usize;
    if len < MIN_PFLOG_HDRLEN {
        return Err(DecodeError::malformed(
            Layer::Pflog,
            "header_length_too_small",
        ));
    }
    let af = u8_at(b, 1).ok_or(DecodeError::truncated(Layer::Pflog))?;
    let padded = (len + 3) & !3;
    let rest = b
        .get(padded..)
        .ok_or(DecodeError::truncated(Layer::Pflog))?;
    match family(u32::from(af)) {
        Some(false) => Ok(L3::V4(rest)),
        Some(true) => Ok(L3::V6(rest)),
        None => Err(DecodeError::Unsupported {
            what: Unsupported::AddressFamily(u32::from(af)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(lt: LinkType, b: &[u8]) -> (Result<L3<'_>, DecodeError>, Option<u16>) {
        let mut vlan = None;
        let r = decode(lt, b, &DecodeLimits::default(), &mut vlan);
        (r, vlan)
    }

    const IP4: [u8; 1] = [0x45];
    const IP6: [u8; 1] = [0x60];

    fn eth(ty: u16, rest: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ty.to_be_bytes());
        f.extend_from_slice(rest);
        f
    }

    #[test]
    fn null_accepts_both_byte_orders_and_all_inet6_values() {
        for fam in [2u32, 10, 24, 28, 30] {
            for bytes in [fam.to_le_bytes(), fam.to_be_bytes()] {
                let mut f = bytes.to_vec();
                f.push(0x45);
                let (r, _) = run(LinkType::NULL, &f);
                let want = if fam == 2 {
                    L3::V4(&f[4..])
                } else {
                    L3::V6(&f[4..])
                };
                assert_eq!(r, Ok(want), "family {fam}");
            }
        }
        let (r, _) = run(LinkType::NULL, &[7, 0, 0, 0]);
        assert!(matches!(
            r,
            Err(DecodeError::Unsupported {
                what: Unsupported::AddressFamily(7)
            })
        ));
        // OpenBSD loop is network order only.
        let (r, _) = run(LinkType::LOOP, &[2, 0, 0, 0, 0x45]);
        assert!(matches!(r, Err(DecodeError::Unsupported { .. })));
        let (r, _) = run(LinkType::LOOP, &[0, 0, 0, 24, 0x60]);
        assert_eq!(r, Ok(L3::V6(&[0x60][..])));
        let (r, _) = run(LinkType::NULL, &[2, 0, 0]);
        assert_eq!(r, Err(DecodeError::truncated(Layer::Loopback)));
    }

    #[test]
    fn raw_picks_by_version_nibble() {
        for lt in [LinkType::RAW, LinkType::RAW_OPENBSD, LinkType::RAW_LINKTYPE] {
            assert_eq!(run(lt, &IP4).0, Ok(L3::V4(&IP4[..])));
            assert_eq!(run(lt, &IP6).0, Ok(L3::V6(&IP6[..])));
            assert!(matches!(
                run(lt, &[0x50]).0,
                Err(DecodeError::Unsupported { .. })
            ));
            assert_eq!(run(lt, &[]).0, Err(DecodeError::truncated(Layer::Ipv4)));
        }
    }

    #[test]
    fn vlan_stack_records_outermost_id_and_is_bounded() {
        // 802.1ad outer tag 100, 802.1Q 101, legacy 0x9100 102, then IPv4.
        let mut body = Vec::new();
        for (id, next) in [(100u16, 0x8100u16), (101, 0x9100), (102, 0x0800)] {
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&next.to_be_bytes());
        }
        body.push(0x45);
        let f = eth(0x88a8, &body);
        let (r, vlan) = run(LinkType::ETHERNET, &f);
        assert_eq!(r, Ok(L3::V4(&[0x45][..])));
        assert_eq!(vlan, Some(100));

        // Deeper than the bound.
        let mut deep = Vec::new();
        for _ in 0..=crate::decode::DEFAULT_MAX_VLAN_TAGS {
            deep.extend_from_slice(&[0x00, 0x05, 0x81, 0x00]);
        }
        let f = eth(0x8100, &deep);
        assert_eq!(
            run(LinkType::ETHERNET, &f).0,
            Err(DecodeError::malformed(Layer::Vlan, "too_many_tags"))
        );
        // Tag cut short.
        assert_eq!(
            run(LinkType::ETHERNET, &eth(0x8100, &[0, 5, 8])).0,
            Err(DecodeError::truncated(Layer::Vlan))
        );
    }

    #[test]
    fn mpls_walks_to_bottom_of_stack() {
        let f = eth(0x8847, &[0, 0, 0x10, 64, 0, 0, 0x21, 64, 0x60]);
        assert_eq!(run(LinkType::ETHERNET, &f).0, Ok(L3::V6(&[0x60][..])));
        // No bottom of stack before the end of the frame.
        let f = eth(0x8847, &[0, 0, 0x10, 64, 0, 0, 0x20, 64]);
        assert_eq!(
            run(LinkType::ETHERNET, &f).0,
            Err(DecodeError::truncated(Layer::Mpls))
        );
        // No bottom of stack within the bound.
        let f = eth(0x8847, &[0u8; 4 * 40]);
        assert_eq!(
            run(LinkType::ETHERNET, &f).0,
            Err(DecodeError::malformed(Layer::Mpls, "too_many_labels"))
        );
        // Pseudowire control word then Ethernet then IPv4.
        let mut pw = vec![0, 0, 0x11, 64, 0, 0, 0, 0];
        pw.extend_from_slice(&eth(0x0800, &IP4));
        assert_eq!(
            run(LinkType::ETHERNET, &eth(0x8847, &pw)).0,
            Ok(L3::V4(&IP4[..]))
        );
    }

    #[test]
    fn pppoe_session_and_ppp_variants() {
        let f = eth(0x8864, &[0x11, 0, 0, 1, 0, 3, 0, 0x21, 0x45, 0xee, 0xee]);
        assert_eq!(run(LinkType::ETHERNET, &f).0, Ok(L3::V4(&[0x45][..])));
        let f = eth(0x8864, &[0x11, 0, 0, 1, 0, 3, 0xc0, 0x21, 0x45]);
        assert!(matches!(
            run(LinkType::ETHERNET, &f).0,
            Err(DecodeError::Unsupported {
                what: Unsupported::PppProtocol(0xc021)
            })
        ));
        let f = eth(0x8864, &[0x12, 0, 0, 1, 0, 3, 0, 0x21, 0x45]);
        assert!(matches!(
            run(LinkType::ETHERNET, &f).0,
            Err(DecodeError::Malformed { .. })
        ));
        assert_eq!(
            run(LinkType::PPP, &[0xff, 0x03, 0x00, 0x57, 0x60]).0,
            Ok(L3::V6(&[0x60][..]))
        );
        assert_eq!(
            run(LinkType::PPP, &[0x00, 0x21, 0x45]).0,
            Ok(L3::V4(&[0x45][..]))
        );
        assert_eq!(run(LinkType::PPP, &[0x21, 0x45]).0, Ok(L3::V4(&[0x45][..])));
        assert_eq!(
            run(LinkType::C_HDLC, &[0x0f, 0x00, 0x08, 0x00, 0x45]).0,
            Ok(L3::V4(&[0x45][..]))
        );
        assert_eq!(
            run(LinkType::PPP, &[0xff, 0x03]).0,
            Err(DecodeError::truncated(Layer::Ppp))
        );
    }

    #[test]
    fn sll_sll2_pflog() {
        let mut f = vec![0u8; 14];
        f.extend_from_slice(&[0x86, 0xdd, 0x60]);
        assert_eq!(run(LinkType::LINUX_SLL, &f).0, Ok(L3::V6(&[0x60][..])));
        let mut f = vec![0x08, 0x00];
        f.extend_from_slice(&[0u8; 18]);
        f.push(0x45);
        assert_eq!(run(LinkType::LINUX_SLL2, &f).0, Ok(L3::V4(&[0x45][..])));
        assert_eq!(
            run(LinkType::LINUX_SLL2, &f[..19]).0,
            Err(DecodeError::truncated(Layer::Sll2))
        );

        let mut p = vec![61u8, 28];
        p.resize(64, 0);
        p.push(0x60);
        assert_eq!(run(LinkType::PFLOG, &p).0, Ok(L3::V6(&[0x60][..])));
        p[1] = 2;
        assert_eq!(run(LinkType::PFLOG, &p).0, Ok(L3::V4(&[0x60][..])));
        p[0] = 3;
        assert!(matches!(
            run(LinkType::PFLOG, &p).0,
            Err(DecodeError::Malformed { .. })
        ));
        p[0] = 255;
        assert_eq!(
            run(LinkType::PFLOG, &p).0,
            Err(DecodeError::truncated(Layer::Pflog))
        );
    }

    #[test]
    fn every_prefix_of_a_stacked_frame_is_an_error_not_a_panic() {
        // VLAN, QinQ, MPLS, PW Ethernet, PPPoE, PPP, IPv4.
        let inner = eth(0x8864, &[0x11, 0, 0, 1, 0, 3, 0, 0x21, 0x45]);
        let mut mpls = vec![0, 0, 0x11, 64, 0, 0, 0, 0];
        mpls.extend_from_slice(&inner);
        let mut stack = vec![0, 7, 0x88, 0x47];
        stack.extend_from_slice(&mpls);
        let f = eth(0x8100, &stack);
        assert_eq!(
            run(LinkType::ETHERNET, &f),
            (Ok(L3::V4(&[0x45][..])), Some(7))
        );
        for n in 0..f.len() {
            let (r, _) = run(LinkType::ETHERNET, &f[..n]);
            match r {
                Err(_) => {}
                Ok(L3::V4(rest) | L3::V6(rest)) => assert!(rest.is_empty(), "prefix {n}"),
            }
        }
        for lt in LinkType::SUPPORTED {
            for n in 0..f.len() {
                let _ = run(lt, &f[..n]);
            }
        }
    }

    #[test]
    fn unknown_link_and_ethertypes() {
        assert!(matches!(
            run(LinkType(127), &[0; 64]).0,
            Err(DecodeError::Unsupported {
                what: Unsupported::LinkType(127)
            })
        ));
        assert!(matches!(
            run(LinkType::ETHERNET, &eth(0x0806, &[0; 28])).0,
            Err(DecodeError::Unsupported {
                what: Unsupported::EtherType(0x0806)
            })
        ));
        // TEB loop: bridged Ethernet inside bridged Ethernet, forever.
        let mut f = Vec::new();
        for _ in 0..40 {
            f.extend_from_slice(&eth(0x6558, &[]));
        }
        let mut vlan = None;
        let r = ethertype(0x6558, &f, &DecodeLimits::default(), &mut vlan);
        assert_eq!(
            r,
            Err(DecodeError::malformed(
                Layer::Ethernet,
                "too_many_link_headers"
            ))
        );
    }
}
