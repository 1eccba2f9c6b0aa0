//! Tunnel headers: GRE (RFC 2784/2890, and version 1 as PPTP uses it, RFC 2637) and VXLAN
//! (RFC 7348). Pure functions; the caller sends the inner frame round the decode loop.

use super::wire::{be16, u8_at};
use super::{DecodeError, Layer};

const GRE_CHECKSUM: u16 = 0x8000;
const GRE_ROUTING: u16 = 0x4000;
const GRE_KEY: u16 = 0x2000;
const GRE_SEQUENCE: u16 = 0x1000;
/// Version 1 only: an acknowledgment number follows.
const GRE_ACK: u16 = 0x0080;
const GRE_VERSION: u16 = 0x0007;
/// Most source route entries walked (RFC 1701 routing, deprecated by RFC 2784). Real
/// routes never needed more than a handful; the bound stops a crafted endless list.
const MAX_GRE_SRES: usize = 16;

/// ERSPAN type I/II (type II when the GRE sequence number is present) and type III.
const ERSPAN_II: u16 = 0x88be;
const ERSPAN_III: u16 = 0x22eb;
const ERSPAN_II_HEADER: usize = 8;
const ERSPAN_III_HEADER: usize = 12;
/// ERSPAN type III "O" flag: an 8-byte platform-specific subheader follows.
const ERSPAN_III_OPTIONAL: u8 = 0x01;
const ERSPAN_III_SUBHEADER: usize = 8;
/// Transparent Ethernet bridging: what an ERSPAN payload is.
const TEB: u16 = 0x6558;

/// VXLAN "VNI valid" flag (RFC 7348: the I flag must be set).
const VXLAN_FLAG_I: u8 = 0x08;
const VXLAN_HEADER: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Gre<'a> {
    /// Ethertype of the payload.
    pub(super) protocol: u16,
    pub(super) payload: &'a [u8],
}

/// ```text
/// |C|R|K|S|s|Recur|A| Flags | Ver |         Protocol Type         |
/// |      Checksum (if C or R)     |       Offset (if C or R)      |
/// |                         Key (if K)                            |
/// |                 Sequence Number (if S)                        |
/// |            Acknowledgment Number (version 1, if A)            |
/// |                   Routing (if R): SREs ending in AF=0,len=0   |
/// ```
/// Version 1 (PPTP) puts payload length and call id in the key field, which must be
/// present.
pub(super) fn gre(b: &[u8]) -> Result<Gre<'_>, DecodeError> {
    let trunc = DecodeError::truncated(Layer::Gre);
    let flags = be16(b, 0).ok_or(trunc)?;
    let protocol = be16(b, 2).ok_or(trunc)?;
    let mut at = 4usize;
    match flags & GRE_VERSION {
        0 => {
            if flags & GRE_ACK != 0 {
                return Err(DecodeError::malformed(Layer::Gre, "ack_flag_in_version_0"));
            }
            if flags & (GRE_CHECKSUM | GRE_ROUTING) != 0 {
                at += 4;
            }
            if flags & GRE_KEY != 0 {
                at += 4;
            }
            if flags & GRE_SEQUENCE != 0 {
                at += 4;
            }
        }
        1 => {
            if flags & (GRE_CHECKSUM | GRE_ROUTING) != 0 {
                return Err(DecodeError::malformed(
                    Layer::Gre,
                    "checksum_or_routing_in_version_1",
                ));
            }
            if flags & GRE_KEY == 0 {
                return Err(DecodeError::malformed(Layer::Gre, "no_key_in_version_1"));
            }
            at += 4;
            if flags & GRE_SEQUENCE != 0 {
                at += 4;
            }
            if flags & GRE_ACK != 0 {
                at += 4;
            }
        }
        _ => return Err(DecodeError::malformed(Layer::Gre, "unknown_version")),
    }
    if b.len() < at {
        return Err(trunc);
    }
    if flags & GRE_ROUTING != 0 {
        // | address family (2) | SRE offset (1) | SRE length (1) | routing information |
        let mut done = false;
        for _ in 0..MAX_GRE_SRES {
            let af = be16(b, at).ok_or(trunc)?;
            let len = usize::from(u8_at(b, at + 3).ok_or(trunc)?);
            at += 4 + len;
            if af == 0 && len == 0 {
                done = true;
                break;
            }
        }
        if !done {
            return Err(DecodeError::malformed(Layer::Gre, "too_many_route_entries"));
        }
        if b.len() < at {
            return Err(trunc);
        }
    }
    let payload = b.get(at..).unwrap_or_default();
    erspan(protocol, flags & GRE_SEQUENCE != 0, payload)
}

/// ERSPAN (Cisco's port mirroring over GRE) wraps a mirrored Ethernet frame:
/// ```text
/// type I:   (no header; GRE without sequence number)
/// type II:  | ver | VLAN | COS | En | T | session id | reserved | index |  (8 bytes)
/// type III: | ver | VLAN | COS | BSO | T | session id | timestamp (4) |
///           | SGT (2) | P | FT | hw id | D | gra | O |  (12 bytes, +8 when O is set)
/// ```
/// The mirrored frame is returned as transparent Ethernet bridging.
fn erspan(protocol: u16, sequenced: bool, b: &[u8]) -> Result<Gre<'_>, DecodeError> {
    let trunc = DecodeError::truncated(Layer::Gre);
    let header = match protocol {
        ERSPAN_II if sequenced => ERSPAN_II_HEADER,
        ERSPAN_II => 0,
        ERSPAN_III => {
            let flags = u8_at(b, ERSPAN_III_HEADER - 1).ok_or(trunc)?;
            if flags & ERSPAN_III_OPTIONAL != 0 {
                ERSPAN_III_HEADER + ERSPAN_III_SUBHEADER
            } else {
                ERSPAN_III_HEADER
            }
        }
        _ => {
            return Ok(Gre {
                protocol,
                payload: b,
            });
        }
    };
    Ok(Gre {
        protocol: TEB,
        payload: b.get(header..).ok_or(trunc)?,
    })
}

/// ```text
/// |R|R|R|R|I|R|R|R|            Reserved                           |
/// |                VXLAN Network Identifier (VNI) |   Reserved    |
/// ```
/// Returns the inner Ethernet frame, or `None` when this UDP datagram is not VXLAN (wrong
/// port, too short, or the I flag clear): then it is decoded as plain UDP.
pub(super) fn vxlan(dst_port: u16, b: &[u8], vxlan_port: u16) -> Option<&[u8]> {
    if dst_port != vxlan_port || u8_at(b, 0)? & VXLAN_FLAG_I == 0 {
        return None;
    }
    b.get(VXLAN_HEADER..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gre_plain_and_with_every_flag() {
        let g = [0, 0, 0x08, 0x00, 0x45];
        assert_eq!(
            gre(&g),
            Ok(Gre {
                protocol: 0x0800,
                payload: &[0x45]
            })
        );
        // C, R, K, S: checksum+offset, key, sequence, then SREs (one entry, then the end).
        let mut g = vec![0xf0, 0x00, 0x86, 0xdd];
        g.extend_from_slice(&[0; 12]);
        g.extend_from_slice(&[0x08, 0x00, 0, 4, 1, 2, 3, 4]);
        g.extend_from_slice(&[0, 0, 0, 0]);
        g.push(0x60);
        assert_eq!(
            gre(&g),
            Ok(Gre {
                protocol: 0x86dd,
                payload: &[0x60]
            })
        );
        for n in 0..g.len() - 1 {
            assert_eq!(
                gre(&g[..n]),
                Err(DecodeError::truncated(Layer::Gre)),
                "prefix {n}"
            );
        }
        // SRE list that never ends.
        let mut g = vec![0x40, 0x00, 0x08, 0x00, 0, 0, 0, 0];
        for _ in 0..40 {
            g.extend_from_slice(&[0, 1, 0, 0]);
        }
        assert_eq!(
            gre(&g),
            Err(DecodeError::malformed(Layer::Gre, "too_many_route_entries"))
        );
    }

    #[test]
    fn gre_version_1_pptp() {
        // K, S, A; version 1; PPP.
        let g = [
            0x30, 0x81, 0x88, 0x0b, 0, 4, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xff,
        ];
        assert_eq!(
            gre(&g),
            Ok(Gre {
                protocol: 0x880b,
                payload: &[0xff]
            })
        );
        let g = [0x10, 0x01, 0x88, 0x0b, 0, 0, 0, 0];
        assert_eq!(
            gre(&g),
            Err(DecodeError::malformed(Layer::Gre, "no_key_in_version_1"))
        );
        let g = [0x00, 0x07, 0x88, 0x0b];
        assert_eq!(
            gre(&g),
            Err(DecodeError::malformed(Layer::Gre, "unknown_version"))
        );
        let g = [0x00, 0x80, 0x08, 0x00];
        assert!(matches!(gre(&g), Err(DecodeError::Malformed { .. })));
    }

    #[test]
    fn erspan_types_unwrap_to_ethernet() {
        // Type I: no sequence number, no header.
        let g = [0x00, 0x00, 0x88, 0xbe, 0xaa];
        assert_eq!(
            gre(&g),
            Ok(Gre {
                protocol: 0x6558,
                payload: &[0xaa]
            })
        );
        // Type II: sequence number, 8-byte header.
        let mut g = vec![0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 1];
        g.extend_from_slice(&[0x10, 0, 0, 1, 0, 0, 0, 0, 0xaa]);
        assert_eq!(
            gre(&g),
            Ok(Gre {
                protocol: 0x6558,
                payload: &[0xaa]
            })
        );
        assert_eq!(gre(&g[..12]), Err(DecodeError::truncated(Layer::Gre)));
        // Type III with the optional subheader.
        let mut g = vec![0x10, 0x00, 0x22, 0xeb, 0, 0, 0, 1];
        g.extend_from_slice(&[0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
        g.extend_from_slice(&[0; 8]);
        g.push(0xaa);
        assert_eq!(
            gre(&g),
            Ok(Gre {
                protocol: 0x6558,
                payload: &[0xaa]
            })
        );
        assert_eq!(gre(&g[..26]), Err(DecodeError::truncated(Layer::Gre)));
    }

    #[test]
    fn vxlan_needs_port_and_flag() {
        let v = [0x08, 0, 0, 0, 0, 0, 42, 0, 0xaa];
        assert_eq!(vxlan(4789, &v, 4789), Some(&[0xaa][..]));
        assert_eq!(vxlan(53, &v, 4789), None);
        assert_eq!(vxlan(4789, &[0, 0, 0, 0, 0, 0, 0, 0], 4789), None);
        assert_eq!(vxlan(4789, &v[..5], 4789), None);
        assert_eq!(vxlan(4789, &[], 4789), None);
    }
}
