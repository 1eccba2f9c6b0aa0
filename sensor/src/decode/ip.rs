//! IPv4 and IPv6 headers, and the IPv6 extension header chain.
//!
//! Pure functions. Lengths are checked against each other (IHL against total length,
//! total length against the capture) and the payload is cut at the IP length, so Ethernet
//! padding never reaches the transport parsers. A capture cut short by a snap length keeps
//! the bytes it has (`snapped`); only a cut inside a header is an error.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::wire::{array, be16, be32, u8_at};
use super::{DecodeError, DecodeLimits, Layer};

/// IPv4 "more fragments" flag.
const IPV4_MF: u16 = 0x2000;
const IPV4_OFFSET_MASK: u16 = 0x1fff;
const IPV4_MIN_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;

/// IPv6 next-header values walked as extension headers.
const EXT_HOP_BY_HOP: u8 = 0;
const EXT_ROUTING: u8 = 43;
const EXT_FRAGMENT: u8 = 44;
const EXT_ESP: u8 = 50;
const EXT_AH: u8 = 51;
const EXT_NO_NEXT: u8 = 59;
const EXT_DEST_OPTS: u8 = 60;
const EXT_MOBILITY: u8 = 135;
const EXT_HIP: u8 = 139;
const EXT_SHIM6: u8 = 140;

/// A fragment's place in its datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Frag {
    /// IPv4 identification (16 bits) or IPv6 fragment identification (32 bits).
    pub(super) id: u32,
    /// Byte offset of this fragment's data in the reassembled payload.
    pub(super) offset: usize,
    pub(super) more: bool,
}

/// A parsed network header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Datagram<'a> {
    pub(super) src: IpAddr,
    pub(super) dst: IpAddr,
    pub(super) ttl: u8,
    /// IPv4 total length, or 40 + IPv6 payload length.
    pub(super) ip_len: u16,
    /// Bytes before the (fragmentable) payload: IHL*4, or 40 + extension headers.
    pub(super) header_len: usize,
    /// Upper-layer protocol (for a fragment: of the fragmentable part).
    pub(super) proto: u8,
    pub(super) payload: &'a [u8],
    pub(super) frag: Option<Frag>,
    /// The capture holds fewer bytes than the IP length says.
    pub(super) snapped: bool,
    /// IPv4 total length was 0 (segmentation offload) and the capture length was used.
    pub(super) zero_total: bool,
}

/// ```text
///  0                   1                   2                   3
/// |Version|  IHL  |Type of Service|          Total Length         |
/// |         Identification        |Flags|      Fragment Offset    |
/// |  Time to Live |    Protocol   |         Header Checksum       |
/// |                       Source Address                          |
/// |                    Destination Address                        |
/// |                    Options (IHL > 5)                          |
/// ```
pub(super) fn ipv4(b: &[u8]) -> Result<Datagram<'_>, DecodeError> {
    let trunc = DecodeError::truncated(Layer::Ipv4);
    let vihl = u8_at(b, 0).ok_or(trunc)?;
    if vihl >> 4 != 4 {
        return Err(DecodeError::malformed(Layer::Ipv4, "version_not_4"));
    }
    let header_len = usize::from(vihl & 0x0f) * 4;
    if header_len < IPV4_MIN_HEADER {
        return Err(DecodeError::malformed(Layer::Ipv4, "ihl_below_5"));
    }
    if b.len() < header_len {
        return Err(trunc);
    }
    let frag_field = be16(b, 6).ok_or(trunc)?;
    let mut total = be16(b, 2).ok_or(trunc)?;
    let is_fragment = frag_field & (IPV4_MF | IPV4_OFFSET_MASK) != 0;
    // Segmentation offload on the capturing host hands libpcap super-packets whose total
    // length is 0 (Zeek copes the same way): the capture is the datagram. Never for a
    // fragment, whose length must be exact.
    let zero_total = total == 0 && !is_fragment;
    if zero_total {
        total = u16::try_from(b.len()).unwrap_or(u16::MAX);
    }
    if usize::from(total) < header_len {
        return Err(DecodeError::malformed(
            Layer::Ipv4,
            "total_length_below_header",
        ));
    }
    let ttl = u8_at(b, 8).ok_or(trunc)?;
    let proto = u8_at(b, 9).ok_or(trunc)?;
    let src = Ipv4Addr::from(array::<4>(b, 12).ok_or(trunc)?);
    let dst = Ipv4Addr::from(array::<4>(b, 16).ok_or(trunc)?);
    let end = usize::from(total).min(b.len());
    let payload = b.get(header_len..end).unwrap_or_default();
    let offset = usize::from(frag_field & IPV4_OFFSET_MASK) * 8;
    let more = frag_field & IPV4_MF != 0;
    let frag = (more || offset != 0).then_some(Frag {
        id: u32::from(be16(b, 4).ok_or(trunc)?),
        offset,
        more,
    });
    Ok(Datagram {
        src: src.into(),
        dst: dst.into(),
        ttl,
        ip_len: total,
        header_len,
        proto,
        payload,
        frag,
        snapped: end < usize::from(total),
        zero_total,
    })
}

/// ```text
/// |Version| Traffic Class |           Flow Label                  |
/// |         Payload Length        |  Next Header  |   Hop Limit   |
/// |                Source Address (16) | Destination Address (16) |
/// ```
pub(super) fn ipv6<'a>(b: &'a [u8], limits: &DecodeLimits) -> Result<Datagram<'a>, DecodeError> {
    let trunc = DecodeError::truncated(Layer::Ipv6);
    let v = u8_at(b, 0).ok_or(trunc)?;
    if v >> 4 != 6 {
        return Err(DecodeError::malformed(Layer::Ipv6, "version_not_6"));
    }
    let plen = be16(b, 4).ok_or(trunc)?;
    let next = u8_at(b, 6).ok_or(trunc)?;
    let hop_limit = u8_at(b, 7).ok_or(trunc)?;
    let src = Ipv6Addr::from(array::<16>(b, 8).ok_or(trunc)?);
    let dst = Ipv6Addr::from(array::<16>(b, 24).ok_or(trunc)?);
    if plen == 0 && next == EXT_HOP_BY_HOP {
        // A jumbogram (RFC 2675) carries its length in hop-by-hop; never seen on links
        // a sensor watches, and a 16-bit ip_len could not describe it.
        return Err(DecodeError::malformed(Layer::Ipv6, "jumbogram"));
    }
    let end = (IPV6_HEADER + usize::from(plen)).min(b.len());
    let body = b.get(IPV6_HEADER..end).unwrap_or_default();
    let (proto, at, frag) = ipv6_chain(next, body, limits)?;
    Ok(Datagram {
        src: src.into(),
        dst: dst.into(),
        ttl: hop_limit,
        ip_len: u16::try_from(IPV6_HEADER + usize::from(plen)).unwrap_or(u16::MAX),
        header_len: IPV6_HEADER + at,
        proto,
        payload: body.get(at..).unwrap_or_default(),
        frag,
        snapped: end < IPV6_HEADER + usize::from(plen),
        zero_total: false,
    })
}

/// Walk IPv6 extension headers from `next` over `b`. Returns the upper-layer protocol, the
/// offset of its header in `b`, and the fragment header if one (non-atomic) was found —
/// the walk stops there, since what follows is only the first fragment's bytes.
///
/// ```text
/// hop-by-hop, routing, destination options, mobility, HIP, shim6:
///   | next header | length in 8-octet units, not counting the first 8 | ... |
/// AH:       | next header | length in 4-octet units, minus 2 | ... |
/// fragment: | next header | reserved | offset (13) | res (2) | M | identification (32) |
/// ```
/// ESP (50) and no-next-header (59) end the chain: nothing after them is readable.
pub(super) fn ipv6_chain(
    mut next: u8,
    b: &[u8],
    limits: &DecodeLimits,
) -> Result<(u8, usize, Option<Frag>), DecodeError> {
    let trunc = DecodeError::truncated(Layer::Ipv6Ext);
    let mut at = 0usize;
    for _ in 0..=limits.max_ipv6_ext_headers {
        let len = match next {
            EXT_HOP_BY_HOP | EXT_ROUTING | EXT_DEST_OPTS | EXT_MOBILITY | EXT_HIP | EXT_SHIM6 => {
                (usize::from(u8_at(b, at + 1).ok_or(trunc)?) + 1) * 8
            }
            EXT_AH => (usize::from(u8_at(b, at + 1).ok_or(trunc)?) + 2) * 4,
            EXT_FRAGMENT => {
                let field = be16(b, at + 2).ok_or(trunc)?;
                let id = be32(b, at + 4).ok_or(trunc)?;
                let offset = usize::from(field >> 3) * 8;
                let more = field & 1 != 0;
                let after = u8_at(b, at).ok_or(trunc)?;
                if offset != 0 || more {
                    if b.len() < at + 8 {
                        return Err(trunc);
                    }
                    return Ok((after, at + 8, Some(Frag { id, offset, more })));
                }
                // An atomic fragment (RFC 6946): a whole datagram, keep walking.
                8
            }
            EXT_ESP | EXT_NO_NEXT => return Ok((next, at, None)),
            upper => return Ok((upper, at, None)),
        };
        let after = u8_at(b, at).ok_or(trunc)?;
        if b.len() < at + len {
            return Err(trunc);
        }
        next = after;
        at += len;
    }
    Err(DecodeError::malformed(
        Layer::Ipv6Ext,
        "too_many_extension_headers",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(vihl: u8, total: u16, frag: u16, len: usize) -> Vec<u8> {
        let mut h = vec![vihl, 0];
        h.extend_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&[0x12, 0x34]);
        h.extend_from_slice(&frag.to_be_bytes());
        h.extend_from_slice(&[64, 6, 0, 0, 10, 0, 0, 1, 66, 66, 66, 66]);
        h.resize(len, 0xee);
        h
    }

    #[test]
    fn ipv4_lengths_bound_the_payload() {
        // IHL 6, total 30: 6 payload bytes, then 10 bytes of Ethernet padding.
        let b = v4(0x46, 30, 0, 40);
        let d = ipv4(&b).unwrap();
        assert_eq!((d.header_len, d.payload.len(), d.snapped), (24, 6, false));
        assert_eq!(d.frag, None);
        // Total beyond the capture: what was captured, flagged.
        let b = v4(0x45, 1500, 0, 40);
        let d = ipv4(&b).unwrap();
        assert_eq!((d.payload.len(), d.snapped), (20, true));
        // Total length 0 (segmentation offload): the capture is the datagram.
        let b = v4(0x45, 0, 0x4000, 64);
        let d = ipv4(&b).unwrap();
        assert_eq!((d.ip_len, d.payload.len(), d.zero_total), (64, 44, true));
        assert!(ipv4(&v4(0x45, 0, 0x2000, 64)).is_err());
        // Fragment fields.
        let b = v4(0x45, 28, 0x2003, 28);
        let d = ipv4(&b).unwrap();
        assert_eq!(
            d.frag,
            Some(Frag {
                id: 0x1234,
                offset: 24,
                more: true
            })
        );
        // Every prefix of a header with options is truncated, never a panic.
        let b = v4(0x4f, 60, 0, 60);
        for n in 0..60 {
            assert_eq!(
                ipv4(&b[..n]),
                Err(DecodeError::truncated(Layer::Ipv4)),
                "{n}"
            );
        }
        assert!(ipv4(&b).is_ok());
        for vihl in 0x40..=0x44 {
            assert_eq!(
                ipv4(&v4(vihl, 40, 0, 40)),
                Err(DecodeError::malformed(Layer::Ipv4, "ihl_below_5"))
            );
        }
    }

    #[test]
    fn ipv6_chain_is_bounded_and_checked() {
        let limits = DecodeLimits::default();
        // Exactly the limit of destination-options headers is fine; one more is not.
        let n = limits.max_ipv6_ext_headers;
        let mut chain: Vec<u8> = Vec::new();
        for _ in 0..n {
            chain.extend_from_slice(&[60, 0, 0, 0, 0, 0, 0, 0]);
        }
        let last = chain.len() - 8;
        chain[last] = 6;
        assert_eq!(ipv6_chain(60, &chain, &limits), Ok((6, n * 8, None)));
        chain[last] = 60;
        chain.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            ipv6_chain(60, &chain, &limits),
            Err(DecodeError::malformed(
                Layer::Ipv6Ext,
                "too_many_extension_headers"
            ))
        );
        // Fragment header cut short.
        assert_eq!(
            ipv6_chain(44, &[17, 0, 0, 9, 0, 0], &limits),
            Err(DecodeError::truncated(Layer::Ipv6Ext))
        );
        // Non-atomic fragment stops the walk.
        assert_eq!(
            ipv6_chain(44, &[17, 0, 0, 9, 0, 0, 0, 1, 0xaa], &limits),
            Ok((
                17,
                8,
                Some(Frag {
                    id: 1,
                    offset: 8,
                    more: true
                })
            ))
        );
        // AH length in 4-octet units.
        let mut ah = vec![17, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(ipv6_chain(51, &ah, &limits), Ok((17, 12, None)));
        ah.truncate(11);
        assert_eq!(
            ipv6_chain(51, &ah, &limits),
            Err(DecodeError::truncated(Layer::Ipv6Ext))
        );
    }
}
