//! TCP, UDP, ICMP and ICMPv6 headers. Pure functions over the IP payload.
//!
//! Options are skipped, checksums are not verified. The header must be complete; the data
//! after it is whatever the capture holds (bounded by the IP length, and for UDP by the
//! smaller of the UDP length and the bytes captured).

use std::fmt;

use super::wire::{be16, be32, u8_at};
use super::{DecodeError, Layer};

const TCP_MIN_HEADER: usize = 20;
const UDP_HEADER: usize = 8;
/// Type, code, checksum; the rest of the ICMP header depends on the type.
const ICMP_MIN_HEADER: usize = 4;

/// TCP flag bits (the low byte of the flags field); open so that any combination a
/// scanner sends stays representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: TcpFlags = TcpFlags(0x01);
    pub const SYN: TcpFlags = TcpFlags(0x02);
    pub const RST: TcpFlags = TcpFlags(0x04);
    pub const PSH: TcpFlags = TcpFlags(0x08);
    pub const ACK: TcpFlags = TcpFlags(0x10);
    pub const URG: TcpFlags = TcpFlags(0x20);
    pub const ECE: TcpFlags = TcpFlags(0x40);
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// All bits of `other` are set.
    pub fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Any bit of `other` is set.
    pub fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }
}

impl std::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl fmt::Display for TcpFlags {
    /// tcpdump style: `S`, `S.`, `F.`, `R`, `P.`...; `none` for a null scan.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("none");
        }
        for (flag, c) in [
            (TcpFlags::FIN, 'F'),
            (TcpFlags::SYN, 'S'),
            (TcpFlags::RST, 'R'),
            (TcpFlags::PSH, 'P'),
            (TcpFlags::URG, 'U'),
            (TcpFlags::ECE, 'E'),
            (TcpFlags::CWR, 'W'),
            (TcpFlags::ACK, '.'),
        ] {
            if self.contains(flag) {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// TCP header facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpInfo {
    pub flags: TcpFlags,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
}

/// ICMP or ICMPv6 type and code (which one is said by the packet's `proto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpInfo {
    pub icmp_type: u8,
    pub code: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tcp<'a> {
    pub(super) src_port: u16,
    pub(super) dst_port: u16,
    pub(super) info: TcpInfo,
    pub(super) payload: &'a [u8],
}

/// ```text
/// |          Source Port          |       Destination Port        |
/// |                        Sequence Number                        |
/// |                    Acknowledgment Number                      |
/// |  Data |     |N|C|E|U|A|P|R|S|F|                               |
/// | Offset| Res |S|W|C|R|C|S|S|Y|I|            Window             |
/// |           Checksum            |         Urgent Pointer        |
/// |                    Options (data offset > 5)                  |
/// ```
pub(super) fn tcp(b: &[u8]) -> Result<Tcp<'_>, DecodeError> {
    let trunc = DecodeError::truncated(Layer::Tcp);
    if b.len() < TCP_MIN_HEADER {
        return Err(trunc);
    }
    let doff = usize::from(u8_at(b, 12).ok_or(trunc)? >> 4) * 4;
    if doff < TCP_MIN_HEADER {
        return Err(DecodeError::malformed(Layer::Tcp, "data_offset_below_5"));
    }
    let payload = b.get(doff..).ok_or(trunc)?;
    Ok(Tcp {
        src_port: be16(b, 0).ok_or(trunc)?,
        dst_port: be16(b, 2).ok_or(trunc)?,
        info: TcpInfo {
            flags: TcpFlags(u8_at(b, 13).ok_or(trunc)?),
            seq: be32(b, 4).ok_or(trunc)?,
            ack: be32(b, 8).ok_or(trunc)?,
            window: be16(b, 14).ok_or(trunc)?,
        },
        payload,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Udp<'a> {
    pub(super) src_port: u16,
    pub(super) dst_port: u16,
    pub(super) payload: &'a [u8],
}

/// ```text
/// |          Source Port          |       Destination Port        |
/// |            Length             |           Checksum            |
/// ```
pub(super) fn udp(b: &[u8]) -> Result<Udp<'_>, DecodeError> {
    let trunc = DecodeError::truncated(Layer::Udp);
    let len = usize::from(be16(b, 4).ok_or(trunc)?);
    if b.len() < UDP_HEADER {
        return Err(trunc);
    }
    if len < UDP_HEADER {
        return Err(DecodeError::malformed(Layer::Udp, "length_below_header"));
    }
    let end = len.min(b.len());
    Ok(Udp {
        src_port: be16(b, 0).ok_or(trunc)?,
        dst_port: be16(b, 2).ok_or(trunc)?,
        payload: b.get(UDP_HEADER..end).unwrap_or_default(),
    })
}

/// ```text
/// |     Type      |     Code      |          Checksum             |
/// |                  rest of header, by type                      |
/// ```
pub(super) fn icmp(b: &[u8], layer: Layer) -> Result<(IcmpInfo, &[u8]), DecodeError> {
    let trunc = DecodeError::truncated(layer);
    let icmp_type = u8_at(b, 0).ok_or(trunc)?;
    let code = u8_at(b, 1).ok_or(trunc)?;
    let body = b.get(ICMP_MIN_HEADER..).ok_or(trunc)?;
    Ok((IcmpInfo { icmp_type, code }, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syn() -> Vec<u8> {
        let mut t = vec![
            0xc3, 0x50, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x60, 0x02, 0xff, 0xff, 0, 0, 0, 0,
        ];
        t.extend_from_slice(&[2, 4, 5, 0xb4]); // MSS option
        t.extend_from_slice(b"GET");
        t
    }

    #[test]
    fn tcp_skips_options() {
        let t = syn();
        let p = tcp(&t).unwrap();
        assert_eq!((p.src_port, p.dst_port), (50000, 80));
        assert_eq!(p.info.flags, TcpFlags::SYN);
        assert_eq!(p.info.seq, 1);
        assert_eq!(p.payload, b"GET");
        assert_eq!(TcpFlags(0x12).to_string(), "S.");
        assert!(TcpFlags(0x12).contains(TcpFlags::SYN | TcpFlags::ACK));
    }

    #[test]
    fn tcp_every_prefix_and_bad_offsets() {
        let t = syn();
        for n in 0..24 {
            assert_eq!(
                tcp(&t[..n]),
                Err(DecodeError::truncated(Layer::Tcp)),
                "prefix {n}"
            );
        }
        for n in 24..=t.len() {
            assert_eq!(tcp(&t[..n]).unwrap().payload, &t[24..n]);
        }
        let mut bad = syn();
        bad[12] = 0x40;
        assert_eq!(
            tcp(&bad),
            Err(DecodeError::malformed(Layer::Tcp, "data_offset_below_5"))
        );
        bad[12] = 0xf0; // 60 bytes of header in a 27-byte segment
        assert_eq!(tcp(&bad), Err(DecodeError::truncated(Layer::Tcp)));
    }

    #[test]
    fn udp_length_is_the_smaller_of_header_and_capture() {
        let mut u = vec![0, 53, 0x12, 0x34, 0, 12, 0, 0, 1, 2, 3, 4, 5, 6];
        assert_eq!(udp(&u).unwrap().payload, &[1, 2, 3, 4]);
        u[5] = 200;
        assert_eq!(udp(&u).unwrap().payload, &[1, 2, 3, 4, 5, 6]);
        u[5] = 7;
        assert_eq!(
            udp(&u),
            Err(DecodeError::malformed(Layer::Udp, "length_below_header"))
        );
        for n in 0..8 {
            assert!(udp(&u[..n]).is_err());
        }
    }

    #[test]
    fn icmp_needs_type_code_checksum() {
        let e = [8, 0, 0xf7, 0xff, 0, 1, 0, 1];
        let (info, body) = icmp(&e, Layer::Icmp).unwrap();
        assert_eq!((info.icmp_type, info.code), (8, 0));
        assert_eq!(body, &[0, 1, 0, 1]);
        for n in 0..4 {
            assert_eq!(
                icmp(&e[..n], Layer::Icmpv6),
                Err(DecodeError::truncated(Layer::Icmpv6))
            );
        }
    }
}
